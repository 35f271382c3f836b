"""The live page's server side: browser frames -> `BrowserSource` -> a `StreamSession`.

The page (static/app.js) opens ``/v1/live`` (a WebSocket) and speaks JSON text messages plus
binary frames:

    page -> server  {"type": "hello", "token": "...", "budget": 256, "fps": 2}   first, always
    server -> page  {"type": "ready", "session": ID, "budget": N, "fps": F, "send_fps": S, "max_side": M}
    page -> server  <binary JPEG>                               a camera frame (at most send_fps a second)
    server -> page  {"type": "ack", "frames": N}                 after each frame: the page keeps at most 2
                                                                 unacknowledged, so frames never queue up
                                                                 in front of a question on a slow server
    page -> server  {"type": "ask", "id": 3, "question": "...", "options": "red,green,blue"}   options optional
    server -> page  {"type": "answer", "id": 3, "question": ..., "answer": ..., "t": ..., "latency_s": ...,
                     "memory_tokens": ..., "choice": {"index", "letter", "option", "options"}}   choice: with options

With ``options`` (a list or ``"a,b,c"``) the question is asked as multiple choice, with the prompt
`vidsift eval` sends (`vidsift.pipeline.choice`), and the answer names the chosen option.
    server -> page  {"type": "thumb", "id": ENTRY, "t": 4.5, "src": "data:image/jpeg;base64,..."}  once per keyframe
    server -> page  {"type": "status", "memory_tokens": ..., "budget": ..., "entries": ..., "stalled": bool,
                     "frames_seen": ..., "frames_kept": ..., "t": ..., "keyframes": [{"id", "t", "tokens"}], ...}
    server -> page  {"type": "event", "event": "stalled" | "resumed" | "warning" | "error", ...}
    server -> page  {"type": "error", "message": "<one line>"}   (fatal ones close the socket)

Keyframe thumbnails are the JPEGs the page sent: the source keeps the last ones with their
arrival times, and each memory entry (a frame or a Qwen frame pair, by its stream time) is
matched to the frame it started from. The session runs the model under the engine's lock, so
live pages and HTTP requests share one model in turn.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hmac
import io
import json
import threading
import time
import uuid
from typing import Any

import numpy as np

from ..errors import VidsiftError
from ..pipeline.choice import Choice, mc_prompt, parse_options
from ..stream.budget import describe, memory_tokens
from ..stream.options import StreamOptions
from ..stream.session import StreamSession
from ..types import Budget
from ..stream.sources.base import LiveFrame, LiveSource
from ._config import ServeConfig
from ._engine import Engine
from ._errors import one_line


class BrowserSource(LiveSource):
    """Frames pushed by a web page. ``read`` waits for the next push; ``finish`` ends the stream."""

    kind = "browser"

    def __init__(self, label: str, *, keep_jpegs: int = 256) -> None:
        self._label = label
        self._cond = threading.Condition()
        self._frame: LiveFrame | None = None
        self._finished = False
        self.jpegs: collections.deque[tuple[float, bytes]] = collections.deque(maxlen=keep_jpegs)

    @property
    def name(self) -> str:
        return self._label

    def open(self) -> None:
        pass

    def push(self, rgb: np.ndarray, jpeg: bytes) -> None:
        wall = time.monotonic()
        with self._cond:
            self._frame = LiveFrame(rgb, float("nan"), wall)
            self.jpegs.append((wall, jpeg))
            self._cond.notify_all()

    def read(self) -> LiveFrame | None:
        with self._cond:
            while self._frame is None and not self._finished:
                self._cond.wait(0.5)
            frame, self._frame = self._frame, None
            return frame

    def finish(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self) -> None:
        self.finish()

    def jpeg_near(self, wall: float) -> bytes | None:
        with self._cond:
            best = min(self.jpegs, key=lambda item: abs(item[0] - wall), default=None)
        return None if best is None or abs(best[0] - wall) > 0.05 else best[1]


def decode_jpeg(data: bytes, config: ServeConfig) -> np.ndarray:
    """A page's JPEG/PNG/WebP frame -> RGB uint8 (H, W, 3), at most ``live_max_side`` a side."""
    from PIL import Image

    if len(data) > config.max_frame_bytes:
        raise ValueError(f"frame of {len(data)} bytes is over the limit of {config.max_frame_bytes}")
    image = Image.open(io.BytesIO(data))
    if image.format not in ("JPEG", "PNG", "WEBP"):
        raise ValueError(f"frames must be JPEG, PNG or WebP, got {image.format}")
    w, h = image.size
    if w * h > config.max_pixels or min(w, h) < 16:
        raise ValueError(f"frame of {w}x{h} pixels is outside the limits")
    side = config.live_max_side
    if image.format == "JPEG":
        image.draft("RGB", (side, side))
    image = image.convert("RGB")
    if max(image.size) > side:
        image.thumbnail((side, side))
    return np.asarray(image, dtype=np.uint8)


