"""`Engine`: one loaded `Pipeline`, a FIFO queue in front of it, and the server's metrics.

Every use of the model goes through ``Engine.model_lock``: the queue's single worker thread
holds it for one request at a time, and live sessions (the web page) take it for each ingest
step and each question. So requests never run the model concurrently (no interleaved hooks,
no doubled memory) and concurrent clients wait their turn instead of failing; beyond
``max_queue`` waiting requests the server answers 503 at once.

Token streaming (``on_text``) taps the generation streamer the Pipeline already passes to
``adapter.generate``: while a job runs (under the lock) the adapter's ``generate`` is wrapped
by an instance attribute that tees the streamer, and the class method is restored after.
"""

from __future__ import annotations

import collections
import concurrent.futures
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..threads import apply_here
from ._errors import HTTPProblem


class _TextTap:
    """A generation streamer that forwards to ``inner`` and calls ``on_text(delta)`` with the
    new text after each token (decoding all new ids each time, so multi-byte pieces are whole)."""

    def __init__(self, inner: Any, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        self.inner, self.tokenizer, self.on_text = inner, tokenizer, on_text
        self.calls = 0
        self.ids: list[int] = []
        self.sent = ""

    def put(self, value: Any) -> None:
        if self.inner is not None:
            self.inner.put(value)
        self.calls += 1
        if self.calls == 1:  # the prompt
            return
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())
        self._send(final=False)

    def _send(self, final: bool) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        if final:
            text = text.rstrip()  # as the Pipeline's answer text
        elif text.endswith("\ufffd"):  # half a multi-byte character: wait for the rest
            return
        if text.startswith(self.sent) and len(text) > len(self.sent):
            delta, self.sent = text[len(self.sent):], text
            self.on_text(delta)

    def end(self) -> None:
        self._send(final=True)  # whatever was held back (a character never completed)
        if self.inner is not None:
            self.inner.end()


@contextmanager
def text_tap(adapter: Any, on_text: Callable[[str], None] | None) -> Iterator[None]:
    """While inside, ``adapter.generate`` also reports its new text to ``on_text`` (see module doc)."""
    if on_text is None:
        yield
        return
    original = adapter.generate

    def generate(inputs: Any, *, max_new_tokens: int = 64, streamer: Any = None, **kwargs: Any) -> Any:
        tap = _TextTap(streamer, adapter.tokenizer, on_text)
        return original(inputs, max_new_tokens=max_new_tokens, streamer=tap, **kwargs)

    adapter.generate = generate
    try:
        yield
    finally:
        del adapter.generate  # the class's method again


class Metrics:
    """Counters and recent latencies (the last 2048 per endpoint) for /metrics and /healthz."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = time.time()
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.latency: dict[str, collections.deque[float]] = collections.defaultdict(lambda: collections.deque(maxlen=2048))
        self.latency_sum: collections.Counter[str] = collections.Counter()
        self.latency_count: collections.Counter[str] = collections.Counter()
        self.visual_tokens = 0
        self.generated_tokens = 0
        self.answers = 0
        self.live_answers = 0
        self.live_frames = 0

    def observe(self, endpoint: str, status: int, seconds: float | None) -> None:
        with self.lock:
            self.requests[(endpoint, int(status))] += 1
            if seconds is not None:
                self.latency[endpoint].append(seconds)
                self.latency_sum[endpoint] += seconds
                self.latency_count[endpoint] += 1

    def add_answer(self, stats: dict[str, Any]) -> None:
        with self.lock:
            self.answers += 1
            self.visual_tokens += int(stats.get("tokens_in_prompt") or 0)
            self.generated_tokens += int(stats.get("new_tokens") or 0)

    @staticmethod
    def quantile(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        k = max(0, min(len(ordered) - 1, int(round(q * (len(ordered) - 1)))))
        return ordered[k]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "uptime_s": round(time.time() - self.started, 3),
                "requests": [{"endpoint": e, "status": s, "count": n} for (e, s), n in sorted(self.requests.items())],
                "latency_s": {e: {"count": self.latency_count[e], "sum": round(self.latency_sum[e], 6),
                                  "p50": self.quantile(list(v), 0.5), "p95": self.quantile(list(v), 0.95)}
                              for e, v in sorted(self.latency.items())},
                "visual_tokens_total": self.visual_tokens, "generated_tokens_total": self.generated_tokens,
                "answers_total": self.answers, "live_answers_total": self.live_answers,
                "live_frames_total": self.live_frames,
            }


@dataclass
class _Job:
    fn: Callable[[], Any]
    future: concurrent.futures.Future
    queued_at: float


class Engine:
    """The model (a `Pipeline`), its lock, the request queue and the metrics."""

    def __init__(self, pipeline: Any, *, max_queue: int = 64) -> None:
        self.pipeline = pipeline
        self.adapter = pipeline.adapter
        self.model_lock = threading.Lock()
        self.metrics = Metrics()
        self.max_queue = int(max_queue)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._running = 0
        self._count_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="vidsift-serve-model", daemon=True)
        self._worker.start()
        self.closed = False

    @property
    def queue_depth(self) -> int:
        """Requests waiting plus the one running."""
        return self._jobs.qsize() + self._running

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Queue ``fn`` (run under the model lock); 503 when ``max_queue`` requests already wait."""
        if self.closed:
            raise HTTPProblem(503, "server: shutting down")
        if self._jobs.qsize() >= self.max_queue:
            raise HTTPProblem(503, f"server: the queue is full ({self.max_queue} requests waiting); retry later",
                              headers={"Retry-After": "1"})
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put(_Job(fn, future, time.perf_counter()))
        return future

    def _work(self) -> None:
        apply_here()  # the process's thread policy (vidsift.threads) in the model thread too
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():  # the client went away while queued
                continue
            with self._count_lock:
                self._running += 1
            try:
                with self.model_lock:
                    result = job.fn()
            except BaseException as err:  # noqa: BLE001 - handed to the waiting request
                job.future.set_exception(err)
            else:
                job.future.set_result(result)
            finally:
                with self._count_lock:
                    self._running -= 1

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking requests; wait up to ``timeout_s`` for the running one (the worker is a daemon)."""
        self.closed = True
        self._jobs.put(None)
        self._worker.join(timeout_s)
