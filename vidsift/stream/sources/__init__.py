"""Live sources: webcams, network URLs, files (optionally paced) and lavfi test patterns.

``open_source("0")``, ``open_source("rtsp://cam/stream")``, ``open_source("clip.mp4", realtime=True)``,
``open_source("lavfi:testsrc2=size=320x240:rate=30")`` build the right `LiveSource` from what a
user types; nothing is opened until ``open()`` (or ``with``).
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlparse

from ...errors import ConfigError, SourceError
from .base import SOURCES, LiveFrame, LiveSource
from .file import FileSource
from .lavfi import LavfiSource
from .pyav import PyAVSource
from .url import SCHEMES, UrlSource
from .webcam import WebcamSource

__all__ = ["SOURCES", "LiveFrame", "LiveSource", "PyAVSource", "FileSource", "LavfiSource", "UrlSource",
           "WebcamSource", "source_kind", "open_source"]


def source_kind(spec: str) -> str:
    """Which kind a user's ``--source`` text names: webcam, url, lavfi or file."""
    if spec.startswith("lavfi:"):
        return "lavfi"
    if spec.startswith("webcam:") or spec.isdigit() or re.fullmatch(r"/dev/video\d+", spec):
        return "webcam"
    scheme = urlparse(spec).scheme.lower()
    if scheme in SCHEMES:
        return "url"
    if scheme == "file" or len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return "file"
    raise SourceError(spec, f"unsupported source; use a camera index or /dev/videoN, a URL ({', '.join(SCHEMES)}), "
                            "a file path or lavfi:<graph>")


def open_source(spec: str | LiveSource, *, realtime: bool | None = None, **options: Any) -> LiveSource:
    """Build (not open) the source a user named. ``realtime`` paces files (default off) and
    lavfi graphs (default on); other options go to the source's dataclass (timeouts, max_side)."""
    if isinstance(spec, LiveSource):
        return spec
    spec = str(spec).strip()
    if not spec:
        raise SourceError("''", "empty source")
    kind = source_kind(spec)
    if kind in ("file", "lavfi") and realtime is not None:
        options["realtime"] = realtime
    if kind == "file":
        spec = os.path.expanduser(spec)
    try:
        return SOURCES.get(kind)(target=spec, label=spec, **options)
    except TypeError as err:
        raise ConfigError(spec, f"bad option for a {kind} source: {err}") from None
