"""Live sources: webcams, network URLs, files (optionally paced) and lavfi test patterns.

``open_source("0")``, ``open_source("rtsp://cam/stream")``, ``open_source("clip.mp4", realtime=True)``,
``open_source("lavfi:testsrc2=size=320x240:rate=30")`` build the right `LiveSource` from what a
user types; nothing is opened until ``open()`` (or ``with``). Which kind a text names is asked of
every registered `SourceConfig` (`SOURCES`, `find_source`): a new kind registers its config, with
no edit here.
"""

from __future__ import annotations

from typing import Any

from ...errors import SourceError
from .base import SOURCES, LiveFrame, LiveSource, SourceConfig, find_source, source_configs
from .file import FileSource
from .lavfi import LavfiSource
from .pyav import PyAVSource
from .url import SCHEMES, UrlSource
from .webcam import WebcamSource

__all__ = ["SOURCES", "SCHEMES", "LiveFrame", "LiveSource", "SourceConfig", "PyAVSource", "FileSource", "LavfiSource",
           "UrlSource", "WebcamSource", "find_source", "source_configs", "source_kind", "open_source"]


def source_kind(spec: str) -> str:
    """Which registered kind a user's ``--source`` text names (webcam, url, lavfi, file, ...)."""
    return find_source(spec.strip()).kind


def open_source(spec: str | LiveSource, *, realtime: bool | None = None, **options: Any) -> LiveSource:
    """Build (not open) the source a user named. ``realtime`` paces files (default off) and
    lavfi graphs (default on); other options go to the source's dataclass (timeouts, max_side)."""
    if isinstance(spec, LiveSource):
        return spec
    spec = str(spec).strip()
    if not spec:
        raise SourceError("''", "empty source")
    return find_source(spec).make(spec, realtime=realtime, **options)
