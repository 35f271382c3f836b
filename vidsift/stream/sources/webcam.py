"""`WebcamSource`: a local camera through FFmpeg's platform capture device.

Linux: ``0`` or ``/dev/video0`` via v4l2; macOS: ``0`` via avfoundation; Windows: ``0`` or a
device name via dshow (``video=<name>``). A missing device is a one-line `SourceError`
before FFmpeg is asked (no hang on a nonexistent node).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass

from ...errors import SourceError
from .base import SourceConfig
from .pyav import PyAVSource


def platform_device(spec: str, platform: str = sys.platform) -> tuple[str, str]:
    """``"0"`` / ``"/dev/video0"`` / ``"webcam:0"`` -> (FFmpeg device, input format) for this OS."""
    spec = spec.removeprefix("webcam:")
    if platform.startswith("linux"):
        return (f"/dev/video{spec}" if spec.isdigit() else spec), "v4l2"
    if platform == "darwin":
        return spec.removeprefix("/dev/video"), "avfoundation"
    if platform.startswith("win"):
        return (f"video={spec}" if not spec.startswith("video=") else spec), "dshow"
    return spec, "v4l2"


@dataclass(kw_only=True)
class WebcamSource(PyAVSource):
    """A camera; ``size`` ("640x480") and ``rate`` ask the driver for a mode when given."""

    kind = "webcam"
    reconnectable = True
    size: str | None = None
    rate: float | None = None

    def __post_init__(self) -> None:
        self.label = self.label or str(self.target)
        self.target, fmt = platform_device(str(self.target))
        self.format = self.format or fmt
        if self.size:
            self.options.setdefault("video_size", self.size)
        if self.rate:
            self.options.setdefault("framerate", f"{self.rate:g}")
        super().__post_init__()

    def open(self) -> None:
        if self.format == "v4l2":
            if not os.path.exists(self.target):
                raise SourceError(self.name, f"no such camera device ({self.target} does not exist)")
            if not stat.S_ISCHR(os.stat(self.target).st_mode):
                raise SourceError(self.name, f"{self.target} is not a camera device")
            if not os.access(self.target, os.R_OK):
                raise SourceError(self.name, f"permission denied on {self.target} (add yourself to the 'video' group)")
        super().open()


class WebcamConfig(SourceConfig):
    """``0``, ``/dev/video0``, ``webcam:NAME``."""

    kind, usage, source = "webcam", "a camera index or /dev/videoN", WebcamSource

    def matches(self, spec: str) -> bool:
        return spec.startswith("webcam:") or spec.isdigit() or re.fullmatch(r"/dev/video\d+", spec) is not None
