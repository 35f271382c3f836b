"""``saliency``: keep the most salient tokens of a frame (HiRED / VisionZip).

HiRED (Arif et al., AAAI 2025, https://arxiv.org/abs/2408.10945) and VisionZip (Yang et al.,
CVPR 2025, https://arxiv.org/abs/2412.04467) keep the tokens the vision encoder attends to most
("dominant" tokens); VisionZip folds the rest into a few "contextual" tokens. Here the ``target``
highest-saliency tokens are kept (encoder saliency when the adapter supplies it, otherwise a
model-free distinctiveness score) and, with ``merge=True``, every dropped token is folded into its
most similar kept token so sizes are preserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ._merge import _check, absorb, distinctiveness, identity
from .base import MERGERS, Reduction


@MERGERS.register("saliency")
@dataclass
class Saliency:
    """merge: fold dropped tokens into kept ones (True) or drop them (False)."""

    merge: bool = True
    name: ClassVar[str] = "saliency"
    kind: ClassVar[str] = "spatial"

    def __post_init__(self) -> None:
        if not isinstance(self.merge, bool):
            raise ValueError(f"merge must be true or false, got {self.merge!r}")

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        _check(embeds, size, target)
        if target >= embeds.shape[0]:
            return identity(embeds, size)
        sal = distinctiveness(embeds) if saliency is None else saliency.float()  # (T,)
        keep = torch.argsort(-sal, stable=True)[:target]
        return absorb(embeds, size, keep, merge=self.merge)
