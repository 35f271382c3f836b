"""PrefixKV: one global priority threshold, found by binary search, sets every layer's cache length.

Wang et al., "PrefixKV: Adaptive Prefix KV Cache is What Vision Instruction-Following Models
Need for Efficient Generation", https://arxiv.org/abs/2412.03409 -- layers whose attention is
concentrated keep short prefixes of their importance-sorted entries, diffuse layers keep more,
under one total budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import WindowPress


def prefix_lengths(importance: list[torch.Tensor], budget: int, *, iters: int = 40) -> list[int]:
    """Per-layer kept counts from importance vectors (each (n_i,), >= 0) under a total ``budget``.

    Each layer keeps the shortest prefix of its entries (sorted by importance) whose share of the
    layer's total importance reaches a global threshold p; p is the largest value (binary search)
    whose counts sum to at most ``budget``. Every layer keeps at least one entry.
    """
    cums = []
    for imp in importance:
        s = imp.float().clamp(min=0).sort(descending=True).values
        total = s.sum()
        cums.append(s.cumsum(0) / total if total > 0 else torch.linspace(1.0 / len(s), 1.0, len(s)))

    def counts(p: float) -> list[int]:
        return [min(len(c), int(torch.searchsorted(c, torch.tensor(p, dtype=c.dtype))) + 1) for c in cums]

    lo, hi = 0.0, 1.0
    if sum(counts(hi)) <= budget:
        return counts(hi)
    for _ in range(iters):
        mid = (lo + hi) / 2
        if sum(counts(mid)) <= budget:
            lo = mid
        else:
            hi = mid
    return counts(lo)


@dataclass
class PrefixKV(WindowPress):
    """ratio: total kept entries over all layers / prompt entries over all layers; per-layer
    lengths differ. window: observation-window queries scoring importance (heads averaged, so a
    layer keeps the same positions in every head)."""

    name: ClassVar[str] = "prefixkv"

    def score(self, module, hidden, keys, positions, attention, *, visual) -> torch.Tensor:
        return attention.mean(dim=(1, 2)).unsqueeze(1)  # (B, 1, n)

    def apply_prefill(self, call, cache, pending) -> None:
        looked = {}
        for idx, stored in sorted(pending.items()):
            n = cache.layers[idx].keys.shape[-2]
            pos = call.layout.positions(idx, n)
            looked[idx] = (call.lookup(stored, pos), pos)
        importance = [s.nan_to_num(0.0, neginf=0.0).mean(dim=(0, 1)) for s, _ in looked.values()]
        total = sum(int(s.shape[-1]) for s, _ in looked.values())
        lengths = prefix_lengths(importance, math.ceil(self.ratio * total))
        for (idx, (scores, pos)), n_keep in zip(looked.items(), lengths):
            self.compress(call, idx, cache.layers[idx], scores, pos, n_keep)
        call.stats["budget_entries"] = math.ceil(self.ratio * total)
