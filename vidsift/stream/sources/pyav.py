"""`PyAVSource`: the shared PyAV decoding loop behind every live source kind.

Opens ``av.open(target, format=..., options=..., timeout=(open_s, read_s))`` so neither the
open nor a read can hang (PyAV's interrupt callback covers every FFmpeg protocol), decodes the
first video stream, rotates frames to display orientation and optionally downscales them in
FFmpeg (``max_side``) so a 4K camera never costs 4K numpy arrays. FFmpeg errors become one-line
`SourceError`s naming the source.

Packets are demuxed and decoded one by one, as ``vidsift ask`` does: a packet that does not
decode (a damaged file, a corrupt datagram) is skipped and counted, and the stream goes on; the
first error and then at most one summary per ``WARN_EVERY_S`` become warnings (``take_warnings``).
A frame's ``wall_s`` is the arrival time of the packet it was decoded from, so frames the
decoder still held when a live stream went silent (flushed at the end) keep the time they
really arrived, never the time of the flush.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ...errors import ConfigError, SourceError
from .base import LiveFrame, LiveSource

WARN_EVERY_S = 10.0  # at most one decode-error warning per this many seconds (after the first)
MAX_DEMUX_ERRORS = 100  # consecutive demux errors before a stream is given up as failed
_ARRIVALS = 512  # packet arrival times kept (by pts) to time the frames a decoder returns late
_QUIET_S = 0.25  # a packet handed over after this long a silence is timed by its pts


def _reason(err: BaseException) -> str:
    """A short one-line reason from an FFmpeg/OS error."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    text = str(text).splitlines()[0] if str(text) else type(err).__name__
    if "Immediate exit requested" in text:
        return "timed out"
    return text


class _NoPacket:
    pts = None
    time_base = None


_NO_PACKET = _NoPacket()


