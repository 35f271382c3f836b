"""Drop every visual token from a layer L chosen in advance.

The fixed-layer form of ToDRE's "information migration" (Li et al., arXiv:2505.18757) and of
Visual Tokens Withdrawal (Lin et al., "Boosting Multimodal Large Language Models with Visual Tokens
Withdrawal for Rapid Inference"): once the text has absorbed the visual
information, the deeper layers run on text alone. ``todre`` decides the layer per input from the
text's attention share and first cuts the visual tokens by task relevance.
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
