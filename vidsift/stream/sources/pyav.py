"""`PyAVSource`: the shared PyAV decoding loop behind every live source kind.

Opens ``av.open(target, format=..., options=..., timeout=(open_s, read_s))`` so neither the
open nor a read can hang (PyAV's interrupt callback covers every FFmpeg protocol), decodes the
first video stream, rotates frames to display orientation and optionally downscales them in
FFmpeg (``max_side``) so a 4K camera never costs 4K numpy arrays. FFmpeg errors become one-line
`SourceError`s naming the source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ...errors import ConfigError, SourceError
from .base import LiveFrame, LiveSource


def _reason(err: BaseException) -> str:
    """A short one-line reason from an FFmpeg/OS error."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    text = str(text).splitlines()[0] if str(text) else type(err).__name__
    if "Immediate exit requested" in text:
        return "timed out"
    return text


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
        self._frames: Iterator | None = None

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
        self._frames = self._container.decode(stream)

    def _to_rgb(self, frame: Any) -> np.ndarray:
        width, height = frame.width, frame.height
        if self.max_side is not None and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
            width, height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
            rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
        else:
            rgb = frame.to_ndarray(format="rgb24")
        rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        if rotation:  # PyAV reports counter-clockwise degrees; display orientation needs the inverse turn
            rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
        return rgb

    def read(self) -> LiveFrame | None:
        import av

        if self._frames is None:
            raise SourceError(self.name, "read() before open()")
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except (av.FFmpegError, OSError) as err:
            if isinstance(err, av.EOFError):
                return None
            reason = _reason(err)
            if reason == "timed out":
                reason = f"no data for {self.read_timeout_s:g} s"
            raise SourceError(self.name, f"stream failed: {reason}") from None
        pts = float(frame.time) if frame.time is not None else float("nan")
        return LiveFrame(rgb=self._to_rgb(frame), pts_seconds=pts, wall_s=time.monotonic())

    def close(self) -> None:
        self._close_container()

    def _close_container(self) -> None:
        container, self._container, self._frames = self._container, None, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not raise
                pass
