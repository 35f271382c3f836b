"""Drop every visual token after layer L (ToDRE stage 2).

Li et al., "ToDRE: Visual Token Pruning via Diversity and Task Awareness for Efficient Large
Vision-Language Models", https://arxiv.org/abs/2505.18757 (stage 2, "information migration":
once the text has absorbed the visual information in the middle layers, every visual token is
removed from the decoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import PrefillPruner, check_layer


@dataclass
class DropAfter(PrefillPruner):
    """Layers >= ``layer`` see no visual token at all (their caches hold text only).

    layer: first decoder layer without visual tokens.
    """

    layer: int = 16
    name: ClassVar[str] = "drop_after"

    def __post_init__(self) -> None:
        check_layer("layer", self.layer)

    def schedule(self, n_layers: int) -> dict[int, float]:
        return {self.layer: 0.0}
