"""``temporal``: drop or merge tokens that repeat the same grid position of the previous kept group.

DyCoke's temporal token merging (Tao et al., CVPR 2025, https://arxiv.org/abs/2411.15024), EVS
(efficient video sampling: pruning temporally static patches) and TimeChat-Online's differential
token drop (https://arxiv.org/abs/2504.17343) all remove a token when the same spatial position
in the previous frame already shows (almost) the same thing. A token of group g whose cosine
similarity with the last kept token at the same (h, w) in an earlier group (normally g-1)
exceeds ``threshold`` is removed; with ``mode="merge"`` it is merged into that earlier token
(size-weighted mean of every per-token field, sizes added, `vidsift.selectors.merging`), so total
size is preserved. Every group keeps at least ``min_keep`` tokens. The same-cell match is the stream
dedup's (`vidsift.selectors.cells`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..types import VisualTokens
from .cells import last_per_cell, same_cell_partner
from .merging import Reduction, merge_tokens


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
        """``tokens`` with the redundant tokens merged (or dropped), every per-token field alike
        (`merge_tokens`); the very same object when nothing is redundant."""
        red = self.reduction(tokens)
        return tokens if red is None else merge_tokens(tokens, red)

    def reduction(self, tokens: VisualTokens) -> Reduction | None:
        """The merge over all tokens flattened group after group (None: nothing is redundant). A
        redundant token's partner is the newest kept token at its cell in an earlier group
        (`same_cell_partner`), compared with the partner's embedding as merged so far."""
        x = torch.cat(tokens.embeds).float().cpu()  # (N, D): kept tokens' running size-weighted means
        coords = torch.cat(tokens.coords).long()
        mass = torch.cat(tokens.size).float()
        n = x.shape[0]
        alive = torch.ones(n, dtype=torch.bool)
        into = torch.full((n,), -1, dtype=torch.long)  # flat kept token each redundant token merges into
        start = 0
        for count in tokens.tokens_per_group:
            rows = torch.arange(start, start + count)
            earlier = torch.nonzero(alive[:start]).flatten()
            ref = earlier[last_per_cell([coords[earlier]])]  # the newest kept token at each cell
            sim, partner = same_cell_partner(x[rows], coords[rows], x[ref], coords[ref], self.threshold)
            redundant = partner >= 0
            if int((~redundant).sum()) < self.min_keep:  # keep the least redundant tokens
                fill = torch.argsort(torch.where(redundant, sim, torch.full_like(sim, -3.0)), stable=True)
                redundant[fill[: self.min_keep]] = False
            src, dst = rows[redundant], ref[partner[redundant]]
            alive[src] = False
            if self.mode == "merge" and src.numel():
                into[src] = dst
                d, slot = torch.unique(dst, return_inverse=True)
                total = mass[d].index_add(0, slot, mass[src])
                x[d] = (x[d] * mass[d, None]).index_add_(0, slot, x[src] * mass[src, None]) / total[:, None]
                mass[d] = total
            start += count
        if bool(alive.all()):
            return None
        keep = torch.nonzero(alive).flatten()
        row = torch.cumsum(alive.long(), 0) - 1  # output row of each kept token
        source = torch.where(alive, row, torch.where(into >= 0, row[into.clamp(min=0)], -1))
        return Reduction(keep=keep, source=source, size_in=torch.cat(tokens.size))
