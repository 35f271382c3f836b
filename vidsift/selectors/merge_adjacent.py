"""``adjacent``: spatial merging of similar neighbouring tokens (part of MustDrop's first stage).

MustDrop (Liu et al. 2024, "Multi-Stage Vision Token Dropping", https://arxiv.org/abs/2411.10803)
merges spatially adjacent tokens with high similarity during vision encoding. Here regions of the
frame's token grid (from ``coords``) are merged greedily, most similar 4-neighbour pair first, until
exactly ``target`` tokens remain; the larger region's representative keeps its coords. This is the
merging alone: no key-token set, no similarity threshold, no LLM-side stages. The ``mustdrop``
merger adds the key set and the threshold; the ``mustdrop`` preset runs all three of MustDrop's stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ._merge import adjacent_merge
from .merging import Reduction


@dataclass
class Adjacent:
    """Greedy merging of adjacent grid regions down to ``target`` tokens (needs coords)."""

    name: ClassVar[str] = "adjacent"
    kind: ClassVar[str] = "spatial"

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        return adjacent_merge(embeds, size, target, coords)  # (T', D)
