"""FastV: after layer K keep only the visual tokens the last text token attends to most.

Chen et al., "An Image is Worth 1/2 Tokens After Layer 2: Plug-and-Play Inference Acceleration
for Large Vision-Language Models", ECCV 2024, https://arxiv.org/abs/2403.06764
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import PRUNERS
from .base import PrefillPruner, check_fraction, check_layer


@PRUNERS.register("fastv")
@dataclass
class FastV(PrefillPruner):
    """Keep the top ``keep`` fraction of visual tokens from layer ``k`` on.

    k:    first decoder layer that sees the pruned sequence (paper: 2)
    keep: fraction of the prompt's visual tokens kept, in [0, 1] (paper: 0.5)
    Scores: attention of the last prompt token's query at layer k (heads averaged), (B, n).
    """

    k: int = 2
    keep: float = 0.5
    name: ClassVar[str] = "fastv"

    def __post_init__(self) -> None:
        check_layer("k", self.k)
        check_fraction("keep", self.keep)

    def schedule(self, n_layers: int) -> dict[int, float]:
        return {self.k: float(self.keep)}
