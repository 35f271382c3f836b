"""``saliency``: keep the most salient tokens of a frame (VisionZip's dominant tokens).

VisionZip (Yang et al., CVPR 2025, https://arxiv.org/abs/2412.04467) keeps the tokens the vision
encoder attends to most ("dominant" tokens) and folds the rest into a few "contextual" tokens.
Here the ``target`` highest-saliency tokens are kept (attention received in the encoder when the
adapter supplies it, otherwise a model-free distinctiveness score) and, with ``merge=True``, every
dropped token is folded into its most similar kept token so sizes are preserved (no contextual
tokens). HiRED's budget split over partitions is the ``hired`` merger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ._merge import check_merge_flag, distinctiveness, keep_then_absorb
from .merging import Reduction


@dataclass
class Saliency:
    """merge: fold dropped tokens into kept ones (True) or drop them (False)."""

    merge: bool = True
    name: ClassVar[str] = "saliency"
    kind: ClassVar[str] = "spatial"

    def __post_init__(self) -> None:
        check_merge_flag(self.merge)

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        def most_salient(x: torch.Tensor, k: int) -> torch.Tensor:
            sal = distinctiveness(x) if saliency is None else saliency.float()  # (T,)
            return torch.argsort(-sal, stable=True)[:k]

        return keep_then_absorb(embeds, size, target, most_salient, merge=self.merge)
