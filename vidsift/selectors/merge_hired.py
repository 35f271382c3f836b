"""``hired``: HiRED's two phases inside one frame group — split the token budget over spatial
partitions by attention, then keep each partition's most attended tokens.

HiRED (Arif et al., "HiRED: Attention-Guided Token Dropping for Efficient Inference of
High-Resolution Vision-Language Models", AAAI 2025, https://arxiv.org/abs/2408.10945) cuts a
high-resolution image into partitions (sub-images). Phase 1 gives each partition a share of the
token budget proportional to the attention its patches receive; phase 2 keeps the most attended
tokens inside each partition and drops the rest. Here a partition is one of ``grid x grid`` spatial
tiles of the group's token grid (from the tokens' ``(t, h, w)`` coordinates), so a salient corner
cannot take the whole budget from the rest of the frame the way one global top-k can.

Simplified, and said so: the towers these adapters load have no [CLS] token, so both phases use
the attention each token *receives* in the encoder's last block (the adapters' ``saliency``; a
model-free distinctiveness score when an adapter supplies none). HiRED reads an early layer for
phase 1 and the last for phase 2; here both read the same map. By default each dropped token is
folded into its most similar kept token, as every vidsift merger preserves the frame's total
token size; ``merge=false`` drops them, as HiRED does. Which tokens survive is the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ._merge import check_merge_flag, distinctiveness, keep_then_absorb
from .merging import Reduction
from .budget import split_budget


def partitions(coords: torch.Tensor, grid: int) -> torch.Tensor:
    """long (T,): the tile of each token, ``row * grid + col`` over a ``grid x grid`` split of the
    tokens' (h, w) extent (coords long (T, 3) as (t, h, w))."""
    h, w = coords[:, 1].long(), coords[:, 2].long()
    h, w = h - h.min(), w - w.min()
    rows, cols = int(h.max()) + 1, int(w.max()) + 1
    return (h * grid // rows) * grid + (w * grid // cols)


def partition_budget(saliency: torch.Tensor, tile: torch.Tensor, target: int) -> dict[int, int]:
    """Phase 1: ``{tile: tokens}`` proportional to each tile's summed attention, capped by its size,
    summing exactly to ``min(target, T)`` (largest remainder)."""
    tiles = torch.unique(tile)
    mass = np.array([float(saliency[tile == t].clamp_min(0).sum()) for t in tiles])
    sizes = np.array([int((tile == t).sum()) for t in tiles])
    shares = split_budget(mass, target, floor=0, cap=sizes, priority=mass)
    return {int(t): int(n) for t, n in zip(tiles, shares)}


@dataclass
class HiRED:
    """grid: partitions per side (``grid x grid`` tiles, >= 1; 1 is plain attention top-k);
    merge: fold dropped tokens into kept ones (True) or drop them as HiRED does (False)."""

    grid: int = 2
    merge: bool = True
    name: ClassVar[str] = "hired"
    kind: ClassVar[str] = "spatial"

    def __post_init__(self) -> None:
        if not isinstance(self.grid, int) or isinstance(self.grid, bool) or self.grid < 1:
            raise ValueError(f"grid must be an int >= 1, got {self.grid!r}")
        check_merge_flag(self.merge)

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        def pick(x: torch.Tensor, k: int) -> torch.Tensor:
            sal = distinctiveness(x) if saliency is None else saliency.float()  # (T,)
            tile = torch.zeros(x.shape[0], dtype=torch.long) if coords is None else partitions(coords, self.grid)
            kept = [torch.nonzero(tile == t).flatten()[torch.argsort(-sal[tile == t], stable=True)[:n]]
                    for t, n in partition_budget(sal, tile, k).items()]  # phase 2, per tile
            return torch.cat(kept).sort().values

        return keep_then_absorb(embeds, size, target, pick, merge=self.merge)
