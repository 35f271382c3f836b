"""`Capture`: a thread that reads a `LiveSource`, keeps only the latest frame, reconnects with
backoff when the source drops, and a watchdog that reports a stalled source.

For live sources the consumer never lags: a frame not taken before the next one arrives is
dropped (and counted). For non-live sources (a file or lavfi graph read at full speed) the
thread waits for the consumer instead, so an accelerated stream delivers every frame.
The first ``open()`` happens in the caller's thread, so a missing device or unreachable URL is
an immediate one-line `SourceError`, never a background retry loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..errors import ConfigError, SourceError
from .sources.base import LiveFrame, LiveSource


@dataclass
class CaptureStats:
    """Counters of a capture thread (a snapshot; see `Capture.stats`)."""

    frames_read: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    stalls: int = 0
    stalled: bool = False
    connected: bool = False
    ended: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Capture:
    """Latest-frame capture of ``source``.

    reconnect:        reopen a reconnectable source that fails or ends (with backoff).
    backoff_s:        (first, max) seconds between reconnect attempts, doubling.
    give_up_s:        stop reconnecting after this long without frames (None: never).
    stall_s:          the watchdog reports a stall after this long without a frame.
    on_event:         called with dicts {"event": "stalled"|"resumed"|"disconnected"|"reconnected"|"ended"|"warning", ...};
                      a warning ({"event": "warning", "warning": "<source>: <what>"}) relays the source's
                      own (decode errors skipped, a file that ended early).
    """

    def __init__(self, source: LiveSource, *, reconnect: bool = True, backoff_s: tuple[float, float] = (0.25, 4.0),
                 give_up_s: float | None = None, stall_s: float = 3.0,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        if stall_s <= 0 or backoff_s[0] <= 0 or backoff_s[1] < backoff_s[0]:
            raise ConfigError("capture", "stall_s and backoff_s must be > 0 with first <= max")
        self.source = source
        self.reconnect = reconnect and source.reconnectable
        self.backoff_s, self.give_up_s, self.stall_s = backoff_s, give_up_s, stall_s
        self.on_event = on_event or (lambda event: None)
        self._stats = CaptureStats()
        self._cond = threading.Condition()
        self._slot: LiveFrame | None = None
        self._stop = threading.Event()
        self._last_frame_wall = time.monotonic()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "Capture":
        self.source.open()  # raises SourceError here, in the caller's thread
        self._stats.connected = True
        self._last_frame_wall = time.monotonic()
        for target, name in ((self._run, "capture"), (self._watchdog, "watchdog")):
            thread = threading.Thread(target=target, name=f"vidsift-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the threads and close the source. A read in flight ends within the source's
        read timeout; if it outlives ``timeout_s`` the capture thread closes the source itself
        (never closed under a running decode)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if timeout_s is None:
            timeout_s = getattr(self.source, "read_timeout_s", 5.0) + 1.0
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout_s)
        if not any(t.is_alive() for t in self._threads[:1]):
            self.source.close()

    def __enter__(self) -> "Capture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- consumer side ---------------------------------------------------------------------
    @property
    def stats(self) -> CaptureStats:
        with self._cond:
            return CaptureStats(**asdict(self._stats))

    @property
    def ended(self) -> bool:
        return self._stats.ended

    def get(self, timeout_s: float | None = None) -> LiveFrame | None:
        """The newest frame not yet taken; ``None`` on timeout or when the capture ended."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._slot is None and not self._stats.ended and not self._stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    # -- producer side ---------------------------------------------------------------------
    def _put(self, frame: LiveFrame) -> None:
        resumed = False
        with self._cond:
            if not self.source.live:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.5)
                    self._last_frame_wall = time.monotonic()  # waiting on the consumer is not a stall
            elif self._slot is not None:
                self._stats.frames_dropped += 1
            self._slot = frame
            self._stats.frames_read += 1
            self._last_frame_wall = time.monotonic()
            if self._stats.stalled:
                self._stats.stalled, resumed = False, True
            self._cond.notify_all()
        if resumed:
            self.on_event({"event": "resumed"})

    def _end(self, error: str | None) -> None:
        with self._cond:
            self._stats.ended, self._stats.error, self._stats.connected = True, error, False
            self._cond.notify_all()
        self.on_event({"event": "ended", **({"error": error} if error else {})})

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read()
            except SourceError as err:
                self._relay_warnings()
                if not self._reconnect(str(err)):
                    return
                continue
            except Exception as err:  # noqa: BLE001 - a decoder bug must end the stream visibly
                self._end(f"{self.source.name}: {type(err).__name__}: {err}")
                return
            self._relay_warnings()
            if frame is None:
                if not (self.reconnect and self.source.live) or not self._reconnect("stream ended"):
                    if not self._stats.ended:
                        self._end(None)
                    return
                continue
            self._put(frame)
        self.source.close()

    def _relay_warnings(self) -> None:
        for text in self.source.take_warnings():
            self.on_event({"event": "warning", "warning": text})

    def _reconnect(self, reason: str) -> bool:
        """Reopen with backoff; False when giving up (or not allowed) - the capture then ended."""
        with self._cond:
            self._stats.connected = False
        self.source.close()
        if not self.reconnect:
            self._end(reason)
            return False
        self.on_event({"event": "disconnected", "reason": reason})
        delay, started = self.backoff_s[0], time.monotonic()
        while not self._stop.wait(delay):
            try:
                self.source.open()
            except SourceError as err:
                if self.give_up_s is not None and time.monotonic() - started > self.give_up_s:
                    self._end(f"gave up reconnecting after {self.give_up_s:g} s: {err}")
                    return False
                delay = min(delay * 2, self.backoff_s[1])
                continue
            with self._cond:
                self._stats.reconnects += 1
                self._stats.connected = True
            self.on_event({"event": "reconnected", "after_s": round(time.monotonic() - started, 3)})
            return True
        return False

    def _watchdog(self) -> None:
        while not self._stop.wait(min(0.25, self.stall_s / 4)):
            with self._cond:
                if self._stats.ended:
                    return
                idle = time.monotonic() - self._last_frame_wall
                report = idle > self.stall_s and not self._stats.stalled
                if report:
                    self._stats.stalled = True
                    self._stats.stalls += 1
            if report:
                self.on_event({"event": "stalled", "idle_s": round(idle, 3)})
