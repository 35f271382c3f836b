"""The live-source contract (`LiveSource`), the frame it yields (`LiveFrame`) and the kind registry.

A source is opened, read frame by frame and closed; it is a context manager. ``read()`` never
blocks forever: network sources carry PyAV open/read timeouts, files and lavfi graphs end.
``live`` says whether frames arrive at the source's own pace (a camera, a network stream, a
paced file) - then the capture thread keeps only the latest frame - or as fast as they are
consumed (a file or lavfi graph read at full speed: every frame is delivered, for tests and
accelerated soaks). ``reconnectable`` sources are reopened with backoff when they drop.
Pattern: huggingface/lerobot cameras (connect/read/disconnect ABC, configs registered by name).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...registry import Registry


@dataclass
class LiveFrame:
    """One decoded frame: ``rgb`` uint8 (H, W, 3) in display orientation, the source's own
    ``pts_seconds`` (resets when a stream reconnects) and the monotonic clock at arrival."""

    rgb: np.ndarray
    pts_seconds: float
    wall_s: float

    def __post_init__(self) -> None:
        if self.rgb.dtype != np.uint8 or self.rgb.ndim != 3 or self.rgb.shape[-1] != 3:
            raise ValueError(f"LiveFrame.rgb must be uint8 (H,W,3), got {self.rgb.dtype} {self.rgb.shape}")


class LiveSource(ABC):
    """A webcam, network stream, file or test pattern delivering frames one at a time."""

    kind: ClassVar[str]
    reconnectable: ClassVar[bool] = False

    @property
    @abstractmethod
    def name(self) -> str:
        """What the user typed (a device, URL or path): the subject of every error."""

    @property
    def live(self) -> bool:
        """True when frames come at the source's pace (keep only the latest)."""
        return True

    @abstractmethod
    def open(self) -> None:
        """Connect; raises `SourceError` (one line) when the source cannot be opened."""

    @abstractmethod
    def read(self) -> LiveFrame | None:
        """Next frame, ``None`` at the end of the stream; raises `SourceError` on a failure
        (timeout, dropped connection). Never blocks longer than the source's read timeout."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or connection; safe to call twice."""

    def length_s(self) -> float | None:
        """The stream's length in seconds when the source knows it (a file, once open), else None."""
        return None

    def take_warnings(self) -> list[str]:
        """Warnings since the last call, one line each (``<source>: <what happened>``): decode
        errors skipped, a file that ended early. The capture thread turns them into events."""
        return []

    def report(self) -> dict | None:
        """After the end of a finite source: ``{"frames_expected", "frames_decoded", "missing",
        "reason"}`` (the decode report of ``vidsift info --json``); None when unknown."""
        return None

    def __enter__(self) -> "LiveSource":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


SOURCES: Registry[LiveSource] = Registry("source kind")
