"""``temporal``: drop or merge tokens that repeat the same grid position of the previous kept group.

DyCoke's temporal token merging (Tao et al., CVPR 2025, https://arxiv.org/abs/2411.15024), EVS
(efficient video sampling: pruning temporally static patches) and TimeChat-Online's differential
token drop (https://arxiv.org/abs/2504.17343) all remove a token when the same spatial position
in the previous frame already shows (almost) the same thing. A token of group g whose cosine
similarity with the token at the same (h, w) in group g-1 (after that group's own reduction)
exceeds ``threshold`` is removed; with ``mode="merge"`` its size is added to that earlier token
(size-weighted mean), so total size is preserved. Every group keeps at least ``min_keep`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .base import MERGERS

if TYPE_CHECKING:  # pipeline.types imports selectors.types: no import cycle at runtime
    from ..pipeline.types import VisualTokens


@MERGERS.register("temporal")
@dataclass
class Temporal:
    """threshold: cosine similarity above which a token is redundant; mode: "merge" or "drop"."""

    threshold: float = 0.9
    mode: str = "merge"
    min_keep: int = 1
    name: ClassVar[str] = "temporal"
    kind: ClassVar[str] = "temporal"

    def __post_init__(self) -> None:
        if not isinstance(self.threshold, (int, float)) or not -1 <= self.threshold <= 1:
            raise ValueError(f"threshold must be in [-1, 1], got {self.threshold!r}")
        if self.mode not in ("merge", "drop"):
            raise ValueError(f"mode must be one of: merge, drop; got {self.mode!r}")
        if not isinstance(self.min_keep, int) or self.min_keep < 1:
            raise ValueError(f"min_keep must be an int >= 1, got {self.min_keep!r}")

    def apply(self, tokens: VisualTokens) -> VisualTokens:
        g_count = tokens.n_groups
        embeds = [e for e in tokens.embeds]
        sizes = [s for s in tokens.size]
        keep = [torch.arange(e.shape[0]) for e in tokens.embeds]
        changed = False
        for g in range(1, g_count):
            prev_c = tokens.coords[g - 1][keep[g - 1]]  # (P, 3)
            cur_c = tokens.coords[g]  # (T, 3)
            if cur_c.shape[0] == 0 or prev_c.shape[0] == 0:
                continue
            pkey = (prev_c[:, 1].long() * 1_000_003 + prev_c[:, 2].long()).numpy()
            ckey = (cur_c[:, 1].long() * 1_000_003 + cur_c[:, 2].long()).numpy()
            order = np.argsort(pkey, kind="stable")
            pos = np.clip(np.searchsorted(pkey[order], ckey), 0, len(pkey) - 1)
            match = pkey[order][pos] == ckey  # (T,) same (h, w) exists in the previous group
            if not match.any():
                continue
            partner = torch.from_numpy(order[pos])  # (T,) row in the previous group's kept tokens
            sim = F.cosine_similarity(embeds[g].float(), embeds[g - 1][partner].float(), dim=-1)  # (T,)
            redundant = torch.from_numpy(match) & (sim > self.threshold)
            n_keep = int((~redundant).sum())
            if n_keep < self.min_keep:  # keep the least redundant tokens
                fill = torch.argsort(torch.where(redundant, sim, torch.full_like(sim, -2.0)), stable=True)
                redundant[fill[: min(self.min_keep, len(fill))]] = False
            if not redundant.any():
                continue
            changed = True
            if self.mode == "merge":
                src = torch.nonzero(redundant).flatten()
                dst = partner[src]
                w_prev = sizes[g - 1].float()
                acc = (embeds[g - 1].float() * w_prev[:, None]).index_add_(0, dst, embeds[g][src].float() * sizes[g][src].float()[:, None])
                new_w = w_prev.clone().index_add_(0, dst, sizes[g][src].float())
                embeds[g - 1] = (acc / new_w[:, None]).to(embeds[g - 1].dtype)
                sizes[g - 1] = new_w.to(sizes[g - 1].dtype)
            stay = torch.nonzero(~redundant).flatten()
            keep[g] = keep[g][stay]
            embeds[g] = embeds[g][stay]
            sizes[g] = sizes[g][stay]
        if not changed:
            return tokens
        return tokens.keep(keep, size=sizes, embeds=embeds)
