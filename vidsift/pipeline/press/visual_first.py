"""Visual-first eviction: drop visual cache entries before any text entry.

Video prompts are mostly visual tokens, and the question/system text is what decoding leans on.
This vidsift policy (no single paper) ranks every text entry above every visual one and orders
each group by SnapKV-style window attention (Li et al., https://arxiv.org/abs/2404.14469), so the
least-attended visual entries go first and text is evicted only when the budget leaves no room.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import WindowPress


@dataclass
class VisualFirst(WindowPress):
    """ratio: fraction of each layer's prompt entries kept; visual entries go first, lowest window
    attention first; text is evicted only when ``ratio`` leaves no room for it.
    window: observation-window queries used to rank entries within each group."""

    name: ClassVar[str] = "visual_first"

    def score(self, module, hidden, keys, positions, attention, *, visual) -> torch.Tensor:
        scores = attention.mean(dim=2)  # (B, Hk, n) in [0, 1]
        return scores + 2.0 * ~visual.expand_as(scores)
