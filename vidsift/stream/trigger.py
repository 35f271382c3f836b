"""The trigger part of a `StreamSession`: when the standing ``query`` is answered without being asked.

``respond="every"``: every ``every_s`` stream seconds (``at_time``, called at each frame seen).
``respond="auto"`` (LION-FS-style, Li et al., "LION-FS: Fast & Slow Video-Language Thinker as
Online Video Assistant", CVPR 2025, https://arxiv.org/abs/2503.03663): at every ingested temporal
group (``after_group``) the *fast path* (``score``) scores the group's frames against the query
with the model's own yes-probability (the ``mllm`` relevance scorer's prompt) and fires when the
best frame reaches ``trigger`` and at least ``cooldown_s`` stream seconds passed since the last
response; the *slow path* then answers the query from the memory (which already holds the
triggering frames), and the answer says why it fired. Simplified against LION-FS: the fast path
is a zero-shot yes/no forward of the same model per sampled frame, not a trained response head;
the slow path answers from the memory alone, without re-encoding keyframes at full resolution.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable

import numpy as np

from ..pipeline.adapters.base import ModelAdapter
from ..types import FrameBatch
from .options import StreamOptions


class Trigger:
    """Asks ``ask(query, trigger=why)`` on the schedule or the relevance rule of ``options``."""

    def __init__(self, adapter: ModelAdapter, options: StreamOptions, *, ask: Callable[..., Any],
                 model: Callable[[], AbstractContextManager]) -> None:
        self.adapter, self._ask, self._model = adapter, ask, model
        self.query, self.respond = options.query, options.respond
        self.every_s, self.threshold, self.cooldown_s = options.every_s, float(options.trigger), float(options.cooldown_s)
        self._next = options.every_s  # the next scheduled stream time (respond="every")
        self._last_fire: float | None = None
        self._scorer = None  # the fast path's relevance scorer, built on first use

    def at_time(self, t: float) -> None:
        """A frame at stream time ``t`` was seen: ask the query when its slot came."""
        if self._next is None or t < self._next:
            return
        while self._next <= t:
            self._next += self.every_s
        self._ask(self.query)

    def score(self, frames: FrameBatch) -> float:
        """Fast path: the best frame's relevance to the query (the model's P(yes) on the ``mllm``
        scorer's prompt), in [0, 1]."""
        if self._scorer is None:
            from ..pipeline.scorers.mllm import MllmScorer

            self._scorer = MllmScorer(adapter=self.adapter)
        with self._model():
            return float(np.max(self._scorer.score(frames, self.query).scores))

    def after_group(self, frames: FrameBatch) -> None:
        """A temporal group was admitted (respond="auto"): answer now if it is relevant enough."""
        if self.respond != "auto":
            return
        score = self.score(frames)
        t = float(frames.pts_seconds[-1])
        if score < self.threshold or (self._last_fire is not None and t - self._last_fire < self.cooldown_s):
            return
        self._last_fire = t
        why = {"kind": "relevance", "score": round(score, 4), "threshold": self.threshold,
               "frame_t": round(t, 3), "cooldown_s": self.cooldown_s}
        self._ask(self.query, trigger=why)  # slow path: the answer from the memory
