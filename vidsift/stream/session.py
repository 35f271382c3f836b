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

``respond="auto"`` (LION-FS-style) answers ``query`` when a sampled frame is relevant to it, and the
answer event says why it fired (`vidsift.stream.trigger`, with the reference and what is simplified).

``ask()`` never answers from an empty memory: before the first frame it waits for one, else
answers ``mode="no_frames"`` (`vidsift.stream.answering`).

A file source that reaches its end puts its decode report (as ``vidsift info --json`` counts the
file) in the ``ended`` event, after a warning when frames are missing; ``warnings`` keeps them all.

Stream time ``t`` is seconds since the session started (wall clock for live sources, so it
survives reconnects; pts for sources read at full speed, which makes accelerated soaks exact).

    with StreamSession(adapter, "lavfi:testsrc2=size=320x240:rate=30", StreamOptions(budget=512, fps=1)) as s:
        print(s.ask("what is on screen?").text)

The session is its parts, each in its own module, wired here: the source and its `Capture`
thread; `Ingest` (sampling at ``fps``, grouping, encoding); `MemoryStore` (the memory, its budget
and its KV cache or re-prefill); `Answerer` (``ask``); `Trigger` (``every_s`` or ``respond="auto"``);
`EventQueue` (``events()``). Its settings are one `StreamOptions`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from ..errors import ConfigError, VidsiftError
from ..threads import apply_here
from ..pipeline.adapters.base import ModelAdapter
from ..pipeline.pipeline import Pipeline
from ..types import FrameBatch
from .answering import Answerer, StreamAnswer
from .capture import Capture
from .events import EventQueue
from .ingest import Ingest, Sampled
from .options import StreamOptions
from .sources import LiveSource, open_source
from .store import MemoryStore
from .trigger import Trigger

__all__ = ["StreamAnswer", "StreamOptions", "StreamSession", "open_session"]


