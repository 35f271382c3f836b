"""A one-line live status of a `StreamSession` (rich, to stderr).

``t 12.3s | frames 370 seen / 24 kept | memory 480/512 tok | 2.0 fps | dropped 3 | reconnects 0``,
refreshed a few times a second; ``STALLED`` / ``reconnecting`` show up in colour when they happen.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text


def format_status(stats: dict[str, Any]) -> Text:
    """The status line for a `StreamSession.stats()` snapshot."""
    line = Text()
    line.append(f"t {stats['t']:.1f}s", style="bold")
    line.append(f" | frames {stats['frames_seen']} seen / {stats['frames_kept']} kept")
    full = stats["memory_tokens"] >= stats["budget"]
    line.append(f" | memory {stats['memory_tokens']}/{stats['budget']} tok", style="yellow" if full else "")
    line.append(f" | {stats['fps_sustained']:.1f} fps | dropped {stats['frames_dropped']}")
    line.append(f" | reconnects {stats['reconnects']} | {stats['mode']}")
    if stats.get("stalled"):
        line.append("  STALLED", style="bold red")
    elif not stats.get("connected", True):
        line.append("  reconnecting", style="bold yellow")
    return line


class StatusLine:
    """Context manager showing ``session.stats()`` live on ``console`` (stderr by default)."""

    def __init__(self, session: Any, *, console: Console | None = None, refresh_s: float = 0.25) -> None:
        self.session, self.refresh_s = session, refresh_s
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "StatusLine":
        self._live = Live(format_status(self.session.stats()), console=self.console, transient=True,
                          auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
        self._live.__enter__()
        self._thread = threading.Thread(target=self._run, name="vidsift-status", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self._live.update(format_status(self.session.stats()), refresh=True)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print above the status line (or plainly when it is not running)."""
        (self._live.console if self._live else self.console).print(*objects, **kwargs)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._live is not None:
            self._live.__exit__(None, None, None)
        self.console.print(format_status(self.session.stats()))
