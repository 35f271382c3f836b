"""``zipvl``: ZipVL's adaptive keep ratio, decided per input from the attention mass at layer k.

He et al., "ZipVL: Efficient Large Vision-Language Models with Dynamic Token Sparsification",
arXiv:2410.08584 (https://arxiv.org/abs/2410.08584).

At layer ``k`` the layer's own queries and keys are recomputed from its inputs (q/k projections +
RoPE, as every vidsift pruner does, so SDPA works). Each visual token's score is the attention the
text tokens after the video (the question and the template's tail) give it, averaged over those
query rows and over heads. The visual tokens are ranked by score and the *smallest* set whose share
of the total visual attention mass reaches ``tau`` is kept (the paper's "important tokens"); so the
keep ratio is decided per input, not set in advance. ``min_keep`` / ``max_keep`` bound the count
(fractions of the prompt's visual tokens V). Layer k onwards sees only the kept visual rows (and
every text row); layers before k are untouched.

Simplified against the paper: one layer decides (the paper decides the ratio per layer); the
importance comes from the text tokens after the video instead of the paper's probe tokens (recent
+ randomly sampled tokens); the dropped tokens are removed outright: there are no sparse-attention
kernels that run prefill attention over the important tokens only while keeping the rest, and no
mixed-precision KV cache for the unimportant tokens (the paper keeps them at lower bit width).
``tau=1`` keeps every token (identity), even ones whose attention mass rounds to zero. In a batch
every row keeps the same count (the largest any row needs, so each row reaches at least ``tau``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .base import PrefillPruner, Selection, StageView, check_fraction, check_layer, keep_top_visual, text_attention


def minimal_mass_count(scores: torch.Tensor, tau: float) -> int:
    """Smallest number of the highest scores whose sum reaches ``tau`` of the total (V >= 0 scores).
    scores (V,) >= 0 -> int in [0, V]; tau >= 1 -> V; a total of 0 -> V (nothing to rank by)."""
    n = scores.numel()
    if n == 0 or tau >= 1.0:
        return n
    if tau <= 0.0:
        return 0
    cum = scores.double().sort(descending=True).values.cumsum(0)
    total = float(cum[-1])
    if not total > 0.0 or not math.isfinite(total):
        return n
    return min(int((cum < tau * total).sum()) + 1, n)


@dataclass
class ZipVL(PrefillPruner):
    """Keep the fewest visual tokens holding ``tau`` of the text-to-visual attention mass at layer ``k``.

    k:        decoder layer whose input is reduced (scores from this layer's recomputed attention)
    tau:      share of the visual attention mass the kept tokens must reach, in [0, 1] (paper: 0.9-0.975)
    min_keep: lower bound on the kept fraction of the prompt's visual tokens, in [0, 1]
    max_keep: upper bound on the kept fraction, in [0, 1]
    """

    k: int = 2
    tau: float = 0.9
    min_keep: float = 0.0
    max_keep: float = 1.0
    name: ClassVar[str] = "zipvl"

    def __post_init__(self) -> None:
        self.last: dict[int, dict[str, Any]] = {}  # per layer, batch row 0: scores (V,), count, needed
        check_layer("k", self.k)
        check_fraction("tau", self.tau)
        check_fraction("min_keep", self.min_keep)
        check_fraction("max_keep", self.max_keep)
        if self.min_keep > self.max_keep:
            raise ValueError(f"min_keep ({self.min_keep}) must not exceed max_keep ({self.max_keep})")

    def schedule(self, n_layers: int) -> dict[int, float]:
        return {self.k: float(self.max_keep)}  # the upper bound; the stage decides the actual count

    def score(self, view: StageView) -> torch.Tensor:
        """Mean attention the text after the video gives each row, over those queries and heads -> (B, n)."""
        return text_attention(view)

    def select(self, view: StageView, count: int) -> Selection:
        """``count`` is round(max_keep * V); lowered to what ``tau`` needs for this input."""
        n_vis = view.n_visual
        if self.tau >= 1.0 and count >= n_vis:
            self.last[view.layer] = {"scores": None, "count": n_vis, "needed": n_vis}
            return view.all_rows()
        scores = self.score(view)
        needed = [minimal_mass_count(s[v], self.tau) for s, v in zip(scores, view.visual)]
        final = max(round(self.min_keep * n_vis), min(max(needed), count))
        self.last[view.layer] = {"scores": scores[0][view.visual[0]].cpu(), "count": final, "needed": needed[0]}
        if final >= n_vis:
            return view.all_rows()
        return keep_top_visual(scores, view.visual, final)
