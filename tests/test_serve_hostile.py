"""Hostile clients against `vidsift serve` on 127.0.0.1 (a keyless server, the default): DNS
rebinding (a foreign Host), cross-site posts (a foreign Origin), CORS preflights, JSON nested too
deeply, and slow clients (trickled headers and bodies, more uploads at once than allowed), each
in a bounded loop."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from vidsift.serve import ServeConfig, ServerThread  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pipe(tiny_checkpoint):
    from vidsift import Pipeline

    return Pipeline.from_pretrained(tiny_checkpoint("tiny-qwen2.5-vl"), device="cpu")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from videos import make_video

    root = tmp_path_factory.mktemp("served")
    make_video(root / "clip.mp4", n_frames=24, fps=24, size=(96, 64))
    return root


@pytest.fixture(scope="module")
def server(pipe, root):
    config = ServeConfig(port=0, allowed_roots=[root], max_new_tokens=2, allowed_hosts=["vidsift.example"])
    with ServerThread(pipe, config) as running:
        yield running


def raw(server, request: bytes, *, read_s: float = 10.0) -> bytes:
    """Send ``request`` as is on a fresh connection; what the server answers (up to 64 KB or close)."""
    with socket.create_connection(("127.0.0.1", server.config.port), timeout=read_s) as sock:
        sock.sendall(request)
        data = b""
        try:
            while len(data) < 65536 and b"\r\n\r\n" not in data:
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        except socket.timeout:
            pass
    return data


def ws_handshake(server, host: str, origin: str | None) -> bytes:
    lines = [f"GET /v1/live HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return raw(server, ("\r\n".join(lines) + "\r\n\r\n").encode())


def test_rebinding_host_gets_403_on_every_route_and_the_websocket(server):
    port = server.config.port
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    ask = {"path": "clip.mp4", "question": "q"}
    for method, path, kwargs in [("GET", "/", {}), ("GET", "/healthz", {}), ("GET", "/metrics", {}),
                                 ("GET", "/v1/models", {}), ("GET", "/static/app.js", {}), ("GET", "/nope", {}),
                                 ("POST", "/v1/ask", {"json": ask}), ("OPTIONS", "/v1/ask", {}),
                                 ("POST", "/v1/chat/completions", {"json": {"messages": []}})]:
        reply = httpx.request(method, server.url + path, headers=evil, timeout=30, **kwargs)
        assert reply.status_code == 403, (method, path, reply.status_code, reply.text)
        assert "not a name this server answers to" in reply.json()["error"]["message"]
    assert ws_handshake(server, f"evil.example:{port}", f"http://evil.example:{port}").startswith(b"HTTP/1.1 403")
    assert ws_handshake(server, f"evil.example:{port}", None).startswith(b"HTTP/1.1 403")
    # the names this server answers to: loopback names, its --host, an --allowed-host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "vidsift.example"):
        assert httpx.get(server.url + "/healthz", headers={"Host": host}, timeout=30).status_code == 200, host
    assert ws_handshake(server, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}").startswith(b"HTTP/1.1 101")


def test_cross_site_posts_get_403_and_same_site_ones_are_answered(server):
    port = server.config.port
    form = {"path": (None, "clip.mp4"), "question": (None, "q")}  # what an HTML form on another site can post
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://localhost:{port + 1}"):
        reply = httpx.post(server.url + "/v1/ask", files=form, headers={"Origin": origin}, timeout=30)
        assert reply.status_code == 403 and "cross-site" in reply.json()["error"]["message"], origin
    assert ws_handshake(server, f"127.0.0.1:{port}", "http://evil.example").startswith(b"HTTP/1.1 403")
    for headers in ({"Origin": f"http://127.0.0.1:{port}"}, {}, {"Origin": "https://vidsift.example"}):
        reply = httpx.post(server.url + "/v1/ask", files=form, headers=headers, timeout=120)
        assert reply.status_code == 200, (headers, reply.text)
    # GET routes serve another site too (nothing changes), but only an allowed origin may read them
    assert "access-control-allow-origin" not in httpx.get(server.url + "/v1/models", timeout=30,
                                                          headers={"Origin": "http://evil.example"}).headers


def test_cors_preflight(server):
    port = server.config.port
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = httpx.options(server.url + "/v1/ask", headers={**asks, "Origin": f"http://127.0.0.1:{port}"}, timeout=30)
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == f"http://127.0.0.1:{port}"
    assert "POST" in ok.headers["access-control-allow-methods"] and "content-type" in ok.headers["access-control-allow-headers"]
    bad = httpx.options(server.url + "/v1/ask", headers={**asks, "Origin": "http://evil.example"}, timeout=30)
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers


def test_deeply_nested_json_is_a_400(server):
    deep = b"[" * 200_000 + b"]" * 200_000
    for path in ("/v1/ask", "/v1/chat/completions"):
        reply = httpx.post(server.url + path, content=deep, headers={"Content-Type": "application/json"}, timeout=30)
        assert reply.status_code == 400 and reply.json()["error"]["message"] == "body: JSON nested too deeply", path
    nested_options = '{"a":' * 100_000 + "1" + "}" * 100_000
    reply = httpx.post(server.url + "/v1/ask", timeout=30,
                       files={"path": (None, "clip.mp4"), "question": (None, "q"), "options": (None, nested_options)})
    assert reply.status_code == 400, reply.text
    assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
