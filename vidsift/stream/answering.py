"""The answering part of a `StreamSession`: a question answered from the memory as it is now.

``ask`` never answers from an empty memory: before the first frame is in memory it waits for it
(at most ``first_frame_timeout_s``, and not past the stream's end); if none arrives it returns a
`StreamAnswer` with ``mode="no_frames"`` and text ``"no frames yet"`` (and emits the ``no_frames``
event) without running the model.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError
from .store import MemoryStore


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


class Answerer:
    """Answers from ``store`` while holding ``model()`` (the model's shared lock, then the store's);
    emits each answer; ``clock()`` is the stream time of the newest frame."""

    def __init__(self, store: MemoryStore, *, model: Callable[[], AbstractContextManager], emit: Callable[[dict], None],
                 clock: Callable[[], float], max_new_tokens: int, first_frame_timeout_s: float) -> None:
        self.store, self._model, self._emit, self._clock = store, model, emit, clock
        self.max_new_tokens, self.first_frame_timeout_s = max_new_tokens, first_frame_timeout_s
        self.answers = 0

    def ask(self, question: str, *, max_new_tokens: int | None = None, wait_s: float | None = None,
            wait: bool = True, trigger: dict[str, Any] | None = None) -> StreamAnswer:
        """Answer ``question`` from the memory as it is now; ``wait``: first wait for a frame (at
        most ``wait_s``, default ``first_frame_timeout_s``)."""
        question = question.strip()
        if not question:
            raise ConfigError("question", "empty question")
        start = time.perf_counter()
        if wait:
            self.store.has_frames.wait(self.first_frame_timeout_s if wait_s is None else wait_s)
        with self._model():
            if not len(self.store.memory):
                waited = time.perf_counter() - start
                empty = StreamAnswer(self._clock(), question, "no frames yet", 0, waited, 0.0, 0, "no_frames")
                self._emit(empty.to_event())
                return empty
            t = self._clock()
            reply = self.store.answer(question, max_new_tokens=max_new_tokens or self.max_new_tokens)
            tokens = self.store.memory.n_tokens
        answer = StreamAnswer(t, question, reply.text, tokens, time.perf_counter() - start, reply.ttft_s,
                              reply.new_tokens, self.store.mode, trigger)
        self.answers += 1
        self._emit(answer.to_event())
        return answer