class StreamSession:
    """A running stream with a bounded memory. See the module docstring.

    adapter: the model. source: a `LiveSource`, or what a user types (``0``, a URL, a file,
    ``lavfi:GRAPH``; built with the options' ``realtime``, ``max_side`` and timeouts).
    options: every setting (`StreamOptions`; the defaults when None).
    model_lock: a lock shared with the model's other users (a server's request queue); the
    session holds it around each of its model calls (start, each ingest step, each answer).
    """

    def __init__(self, adapter: ModelAdapter, source: str | LiveSource, options: StreamOptions | None = None, *,
                 model_lock: threading.Lock | None = None) -> None:
        if options is not None and not isinstance(options, StreamOptions):
            raise ConfigError("options", f"must be a StreamOptions, got {type(options).__name__} "
                                         "(keywords go to open_session or StreamOptions(...))")
        options = options or StreamOptions()
        self.adapter, self.options = adapter, options
        if isinstance(source, LiveSource):
            self.source = source
        else:
            self.source = open_source(source, **options.source_settings())
        self._model_lock = model_lock if model_lock is not None else contextlib.nullcontext()
        self.store = MemoryStore(adapter, options, length_s=lambda: self.source.length_s())
        self.capture = Capture(self.source, reconnect=options.reconnect, stall_s=options.stall_s,
                               give_up_s=options.give_up_s, on_event=self._capture_event)
        self.ingest = Ingest(self.capture, adapter, fps=options.fps, duration_s=options.duration_s)
        self.queue = EventQueue(max_events=options.max_events, clock=self.stream_time)
        self.answerer = Answerer(self.store, model=self._holding_model, emit=self.queue.emit, clock=self.stream_time,
                                 max_new_tokens=options.max_new_tokens,
                                 first_frame_timeout_s=options.first_frame_timeout_s)
        self.trigger = Trigger(adapter, options, ask=self.ask, model=self._holding_model)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._worker: threading.Thread | None = None
        self.error: str | None = None
        self.warnings: list[str] = []  # the source's warnings (decode errors skipped, an early end)

    # -- the parts, as the session always exposed them -----------------------------------------
    @property
    def memory(self):
        return self.store.memory

    @property
    def cache(self):
        return self.store.cache

    @property
    def mode(self) -> str:
        return self.store.mode

    @property
    def budget(self):
        return self.options.budget

    @property
    def group_size(self) -> int:
        return self.ingest.group_size

    @contextlib.contextmanager
    def _holding_model(self) -> Iterator[None]:
        """The model's shared lock, then the memory's: around every model call."""
        with self._model_lock, self.store.lock:
            yield

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "StreamSession":
        """Open the source (a `SourceError` here is immediate) and start ingesting."""
        if self._worker is not None:
            return self
        with self._model_lock:
            self.store.reset(self.options.query)
        self.capture.start()
        self.ingest.start()
        self._worker = threading.Thread(target=self._run, name="vidsift-stream", daemon=True)
        self._worker.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.capture.stop()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(10)
        self._finish()

    def _finish(self) -> None:
        self._done.set()
        self.store.has_frames.set()  # wake a question waiting for the first frame
        self.queue.wake()

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
    def _capture_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "warning":
            self.warnings.append(event["warning"])
        if event.get("event") != "ended":  # the worker reports the end itself, once
            self.queue.emit(event)

    def events(self, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield events as they happen until the session is done (or ``timeout_s`` passes idle)."""
        return self.queue.drain(self._done, timeout_s)

    def stream_time(self) -> float:
        return self.ingest.t_last

    def stats(self) -> dict[str, Any]:
        """A snapshot for status lines: stream time, frames seen/kept, memory vs budget, rates."""
        cap, memory, ingest = self.capture.stats, self.store.memory, self.ingest
        return {"t": round(ingest.t_last, 3), "frames_seen": ingest.frames_seen, "frames_kept": ingest.frames_kept,
                "groups": self.store.groups, "answers": self.answerer.answers, "encode_s": ingest.encode_s,
                "memory_tokens": memory.n_tokens, "budget": memory.budget, "entries": len(memory),
                "fps_sustained": round(ingest.fps_sustained(), 3),
                "frames_dropped": cap.frames_dropped, "reconnects": cap.reconnects, "stalls": cap.stalls,
                "stalled": cap.stalled, "connected": cap.connected, "mode": self.mode,
                "tokens_deduped": memory.stats["tokens_deduped"], "tokens_evicted": memory.stats["tokens_evicted"],
                "cache_tokens": None if self.cache is None else self.cache.length}

    def wall_of(self, t_s: float) -> float:
        """Monotonic clock time of stream time ``t_s`` (live sources: t = arrival - start)."""
        return t_s + self.ingest.start_wall

    # -- questions ---------------------------------------------------------------------------
    def ask(self, question: str, *, max_new_tokens: int | None = None, wait_s: float | None = None,
            trigger: dict[str, Any] | None = None) -> StreamAnswer:
        """Answer from the memory as it is now (the ingest waits meanwhile). Before the memory
        holds a frame, wait for one (at most ``wait_s``, default ``first_frame_timeout_s``); if
        none arrives, return a ``no_frames`` answer (see `vidsift.stream.answering`)."""
        worker = self._worker
        wait = worker is not None and threading.current_thread() is not worker  # the worker cannot wait for itself
        return self.answerer.ask(question, max_new_tokens=max_new_tokens, wait_s=wait_s, wait=wait, trigger=trigger)

    def trigger_score(self, frames: FrameBatch) -> float:
        """The ``respond="auto"`` fast path's relevance of ``frames`` to the query (`Trigger.score`)."""
        return self.trigger.score(frames)

    # -- the worker ----------------------------------------------------------------------------
    def _ingest(self, frames: list[Sampled]) -> None:
        with self._model_lock:
            batch, tokens = self.ingest.encode(frames)
            self.store.admit(tokens, height=batch.data.shape[1], width=batch.data.shape[2])
        self.trigger.after_group(batch)

    def _run(self) -> None:
        apply_here()  # the process's thread policy (vidsift.threads) in the ingest thread too
        try:
            for t, group in self.ingest.frames(self._stop):
                if group is not None:
                    self._ingest(group)
                self.trigger.at_time(t)
            report = self.source.report() if self.capture.ended else None
            error = self.capture.stats.error
            self.queue.emit({"event": "ended", **({"error": error} if error else {}),
                             **({"decode": report} if report is not None else {})})
        except Exception as err:  # noqa: BLE001 - report, never die silently
            text = str(err) if isinstance(err, VidsiftError) else f"{type(err).__name__}: {err}"
            name = self.source.name  # one line naming the source, as every source error does
            self.error = text if text.startswith(f"{name}: ") else f"{name}: {text}"
            self.queue.emit({"event": "error", "error": self.error})
        finally:
            self.capture.stop()
            self._finish()  # wakes the event queue and any question waiting for a frame


def open_session(model: Pipeline | ModelAdapter, source: str | LiveSource, options: StreamOptions | None = None, *,
                 model_lock: threading.Lock | None = None, **settings: Any) -> StreamSession:
    """A started `StreamSession` on ``source`` (camera index or device, URL, file, ``lavfi:GRAPH``) with
    ``model``'s adapter: ``.ask(q)``, ``.events()``, ``.close()``, a context manager. ``settings`` are
    `StreamOptions` fields (``budget=``, ``fps=``, ...), over ``options`` when given. Given a
    `Pipeline`, ``budget`` defaults to its budget, a token count or a share of the stream's tokens
    (`stream.budget`); 1024 tokens when it is unlimited."""
    if isinstance(model, Pipeline):
        if options is None and "budget" not in settings and not model.budget.unlimited:
            settings["budget"] = model.budget
        model = model.adapter
    return StreamSession(model, source, StreamOptions.of(options, **settings), model_lock=model_lock).start()