@dataclass(kw_only=True)
class PyAVSource(LiveSource):
    """Frames of the first video stream of anything FFmpeg opens.

    target: what ``av.open`` gets (URL, device, path, lavfi graph); ``label`` the user's text.
    open_timeout_s / read_timeout_s: hard limits on connecting and on waiting for a packet.
    max_side: downscale so max(H, W) <= max_side (None: keep the source size).
    """

    target: Any
    label: str = ""
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    max_side: int | None = None

    def __post_init__(self) -> None:
        if self.open_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ConfigError(self.name, "timeouts must be > 0 seconds")
        if self.max_side is not None and self.max_side < 16:
            raise ConfigError(self.name, f"max_side must be >= 16 pixels, got {self.max_side}")
        self._container = None
        self._frames: Iterator | None = None  # the demuxed packets of the open container
        self._stream = None
        self._reformatter = None  # av's VideoReformatter, made at the first frame
        self._pending: collections.deque = collections.deque()  # decoded, not yet returned
        self._arrival: collections.OrderedDict = collections.OrderedDict()  # pts -> packet arrival
        self._last_packet_wall = 0.0
        self._prev_packet: tuple[float, float | None] | None = None  # (arrival, pts s) of the last packet
        self._warnings: list[str] = []
        self.decode_errors = 0  # packets that did not decode, over the source's life
        self.frames_decoded = 0  # frames returned by read(), over the source's life
        self._errors_unwarned = 0
        self._first_error: str | None = None
        self._last_warn_wall = 0.0

    @property
    def name(self) -> str:
        return self.label or str(self.target)

    def _open_kwargs(self) -> dict[str, Any]:
        return {"format": self.format, "options": dict(self.options),
                "timeout": (self.open_timeout_s, self.read_timeout_s)}

    def open(self) -> None:
        import av

        self._close_container()
        try:
            self._container = av.open(self.target, mode="r", **self._open_kwargs())
        except (av.FFmpegError, OSError, ValueError) as err:
            reason = _reason(err)
            if reason == "timed out":
                reason = f"no response within {self.open_timeout_s:g} s (unreachable, or not sending)"
            raise SourceError(self.name, f"cannot open: {reason}") from None
        if not self._container.streams.video:
            self._close_container()
            raise SourceError(self.name, "has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        self._frames = self._container.demux(stream)
        self._pending.clear()
        self._arrival.clear()
        self._last_packet_wall = time.monotonic()
        self._prev_packet = None

    def _arrived(self, packet: Any) -> float:
        """When ``packet`` arrived. A demuxer holds the last packet until the next one starts, or
        until a read times out: a packet returned after a silence (> ``_QUIET_S``) is as old as its
        pts says relative to the previous one, never as new as the moment it was handed over."""
        now = time.monotonic()
        t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
        prev, self._prev_packet = self._prev_packet, (now, t)
        if prev is None or t is None or prev[1] is None or now - prev[0] <= _QUIET_S or t < prev[1]:
            return now
        wall = min(now, prev[0] + (t - prev[1]))
        self._prev_packet = (wall, t)
        return wall

    def take_warnings(self) -> list[str]:
        """Warnings since the last call (decode errors skipped, an early end), one line each."""
        out, self._warnings = self._warnings, []
        return out

    def _decode_error(self, err: BaseException, packet: Any) -> None:
        """A packet that does not decode: skip it, count it, warn now and then (never raise)."""
        self.decode_errors += 1
        self._errors_unwarned += 1
        where = ""
        if packet.pts is not None and packet.time_base is not None:
            where = f" at {float(packet.pts * packet.time_base):.2f}s"
        reason = f"{_reason(err)}{where}"
        now = time.monotonic()
        if self._first_error is None:
            self._first_error = reason
            self._warnings.append(f"{self.name}: decode error ({reason}); the damaged frames are skipped "
                                  "and the stream goes on")
        elif now - self._last_warn_wall >= WARN_EVERY_S:
            self._warnings.append(f"{self.name}: {self._errors_unwarned} more decode error(s) "
                                  f"({self.decode_errors} in all, latest: {reason}); the stream goes on")
        else:
            return
        self._errors_unwarned, self._last_warn_wall = 0, now

    def _at_end(self) -> LiveFrame | None:
        """The demuxer reached its end: None (subclasses may report, or raise for a silent stream)."""
        return None

    def _to_rgb(self, frame: Any) -> np.ndarray:
        if self._reformatter is None:  # kept across frames: it keeps its swscale context (30x cheaper a frame)
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        width, height = frame.width, frame.height
        if self.max_side is not None and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
            width, height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
        rgb = self._reformatter.reformat(frame, width=width, height=height, format="rgb24").to_ndarray()
        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        if rotation:  # PyAV reports counter-clockwise degrees; display orientation needs the inverse turn
            rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
        return rgb

    def read(self) -> LiveFrame | None:
        import av

        if self._frames is None:
            raise SourceError(self.name, "read() before open()")
        demux_errors = 0
        while not self._pending:
            try:
                packet = next(self._frames)
            except StopIteration:
                return self._at_end()
            except (av.FFmpegError, OSError) as err:
                if isinstance(err, av.EOFError):
                    return self._at_end()
                reason = _reason(err)
                if reason == "timed out":
                    raise SourceError(self.name, f"stream failed: no data for {self.read_timeout_s:g} s") from None
                demux_errors += 1
                if demux_errors > MAX_DEMUX_ERRORS or self._container is None:
                    raise SourceError(self.name, f"stream failed: {reason}") from None
                self._decode_error(err, _NO_PACKET)
                self._frames = self._container.demux(self._stream)  # resume after the damaged data
                continue
            demux_errors = 0
            if packet.size:
                self._last_packet_wall = self._arrived(packet)
                if packet.pts is not None:
                    self._arrival[packet.pts] = self._last_packet_wall
                    while len(self._arrival) > _ARRIVALS:
                        self._arrival.popitem(last=False)
            try:
                self._pending.extend(packet.decode())
            except av.EOFError:
                continue
            except (av.FFmpegError, ValueError) as err:
                self._decode_error(err, packet)
        frame = self._pending.popleft()
        wall = self._arrival.pop(frame.pts, None) if frame.pts is not None else None
        pts = float(frame.time) if frame.time is not None else float("nan")
        self.frames_decoded += 1
        return LiveFrame(rgb=self._to_rgb(frame), pts_seconds=pts,
                         wall_s=self._last_packet_wall if wall is None else wall)

    def close(self) -> None:
        self._close_container()

    def _close_container(self) -> None:
        container, self._container, self._frames, self._stream = self._container, None, None, None
        self._pending.clear()
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not raise
                pass
