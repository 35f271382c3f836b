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
