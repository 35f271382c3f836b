"""``todre``: ToDRE's second stage — task relevance inside the LLM, then "information migration".

Li et al., "ToDRE: Effective Visual Token Pruning via Token Diversity and Task Relevance"
(v1: "... via Diversity and Task Awareness ..."), arXiv:2505.18757. Stage 1 (diversity) picks a
diverse subset before the LLM; in vidsift that is the ``kcenter`` selector over frames. Stage 2,
here, works inside the decoder:

1. at layer ``k`` each visual token's task relevance is the attention the text after the video
   (the question and the template's tail) gives it, from the layer's recomputed q/k, text rows and
   heads averaged; the ``keep`` share of the prompt's visual tokens with most relevance stays;
2. at every later layer the share of that text's attention landing on the remaining visual tokens
   is measured; at the first layer where it falls below ``migrated`` the text has taken in what it
   needs from them (the paper's information migration) and *every* visual token is removed from
   that layer on, so the deeper layers run on text alone. The layer is decided per input.

Simplified, and said so: the relevance query is the text after the video (the paper's cross-modal
attention from the instruction), heads averaged; the migration test is one threshold on that
attention share, our reading of the paper's criterion; ``keep`` and ``migrated`` are options, not
values tuned per model. ``drop_after`` is the fixed-layer form (every visual token out at one
layer chosen in advance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import PrefillPruner, Selection, StageView, check_fraction, check_layer, keep_top_visual, text_attention


@dataclass
class ToDRE(PrefillPruner):
    """k:        layer where visual tokens are ranked by the text's attention and the top ``keep`` stay
    keep:     fraction of the prompt's visual tokens kept at layer k, in [0, 1]
    migrated: from layer k + 1 on, drop every visual token at the first layer where the text after the
              video gives them less than this share of its attention, in [0, 1] (0: never)
    """

    k: int = 2
    keep: float = 0.5
    migrated: float = 0.1
    name: ClassVar[str] = "todre"

    def __post_init__(self) -> None:
        check_layer("k", self.k)
        check_fraction("keep", self.keep)
        check_fraction("migrated", self.migrated)

    def schedule(self, n_layers: int) -> dict[int, float]:
        # a stage at every layer from k: k cuts to `keep`, the later ones may drop the rest
        # (layer k always: a k past the model's last layer is refused by the base, not silently skipped)
        return {layer: float(self.keep) for layer in range(self.k, max(n_layers, self.k + 1))}

    def score(self, view: StageView) -> torch.Tensor:
        """Task relevance: the text after the video's mean attention to every row -> (B, n)."""
        return text_attention(view)

    def select(self, view: StageView, count: int) -> Selection:
        if view.layer == self.k:
            return super().select(view, count)
        if view.n_visual == 0 or self.migrated <= 0:
            return view.all_rows()
        scores = self.score(view)
        share = (scores * view.visual).sum(dim=1)  # (B,) of the text's attention on visual rows
        view.stats.setdefault("visual_attention_share", {})[view.layer] = [round(float(s), 6) for s in share]
        if float(share.max()) < self.migrated:  # every batch row has moved on
            view.stats["visual_dropped_at"] = view.layer
            return keep_top_visual(scores, view.visual, 0)
        return view.all_rows()
