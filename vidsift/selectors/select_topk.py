"""``topk``: the k most relevant frames (relevance-only keyframe selection as in
Frame-Voyager / BOLT-style top-k baselines). Ties go to the earlier frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import check_k, check_select_inputs


@dataclass
class TopK:
    """Highest ``scores`` first; returned in time order."""

    name: ClassVar[str] = "topk"

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        features, scores = check_select_inputs(features, scores)
        k = check_k(k, len(scores))
        order = np.lexsort((np.arange(len(scores)), -scores))  # best first, ties by time
        return np.sort(order[:k]).astype(np.int64)
