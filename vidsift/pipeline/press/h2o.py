"""H2O: heavy hitters (accumulated attention) plus a recent window; evicts while decoding.

Zhang et al., "H2O: Heavy-Hitter Oracle for Efficient Generative Inference of Large Language
Models", NeurIPS 2023, https://arxiv.org/abs/2306.14048
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..attn import attention_probs, project_queries
from .base import CachePress, PressCall, check_count, check_ratio, protect_recent


@dataclass
class H2O(CachePress):
    """ratio: fraction of prompt entries kept; recent: share of that budget reserved for the newest
    entries; every: evict back to the budget every N decode steps (paper: every step);
    chunk: prompt queries per chunk when accumulating prefill attention (memory bound)."""

    every: int = 1
    recent: float = 0.5
    chunk: int = 256
    name: ClassVar[str] = "h2o"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ratio("recent", self.recent)
        check_count("chunk", self.chunk, 1)

    def _window(self, n: int) -> int:
        return int(round(self.recent * self.n_keep(n)))

    def entry_scores(self, call: PressCall, idx, attn, hidden, cos, sin, keys, pos) -> torch.Tensor:
        """Prefill: attention each entry receives, summed over every prompt query (chunked); kept in
        ``call.acc`` by original position for the decode steps."""
        layout = call.layout
        rows = layout.seq_pos  # (B, q) positions of the queries
        valid = layout.entry_valid(pos).unsqueeze(2)  # (B, h, 1, n)
        acc = torch.zeros(keys.shape[0], keys.shape[1], keys.shape[2], device=keys.device)
        for s in range(0, hidden.shape[1], self.chunk):
            e = min(s + self.chunk, hidden.shape[1])
            q = project_queries(attn, hidden[:, s:e], cos[:, s:e], sin[:, s:e])  # (B, Hq, c, Dh)
            allowed = valid & (pos.unsqueeze(2) <= rows[:, None, s:e, None])
            qvalid = layout.entry_valid(rows[:, s:e])[:, None, :, None]  # padding queries add nothing
            acc += (attention_probs(q, keys, scaling=attn.scaling, allowed=allowed) * qvalid).sum(dim=2)
        call.acc.pop(idx, None)  # a new prefill starts the sums afresh
        call.accumulate(idx, acc, pos)
        return protect_recent(acc, pos, self._window(keys.shape[2]))

    def on_decode(self, call: PressCall, idx, attn, hidden, cos, sin, lay, pos) -> None:
        if idx not in call.acc:
            return
        probs = call.window_attention(attn, hidden, cos, sin, lay.keys, pos, hidden.shape[1])
        pos_h = pos.expand(-1, probs.shape[1], -1)
        dense = call.accumulate(idx, probs.sum(dim=2), pos_h)
        budget = call.budget.get(idx)
        if not self.every or budget is None or (call.layout.step + 1) % self.every or lay.keys.shape[-2] <= budget:
            return
        scores = protect_recent(dense.gather(2, pos_h), pos_h, int(round(self.recent * budget)))
        self.compress(call, idx, lay, scores, pos, budget)
