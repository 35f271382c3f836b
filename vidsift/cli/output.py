"""How the CLI writes: consoles that print file names and model text literally, and a stdout
guard that turns a closed pipe (``vidsift plan ... | head -1``) into a quiet, successful exit.

- `console(stderr=False)`: a rich `Console` with markup and highlighting off (a file named
  ``Lecture [draft].mp4`` or an answer containing ``[/a]`` prints as it is) and, when not on a
  terminal, wide enough that lines are not cut at 80 columns.
- `PipeGuard`: wraps ``sys.stdout``; when the reader goes away it points stdout at /dev/null
  and remembers it, so the command stops quietly and `vidsift.cli.app.run` exits 0.
"""

from __future__ import annotations

import os
import sys
from typing import Any

OFF_TERMINAL_WIDTH = 200  # columns when stdout/stderr is a file or a pipe


def console(*, stderr: bool = False) -> Any:
    """A rich Console that prints text literally (no markup, no highlighting)."""
    from rich.console import Console

    con = Console(stderr=stderr, markup=False, highlight=False)
    if not con.is_terminal:
        con.width = max(con.width, OFF_TERMINAL_WIDTH)
    return con


class PipeGuard:
    """A stand-in for ``sys.stdout`` that survives a closed pipe (see module docstring)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.broken = False

    def _closed(self) -> None:
        self.broken = True
        try:  # later writes and the interpreter's final flush go nowhere instead of failing
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._closed()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._closed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def install_pipe_guard() -> PipeGuard:
    guard = PipeGuard(sys.stdout)
    sys.stdout = guard
    return guard


def writable_out(path: str | os.PathLike, *, folder: bool = False, flag: str = "--out") -> None:
    """Raise a one-line `ConfigError` (``--out PATH: cannot write here (Permission denied)``)
    unless ``path`` (a file, or with ``folder`` a directory) can be created and written; parent
    folders are made as the commands would make them."""
    from pathlib import Path

    from ..errors import ConfigError

    target = Path(path)
    try:
        if folder:
            if target.exists() and not target.is_dir():
                raise ConfigError(f"{flag} {path}", "must be a directory")
            target.mkdir(parents=True, exist_ok=True)
            probe = target / f".vidsift-write-{os.getpid()}"
            probe.touch()
            probe.unlink()
        else:
            if target.is_dir():
                raise ConfigError(f"{flag} {path}", "is a folder; give a file")
            target.parent.mkdir(parents=True, exist_ok=True)
            existed = target.exists()
            with open(target, "a", encoding="utf-8"):
                pass
            if not existed:
                target.unlink()
    except OSError as err:
        raise ConfigError(f"{flag} {path}", f"cannot write here ({err.strerror or type(err).__name__})") from None


def note_unused_query(scorer: str | None, *, what: str = "--query") -> None:
    """Say once on stderr that ``what`` (the query or question) cannot steer the frames the scorer
    picks (``uniform``, the default): ``note: --query is not used by the uniform scorer; try --scorer mllm``."""
    from ..selectors import uses_query

    if not uses_query(scorer):
        name = (scorer or "uniform").partition(":")[0]
        print(f"note: {what} is not used by the {name} scorer; try --scorer mllm", file=sys.stderr)
