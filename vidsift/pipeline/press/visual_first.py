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

from .base import CachePress, check_count, window_attention


@dataclass
class VisualFirst(CachePress):
    """ratio: fraction of each layer's prompt entries kept; visual entries go first, lowest window
    attention first; text is evicted only when ``ratio`` leaves no room for it.
    window: observation-window queries used to rank entries within each group."""

    window: int = 8
    name: ClassVar[str] = "visual_first"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("window", self.window, 1)

    def score(self, layout, idx, attn, hidden, cos, sin, keys, pos) -> torch.Tensor:
        probs = window_attention(layout, attn, hidden, cos, sin, keys, pos, layout.seq_pos, self.window)
        scores = probs.mean(dim=2)  # (B, Hk, n) in [0, 1]
        text = ~layout.entry_visual(pos.expand_as(scores))
        return scores + 2.0 * text
