"""``temporal``: drop or merge tokens that repeat the same grid position of the previous kept group.

DyCoke's temporal token merging (Tao et al., CVPR 2025, https://arxiv.org/abs/2411.15024), EVS
(efficient video sampling: pruning temporally static patches) and TimeChat-Online's differential
token drop (https://arxiv.org/abs/2504.17343) all remove a token when the same spatial position
in the previous frame already shows (almost) the same thing. A token of group g whose cosine
similarity with the last kept token at the same (h, w) in an earlier group (normally g-1)
exceeds ``threshold`` is removed; with ``mode="merge"`` its size is added to that earlier token
(size-weighted mean), so total size is preserved. Every group keeps at least ``min_keep`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..types import VisualTokens


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
        embeds = list(tokens.embeds)
        sizes = list(tokens.size)
        keep = [torch.arange(e.shape[0]) for e in tokens.embeds]
        ref: dict[tuple[int, int], tuple[int, int]] = {}  # (h, w) -> (group, row) of the last kept token there
        changed = False
        for g in range(tokens.n_groups):
            hw = tokens.coords[g][:, 1:].long().tolist()  # (T, 2)
            partners = [ref.get((h, w)) for h, w in hw]
            redundant = torch.zeros(len(hw), dtype=torch.bool)
            sim = torch.full((len(hw),), -2.0)
            rows = [i for i, p in enumerate(partners) if p is not None]
            if rows:
                prev = torch.stack([embeds[partners[i][0]][partners[i][1]] for i in rows]).float()  # (M, D)
                s = F.cosine_similarity(embeds[g][rows].float(), prev, dim=-1)  # (M,)
                sim[rows] = s
                redundant[rows] = s > self.threshold
            if int((~redundant).sum()) < self.min_keep:  # keep the least redundant tokens
                fill = torch.argsort(torch.where(redundant, sim, torch.full_like(sim, -3.0)), stable=True)
                redundant[fill[: self.min_keep]] = False
            if redundant.any():
                changed = True
                src = torch.nonzero(redundant).flatten().tolist()
                if self.mode == "merge":
                    for pg in sorted({partners[i][0] for i in src}):
                        mine = [i for i in src if partners[i][0] == pg]
                        dst = torch.tensor([partners[i][1] for i in mine])
                        w_src = sizes[g][mine].float()
                        w_dst = sizes[pg].float()
                        acc = (embeds[pg].float() * w_dst[:, None]).index_add_(0, dst, embeds[g][mine].float() * w_src[:, None])
                        new_w = w_dst.clone().index_add_(0, dst, w_src)
                        embeds[pg] = (acc / new_w[:, None]).to(embeds[pg].dtype)
                        sizes[pg] = new_w.to(sizes[pg].dtype)
                stay = torch.nonzero(~redundant).flatten()
                keep[g], embeds[g], sizes[g] = keep[g][stay], embeds[g][stay], sizes[g][stay]
                hw = [hw[i] for i in stay.tolist()]
            for row, (h, w) in enumerate(hw):
                ref[(h, w)] = (g, row)
        if not changed:
            return tokens
        return tokens.keep(keep, size=sizes, embeds=embeds)
