"""`EventQueue`: the events part of a `StreamSession` - everything observable, as dicts, in order.

Producers (the capture thread, the ingest worker, a question) call ``emit``; each event gets the
stream time ``t`` when it has none. A consumer iterates ``drain`` until the session is done. The
queue is bounded (``max_events``): with no consumer the oldest events are dropped, never memory.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Iterator


class EventQueue:
    """A bounded, thread-safe queue of event dicts stamped with ``clock()`` (stream seconds)."""

    def __init__(self, *, max_events: int, clock: Callable[[], float]) -> None:
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_events)
        self._cond = threading.Condition()
        self._clock = clock

    def emit(self, event: dict[str, Any]) -> None:
        event.setdefault("t", round(self._clock(), 3))
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake consumers (the session is done: they return once the queue is empty)."""
        with self._cond:
            self._cond.notify_all()

    def drain(self, done: threading.Event, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield events as they come until ``done`` is set and none is left (or ``timeout_s`` passes idle)."""
        while True:
            with self._cond:
                while not self._events and not done.is_set():
                    if not self._cond.wait(timeout_s) and timeout_s is not None:
                        return
                if not self._events:
                    return
                event = self._events.popleft()
            yield event
