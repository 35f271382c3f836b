"""`UrlSource`: network streams (RTSP, RTMP, SRT, UDP/RTP, TCP, HTTP progressive and HLS).

Every connect and read is bounded by PyAV's ``timeout=(open, read)``; RTSP defaults to TCP
transport (no silent UDP packet loss through NAT). A dropped connection surfaces as a
`SourceError` from ``read()`` and the capture thread reconnects with backoff.

A unicast ``udp://`` source listens on its port itself before FFmpeg opens it (FFmpeg's own open
waits the open timeout twice, once for the header and once for the stream info), so "no response
within N s" comes after N s, and a sender of data that is not MPEG-TS (no 0x47 sync bytes at a
188/192/204-byte stride) is told so instead of timing out. A stream that goes silent fails with
"no data for N s" (FFmpeg reports the timeout as an end of file).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from ...errors import ConfigError, SourceError
from ...frames import LIVE_SCHEMES
from .base import LiveFrame, SourceConfig
from .pyav import PyAVSource

_TS_SIZES = (188, 192, 204)
_SNIFF_S = 0.3  # after the first datagram, how long to keep looking for one that is MPEG-TS
_SNIFF_DATAGRAMS = 16


def looks_like_mpegts(data: bytes) -> bool:
    """True when ``data`` (one datagram) carries MPEG-TS packets: a 0x47 sync byte repeating at
    a 188, 192 or 204-byte stride (after an RTP or other header of up to 204 bytes)."""
    n = len(data)
    for size in _TS_SIZES:
        for start in range(min(n, size)):
            if data[start] != 0x47:
                continue
            syncs = range(start, n, size)
            if len(syncs) >= 2 and all(data[i] == 0x47 for i in syncs):
                return True
            if len(syncs) == 1 and n - start == size:  # exactly one packet
                return True
    return False


def _udp_listen_address(url: str) -> tuple[int, str, int] | None:
    """(family, bind address, port) FFmpeg binds for reading ``url``; None for multicast or unknown."""
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    try:
        port = int(query.get("localport") or parsed.port or 0)
    except ValueError:
        return None
    if not port:
        return None
    host = parsed.hostname or ""
    try:
        if host and ipaddress.ip_address(host).is_multicast:
            return None
    except ValueError:  # a host name: FFmpeg still binds the wildcard address
        pass
    local = query.get("localaddr", "")
    family = socket.AF_INET6 if ":" in (local or host) else socket.AF_INET
    return family, local, port

# network URLs: the schemes the decoder treats as live (less the camera device) plus HTTP(S)
SCHEMES = (*sorted(LIVE_SCHEMES - {"v4l2"}), "http", "https")


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

    def open(self) -> None:
        if urlparse(str(self.target)).scheme.lower() == "udp":
            self._wait_for_datagrams()
        super().open()

    def _wait_for_datagrams(self) -> None:
        """Listen on the UDP port until a datagram arrives (at most ``open_timeout_s``) and check
        it is MPEG-TS; then hand the port to FFmpeg. Skipped when the port cannot be bound here."""
        where = _udp_listen_address(str(self.target))
        if where is None:
            return
        family, local, port = where
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((local, port))
        except OSError:
            sock.close()
            return  # FFmpeg's own open reports why
        try:
            start = time.monotonic()
            deadline, first, seen = start + self.open_timeout_s, None, 0
            while True:
                left = (deadline if first is None else min(deadline, first + _SNIFF_S)) - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    data = sock.recv(65536)
                except (socket.timeout, BlockingIOError):
                    break
                if first is None:
                    first = time.monotonic()
                seen += 1
                if looks_like_mpegts(data):
                    return
                head = data[:8].hex(" ") if data else "(empty)"
                if seen >= _SNIFF_DATAGRAMS:
                    break
            if first is None:
                raise SourceError(self.name, f"cannot open: no response within {self.open_timeout_s:g} s "
                                             "(unreachable, or not sending)")
            raise SourceError(self.name, f"cannot open: data arrives but it is not a video stream: {seen} datagram(s), "
                                         f"none of them MPEG-TS (first bytes {head})")
        finally:
            sock.close()

    def _at_end(self) -> LiveFrame | None:
        silent = time.monotonic() - self._last_packet_wall
        if silent >= 0.8 * self.read_timeout_s:  # FFmpeg turns a read timeout into an end of file
            raise SourceError(self.name, f"stream failed: no data for {self.read_timeout_s:g} s")
        return None


class UrlConfig(SourceConfig):
    """A URL of a network scheme (`SCHEMES`)."""

    kind, usage, source = "url", f"a URL ({', '.join(SCHEMES)})", UrlSource

    def matches(self, spec: str) -> bool:
        return urlparse(spec).scheme.lower() in SCHEMES
