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
    lines = ["GET /v1/live HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
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


@pytest.fixture(scope="module")
def strict(pipe, root):
    config = ServeConfig(port=0, allowed_roots=[root], max_new_tokens=2, header_timeout_s=1.0, body_timeout_s=2.0,
                         max_uploads=3)
    with ServerThread(pipe, config) as running:
        yield running


def trickle(server, head: bytes, body: bytes | None, *, clients: int = 20, every_s: float = 0.25,
            bound_s: float = 12.0, watch=None) -> list[tuple[float, bytes]]:
    """``clients`` connections, each sending ``head`` (then ``body``) one byte every ``every_s`` s, all
    from one loop bounded by ``bound_s``: per client, (seconds until the server closed it, what it
    answered); ``watch()`` is called every round (e.g. to count temporary files)."""
    import select

    payload = head + (body or b"")
    socks = []
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", server.config.port), timeout=5)
        sock.setblocking(False)
        socks.append(sock)
    start = time.monotonic()
    sent = [0 if body is None else len(head) for _ in socks]  # a body trickle sends whole headers first
    for i, sock in enumerate(socks):
        if body is not None:
            sock.setblocking(True)
            sock.sendall(head)
            sock.setblocking(False)
    got = [b""] * clients
    closed: list[float | None] = [None] * clients
    next_send = start
    while time.monotonic() - start < bound_s and any(c is None for c in closed):
        if time.monotonic() >= next_send:
            for i, sock in enumerate(socks):
                if closed[i] is None and sent[i] < len(payload):
                    try:
                        sent[i] += sock.send(payload[sent[i]:sent[i] + 1])
                    except OSError:
                        pass  # closed by the server: the read below sees it
            next_send += every_s
        readable, _, _ = select.select([s for s, c in zip(socks, closed) if c is None], [], [], 0.05)
        for sock in readable:
            i = socks.index(sock)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            got[i] += data
            if not data:
                closed[i] = time.monotonic() - start
        if watch is not None:
            watch()
    for sock in socks:
        sock.close()
    return [(c if c is not None else float("inf"), g) for c, g in zip(closed, got)]


def test_trickled_headers_are_cut_after_the_header_timeout(strict):
    head = f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1:{strict.config.port}\r\nContent-Length: 10\r\n\r\n".encode()
    results = trickle(strict, head, None)  # ~70 bytes at 4 bytes/s: 17 s to send, 1 s allowed
    assert all(t < 1.0 + 2.0 for t, _ in results), [round(t, 2) for t, _ in results]  # 1 s timeout + slack
    assert all(g.startswith(b"HTTP/1.1 408") and b"headers not received within 1 s" in g for _, g in results)
    assert httpx.get(strict.url + "/healthz", timeout=30).status_code == 200


def test_trickled_uploads_are_cut_and_capped(strict):
    tmp_dir = strict.config.tmp_dir
    most = [0]

    def count_files() -> None:
        most[0] = max(most[0], len(os.listdir(tmp_dir)))

    head = (f"POST /v1/ask?question=q&filename=a.mp4 HTTP/1.1\r\nHost: 127.0.0.1:{strict.config.port}\r\n"
            "Content-Type: video/mp4\r\nContent-Length: 1000000\r\n\r\n").encode()
    results = trickle(strict, head, os.urandom(1000), watch=count_files)
    statuses = sorted(g[9:12] for _, g in results)
    assert statuses == [b"408"] * 3 + [b"503"] * 17, statuses  # --max-uploads 3 read, the rest refused at once
    assert all(t < 2.0 + 2.0 for t, _ in results), [round(t, 2) for t, _ in results]  # 2 s body timeout + slack
    assert 1 <= most[0] <= 3 and os.listdir(tmp_dir) == []  # never more temp files than --max-uploads
    refused = [g for _, g in results if g[9:12] == b"503"][0]
    assert b"retry-after: 1" in refused.lower() and b"--max-uploads" in refused
    # a multipart upload trickled the same way (starlette parses it as it streams)
    boundary = "b0undary"
    head = (f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1:{strict.config.port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 1000000\r\n\r\n").encode()
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode() + os.urandom(1000)
    results = trickle(strict, head, part, clients=3)
    assert all(t < 4.0 and g.startswith(b"HTTP/1.1 408") for t, g in results), results
    reply = httpx.post(strict.url + "/v1/ask", files={"path": (None, "clip.mp4"), "question": (None, "q")}, timeout=120)
    assert reply.status_code == 200, reply.text
