"""The ingest part of a `StreamSession`: the capture's frames sampled at ``fps`` of stream time,
grouped as the adapter encodes them (a frame, or a Qwen temporal pair), and encoded.

Stream time ``t`` is seconds since the session started: wall clock for live sources (so it
survives reconnects), pts for sources read at full speed (which makes accelerated soaks exact).
A sampling slot missed (a slow encode, a stall) is skipped, never caught up; a source that
changes frame size (a reconnect) never pairs mismatched frames.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Iterator

import numpy as np

from ..pipeline.adapters.base import ModelAdapter
from ..pipeline.pipeline import naming_video
from ..types import FrameBatch, VisualTokens
from .capture import Capture
from .sources.base import LiveFrame

Sampled = tuple[np.ndarray, float, int]  # (rgb, stream time, index among the frames seen)


class Ingest:
    """Samples and encodes the frames of ``capture``; counts what it saw and kept."""

    def __init__(self, capture: Capture, adapter: ModelAdapter, *, fps: float, duration_s: float | None) -> None:
        self.capture, self.adapter = capture, adapter
        self.fps, self.duration_s, self.group_size = fps, duration_s, adapter.frames_per_group
        self.t_last = 0.0
        self.start_wall = 0.0
        self.frames_seen = self.frames_kept = 0
        self.encode_s = 0.0
        self._rate: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)

    def start(self) -> None:
        self.start_wall = time.monotonic()

    @property
    def source(self):
        return self.capture.source

    def fps_sustained(self) -> float:
        rate = self._rate
        if len(rate) >= 2 and rate[-1][0] > rate[0][0]:
            return (rate[-1][1] - rate[0][1]) / (rate[-1][0] - rate[0][0])
        return 0.0

    def _frame_time(self, frame: LiveFrame, first_pts: float | None) -> float:
        if self.source.live or first_pts is None or frame.pts_seconds != frame.pts_seconds:
            return frame.wall_s - self.start_wall
        return frame.pts_seconds - first_pts

    def frames(self, stop: threading.Event) -> Iterator[tuple[float, list[Sampled] | None]]:
        """``(t, group)`` for each frame seen until the stream ends (``duration_s``, the source's
        end, ``stop``): ``group`` holds ``group_size`` sampled frames when one completed, else None;
        a last incomplete group comes at the end."""
        step = 1.0 / self.fps
        next_sample = 0.0
        pending: list[Sampled] = []
        first_pts: float | None = None
        while not stop.is_set():
            frame = self.capture.get(timeout_s=0.2)
            if frame is None:
                if self.capture.ended:
                    break
                if self.source.live and self.duration_s is not None and \
                        time.monotonic() - self.start_wall >= self.duration_s:
                    break
                continue
            if first_pts is None and frame.pts_seconds == frame.pts_seconds:
                first_pts = frame.pts_seconds
            t = self._frame_time(frame, first_pts)
            if self.duration_s is not None and t >= self.duration_s:
                break
            self.frames_seen += 1
            self.t_last = max(self.t_last, t)
            group = None
            if t + 1e-6 >= next_sample:
                next_sample += step
                if next_sample <= t:  # fell behind (a slow encode, a stall): skip the missed slots
                    next_sample = t + step
                if pending and pending[-1][0].shape != frame.rgb.shape:
                    pending = []  # the source changed size (reconnect): never pair mismatched frames
                pending.append((frame.rgb, t, self.frames_seen - 1))
                self.frames_kept += 1
                if len(pending) == self.group_size:
                    group, pending = pending, []
            yield t, group
            if group is not None:
                self._rate.append((time.monotonic(), self.frames_kept))
        if pending:
            yield self.t_last, pending

    def encode(self, frames: list[Sampled]) -> tuple[FrameBatch, VisualTokens]:
        """The sampled frames as a batch and its visual tokens (call while holding the model)."""
        batch = FrameBatch(np.stack([f[0] for f in frames]), np.array([f[1] for f in frames]),
                           np.array([f[2] for f in frames]))
        t0 = time.perf_counter()
        with naming_video(self.source.name, self.adapter.family):  # "<source>: its WxH frames cannot be encoded ..."
            tokens = self.adapter.encode(batch)
        self.encode_s += time.perf_counter() - t0
        return batch, tokens
