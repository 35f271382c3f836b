"""`FileSource`: a video file (or a FIFO with a live writer) replayed as a stream.

``realtime=True`` paces frames by their pts (sleeping until each frame is due, optionally
``speed`` times faster), so a file behaves like a camera (``--realtime``); otherwise frames are
delivered as fast as they are consumed (an accelerated stream: every frame, no drops).
A FIFO is never opened with a blocking ``open()`` (which hangs forever with no writer): it is
opened non-blocking and polled, and each read waits at most ``read_timeout_s``.

A damaged file streams as ``vidsift ask`` reads it: packets that do not decode are skipped with a
warning and the stream goes on. A regular file is probed like ``vidsift info`` (header, index,
timestamps; no decoding), so when it ends the source knows whether it ended early: ``report()``
gives the same ``frames_expected`` / ``frames_decoded`` / ``missing`` / ``reason`` and a warning
says how many frames never came. A file FFmpeg cannot open fails with ``ask``'s one-line reason.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
import warnings
from dataclasses import dataclass
from urllib.parse import urlparse

from ...errors import ConfigError, SourceError
from .base import LiveFrame, SourceConfig
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


def _probe_summary(path: str) -> dict | None:
    """The file's decode summary as ``vidsift info --json`` shows it (header, index and timestamps,
    no decoding); None when the probe cannot read the file (the stream then reports no count)."""
    from ...frames import VideoError, open_video

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the stream warns itself, once, when the file ends early
            with open_video(path, backend="pyav", max_pixels=None) as video:
                return video.report.summary()
    except VideoError:
        return None


def _probe_failure(path: str) -> str | None:
    """Why ``vidsift ask`` refuses a file FFmpeg cannot stream (one line), or None."""
    from ...frames import VideoError, open_video

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            open_video(path, backend="pyav", max_pixels=None).close()
    except VideoError as err:
        return err.reason
    return None


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
        self.options.setdefault("protocol_whitelist", "file")  # a file never reaches the network through its demuxer
        super().__post_init__()
        self._fifo: _PolledFifo | None = None
        self._t0: tuple[float, float] | None = None  # (wall, pts) of the first frame
        self._probe: dict | None = None  # the file's decode summary before decoding (regular files)
        self._report: dict | None = None  # set when the stream reached the end of the file
        self._length: float | None = None  # the file's duration, once open (a FIFO has none)

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
        self._t0, self._probe, self._report = None, None, None
        self.frames_decoded, self.decode_errors, self._first_error, self._errors_unwarned = 0, 0, None, 0
        if stat.S_ISFIFO(mode):
            self._fifo = open_fifo(path, timeout_s=self.open_timeout_s)
            target, self.target = self.target, self._fifo
            try:
                super().open()
            finally:
                self.target = target
            return
        try:
            super().open()
        except SourceError as err:
            reason = _probe_failure(path)  # what `vidsift ask` says about this file, when it says more
            if reason is None:
                raise
            raise SourceError(self.name, reason) from err
        from ...frames import PLAYLIST_FORMATS

        fmt = self._container.format.name
        if set(fmt.split(",")) & PLAYLIST_FORMATS:  # a renamed ffconcat script / playlist: never followed
            self.close()
            raise SourceError(self.name, f"not a video file but a {fmt} playlist/script; vidsift does not follow "
                                         "what a file names (pass the video itself)")
        self._probe = _probe_summary(path)
        stream = self._container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            self._length = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            self._length = self._container.duration / 1_000_000

    def length_s(self) -> float | None:
        return self._length

    def _at_end(self) -> LiveFrame | None:
        probe = self._probe
        errors = (f"{self.decode_errors} decode error(s), first: {self._first_error}"
                  if self.decode_errors else None)
        if probe is None:
            return None
        expected, decoded = probe["frames_expected"], self.frames_decoded
        missing = max(0, expected - decoded)
        reason = None
        if missing:
            reason = "; ".join(r for r in (probe["reason"], errors) if r) or \
                f"{missing} frame(s) in the file did not decode"
        self._report = {"frames_expected": expected, "frames_decoded": decoded, "missing": missing, "reason": reason}
        if missing:
            self._warnings.append(f"{self.name}: the stream ended early: {decoded} of {expected} frames "
                                  f"({missing} missing: {reason})")
        return None

    def report(self) -> dict | None:
        return self._report

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


class FileConfig(SourceConfig):
    """Anything without a scheme (or ``file:``, or a Windows drive letter): a path. Asked last."""

    kind, usage, source, paced, priority = "file", "a file path", FileSource, True, -1

    def matches(self, spec: str) -> bool:
        scheme = urlparse(spec).scheme.lower()
        return scheme == "file" or len(scheme) <= 1  # no scheme, or a Windows drive letter

    def target(self, spec: str) -> str:
        return os.path.expanduser(spec)
