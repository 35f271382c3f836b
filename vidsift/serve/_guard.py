"""What every request passes before any route runs: `HostGuard` (Host and Origin checks, CORS
preflights), `BodyLimits` (a deadline on reading the body, a cap on uploads at once) and
`header_timeout_protocol` (uvicorn's HTTP protocol with a deadline on the request's headers).

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

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

from ._config import ServeConfig
from ._errors import HTTPProblem

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UPLOAD_PATHS = frozenset({"/v1/ask", "/v1/chat/completions"})
SMALL_BODY = 64 * 1024  # a POST declaring at most this many bytes carries no video: not an upload
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


class BodyLimits:
    """ASGI middleware against slow and numerous uploads.

    Body deadline: a request body must arrive whole within ``config.body_timeout_s`` of its
    headers; past it the route's read raises 408 (and the connection closes), so a client
    trickling a byte at a time holds no temporary file and no descriptor for long.
    Upload cap: at most ``config.max_uploads`` uploads (POSTs to /v1/ask and
    /v1/chat/completions without a Content-Length of at most 64 KB) are read or answered at
    once; one more gets 503 with ``Retry-After`` before its body is read, so slow clients can
    hold at most ``max_uploads x max_upload_bytes`` of disk.
    """

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.app, self.config = app, config
        self.uploads = 0  # the event loop is one thread: a plain counter

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.config.body_timeout_s
        whole = False

        async def timed_receive() -> Any:
            nonlocal whole
            if whole:  # the body is in: later receives only wait for a disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise HTTPProblem(408, f"body: not received within {self.config.body_timeout_s:g} s "
                                       "(--body-timeout)", headers={"Connection": "close"}) from None
            whole = message.get("type") != "http.request" or not message.get("more_body", False)
            return message

        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"")
        upload = scope.get("path") in UPLOAD_PATHS and not (declared.isdigit() and int(declared) <= SMALL_BODY)
        if not upload:
            await self.app(scope, timed_receive, send)
            return
        if self.uploads >= self.config.max_uploads:
            problem = HTTPProblem(503, f"upload: the server is receiving {self.config.max_uploads} uploads already "
                                       "(--max-uploads); retry shortly")
            await _send_json(send, 503, problem.body(), [(b"retry-after", b"1"), (b"connection", b"close")])
            return
        self.uploads += 1
        try:
            await self.app(scope, timed_receive, send)
        finally:
            self.uploads -= 1


def header_timeout_protocol(timeout_s: float) -> type:
    """uvicorn's h11 protocol with a deadline on each request's headers: a connection whose request
    line and headers are not complete ``timeout_s`` after it opened (or after the previous response)
    gets 408 and is closed. uvicorn has no such limit: a request line trickled a byte at a time
    held its connection open indefinitely (its keep-alive timer stops at the first byte). When the
    server stops, uploads still arriving are cut at once."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    body = json.dumps(HTTPProblem(408, f"request: headers not received within {timeout_s:g} s "
                                       "(--header-timeout)").body()).encode()
    reply = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
             b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    class HeaderTimeoutH11(H11Protocol):
        _header_timer: Any = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout_s, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.write(reply)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in (or the socket upgraded)
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def shutdown(self) -> None:
            """Server stopping (Ctrl-C): a request whose body is still arriving is cut now (its route
            sees a disconnect) instead of holding the shutdown for its graceful timeout."""
            if self.cycle is not None and not self.cycle.response_complete and self.conn.their_state is h11.SEND_BODY:
                self.transport.close()
                return
            super().shutdown()

    return HeaderTimeoutH11
