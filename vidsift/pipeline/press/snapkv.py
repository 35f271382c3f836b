"""SnapKV: keep, per head, the entries an observation window of the last prompt queries attends to.

Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation", NeurIPS 2024,
https://arxiv.org/abs/2404.14469
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from .base import WindowPress, check_count, protect_recent


def pooled_window_scores(probs: torch.Tensor, kernel: int) -> torch.Tensor:
    """probs (B, Hk, w, n) -> window-averaged, 1D average-pooled scores (B, Hk, n)."""
    scores = probs.mean(dim=2)
    if kernel > 1:
        scores = F.avg_pool1d(scores, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    return scores


@dataclass
class SnapKV(WindowPress):
    """ratio: fraction of prompt entries kept per layer and head; window: observation-window queries
    (always kept); kernel: odd pooling width that keeps neighbours of salient entries."""

    kernel: int = 7
    name: ClassVar[str] = "snapkv"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("kernel", self.kernel, 1)
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {self.kernel}")

    def score(self, module, hidden, keys, positions, attention, *, visual) -> torch.Tensor:
        scores = pooled_window_scores(attention, self.kernel)  # (B, Hk, n)
        return protect_recent(scores, positions, self.window)
