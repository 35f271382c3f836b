"""``tome``: bipartite soft matching within a frame (ToMe).

Token Merging (Bolya et al., ICLR 2023, https://arxiv.org/abs/2210.09461): split tokens into two
alternating sets, connect each token of A to its most similar token of B (cosine), and merge the
r best-connected pairs with size-weighted averages; repeated until exactly ``target`` tokens remain.
Merged tokens keep the coords of their B representative and carry their summed ``size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ._merge import bipartite_merge
from .merging import Reduction


@dataclass
class ToMe:
    """Within-frame bipartite soft matching down to ``target`` tokens."""

    name: ClassVar[str] = "tome"
    kind: ClassVar[str] = "spatial"

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        return bipartite_merge(embeds, size, target)  # (T', D)
