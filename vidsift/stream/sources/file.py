"""`FileSource`: a video file (or a FIFO with a live writer) replayed as a stream.

``realtime=True`` paces frames by their pts (sleeping until each frame is due, optionally
``speed`` times faster), so a file behaves like a camera (``--realtime``); otherwise frames are
delivered as fast as they are consumed (an accelerated stream: every frame, no drops).
A FIFO is never opened with a blocking ``open()`` (which hangs forever with no writer): it is
opened non-blocking and polled, and each read waits at most ``read_timeout_s``.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from dataclasses import dataclass

from ...errors import ConfigError, SourceError
from .base import SOURCES, LiveFrame
from .pyav import PyAVSource


class _PolledFifo:
    """A read-only file object over a FIFO fd whose reads time out instead of blocking."""

    def __init__(self, fd: int, name: str, timeout_s: float) -> None:
        self.fd, self.name, self.timeout_s = fd, name, timeout_s

    def read(self, n: int = -1) -> bytes:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP)
        if not poller.poll(self.timeout_s * 1000):
            raise TimeoutError(errno.ETIMEDOUT, f"no data for {self.timeout_s:g} s")
        try:
            return os.read(self.fd, n if n > 0 else 1 << 16)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_fifo(path: str, *, timeout_s: float) -> _PolledFifo:
    """Open a FIFO for reading without blocking; fails unless a writer sends data within ``timeout_s``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    events = poller.poll(timeout_s * 1000)
    if not events or not events[0][1] & select.POLLIN:
        os.close(fd)
        raise SourceError(path, f"FIFO has no writer (no data within {timeout_s:g} s)")
    return _PolledFifo(fd, path, timeout_s)


@SOURCES.register("file")
@dataclass(kw_only=True)
class FileSource(PyAVSource):
    """A local file or FIFO; ``realtime`` paces by pts at ``speed`` x real time."""

    kind = "file"
    realtime: bool = False
    speed: float = 1.0

    def __post_init__(self) -> None:
        path = str(self.target).removeprefix("file:")
        self.label = self.label or path
        self.target = path
        if self.speed <= 0:
            raise ConfigError(path, f"speed must be > 0, got {self.speed}")
        super().__post_init__()
        self._fifo: _PolledFifo | None = None
        self._t0: tuple[float, float] | None = None  # (wall, pts) of the first frame

    @property
    def live(self) -> bool:
        return self.realtime

    def open(self) -> None:
        path = self.target
        if not os.path.exists(path):
            raise SourceError(self.name, "no such file or device")
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise SourceError(self.name, "is a directory, not a video")
        self._t0 = None
        if stat.S_ISFIFO(mode):
            self._fifo = open_fifo(path, timeout_s=self.open_timeout_s)
            target, self.target = self.target, self._fifo
            try:
                super().open()
            finally:
                self.target = target
        else:
            super().open()

    def read(self) -> LiveFrame | None:
        frame = super().read()
        if frame is None or not self.realtime or frame.pts_seconds != frame.pts_seconds:
            return frame
        if self._t0 is None:
            self._t0 = (frame.wall_s, frame.pts_seconds)
        due = self._t0[0] + (frame.pts_seconds - self._t0[1]) / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        frame.wall_s = time.monotonic()
        return frame

    def close(self) -> None:
        super().close()
        fifo, self._fifo = getattr(self, "_fifo", None), None
        if fifo is not None:
            fifo.close()
