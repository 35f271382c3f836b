"""`HostGuard`: the Host and Origin checks every request passes before any route runs.

DNS rebinding: a web page on ``evil.example`` whose name then resolves to 127.0.0.1 can send
requests to a keyless server on loopback with ``Host: evil.example:PORT`` and ``Origin:
http://evil.example:PORT``; comparing Origin with Host catches nothing, because the page controls
both. So the Host header must name this server: a loopback name (``localhost``, ``127.0.0.1``,
``::1``), the ``--host`` it binds, or a name given with ``--allowed-host`` (a reverse proxy's).
Anything else is 403 on every route and the WebSocket handshake.

Cross-site requests: a browser sends ``Origin`` with every POST and WebSocket handshake. On the
state-changing routes (POST, PUT, PATCH, DELETE) and the WebSocket, an Origin must be this server
as the client reached it (same scheme-less host and port as the Host header) or an
``--allowed-host`` name; otherwise 403 (a cross-site form post, another site's script). No Origin
(curl, SDKs, scripts): allowed, the bearer token is what counts. ``OPTIONS`` answers CORS
preflights: 204 with the allowed methods and headers for an allowed Origin, 403 for another.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from ._config import ServeConfig
from ._errors import HTTPProblem

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "authorization, content-type"


def host_name(value: str) -> str | None:
    """The lower-case host name of a Host header or URL netloc (``[::1]:8000`` -> ``::1``); None if unparsable."""
    try:
        name = urlsplit("//" + value.strip()).hostname
    except ValueError:
        return None
    return name.rstrip(".") if name else None


def host_allowed(host_header: str | None, config: ServeConfig) -> bool:
    name = host_name(host_header or "")
    return name is not None and name in config.host_names()


def origin_allowed(origin: str | None, host_header: str | None, config: ServeConfig) -> bool:
    """Whether a request with this Origin may change state: none (not a browser), this server as
    the client reached it, or an ``--allowed-host`` name."""
    if origin is None:
        return True
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # "null" (sandboxed frames, file:// pages) and the like
    name = parts.hostname.rstrip(".")
    if name in config.allowed_hosts:
        return True
    return parts.netloc.lower() == (host_header or "").strip().lower() and name in config.host_names()


class HostGuard:
    """ASGI middleware: the Host check on every HTTP request and WebSocket handshake, the Origin
    check on state-changing requests and WebSockets, and CORS preflights (see the module docstring)."""

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host, origin = headers.get("host"), headers.get("origin")
        method = scope.get("method", "GET")
        problem = None
        if not host_allowed(host, self.config):
            problem = HTTPProblem(403, f"host {host!r}: not a name this server answers to (DNS rebinding?); "
                                       "start it with --allowed-host NAME to accept it")
        elif (scope["type"] == "websocket" or method in STATE_CHANGING or method == "OPTIONS") and \
                not origin_allowed(origin, host, self.config):
            problem = HTTPProblem(403, f"origin {origin!r}: cross-site requests are refused "
                                       "(--allowed-host adds a site)")
        if problem is not None:
            if scope["type"] == "websocket":  # closing before accept: the handshake gets 403
                await send({"type": "websocket.close", "code": 1008, "reason": problem.message[:120]})
                return
            await _send_json(send, problem.status, problem.body())
            return
        if scope["type"] == "http" and method == "OPTIONS":
            cors = [(b"access-control-allow-methods", CORS_METHODS.encode()),
                    (b"access-control-allow-headers", CORS_HEADERS.encode()),
                    (b"access-control-max-age", b"600"), (b"allow", CORS_METHODS.encode())]
            if origin is not None:
                cors += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            await send({"type": "http.response.start", "status": 204, "headers": cors})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "http" and origin is not None and origin_allowed(origin, host, self.config):
            # an allowed site may read the answer (another site's GET is served, but its page cannot read it)
            async def send_cors(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = list(message.get("headers", [])) + [
                        (b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
                await send(message)

            await self.app(scope, receive, send_cors)
            return
        await self.app(scope, receive, send)


async def _send_json(send: Any, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})
