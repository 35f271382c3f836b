"""The typer application, global flags (``--version``, ``--debug``) and error handling.

Each command lives in its own module under ``vidsift/cli/`` and exposes ``register(app)``.
Errors caused by input print one line ``error: <input>: <reason>`` to stderr and exit 1;
usage errors exit 2 (click); ``--debug`` (or ``VIDSIFT_DEBUG=1``) shows tracebacks.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Optional

import typer

from .. import __version__
from ..errors import VidsiftError
from ..logs import quiet_libraries, show_warning
from .flags import user_message
from .output import install_pipe_guard

COMMANDS = ("info", "index", "plan", "ask", "stream", "serve", "bench", "eval", "batch")

app = typer.Typer(
    name="vidsift",
    help="Answer questions about long videos and live streams with a video MLLM under a fixed visual-token budget.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags as flags (no "<bool>"), VIDEO not {video}, nothing cut with "…"
    context_settings={"help_option_names": ["-h", "--help"],
                      # off a terminal (piped, CI logs) lines are not wrapped at 80 columns
                      **({} if sys.stdout.isatty() else {"terminal_width": 200, "max_content_width": 200})},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vidsift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    if debug:
        os.environ["VIDSIFT_DEBUG"] = "1"
    else:
        warnings.showwarning = show_warning  # one line, `warning: <input>: <reason>`, no source paths
        quiet_libraries()


for _name in COMMANDS:
    importlib.import_module(f"vidsift.cli.{_name}").register(app)


def debug_first(argv: list[str]) -> list[str]:
    """``--debug`` anywhere before a ``--`` moved to the front, where the root command reads it
    (``vidsift info X --debug`` works as ``vidsift --debug info X``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" not in argv[:end]:
        return argv
    return ["--debug", *[a for a in argv[:end] if a != "--debug"], *argv[end:]]


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (what ``main`` passes to ``sys.exit``)."""
    argv = debug_first(list(sys.argv[1:] if argv is None else argv))
    debug = argv[:1] == ["--debug"] or os.environ.get("VIDSIFT_DEBUG") == "1"
    guard = install_pipe_guard()
    try:
        app(args=argv, prog_name="vidsift", standalone_mode=True)
    except SystemExit as done:
        code = done.code
        if guard.broken:  # the reader closed the pipe (`| head -1`): not an error
            return 0
        if code == 130:  # typer turns Ctrl-C inside a command into a silent exit 130
            print("error: interrupted", file=sys.stderr)
        return code if isinstance(code, int) else (0 if code is None else 1)
    except VidsiftError as err:
        if debug:
            raise
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 1
    except OSError as err:  # a file we could not write or read: the file and the reason, in one line
        if debug:
            raise
        line = (f"{err.filename}: {err.strerror or type(err).__name__}" if err.filename
                else f"{type(err).__name__}: {err} (run with --debug for the traceback)")
        print(f"error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # an unexpected failure: still one line unless --debug
        if debug:
            raise
        print(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    finally:
        sys.stdout = guard.stream
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
