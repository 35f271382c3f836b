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

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..hooks import project_keys, project_queries
from ..types import ModelInputs
from .base import PrefillPruner, check_fraction, check_layer, keep_top_visual, rows_attention, text_after_video


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

    @contextlib.contextmanager
    def session(self, adapter: Any, inputs: ModelInputs) -> Iterator[dict[str, Any]]:
        self.last = {}
        with super().session(adapter, inputs) as stats:
            yield stats

    def _stage(self, count: int):
        """``count`` is round(max_keep * V); the stage lowers it to what ``tau`` needs per input."""
        def stage(layout, idx: int, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  seq_pos: torch.Tensor) -> torch.Tensor:
            visual = layout.entry_visual(seq_pos)  # (B, n)
            b, n = seq_pos.shape
            n_vis = int(visual[0].sum())
            identity = torch.arange(n, device=seq_pos.device).expand(b, n)
            if self.tau >= 1.0 and count >= n_vis:
                self._record(layout, idx, None, n_vis, n_vis)
                return identity
            valid = layout.entry_valid(seq_pos)
            attn = layout.layers[idx].self_attn
            q = project_queries(attn, normed, cos, sin)  # (B, Hq, n, Dh)
            k = project_keys(attn, normed, cos, sin)  # (B, Hk, n, Dh)
            scores = torch.zeros(b, n, dtype=torch.float32, device=seq_pos.device)
            needed = []
            for row in range(b):
                vis = torch.nonzero(visual[row]).flatten()
                text = text_after_video(visual[row], valid[row])
                s = rows_attention(attn, q[row], k[row], text, valid[row]).float().mean(0)  # (n,)
                scores[row] = s
                needed.append(minimal_mass_count(s[vis], self.tau))
            low = round(self.min_keep * n_vis)
            final = max(low, min(max(needed), count))
            self._record(layout, idx, scores[0][visual[0]].cpu(), final, needed[0])
            if final >= n_vis:
                return identity
            return keep_top_visual(scores, visual, final)

        return stage

    def _record(self, layout, idx: int, scores: torch.Tensor | None, final: int, needed: int) -> None:
        self.last[idx] = {"scores": scores, "count": final, "needed": needed}
        for stats in layout.stat_dicts or ():
            if stats.get("method") == self.name:
                stats["kept_visual_per_stage"][idx] = final
