"""`LavfiSource`: an FFmpeg lavfi test pattern as a camera (``lavfi:testsrc2=size=320x240:rate=30``).

Paced by default (FFmpeg's ``realtime`` filter: frames arrive at the graph's rate, like a
camera); ``realtime=False`` delivers frames as fast as they are consumed, which is how tests
and soaks simulate hours of stream in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError
from .base import SourceConfig
from .pyav import PyAVSource


@dataclass(kw_only=True)
class LavfiSource(PyAVSource):
    """A lavfi filter graph (``testsrc2=size=320x240:rate=30``); ``realtime`` paces it."""

    kind = "lavfi"
    realtime: bool = True

    def __post_init__(self) -> None:
        graph = str(self.target).removeprefix("lavfi:")
        if not graph:
            raise ConfigError(self.label or "lavfi:", "empty filter graph; e.g. lavfi:testsrc2=size=320x240:rate=30")
        self.label = self.label or f"lavfi:{graph}"
        if self.realtime and "realtime" not in graph:
            graph = f"{graph},realtime"
        self.target = graph
        self.format = "lavfi"
        super().__post_init__()

    @property
    def live(self) -> bool:
        return self.realtime


class LavfiConfig(SourceConfig):
    """``lavfi:GRAPH``."""

    kind, usage, source, paced = "lavfi", "lavfi:<graph>", LavfiSource, True

    def matches(self, spec: str) -> bool:
        return spec.startswith("lavfi:")