class LiveHub:
    """Counts live sessions against ``max_sessions``."""

    def __init__(self, engine: Engine, config: ServeConfig) -> None:
        self.engine, self.config = engine, config
        self.lock = threading.Lock()
        self.sessions: dict[str, StreamSession] = {}

    def __len__(self) -> int:
        return len(self.sessions)

    def close_all(self) -> None:
        for session in list(self.sessions.values()):
            if session is None:  # reserved, still starting
                continue
            session.source.finish()
            session.close()


async def live_socket(websocket: Any, hub: LiveHub) -> None:
    """One page's session over ``websocket`` (Starlette), from hello to close."""
    config, engine = hub.config, hub.engine
    await websocket.accept()  # Host and Origin were checked before the handshake (`_guard.HostGuard`)

    async def fail(message: str, code: int = 1008) -> None:
        await websocket.send_json({"type": "error", "message": one_line(message)})
        await websocket.close(code=code)

    try:
        hello = json.loads(await asyncio.wait_for(websocket.receive_text(), timeout=30))
    except Exception:  # noqa: BLE001 - anything but a JSON hello in time
        await fail("live: the first message must be a JSON hello")
        return
    if not isinstance(hello, dict) or hello.get("type") != "hello":
        await fail("live: the first message must be {\"type\": \"hello\"}")
        return
    if config.api_key is not None and not hmac.compare_digest(str(hello.get("token") or "").encode(),
                                                              config.api_key.encode()):
        await fail("authorization: missing or wrong token", code=4401)
        return
    try:
        budget = Budget.parse(hello.get("budget") or config.live_budget)  # tokens, a share or a preset
        fps = float(hello.get("fps") or config.live_fps)
    except (TypeError, ValueError):  # ConfigError is a ValueError
        await fail("live: budget must be a budget (tokens, a share, P% or a preset) and fps a number")
        return
    # a page may ask for less memory than the server's, never more (both sized for the largest frames)
    side, per_group = config.live_max_side, engine.adapter.frames_per_group
    tpf = engine.adapter.tokens_per_frame(side, side)
    cap = memory_tokens(config.live_budget, tokens_per_frame=tpf, fps=config.live_fps, group_frames=per_group)
    want = memory_tokens(budget, tokens_per_frame=tpf, fps=fps, group_frames=per_group)
    if not want <= cap or not 0 < fps <= max(config.live_fps, 4.0):
        await fail(f"live: budget must be at most {cap} tokens ({describe(config.live_budget)}) "
                   f"and fps in (0, {max(config.live_fps, 4.0):g}]")
        return
    sid = uuid.uuid4().hex[:12]
    with hub.lock:
        if len(hub.sessions) >= config.max_sessions:
            full = True
        else:
            full = False
            hub.sessions[sid] = None  # type: ignore[assignment]  (reserved)
    if full:
        await fail(f"live: the server already runs {config.max_sessions} live sessions", code=1013)
        return
    source = BrowserSource(f"browser:{sid}")
    session: StreamSession | None = None
    try:
        try:
            options = StreamOptions(budget=budget, fps=fps, max_new_tokens=config.live_max_new_tokens,
                                    stall_s=config.live_stall_s, reconnect=False, first_frame_timeout_s=10.0)
            session = await asyncio.to_thread(
                lambda: StreamSession(engine.adapter, source, options, model_lock=engine.model_lock).start())
        except VidsiftError as err:
            await fail(str(err))
            return
        hub.sessions[sid] = session
        send_fps = min(2 * fps, 8.0)
        await websocket.send_json({"type": "ready", "session": sid, "budget": session.memory.budget, "fps": fps,
                                   "send_fps": send_fps,
                                   "max_side": config.live_max_side, "model": engine.pipeline.name})
        await _serve_session(websocket, session, source, engine, config)
    finally:
        source.finish()
        if session is not None:
            await asyncio.to_thread(session.close)
        with hub.lock:
            hub.sessions.pop(sid, None)


