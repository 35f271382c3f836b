"""``uniform``: the same number of tokens for every chosen frame (the usual fixed-tokens-per-frame
baseline of video LLMs, e.g. LLaVA-Video); leftover units go to the most relevant frames first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .budget import split_budget


@dataclass
class UniformAllocator:
    """Equal split of ``min(budget, K * cap)`` with largest-remainder rounding."""

    name: ClassVar[str] = "uniform"

    def allocate(self, scores: np.ndarray, budget: int, *, floor: int = 1, cap: int) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)  # (K,)
        return split_budget(np.ones_like(s), budget, floor=floor, cap=cap, priority=s)
