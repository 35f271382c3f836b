"""`vidsift serve` over real HTTP on 127.0.0.1 (uvicorn in a thread, a free port) with a tiny
random Qwen2.5-VL: the OpenAI client's chat completions with a video (plain and streamed), 8
concurrent clients, /v1/ask uploads and paths, /healthz and /metrics, the live WebSocket
protocol without a browser, and every refusal (size, path, token, corrupt video, limits) as a
4xx with a one-line reason while the server keeps serving. One test starts the real CLI."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
pytest.importorskip("starlette")

from vidsift.serve import ServeConfig, ServerThread, free_port  # noqa: E402

pytestmark = pytest.mark.timeout(300)  # model load + a loaded 2-core machine
TOKEN = "test-token"


@pytest.fixture(scope="module")
def pipe(tiny_checkpoint):
    from vidsift import Pipeline

    return Pipeline.from_pretrained(tiny_checkpoint("tiny-qwen2.5-vl"), device="cpu")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from videos import make_video, write_garbage

    root = tmp_path_factory.mktemp("served")
    outside = tmp_path_factory.mktemp("outside")
    video = make_video(root / "clip.mp4", n_frames=48, fps=24, size=(96, 64))
    make_video(outside / "secret.mp4", n_frames=8)
    write_garbage(root / "corrupt.mp4", kind="random")
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    return {"root": root, "outside": outside, "video": Path(video), "corrupt": root / "corrupt.mp4"}


@pytest.fixture(scope="module")
def server(pipe, media):
    config = ServeConfig(port=0, api_key=TOKEN, allowed_roots=[media["root"]], max_upload_bytes=200_000,
                         max_new_tokens=6)
    with ServerThread(pipe, config) as running:
        yield running


def client(server, key=TOKEN):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)


def data_url(path: Path) -> str:
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()


def video_message(url: str, question: str = "What is moving?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                         {"type": "text", "text": question}]}]


def healthy(server) -> dict:
    reply = httpx.get(server.url + "/healthz", timeout=10)
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    return reply.json()


def auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_openai_client_chat_completion_with_video_plain_and_streamed(server, media):
    api = client(server)
    messages = video_message(data_url(media["video"]))
    reply = api.chat.completions.create(model="tiny", messages=messages, max_tokens=5)
    text = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert isinstance(text, str) and text
    assert reply.usage.completion_tokens == 5 and reply.usage.prompt_tokens > 0
    assert reply.choices[0].finish_reason == "length"
    extra = reply.model_extra["vidsift"]
    assert extra["stats"]["tokens_in_prompt"] > 0 and extra["plan"]["frames"]
    assert "upload-" not in json.dumps(extra)  # no server-side temporary path leaks out

    stream = api.chat.completions.create(model="tiny", messages=messages, max_tokens=5, stream=True,
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) >= 2  # tokens arrive one by one, not as one block
    assert "".join(deltas).strip() == text  # greedy: the streamed answer is the plain one
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 5

    # a server-side path as a file:// URL under the allowed root, and vidsift options in extra_body
    reply = api.chat.completions.create(model="tiny", messages=video_message(media["video"].as_uri()),
                                        max_tokens=3, extra_body={"vidsift": {"budget": "50%", "preset": "fast"}})
    assert reply.usage.completion_tokens == 3
    assert reply.model_extra["vidsift"]["stats"]["tokens_budget"] < reply.model_extra["vidsift"]["stats"]["tokens_full"]
    healthy(server)


def test_eight_concurrent_requests_all_answered_and_server_healthy(server, media):
    api = client(server)
    messages = video_message(data_url(media["video"]))

    def one(i: int) -> tuple[str, float]:
        start = time.perf_counter()
        reply = api.chat.completions.create(model="tiny", messages=messages, max_tokens=4, stream=bool(i % 2))
        if i % 2:
            text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
        else:
            text = reply.choices[0].message.content
        return text, time.perf_counter() - start

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    assert len(results) == 8 and all(text for text, _ in results)
    assert len({text.strip() for text, _ in results}) == 1  # the same question gets the same (greedy) answer
    health = healthy(server)
    assert health["queue_depth"] == 0
    snap = httpx.get(server.url + "/metrics?format=json", headers=auth(), timeout=10).json()
    assert sum(r["count"] for r in snap["requests"] if r["endpoint"] == "chat" and r["status"] == 200) >= 8
    assert snap["answers_total"] >= 8 and snap["visual_tokens_total"] > 0


def test_ask_endpoint_upload_path_and_raw_body_leave_no_files(server, media):
    tmp_dir = server.config.tmp_dir
    with open(media["video"], "rb") as f:
        reply = httpx.post(server.url + "/v1/ask", headers=auth(), timeout=120,
                           files={"file": ("my clip.mp4", f, "video/mp4")},
                           data={"question": "What is moving?", "options": json.dumps({"max_new_tokens": 3})})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) >= {"answer", "plan", "stats", "model"} and body["stats"]["new_tokens"] == 3
    assert body["plan"]["video"] == "upload 'my clip.mp4'"
    reply = httpx.post(server.url + "/v1/ask", headers=auth(), timeout=120,
                       json={"path": "clip.mp4", "question": "What is moving?", "options": {"budget": 4}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["stats"]["tokens_in_prompt"] <= 4
    reply = httpx.post(server.url + "/v1/ask?question=hi&filename=c.mp4", headers={**auth(), "Content-Type": "video/mp4"},
                       content=media["video"].read_bytes(), timeout=120)
    assert reply.status_code == 200, reply.text
    assert os.listdir(tmp_dir) == []  # every upload was deleted after use


def one_line_error(reply, status: int, *needles: str) -> str:
    assert reply.status_code == status, (reply.status_code, reply.text)
    message = reply.json()["error"]["message"]
    assert "\n" not in message and len(message) < 300 and "Traceback" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_refusals_are_one_line_4xx_and_the_server_keeps_serving(server, media):
    url = server.url
    big = io.BytesIO(os.urandom(300_000))
    # oversized: multipart upload, raw body, and a data URL inside chat completions
    one_line_error(httpx.post(url + "/v1/ask", headers=auth(), files={"file": ("big.mp4", big, "video/mp4")},
                              data={"question": "q"}, timeout=60), 413, "limit")
    one_line_error(httpx.post(url + "/v1/ask?question=q", headers={**auth(), "Content-Type": "video/mp4"},
                              content=os.urandom(300_000), timeout=60), 413, "limit")
    with pytest.raises(openai.APIStatusError) as err:
        client(server).chat.completions.create(model="tiny", messages=video_message(
            "data:video/mp4;base64," + base64.b64encode(os.urandom(300_000)).decode()))
    assert err.value.status_code == 413 and "limit" in str(err.value)
    # paths outside the allowed roots: absolute, ../, a symlink pointing out, a file:// URL
    for path in ("/etc/passwd", "../" + media["outside"].name + "/secret.mp4", "escape.mp4"):
        one_line_error(httpx.post(url + "/v1/ask", headers=auth(), json={"path": path, "question": "q"}, timeout=30),
                       403, "outside the server's allowed roots")
    with pytest.raises(openai.PermissionDeniedError):
        client(server).chat.completions.create(model="tiny", messages=video_message("file:///etc/passwd"))
    one_line_error(httpx.post(url + "/v1/ask", headers=auth(), json={"path": "missing.mp4", "question": "q"}), 404)
    with pytest.raises(openai.BadRequestError, match="remote URLs"):
        client(server).chat.completions.create(model="tiny", messages=video_message("http://example.invalid/v.mp4"))
    # bad or missing token
    with pytest.raises(openai.AuthenticationError):
        client(server, key="wrong").chat.completions.create(model="tiny", messages=video_message(media["video"].as_uri()))
    one_line_error(httpx.post(url + "/v1/ask", json={"path": "clip.mp4", "question": "q"}), 401, "token")
    assert httpx.get(url + "/metrics", timeout=10).status_code == 401
    # corrupt video: uploaded, by path, as a data URL
    corrupt = media["corrupt"].read_bytes()
    message = one_line_error(httpx.post(url + "/v1/ask", headers=auth(), files={"file": ("bad.mp4", corrupt, "video/mp4")},
                                        data={"question": "q"}, timeout=60), 400, "upload 'bad.mp4'")
    assert str(server.config.tmp_dir) not in message
    one_line_error(httpx.post(url + "/v1/ask", headers=auth(), json={"path": "corrupt.mp4", "question": "q"}), 400, "corrupt.mp4")
    with pytest.raises(openai.BadRequestError):
        client(server).chat.completions.create(model="tiny", messages=video_message(data_url(media["corrupt"])))
    # malformed requests
    one_line_error(httpx.post(url + "/v1/chat/completions", headers=auth(), content=b"{not json"), 400, "JSON")
    one_line_error(httpx.post(url + "/v1/chat/completions", headers=auth(), json={"messages": [
        {"role": "user", "content": "no video here"}]}), 400, "no video")
    one_line_error(httpx.post(url + "/v1/ask", headers=auth(), json={"path": "clip.mp4", "question": "q",
                                                                     "options": {"scorer": "clip:/etc"}}), 400, "scorer")
    one_line_error(httpx.post(url + "/v1/ask", headers=auth(), json={"path": "clip.mp4", "question": "q",
                                                                     "options": {"budget": "lots"}}), 400)
    one_line_error(httpx.post(url + "/v1/ask", headers=auth(), data={"question": "q"},
                              files=[("file", ("a.mp4", b"1")), ("video", ("b.mp4", b"2"))]), 400, "files")
    # still serving, and nothing left behind
    healthy(server)
    reply = client(server).chat.completions.create(model="tiny", messages=video_message(media["video"].as_uri()), max_tokens=2)
    assert reply.choices[0].message.content
    assert os.listdir(server.config.tmp_dir) == []
    snap = httpx.get(url + "/metrics?format=json", headers=auth(), timeout=10).json()
    statuses = {r["status"] for r in snap["requests"]}
    assert {400, 401, 403, 404, 413} <= statuses


def test_duration_resolution_limits_and_full_queue(pipe, media):
    config = ServeConfig(port=0, allowed_roots=[media["root"]], max_duration_s=1.0, max_queue=1, max_new_tokens=2)
    with ServerThread(pipe, config) as small:
        one_line_error(httpx.post(small.url + "/v1/ask", json={"path": "clip.mp4", "question": "q"}, timeout=30),
                       422, "at most 1 s")
        config.max_duration_s, config.max_pixels = 100.0, 96 * 64 - 1
        one_line_error(httpx.post(small.url + "/v1/ask", json={"path": "clip.mp4", "question": "q"}, timeout=30),
                       422, "96x64")
        config.max_pixels = 10_000

        def ask(_: int) -> httpx.Response:
            return httpx.post(small.url + "/v1/ask", json={"path": "clip.mp4", "question": "q",
                                                           "options": {"max_new_tokens": 16}}, timeout=120)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(ask, range(6)))
        codes = sorted(r.status_code for r in replies)
        assert set(codes) <= {200, 503} and codes[0] == 200, codes
        for reply in replies:
            if reply.status_code == 503:
                assert reply.headers["retry-after"] == "1" and "queue is full" in reply.json()["error"]["message"]
        assert httpx.get(small.url + "/healthz", timeout=10).json()["status"] == "ok"


def test_remote_video_urls_only_when_allowed(pipe, media):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(media["root"]))
    handler.log_message = lambda *a, **k: None
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}"
    try:
        config = ServeConfig(port=0, allow_remote_urls=True, max_new_tokens=2, max_upload_bytes=200_000)
        with ServerThread(pipe, config) as fetching:
            api = client(fetching, key="unused")
            reply = api.chat.completions.create(model="tiny", messages=video_message(base + "/clip.mp4"))
            assert reply.usage.completion_tokens == 2
            assert reply.model_extra["vidsift"]["plan"]["video"] == base + "/clip.mp4"
            with pytest.raises(openai.BadRequestError, match="HTTP 404"):
                api.chat.completions.create(model="tiny", messages=video_message(base + "/missing.mp4"))
            with pytest.raises(openai.BadRequestError, match="corrupt.mp4"):
                api.chat.completions.create(model="tiny", messages=video_message(base + "/corrupt.mp4"))
            assert os.listdir(config.tmp_dir) == []
    finally:
        files.shutdown()


def test_metrics_prometheus_text_and_security_headers(server):
    text = httpx.get(server.url + "/metrics", headers=auth(), timeout=10).text
    for name in ("vidsift_requests_total{", "vidsift_request_latency_seconds{", "vidsift_visual_tokens_total",
                 "vidsift_queue_depth", "vidsift_live_sessions"):
        assert name in text
    page = httpx.get(server.url + "/", timeout=10)
    assert page.status_code == 200 and "getUserMedia" not in page.text and "/static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "getUserMedia" in httpx.get(server.url + "/static/app.js", timeout=10).text
    missing = httpx.get(server.url + "/nope", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "/nope: Not Found"


def _jpeg(colour: tuple[int, int, int], size=(160, 120)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG")
    return out.getvalue()


def test_live_websocket_protocol_without_a_browser(server):
    import asyncio

    import websockets

    ws_url = server.url.replace("http://", "ws://") + "/v1/live"

    async def run() -> dict:
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "hello", "token": "wrong"}))
            assert json.loads(await ws.recv())["message"] == "authorization: missing or wrong token"
        with pytest.raises(websockets.InvalidStatus, match="403"):  # another site's page: refused at the handshake
            async with websockets.connect(ws_url, origin="http://evil.example"):
                pass
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "hello", "token": TOKEN, "budget": 64, "fps": 4}))
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready" and ready["budget"] == 64
            seen: dict = {"thumbs": {}, "status": None, "answer": None, "errors": []}
            await ws.send(b"not a jpeg")
            deadline = time.monotonic() + 60
            i = 0
            asked = False
            while time.monotonic() < deadline and seen["answer"] is None:
                await ws.send(_jpeg(((i * 40) % 256, 100, 200 - (i * 30) % 200)))
                i += 1
                if seen["thumbs"] and not asked:
                    await ws.send(json.dumps({"type": "ask", "id": 7, "question": "what colour?"}))
                    asked = True
                try:
                    while True:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.25))
                        if msg["type"] == "thumb":
                            seen["thumbs"][msg["id"]] = msg
                        elif msg["type"] == "status":
                            seen["status"] = msg
                        elif msg["type"] == "answer":
                            seen["answer"] = msg
                        elif msg["type"] == "error":
                            seen["errors"].append(msg["message"])
                except asyncio.TimeoutError:
                    pass
            # an HTTP request while the live session holds the same model: both take turns
            http_reply = await asyncio.to_thread(
                httpx.post, server.url + "/v1/ask", headers=auth(), timeout=120,
                json={"path": "clip.mp4", "question": "and now?", "options": {"max_new_tokens": 2}})
            seen["http_during_live"] = http_reply.status_code
            # the camera stops: the page is told the source stalled, then resumed when frames return
            states = []
            for _ in range(2):
                deadline = time.monotonic() + 20
                want = "stalled" if not states else "resumed"
                while time.monotonic() < deadline and want not in states:
                    if want == "resumed":
                        await ws.send(_jpeg((10, 200, 10)))
                    try:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
                    except asyncio.TimeoutError:
                        continue
                    if msg["type"] == "event":
                        states.append(msg["event"])
                    elif msg["type"] == "status" and msg["stalled"] and "stalled_status" not in seen:
                        seen["stalled_status"] = msg
            seen["states"] = states
            return seen

    seen = asyncio.run(run())
    assert seen["answer"] is not None and seen["answer"]["id"] == 7 and seen["answer"]["answer"]
    assert seen["thumbs"] and all(t["src"].startswith("data:image/jpeg;base64,") for t in seen["thumbs"].values())
    status = seen["status"]
    assert 0 < status["memory_tokens"] <= status["budget"] == 64 and status["keyframes"]
    assert any(e.startswith("frame: ") for e in seen["errors"])  # the bad frame was refused in one line
    assert seen["http_during_live"] == 200
    assert seen["states"] == ["stalled", "resumed"] and seen["stalled_status"]["stalled"] is True
    snap = httpx.get(server.url + "/metrics?format=json", headers=auth(), timeout=10).json()
    assert snap["live_answers_total"] >= 1 and snap["live_frames_total"] >= 1
    deadline = time.monotonic() + 15
    while httpx.get(server.url + "/healthz", timeout=10).json()["live_sessions"] and time.monotonic() < deadline:
        time.sleep(0.2)  # the session closes when the socket does
    assert healthy(server)["live_sessions"] == 0


def test_cli_serve_starts_answers_and_stops_on_one_ctrl_c(tiny_checkpoint, media, tmp_path):
    """The real CLI: up, answering, then one Ctrl-C (SIGINT to its process group, as a terminal sends)
    while two uploads are still arriving stops it within 5 s: exit 130, one line, no traceback (it
    took 7.6 s and printed a CancelledError traceback; 2.6 s when idle, most of it the interpreter's
    teardown of torch)."""
    import signal
    import socket

    from vidsift.cli.app import run

    assert run(["serve", "--help"]) == 0
    port = free_port()
    env = {**os.environ, "VIDSIFT_API_KEY": "cli-token", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vidsift", "serve", "--model", str(tiny_checkpoint("tiny-qwen2.5-vl")),
                             "--port", str(port), "--allowed-root", str(media["root"]), "--max-new-tokens", "2",
                             "--device", "cpu"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    uploads = []
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 150
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "vidsift serve did not come up in 150 s"
            time.sleep(0.3)
        reply = openai.OpenAI(base_url=url + "/v1", api_key="cli-token", max_retries=0, timeout=60).chat.completions.create(
            model="x", messages=video_message("clip.mp4"))
        assert reply.usage.completion_tokens == 2
        assert httpx.post(url + "/v1/ask", json={"path": "clip.mp4", "question": "q"}).status_code == 401
        for _ in range(2):  # uploads still arriving when Ctrl-C comes
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(f"POST /v1/ask?question=q HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer cli-token"
                         "\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\nabc".encode())
            uploads.append(sock)
        time.sleep(0.5)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        seconds = time.monotonic() - t0
    finally:
        for sock in uploads:
            sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert seconds < 5, (seconds, err[-1000:])
    assert proc.returncode == 130 and err.splitlines()[-1] == "error: interrupted", err[-1000:]
    assert f"on http://127.0.0.1:{port}/" in err and "Traceback" not in err and err.count("\n") == 2, err


def test_token_stream_holds_back_half_characters_and_flushes_at_the_end():
    import torch

    from vidsift.serve._engine import _TextTap

    pieces = {1: b" a", 2: b"\xc3", 3: b"\xa9", 4: b"\xe2\x82"}  # ' a', then 'é' split in two, then half of '€'

    class Bytes:
        def decode(self, ids, skip_special_tokens=True):
            return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    deltas: list[str] = []
    tap = _TextTap(None, Bytes(), deltas.append)
    tap.put(torch.tensor([[9, 9, 9]]))  # the prompt: ignored
    for i in (1, 2, 3, 4):
        tap.put(torch.tensor([i]))
    assert deltas == ["a", "é"]  # the half character waits
    tap.end()
    assert deltas == ["a", "é", "\ufffd"] and "".join(deltas) == Bytes().decode([1, 2, 3, 4]).strip()
