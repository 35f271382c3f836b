"""`ServeConfig`: every limit and default of ``vidsift serve`` in one place (the CLI fills it)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})  # bind addresses that name no host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    """Limits and defaults of the server.

    api_key:            bearer token every /v1 and /metrics request (and the live WebSocket's
                        hello) must carry; None: no token (then bind to loopback only).
    allowed_roots:      folders whose files requests may name by path (``{"path": ...}``, a
                        ``file://`` video URL); empty: no server-side path is readable.
    max_upload_bytes:   cap on one uploaded or data-URL video (decoded bytes), streamed to disk.
    max_duration_s:     longest video accepted (container duration).
    max_pixels:         largest frame accepted (width * height, display orientation).
    allow_remote_urls:  fetch ``http(s)://`` video URLs for clients (off: refused with 400; on, the
                        server can be made to request any address it can reach - only where that is fine).
    max_queue:          requests waiting for the model beyond which new ones get 503.
    max_new_tokens:     default tokens generated per answer; ``max_new_tokens_limit`` caps requests.
    live_budget / live_fps / live_max_side: the browser page's `StreamSession` (its memory: tokens,
                        or a share of the stream's tokens as `vidsift.stream.budget` reads it;
                        frames sampled per second; frame side in pixels).
    max_sessions:       live sessions at once (one per open page).
    header_timeout_s:   a request's line and headers must arrive within this, else 408 and the
                        connection closes; ``body_timeout_s``: the same for its whole body.
    max_uploads:        uploads (POSTs that may carry a video) read or answered at once; more: 503.
    allowed_hosts:      host names requests may carry in ``Host`` (and pages in ``Origin``) besides
                        the loopback names and ``host``: a reverse proxy's public name (`_guard`).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    allowed_roots: list[Path] = field(default_factory=list)
    max_upload_bytes: int = 256 * 1024 * 1024
    max_duration_s: float = 3 * 3600.0
    max_pixels: int = 3840 * 2160
    allow_remote_urls: bool = False
    fetch_timeout_s: float = 30.0
    max_queue: int = 64
    max_new_tokens: int = 64
    max_new_tokens_limit: int = 1024
    live_budget: int | float | str = 1024
    live_fps: float = 1.0
    live_max_side: int = 448
    live_max_new_tokens: int = 32
    live_stall_s: float = 2.0
    max_sessions: int = 4
    max_frame_bytes: int = 2 * 1024 * 1024
    tmp_dir: Path | None = None
    allowed_hosts: list[str] = field(default_factory=list)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 300.0
    max_uploads: int = 8

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            self.api_key = None
        for name in ("max_upload_bytes", "max_pixels", "max_queue", "max_new_tokens", "max_new_tokens_limit",
                     "live_max_side", "max_sessions", "max_frame_bytes", "max_uploads"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)}")
        from ..types import Budget

        try:
            Budget.parse(self.live_budget)  # as every budget: tokens, a share (of the stream's tokens), a preset
        except ConfigError as err:
            raise ConfigError(f"live_budget={self.live_budget}", err.reason) from None
        if self.max_duration_s <= 0 or self.live_fps <= 0:
            raise ConfigError("max_duration_s/live_fps", "must be > 0")
        if not self.header_timeout_s > 0 or not self.body_timeout_s > 0:
            raise ConfigError("--header-timeout/--body-timeout", "must be > 0 seconds")
        roots = []
        for root in self.allowed_roots:
            path = Path(os.path.expanduser(str(root)))
            if not path.is_dir():
                raise ConfigError(str(root), "allowed root is not a folder")
            roots.append(path.resolve())
        self.allowed_roots = roots
        names = []
        for name in self.allowed_hosts:
            clean = str(name).strip().lower().rstrip(".").strip("[]")
            if not clean or any(c in clean for c in "/ @?#") or clean in WILDCARD_HOSTS:
                raise ConfigError(f"--allowed-host {name!r}", "must be a host name or address (no scheme, path or port)")
            names.append(clean)
        self.allowed_hosts = names

    def host_names(self) -> frozenset[str]:
        """Names the ``Host`` header may carry: loopback names, the bound ``host`` (unless a
        wildcard such as 0.0.0.0) and ``allowed_hosts``."""
        bound = self.host.strip().lower().strip("[]")
        return frozenset({*LOOPBACK_HOSTS, *([bound] if bound not in WILDCARD_HOSTS else []), *self.allowed_hosts})
