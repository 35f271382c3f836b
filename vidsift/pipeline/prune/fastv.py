"""FastV: after layer K keep only the visual tokens the last text token attends to most.

Chen et al., "An Image is Worth 1/2 Tokens After Layer 2: Plug-and-Play Inference Acceleration
for Large Vision-Language Models", ECCV 2024, https://arxiv.org/abs/2403.06764

As in the paper's implementation, the ranking is layer K-1's attention map (the last prompt
token's row, heads averaged) and layer K onwards sees the pruned sequence (``rank_layer=prev``,
the default); ``rank_layer=same`` ranks with layer K's own attention instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import PrefillPruner, check_fraction, check_layer


@dataclass
class FastV(PrefillPruner):
    """Keep the top ``keep`` fraction of visual tokens from layer ``k`` on.

    k:          first decoder layer that sees the pruned sequence (paper: 2)
    keep:       fraction of the prompt's visual tokens kept, in [0, 1] (paper: 0.5)
    rank_layer: ``prev`` (paper): scores from layer k-1's attention; ``same``: from layer k's
    Scores: attention of the last prompt token's query (heads averaged), the base's default ``score``.
    """

    k: int = 2
    keep: float = 0.5
    rank_layer: str = "prev"
    name: ClassVar[str] = "fastv"

    def __post_init__(self) -> None:
        check_layer("k", self.k)
        check_fraction("keep", self.keep)
        if self.rank_layer not in ("prev", "same"):
            raise ValueError(f"rank_layer must be one of: prev, same; got {self.rank_layer!r}")
        if self.rank_layer == "prev" and self.k < 1:
            raise ValueError("rank_layer=prev ranks with layer k-1's attention: k must be >= 1 (or rank_layer=same)")

    def schedule(self, n_layers: int) -> dict[int, float]:
        return {self.k: float(self.keep)}

    def score_layer(self, layer: int) -> int:
        return layer - 1 if self.rank_layer == "prev" else layer