async def _serve_session(websocket: Any, session: StreamSession, source: BrowserSource, engine: Engine,
                         config: ServeConfig) -> None:
    from starlette.websockets import WebSocketDisconnect

    send_lock = asyncio.Lock()
    sent_thumbs: dict[int, float] = {}
    asks: set[asyncio.Task] = set()

    async def send(message: dict[str, Any]) -> None:
        async with send_lock:
            await websocket.send_json(message)

    async def status_loop() -> None:
        while True:
            stats = session.stats()
            with session.memory.lock:
                keyframes = [{"id": e.entry_id, "t": round(e.t_s, 3), "tokens": e.n_tokens} for e in session.memory.entries]
            for kf in keyframes:
                if kf["id"] not in sent_thumbs:
                    jpeg = source.jpeg_near(session.wall_of(kf["t"]))
                    if jpeg is not None:
                        sent_thumbs[kf["id"]] = kf["t"]
                        await send({"type": "thumb", "id": kf["id"], "t": kf["t"],
                                    "src": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()})
            for gone in set(sent_thumbs) - {kf["id"] for kf in keyframes}:
                sent_thumbs.pop(gone)
            for event in session.events(timeout_s=0.001):
                if event.get("event") in ("stalled", "resumed", "warning", "error"):
                    await send({"type": "event", **event})
            await send({"type": "status", **{k: stats[k] for k in (
                "t", "memory_tokens", "budget", "entries", "stalled", "frames_seen", "frames_kept", "answers",
                "fps_sustained", "stalls", "mode")}, "keyframes": [kf for kf in keyframes if kf["id"] in sent_thumbs],
                "running": session.running})
            await asyncio.sleep(0.5)

    async def answer(ask_id: Any, question: str, choices: list[str] | None = None) -> None:
        start = time.perf_counter()
        try:
            reply = await asyncio.to_thread(session.ask, mc_prompt(question, choices) if choices else question)
        except VidsiftError as err:
            await send({"type": "error", "id": ask_id, "message": one_line(str(err))})
            return
        except Exception as err:  # noqa: BLE001 - report, keep the page alive
            await send({"type": "error", "id": ask_id, "message": one_line(f"{type(err).__name__}: {err}")})
            return
        seconds = time.perf_counter() - start
        engine.metrics.observe("live_ask", 200, seconds)
        with engine.metrics.lock:
            engine.metrics.live_answers += 1
        await send({"type": "answer", "id": ask_id, "question": question, "answer": reply.text,
                    "t": round(reply.t, 3), "latency_s": round(seconds, 4), "memory_tokens": reply.memory_tokens,
                    "mode": reply.mode,
                    **({"choice": Choice.of(reply.text, choices).to_dict()} if choices and reply.mode != "no_frames" else {})})

    status = asyncio.create_task(status_loop())
    received = 0
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                try:
                    rgb = decode_jpeg(data, config)
                except Exception as err:  # noqa: BLE001 - a bad frame is skipped, with a reason
                    received += 1
                    await send({"type": "ack", "frames": received})
                    await send({"type": "error", "message": one_line(f"frame: {err}")})
                    continue
                source.push(rgb, data)
                received += 1
                with engine.metrics.lock:
                    engine.metrics.live_frames += 1
                await send({"type": "ack", "frames": received})  # the page's flow control
                continue
            try:
                msg = json.loads(message.get("text") or "")
            except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply
                await send({"type": "error", "message": "live: messages must be JSON"})
                continue
            if isinstance(msg, dict) and msg.get("type") == "ask":
                question = str(msg.get("question") or "").strip()
                if not question or len(question) > 2000:
                    await send({"type": "error", "id": msg.get("id"), "message": "question: empty or over 2000 characters"})
                    continue
                if len(asks) >= 4:
                    await send({"type": "error", "id": msg.get("id"), "message": "question: 4 questions already waiting"})
                    continue
                choices = None
                if msg.get("options") not in (None, "", []):
                    try:
                        choices = parse_options(msg["options"], where="options")
                    except VidsiftError as err:
                        await send({"type": "error", "id": msg.get("id"), "message": f"options: {err.reason}"})
                        continue
                task = asyncio.create_task(answer(msg.get("id"), question, choices))
                asks.add(task)
                task.add_done_callback(asks.discard)
            else:
                await send({"type": "error", "message": "live: unknown message type"})
    except WebSocketDisconnect:
        return
    finally:
        status.cancel()
        for task in list(asks):
            task.cancel()
