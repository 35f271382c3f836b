"""``uniform``: k frames evenly spaced in time, the baseline of almost every video LLM
(e.g. LLaVA-Video, Qwen2.5-VL fixed-fps sampling). Blind to content: it can miss short scenes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import check_k, check_select_inputs


@dataclass
class UniformSelector:
    """Picks the centre frame of each of k equal slices of the candidate list."""

    name: ClassVar[str] = "uniform"

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        features, scores = check_select_inputs(features, scores)
        n = features.shape[0]
        k = check_k(k, n)
        return np.floor((np.arange(k) + 0.5) * n / max(k, 1)).astype(np.int64)  # (k,) unique, sorted
