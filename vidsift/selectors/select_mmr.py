"""``mmr``: maximal marginal relevance, trading query relevance against redundancy.

MMR (Carbonell & Goldstein, SIGIR 1998) picks, one at a time, the frame maximising
``weight * relevance - (1 - weight) * redundancy with the frames already picked`` (cosine
similarity to the nearest pick, relative to the current spread so both terms live in [0, 1]);
the relevance-diversity balance used for video keyframes by e.g. MDF / AKS-style selectors
(Tang et al. 2025, "Adaptive Keyframe Sampling", https://arxiv.org/abs/2502.21271).
``weight=1`` is top-k, ``weight=0`` pure diversity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._diversity import mmr
from .base import check_k, check_select_inputs


@dataclass
class MMR:
    """weight: relevance weight in [0, 1]."""

    weight: float = 0.5
    name: ClassVar[str] = "mmr"

    def __post_init__(self) -> None:
        if not isinstance(self.weight, (int, float)) or not 0 <= self.weight <= 1:
            raise ValueError(f"weight must be in [0, 1], got {self.weight!r}")

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        features, scores = check_select_inputs(features, scores)
        k = check_k(k, len(scores))
        return np.sort(mmr(features, scores, k, weight=float(self.weight)))
