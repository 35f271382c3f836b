"""`StreamSession`: ask questions about a live source while it runs, under a visual-token budget.

A capture thread keeps the source's latest frame; a worker samples frames at ``fps`` (stream
time), encodes them as they arrive (``adapter.encode``, one temporal group at a time), admits
them into the `StreamMemory` (dedup + eviction to the budget, in one step) and keeps the
memory's KV cache in sync: drop the evicted rows, append the new entry, rebase positions
(`make_cache`: the cache the adapter names, Qwen2/2.5-VL and LLaVA-OneVision; `ReprefillAnswerer`
re-prefills for other families). ``ask()`` answers from the memory at any moment (the ingest waits
meanwhile);
``query`` + ``every_s`` asks a standing question periodically and steers eviction by relevance.
Everything observable comes out of ``events()`` as dicts::

    {"event": "answer", "t": 12.5, "question": ..., "answer": ..., "memory_tokens": 480, "latency_s": 0.04}
    {"event": "stalled" | "resumed" | "disconnected" | "reconnected" | "ended" | "error", "t": ..., ...}
    {"event": "warning", "t": ..., "warning": "clip.mp4: decode error (...); the damaged frames are skipped ..."}
    {"event": "ended", "t": ..., "decode": {"frames_expected": 96, "frames_decoded": 43, "missing": 53, "reason": ...}}
    {"event": "no_frames", "t": 0.0, "question": ..., "waited_s": 10.0}
    {"event": "answer", ..., "trigger": {"kind": "relevance", "score": 0.83, "threshold": 0.5, "frame_t": 41.0, "cooldown_s": 5.0}}

``respond="auto"`` (LION-FS-style, Li et al., "LION-FS: Fast & Slow Video-Language Thinker as Online
Video Assistant", CVPR 2025, https://arxiv.org/abs/2503.03663) decides at every ingested temporal
group whether to respond now: the *fast path* scores the group's frames against the standing
``query`` with the model's own yes-probability (the ``mllm`` relevance scorer's prompt) and fires
when the best frame reaches ``trigger`` and at least ``cooldown_s`` stream seconds passed since the
last response; the *slow path* then answers ``query`` from the memory (which already holds the
triggering frames). The answer event carries why it fired. Simplified against LION-FS: the fast
path is a zero-shot yes/no forward of the same model per sampled frame, not a trained response
head on fast features; the slow path answers from the memory alone, without re-encoding the most
relevant keyframes at full resolution.

``ask()`` never answers from an empty memory: asked before the first frame is in memory, it waits
for it (at most ``first_frame_timeout_s``, and not past the stream's end), and if none arrives it
returns a `StreamAnswer` with ``mode="no_frames"`` and text ``"no frames yet"`` (and emits the
``no_frames`` event) without running the model.

A file source that reaches its end puts its decode report (as ``vidsift info --json`` counts the
file) in the ``ended`` event, after a warning when frames are missing; ``warnings`` keeps them all.

Stream time ``t`` is seconds since the session started (wall clock for live sources, so it
survives reconnects; pts for sources read at full speed, which makes accelerated soaks exact).

    with StreamSession(adapter, "lavfi:testsrc2=size=320x240:rate=30", budget=512, fps=1) as s:
        print(s.ask("what is on screen?").text)
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import ConfigError, VidsiftError
from ..threads import apply_here
from ..types import Budget, FrameBatch
from ..pipeline.adapters.base import ModelAdapter
from ..pipeline.pipeline import Pipeline, naming_video
from .budget import memory_tokens
from .capture import Capture
from .dtd import TemporalDedup
from .evict import EvictionPolicy
from .kvcache import ReprefillAnswerer, make_cache, supports_incremental
from .memory import StreamMemory
from .sources import LiveSource, open_source


@dataclass
class StreamAnswer:
    """An answer and the stream time (seconds) of the newest frame it saw."""

    t: float
    question: str
    text: str
    memory_tokens: int
    latency_s: float
    ttft_s: float
    new_tokens: int
    mode: str
    trigger: dict[str, Any] | None = None  # why an automatic response fired (respond="auto")

    def to_event(self) -> dict[str, Any]:
        if self.mode == "no_frames":
            return {"event": "no_frames", "t": round(self.t, 3), "question": self.question, "waited_s": round(self.latency_s, 3)}
        event = {"event": "answer", "t": round(self.t, 3), "question": self.question, "answer": self.text,
                 "memory_tokens": self.memory_tokens, "latency_s": round(self.latency_s, 4)}
        if self.trigger is not None:
            event["trigger"] = self.trigger
        return event


class StreamSession:
    """A running stream with a bounded memory. See the module docstring.

    budget: the memory's size: visual tokens (``1024``) or, parsed as every budget is, a share
    (``0.25``, ``"25%"``, a preset) of the stream's tokens over its length (`stream.budget`),
    resolved once the first frame's size is known. fps: frames sampled per second of stream time.
    query / every_s: standing question asked every ``every_s`` stream seconds (query also
    steers eviction by relevance). duration_s: stop after this much stream time.
    incremental: use the incremental KV cache (None: when the family supports it).
    max_side: downscale source frames (pixels of the longer side) before encoding.
    stall_s / reconnect / give_up_s: watchdog and reconnect behaviour of the capture.
    respond: "every" (the standing query every ``every_s``) or "auto" (LION-FS-style: respond when
    a sampled frame's relevance to ``query`` reaches ``trigger``, at most once per ``cooldown_s``).
    model_lock: a lock shared with the model's other users (a server's request queue); the
    session holds it around each of its model calls (start, each ingest step, each answer).
    """

    def __init__(self, adapter: ModelAdapter, source: str | LiveSource, *, budget: Budget | int | float | str = 1024,
                 fps: float = 1.0,
                 query: str | None = None, every_s: float | None = None, duration_s: float | None = None,
                 max_new_tokens: int = 32, incremental: bool | None = None, realtime: bool | None = None,
                 dedup: float = 0.95, policy: EvictionPolicy | None = None, max_side: int | None = 448,
                 stall_s: float = 3.0, reconnect: bool = True, give_up_s: float | None = None,
                 open_timeout_s: float = 5.0, read_timeout_s: float = 5.0, chunk_tokens: int = 512,
                 max_events: int = 10_000, first_frame_timeout_s: float = 10.0, respond: str = "every",
                 trigger: float = 0.5, cooldown_s: float = 5.0, model_lock: threading.Lock | None = None) -> None:
        if fps <= 0:
            raise ConfigError("fps", f"must be > 0 frames per second, got {fps}")
        if every_s is not None and (every_s <= 0 or not query):
            raise ConfigError("every", "needs a --query and a period > 0 seconds")
        if respond not in ("every", "auto"):
            raise ConfigError("respond", f"must be every or auto, got {respond!r}")
        if respond == "auto" and (not query or every_s is not None):
            raise ConfigError("respond", "auto needs a --query and no --every (it decides when to answer)")
        if not 0.0 <= trigger <= 1.0:
            raise ConfigError("trigger", f"must be a probability in [0, 1], got {trigger}")
        if cooldown_s < 0:
            raise ConfigError("cooldown", f"must be >= 0 seconds, got {cooldown_s}")
        if duration_s is not None and duration_s <= 0:
            raise ConfigError("duration", f"must be > 0 seconds, got {duration_s}")
        if max_new_tokens < 1:
            raise ConfigError("max_new_tokens", f"must be >= 1, got {max_new_tokens}")
        self.adapter = adapter
        if isinstance(source, LiveSource):
            self.source = source
        else:
            self.source = open_source(source, realtime=realtime, max_side=max_side,
                                      open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)
        self.fps, self.query, self.every_s, self.duration_s = fps, query, every_s, duration_s
        self.max_new_tokens = max_new_tokens
        self.respond, self.trigger, self.cooldown_s = respond, float(trigger), float(cooldown_s)
        self._scorer = None  # the fast path's relevance scorer (respond="auto"), built on first use
        self._last_fire: float | None = None
        self.first_frame_timeout_s = float(first_frame_timeout_s)
        self._has_frames = threading.Event()  # set once the memory holds a frame
        self.budget = Budget.parse(budget)  # a share resolves at the first frame (`_size_memory`)
        side = max_side or 448  # until then: frames of the largest size they may arrive in
        size = memory_tokens(self.budget, tokens_per_frame=adapter.tokens_per_frame(side, side), fps=fps,
                             length_s=duration_s, group_frames=adapter.frames_per_group)
        self.memory = StreamMemory(budget=size, dedup=TemporalDedup(threshold=dedup), policy=policy or EvictionPolicy())
        self._sized = self.budget.tokens is not None
        self.cache = None
        if incremental or (incremental is None and supports_incremental(adapter)):
            try:
                self.cache = make_cache(adapter, chunk_tokens=chunk_tokens)
            except ConfigError:
                if incremental:  # asked for explicitly: say why not
                    raise
        incremental = self.cache is not None
        self.reprefill = None if incremental else ReprefillAnswerer(adapter)
        self.mode = "incremental" if incremental else "reprefill"
        self.group_size = adapter.frames_per_group
        self.capture = Capture(self.source, reconnect=reconnect, stall_s=stall_s, give_up_s=give_up_s,
                               on_event=self._capture_event)
        self._lock = threading.RLock()  # the model, memory and cache
        self._model_lock = model_lock if model_lock is not None else contextlib.nullcontext()
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_events)
        self._event_cond = threading.Condition()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._worker: threading.Thread | None = None
        self._t_last = 0.0
        self._start_wall = 0.0
        self._counts = {"frames_seen": 0, "frames_kept": 0, "groups": 0, "answers": 0, "encode_s": 0.0}
        self._rate: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self.error: str | None = None
        self.warnings: list[str] = []  # the source's warnings (decode errors skipped, an early end)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "StreamSession":
        """Open the source (a `SourceError` here is immediate) and start ingesting."""
        if self._worker is not None:
            return self
        with self._model_lock:
            if self.query:
                self._set_query(self.query)
            with self._lock:
                if self.cache is not None:
                    self.cache.reset()
        self.capture.start()
        self._start_wall = time.monotonic()
        self._worker = threading.Thread(target=self._run, name="vidsift-stream", daemon=True)
        self._worker.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.capture.stop()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(10)
        self._done.set()
        self._has_frames.set()  # wake a question waiting for the first frame
        with self._event_cond:
            self._event_cond.notify_all()

    def __enter__(self) -> "StreamSession":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the stream ends (duration reached, source ended); True if it did."""
        return self._done.wait(timeout_s)

    # -- events ------------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        event.setdefault("t", round(self.stream_time(), 3))
        with self._event_cond:
            self._events.append(event)
            self._event_cond.notify_all()

    def _capture_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "warning":
            self.warnings.append(event["warning"])
        if event.get("event") != "ended":  # the worker reports the end itself, once
            self._emit(event)

    def events(self, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield events as they happen until the session is done (or ``timeout_s`` passes idle)."""
        while True:
            with self._event_cond:
                while not self._events and not self._done.is_set():
                    if not self._event_cond.wait(timeout_s) and timeout_s is not None:
                        return
                if not self._events:
                    return
                event = self._events.popleft()
            yield event

    def stream_time(self) -> float:
        return self._t_last

    def stats(self) -> dict[str, Any]:
        """A snapshot for status lines: stream time, frames seen/kept, memory vs budget, rates."""
        cap = self.capture.stats
        rate = 0.0
        if len(self._rate) >= 2 and self._rate[-1][0] > self._rate[0][0]:
            rate = (self._rate[-1][1] - self._rate[0][1]) / (self._rate[-1][0] - self._rate[0][0])
        return {"t": round(self._t_last, 3), **self._counts, "memory_tokens": self.memory.n_tokens,
                "budget": self.memory.budget, "entries": len(self.memory), "fps_sustained": round(rate, 3),
                "frames_dropped": cap.frames_dropped, "reconnects": cap.reconnects, "stalls": cap.stalls,
                "stalled": cap.stalled, "connected": cap.connected, "mode": self.mode,
                "tokens_deduped": self.memory.stats["tokens_deduped"],
                "tokens_evicted": self.memory.stats["tokens_evicted"],
                "cache_tokens": None if self.cache is None else self.cache.length}

    def wall_of(self, t_s: float) -> float:
        """Monotonic clock time of stream time ``t_s`` (live sources: t = arrival - start)."""
        return t_s + self._start_wall

    # -- questions ---------------------------------------------------------------------------
    def _set_query(self, text: str) -> None:
        emb = self.adapter.model.get_input_embeddings()
        ids = self.adapter.tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            self.memory.query = emb(torch.tensor(ids, device=self.adapter.device)).float().mean(0).cpu()

    def ask(self, question: str, *, max_new_tokens: int | None = None, wait_s: float | None = None,
            trigger: dict[str, Any] | None = None) -> StreamAnswer:
        """Answer from the memory as it is now (the ingest pauses for the question's duration).

        Before the memory holds a frame, wait for one (at most ``wait_s``, default
        ``first_frame_timeout_s``); if none arrives, return a ``no_frames`` answer (see module docstring)."""
        question = question.strip()
        if not question:
            raise ConfigError("question", "empty question")
        start = time.perf_counter()
        if threading.current_thread() is not self._worker and self._worker is not None:  # the worker cannot wait for itself
            self._has_frames.wait(self.first_frame_timeout_s if wait_s is None else wait_s)
        with self._model_lock, self._lock:
            if not len(self.memory):
                waited = time.perf_counter() - start
                empty = StreamAnswer(self._t_last, question, "no frames yet", 0, waited, 0.0, 0, "no_frames")
                self._emit(empty.to_event())
                return empty
            t = self._t_last
            n = max_new_tokens or self.max_new_tokens
            if self.cache is not None:
                reply = self.cache.answer(question, max_new_tokens=n)
            else:
                reply = self.reprefill.answer(self.memory, question, max_new_tokens=n)
            tokens = self.memory.n_tokens
        answer = StreamAnswer(t, question, reply.text, tokens, time.perf_counter() - start, reply.ttft_s,
                              reply.new_tokens, self.mode, trigger)
        self._counts["answers"] += 1
        self._emit(answer.to_event())
        return answer

    # -- ingest ------------------------------------------------------------------------------
    def _ingest(self, frames: list[tuple[np.ndarray, float, int]]) -> None:
        with self._model_lock:
            batch = self._admit(frames)
        if self.respond == "auto":
            self._fast_path(batch)

    def _size_memory(self, height: int, width: int) -> None:
        """Resolve a share budget once the frames' size is known (before the first admission)."""
        self.memory.budget = memory_tokens(self.budget, tokens_per_frame=self.adapter.tokens_per_frame(height, width),
                                           fps=self.fps, length_s=self.duration_s or self.source.length_s(),
                                           group_frames=self.group_size)
        self._sized = True

    def _admit(self, frames: list[tuple[np.ndarray, float, int]]) -> FrameBatch:
        """Encode the frames and admit their groups to the memory (and the cache)."""
        batch = FrameBatch(np.stack([f[0] for f in frames]), np.array([f[1] for f in frames]),
                           np.array([f[2] for f in frames]))
        t0 = time.perf_counter()
        with naming_video(self.source.name, self.adapter.family):  # "<source>: its WxH frames cannot be encoded ..."
            tokens = self.adapter.encode(batch)
        with self._lock:
            if not self._sized:
                self._size_memory(*batch.data.shape[1:3])
            for g in range(tokens.n_groups):
                group = tokens.select([g])
                # one step: the memory (and the cache) never hold more than the budget
                entry, evicted = self.memory.admit(group, t_s=float(group.pts_seconds[0]))
                if self.cache is not None:
                    self.cache.drop(evicted)
                    if entry is not None:
                        self.cache.append(entry)
                    if evicted.numel():
                        self.cache.rebase(self.memory.entries)
            self._counts["groups"] += tokens.n_groups
            if len(self.memory):
                self._has_frames.set()
        self._counts["encode_s"] += time.perf_counter() - t0
        return batch

    # -- LION-FS-style response decision -------------------------------------------------------
    def trigger_score(self, frames: FrameBatch) -> float:
        """Fast path: the best frame's relevance to the standing query (the model's P(yes) on the
        ``mllm`` scorer's prompt), in [0, 1]."""
        if self._scorer is None:
            from ..pipeline.scorers.mllm import MllmScorer

            self._scorer = MllmScorer(adapter=self.adapter)
        with self._model_lock, self._lock:
            return float(np.max(self._scorer.score(frames, self.query).scores))

    def _fast_path(self, frames: FrameBatch) -> None:
        score = self.trigger_score(frames)
        t = float(frames.pts_seconds[-1])
        if score < self.trigger or (self._last_fire is not None and t - self._last_fire < self.cooldown_s):
            return
        self._last_fire = t
        why = {"kind": "relevance", "score": round(score, 4), "threshold": self.trigger,
               "frame_t": round(t, 3), "cooldown_s": self.cooldown_s}
        self.ask(self.query, trigger=why)  # slow path: the answer from the memory

    def _frame_time(self, frame: Any, first_pts: float | None) -> float:
        if self.source.live or first_pts is None or frame.pts_seconds != frame.pts_seconds:
            return frame.wall_s - self._start_wall
        return frame.pts_seconds - first_pts

    def _run(self) -> None:
        apply_here()  # the process's thread policy (vidsift.threads) in the ingest thread too
        try:
            self._loop()
        except Exception as err:  # noqa: BLE001 - report, never die silently
            text = str(err) if isinstance(err, VidsiftError) else f"{type(err).__name__}: {err}"
            name = self.source.name  # one line naming the source, as every source error does
            self.error = text if text.startswith(f"{name}: ") else f"{name}: {text}"
            self._emit({"event": "error", "error": self.error})
        finally:
            self._done.set()
            self._has_frames.set()  # wake a question waiting for the first frame
            self.capture.stop()
            with self._event_cond:
                self._event_cond.notify_all()

    def _loop(self) -> None:
        step = 1.0 / self.fps
        next_sample, next_query = 0.0, self.every_s
        pending: list[tuple[np.ndarray, float, int]] = []
        first_pts: float | None = None
        while not self._stop.is_set():
            frame = self.capture.get(timeout_s=0.2)
            if frame is None:
                if self.capture.ended:
                    break
                if self.source.live and self.duration_s is not None and \
                        time.monotonic() - self._start_wall >= self.duration_s:
                    break
                continue
            if first_pts is None and frame.pts_seconds == frame.pts_seconds:
                first_pts = frame.pts_seconds
            t = self._frame_time(frame, first_pts)
            if self.duration_s is not None and t >= self.duration_s:
                break
            self._counts["frames_seen"] += 1
            self._t_last = max(self._t_last, t)
            if t + 1e-6 >= next_sample:
                next_sample += step
                if next_sample <= t:  # fell behind (a slow encode, a stall): skip the missed slots
                    next_sample = t + step
                if pending and pending[-1][0].shape != frame.rgb.shape:
                    pending = []  # the source changed size (reconnect): never pair mismatched frames
                pending.append((frame.rgb, t, self._counts["frames_seen"] - 1))
                self._counts["frames_kept"] += 1
                if len(pending) == self.group_size:
                    self._ingest(pending)
                    pending = []
                    self._rate.append((time.monotonic(), self._counts["frames_kept"]))
            if next_query is not None and t >= next_query:
                while next_query <= t:
                    next_query += self.every_s
                self.ask(self.query)
        if pending:
            self._ingest(pending)
        report = self.source.report() if self.capture.ended else None
        self._emit({"event": "ended", **({"error": self.capture.stats.error} if self.capture.stats.error else {}),
                    **({"decode": report} if report is not None else {})})


def open_session(model: Pipeline | ModelAdapter, source: str | LiveSource, **options: Any) -> StreamSession:
    """A started `StreamSession` on ``source`` (camera index or device, URL, file, ``lavfi:GRAPH``) with
    ``model``'s adapter: ``.ask(q)``, ``.events()``, ``.close()``, a context manager. Given a `Pipeline`,
    ``budget`` defaults to its budget, a token count or a share of the stream's tokens
    (`stream.budget`); 1024 tokens when it is unlimited."""
    if isinstance(model, Pipeline):
        if "budget" not in options and not model.budget.unlimited:
            options["budget"] = model.budget
        model = model.adapter
    return StreamSession(model, source, **options).start()
