"""``diverse``: keep a maximally diverse subset of a frame's tokens (DivPrune).

DivPrune (Alvar et al., CVPR 2025, https://arxiv.org/abs/2503.02175) selects visual tokens by
greedily solving the Max-Min Diversity Problem on cosine distance. Here the ``target`` selected
tokens survive; with ``merge=True`` the others are folded into their most similar survivor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ._merge import check_merge_flag, keep_then_absorb, maxmin_tokens
from .merging import Reduction


@dataclass
class Diverse:
    """merge: fold dropped tokens into kept ones (True) or drop them (False)."""

    merge: bool = True
    name: ClassVar[str] = "diverse"
    kind: ClassVar[str] = "spatial"

    def __post_init__(self) -> None:
        check_merge_flag(self.merge)

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        return keep_then_absorb(embeds, size, target, maxmin_tokens, merge=self.merge)
