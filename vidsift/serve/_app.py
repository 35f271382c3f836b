"""The Starlette application: routes, bearer-token check, error shapes, security headers.

Why Starlette + uvicorn: Starlette is the small, typed ASGI toolkit under FastAPI (maintained by
the Encode/Kludex team, frequent releases), with streaming responses for server-sent events,
WebSockets for the live page and static files in the box, and nothing else to learn; uvicorn is
the reference ASGI server for it (h11 + websockets, a clean ``Server.should_exit`` to run it in
a thread for tests). FastAPI would add pydantic models and OpenAPI pages that an API of five
routes does not need; aiohttp would mean a second HTTP stack with its own server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from ._ask import answer_json, ask_job, ask_options
from ._config import ServeConfig
from ._engine import Engine
from ._errors import HTTPProblem
from ._guard import BodyLimits, HostGuard
from ._live import LiveHub, live_socket
from ._media import MediaFile, check_video, from_url, resolve_path, save_copy, save_stream, _suffix
from ._openai import chunk, completion, parse_chat, usage, finish_reason

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
}
JSON_LIMIT_SLACK = 1 << 20  # bytes of JSON around a base64 video


def _error(problem: HTTPProblem) -> JSONResponse:
    return JSONResponse(problem.body(), status_code=problem.status, headers=problem.headers)


def _authorize(request: Request, config: ServeConfig) -> None:
    if config.api_key is None:
        return
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_key.encode()):
        raise HTTPProblem(401, "authorization: missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


async def _capped_body(request: Request, limit: int, label: str) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPProblem(413, f"{label}: request body larger than the server's limit of {limit / 1e6:.3g} MB")
    parts, size = [], 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise HTTPProblem(413, f"{label}: request body larger than the server's limit of {limit / 1e6:.3g} MB")
        parts.append(piece)
    return b"".join(parts)


async def _json_body(request: Request, config: ServeConfig) -> Any:
    limit = config.max_upload_bytes * 4 // 3 + JSON_LIMIT_SLACK
    raw = await _capped_body(request, limit, "body")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPProblem(400, "body: not valid JSON") from None
    except RecursionError:  # [[[[...]]]] deeper than the interpreter's stack: a client error, not a 500
        raise HTTPProblem(400, "body: JSON nested too deeply") from None


class Server:
    """Holds the engine, config and live hub; builds the Starlette app."""

    def __init__(self, engine: Engine, config: ServeConfig) -> None:
        self.engine, self.config = engine, config
        self.hub = LiveHub(engine, config)
        self.model_name = engine.pipeline.name

    # -- plumbing ------------------------------------------------------------------------------
    async def _guard(self, endpoint: str, request: Request, handler: Any) -> Response:
        """Auth, one-line errors, metrics: every /v1 and /metrics route goes through here."""
        start = time.perf_counter()
        status = 500
        try:
            _authorize(request, self.config)
            response = await handler(request)
            status = response.status_code
            if isinstance(response, StreamingResponse):
                status = -status  # its latency is measured when the stream ends ("chat_stream")
            return response
        except HTTPProblem as problem:
            status = problem.status
            return _error(problem)
        except ClientDisconnect:
            status = 499
            return Response(status_code=400)
        except StarletteHTTPException as exc:  # e.g. a malformed multipart body
            status = exc.status_code
            return _error(HTTPProblem(exc.status_code, f"{endpoint}: {exc.detail}"))
        except Exception as err:  # noqa: BLE001 - a bug answers 500 in one line; the server keeps serving
            return _error(HTTPProblem(500, f"server: {type(err).__name__}: {err}"))
        finally:
            self.engine.metrics.observe(endpoint, abs(status), time.perf_counter() - start if 0 < status < 400 else None)

    async def _wait(self, future: Any) -> Any:
        """Await a queued job; a client that goes away while queued cancels its job."""
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def _media_from_json(self, body: dict[str, Any]) -> MediaFile:
        if body.get("path") is not None:
            return await asyncio.to_thread(resolve_path, str(body["path"]), self.config)
        if body.get("video_url") is not None:
            url = body["video_url"]
            url = url.get("url") if isinstance(url, dict) else url
            return await asyncio.to_thread(from_url, url, self.config, label="video_url")
        raise HTTPProblem(400, "body: needs a video: \"path\" (under an allowed root), \"video_url\" or an upload")

    async def _media_from_request(self, request: Request) -> tuple[MediaFile, str, Any]:
        """(video, question, raw options) of a /v1/ask request: multipart, raw video body or JSON."""
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            return await self._multipart(request)
        if ctype.startswith("video/") or ctype == "application/octet-stream":
            question = request.query_params.get("question") or ""
            name = request.query_params.get("filename") or "upload"
            media = await save_stream(request.stream(), self.config, label=f"upload {name!r}", suffix=_suffix(name, ctype))
            return media, question, request.query_params.get("options")
        if ctype in ("application/json", ""):
            body = await _json_body(request, self.config)
            if not isinstance(body, dict):
                raise HTTPProblem(400, "body: must be a JSON object")
            return await self._media_from_json(body), str(body.get("question") or ""), body.get("options")
        raise HTTPProblem(415, f"content-type {ctype!r}: send multipart/form-data, video/* or application/json")

    async def _multipart(self, request: Request) -> tuple[MediaFile, str, Any]:
        limit = self.config.max_upload_bytes + JSON_LIMIT_SLACK
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPProblem(413, f"upload: larger than the server's limit of {self.config.max_upload_bytes / 1e6:.3g} MB")
        seen = 0
        receive = request.receive

        async def capped_receive() -> Any:  # count the body as it streams (no Content-Length needed)
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPProblem(413, f"upload: larger than the server's limit of {self.config.max_upload_bytes / 1e6:.3g} MB")
            return message

        capped = Request(request.scope, capped_receive)
        async with capped.form(max_files=1, max_fields=16) as form:
            upload = form.get("file") or form.get("video")
            question = str(form.get("question") or "")
            options = form.get("options")
            if upload is None or isinstance(upload, str):
                if form.get("path"):
                    return await asyncio.to_thread(resolve_path, str(form["path"]), self.config), question, options
                raise HTTPProblem(400, "upload: needs a file part named 'file' (or a 'path' field)")
            name = upload.filename or "upload"
            await upload.seek(0)
            media = await asyncio.to_thread(save_copy, upload.file, self.config, label=f"upload {name!r}",
                                            suffix=_suffix(name, upload.content_type))
        return media, question, options

    # -- routes --------------------------------------------------------------------------------
    async def ask(self, request: Request) -> Response:
        media, question, raw_options = await self._media_from_request(request)
        with media:
            options = ask_options(raw_options, self.config)
            if not question.strip():
                raise HTTPProblem(400, "question: missing or empty")
            await asyncio.to_thread(check_video, media, self.config)
            answer = await self._wait(self.engine.submit(ask_job(self.engine, media, question, options)))
            data = answer_json(answer, media)
        return JSONResponse({"model": self.model_name, **data})

    async def chat(self, request: Request) -> Response:
        body = await _json_body(request, self.config)
        req = parse_chat(body, self.config)
        media = await asyncio.to_thread(from_url, req.video_url, self.config)
        try:
            await asyncio.to_thread(check_video, media, self.config)
        except BaseException:
            media.close()
            raise
        if not req.stream:
            with media:
                answer = await self._wait(self.engine.submit(ask_job(self.engine, media, req.question, req.options)))
                data = answer_json(answer, media)
            return JSONResponse(completion(req, self.model_name, answer.text, answer.stats,
                                           {k: data[k] for k in ("plan", "stats", "choice") if k in data}))
        return StreamingResponse(self._chat_events(req, media), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _chat_events(self, req: Any, media: MediaFile) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        deltas: asyncio.Queue[str | None] = asyncio.Queue()
        sse = lambda obj: f"data: {json.dumps(obj)}\n\n"  # noqa: E731
        try:
            try:
                future = self.engine.submit(ask_job(self.engine, media, req.question, req.options,
                                                    on_text=lambda d: loop.call_soon_threadsafe(deltas.put_nowait, d)))
            except HTTPProblem as problem:
                yield sse(problem.body())
                return
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(deltas.put_nowait, None))
            yield sse(chunk(req, self.model_name, {"role": "assistant", "content": ""}))
            while (delta := await deltas.get()) is not None:
                yield sse(chunk(req, self.model_name, {"content": delta}))
            try:
                answer = future.result()
            except HTTPProblem as problem:
                yield sse(problem.body())
                return
            except Exception as err:  # noqa: BLE001
                yield sse(HTTPProblem(500, f"server: {type(err).__name__}: {err}").body())
                return
            yield sse(chunk(req, self.model_name, {}, finish_reason(answer.stats, req.options.max_new_tokens)))
            if req.include_usage:
                yield sse(chunk(req, self.model_name, {}, usage_=usage(answer.stats)))
            yield "data: [DONE]\n\n"
            self.engine.metrics.observe("chat_stream", 200, time.perf_counter() - start)
        finally:
            if "future" in locals() and not future.done():
                future.cancel()  # the client went away while queued
                try:
                    await asyncio.wrap_future(future)
                except BaseException:  # noqa: BLE001
                    pass
            media.close()

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": self.model_name, "object": "model",
                                                         "created": int(self.engine.metrics.started), "owned_by": "vidsift"}]})

    async def healthz(self, request: Request) -> Response:
        ok = self.engine._worker.is_alive() and not self.engine.closed
        return JSONResponse({"status": "ok" if ok else "unhealthy", "model": self.model_name,
                             "queue_depth": self.engine.queue_depth, "live_sessions": len(self.hub)},
                            status_code=200 if ok else 503)

    async def metrics(self, request: Request) -> Response:
        snap = self.engine.metrics.snapshot()
        snap.update(queue_depth=self.engine.queue_depth, live_sessions=len(self.hub), model=self.model_name)
        if request.query_params.get("format") == "json":
            return JSONResponse(snap)
        return PlainTextResponse(prometheus(snap), media_type="text/plain; version=0.0.4")

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    async def live(self, websocket: WebSocket) -> None:
        await live_socket(websocket, self.hub)

    def app(self, lifespan: Any = None) -> Starlette:
        def guarded(name: str, fn: Any) -> Any:
            async def endpoint(request: Request) -> Response:
                return await self._guard(name, request, fn)
            return endpoint

        async def not_found(request: Request, exc: Exception) -> Response:
            status = getattr(exc, "status_code", 404)
            detail = getattr(exc, "detail", "") or ("not found" if status == 404 else "method not allowed")
            return _error(HTTPProblem(status, f"{request.url.path}: {detail}"))

        routes = [
            Route("/", self.page),
            Route("/healthz", self.healthz),
            Route("/metrics", guarded("metrics", self.metrics)),
            Route("/v1/models", guarded("models", self.models)),
            Route("/v1/ask", guarded("ask", self.ask), methods=["POST"]),
            Route("/v1/chat/completions", guarded("chat", self.chat), methods=["POST"]),
            WebSocketRoute("/v1/live", self.live),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ]
        return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found},
                         middleware=[Middleware(SecurityHeaders), Middleware(HostGuard, config=self.config),
                                     Middleware(BodyLimits, config=self.config)],
                         lifespan=lifespan)


class SecurityHeaders:
    """ASGI middleware: every HTTP response carries `PAGE_HEADERS` (CSP, nosniff, no framing)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.extra = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [(k, v) for k, v in self.extra if k not in have]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def prometheus(snap: dict[str, Any]) -> str:
    """The metrics snapshot in Prometheus' text format."""
    lines = ["# HELP vidsift_requests_total HTTP requests by endpoint and status.", "# TYPE vidsift_requests_total counter"]
    for row in snap["requests"]:
        lines.append(f'vidsift_requests_total{{endpoint="{row["endpoint"]}",status="{row["status"]}"}} {row["count"]}')
    lines += ["# HELP vidsift_request_latency_seconds Latency of successful requests (p50/p95 over the last 2048).",
              "# TYPE vidsift_request_latency_seconds summary"]
    for endpoint, lat in snap["latency_s"].items():
        for q, key in (("0.5", "p50"), ("0.95", "p95")):
            if lat[key] is not None:
                lines.append(f'vidsift_request_latency_seconds{{endpoint="{endpoint}",quantile="{q}"}} {lat[key]:.6f}')
        lines.append(f'vidsift_request_latency_seconds_sum{{endpoint="{endpoint}"}} {lat["sum"]:.6f}')
        lines.append(f'vidsift_request_latency_seconds_count{{endpoint="{endpoint}"}} {lat["count"]}')
    for name, key, kind, text in (
        ("vidsift_visual_tokens_total", "visual_tokens_total", "counter", "Visual tokens placed in prompts."),
        ("vidsift_generated_tokens_total", "generated_tokens_total", "counter", "Tokens generated."),
        ("vidsift_answers_total", "answers_total", "counter", "Answers to HTTP requests."),
        ("vidsift_live_answers_total", "live_answers_total", "counter", "Answers to live-page questions."),
        ("vidsift_live_frames_total", "live_frames_total", "counter", "Frames received from live pages."),
        ("vidsift_queue_depth", "queue_depth", "gauge", "Requests waiting for the model plus the one running."),
        ("vidsift_live_sessions", "live_sessions", "gauge", "Open live-page sessions."),
        ("vidsift_uptime_seconds", "uptime_s", "gauge", "Seconds since the server started."),
    ):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {snap[key]}"]
    return "\n".join(lines) + "\n"


def create_app(pipeline: Any, config: ServeConfig | None = None) -> Starlette:
    """The ASGI app serving ``pipeline`` (a loaded `vidsift.Pipeline`) with ``config``'s limits.

    The app owns a private temporary folder for uploads (removed at shutdown) and a model
    queue; ``app.state.server`` is the `Server` (engine, metrics, live sessions)."""
    import contextlib
    import shutil
    import tempfile

    config = config or ServeConfig()
    own_tmp = config.tmp_dir is None
    if own_tmp:
        config.tmp_dir = Path(tempfile.mkdtemp(prefix="vidsift-serve-"))
    engine = Engine(pipeline, max_queue=config.max_queue)
    server = Server(engine, config)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            server.hub.close_all()
            engine.close()
            if own_tmp:
                shutil.rmtree(config.tmp_dir, ignore_errors=True)

    app = server.app(lifespan)
    app.state.server = server
    return app
