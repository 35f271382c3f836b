"""``proportional``: tokens per frame proportional to relevance**alpha (QuoTA-style).

QuoTA (Luo et al. 2025, https://arxiv.org/abs/2503.08689) assigns each frame a visual-token
quota in proportion to its query relevance. Here the share is ``(score + eps) ** alpha``,
bounded by ``[floor, cap]`` and rounded by largest remainder so the frames' tokens sum exactly
to ``min(budget, K * cap)``. ``alpha = 0`` is a uniform split; larger alpha concentrates tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .budget import split_budget


@dataclass
class Proportional:
    """alpha: sharpness of the relevance weighting (>= 0); eps: added to scores so zero-score frames keep a share."""

    alpha: float = 1.0
    eps: float = 0.05
    name: ClassVar[str] = "proportional"

    def __post_init__(self) -> None:
        if not isinstance(self.alpha, (int, float)) or self.alpha < 0:
            raise ValueError(f"alpha must be a number >= 0, got {self.alpha!r}")
        if not isinstance(self.eps, (int, float)) or self.eps < 0:
            raise ValueError(f"eps must be a number >= 0, got {self.eps!r}")

    def allocate(self, scores: np.ndarray, budget: int, *, floor: int = 1, cap: int) -> np.ndarray:
        s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, None)  # (K,)
        weights = (s + self.eps) ** self.alpha
        return split_budget(weights, budget, floor=floor, cap=cap, priority=s)
