"""``uniform``: every frame equally relevant (no query needed); features are the model-free
descriptors of :mod:`.features`, so diversity selectors still see the content. The baseline
against which query-aware scorers (clip, text, mllm/QuoTA) are compared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..types import FrameBatch, FrameScores
from .features import frame_features


@dataclass
class UniformScorer:
    """Scores 1.0 for every frame; features = thumbnail + colour histogram."""

    name: ClassVar[str] = "uniform"
    uses_query: ClassVar[bool] = False  # the CLI says so when a question or --query is given

    def score(self, frames: FrameBatch, query: str | None = None) -> FrameScores:
        feats = frame_features(frames)  # (N, F)
        return FrameScores(np.ones(len(frames), np.float32), feats, scorer=self.name)
