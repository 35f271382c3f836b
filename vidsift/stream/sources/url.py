"""`UrlSource`: network streams (RTSP, RTMP, SRT, UDP/RTP, TCP, HTTP progressive and HLS).

Every connect and read is bounded by PyAV's ``timeout=(open, read)``; RTSP defaults to TCP
transport (no silent UDP packet loss through NAT). A dropped connection surfaces as a
`SourceError` from ``read()`` and the capture thread reconnects with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from ...errors import ConfigError
from .base import SOURCES
from .pyav import PyAVSource

SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "rtp", "tcp", "http", "https")


@SOURCES.register("url")
@dataclass(kw_only=True)
class UrlSource(PyAVSource):
    """A network URL; ``format`` is guessed by FFmpeg (``mpegts`` for udp/tcp/srt)."""

    kind = "url"
    reconnectable = True

    def __post_init__(self) -> None:
        url = str(self.target)
        scheme = urlparse(url).scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigError(url, f"unsupported URL scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")
        if scheme in ("udp", "tcp", "srt") and self.format is None:
            self.format = "mpegts"
        if scheme in ("udp", "rtp", "tcp", "srt"):
            self.options.setdefault("analyzeduration", "1000000")  # join a live stream within ~1 s
        if scheme.startswith("rtsp"):
            self.options.setdefault("rtsp_transport", "tcp")
        if scheme in ("udp", "rtp"):
            self.options.setdefault("overrun_nonfatal", "1")
            self.options.setdefault("fifo_size", "1000000")
        if scheme in ("http", "https"):
            self.options.setdefault("reconnect", "1")
        self.options.setdefault("fflags", "nobuffer")
        super().__post_init__()
