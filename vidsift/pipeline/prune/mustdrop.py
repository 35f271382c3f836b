"""``mustdrop``: MustDrop's text-guided dual-attention filter, at one layer of the LLM's prefill.

Liu et al., "Multi-Stage Vision Token Dropping: Towards Efficient Multimodal Large Language Model",
arXiv:2411.10803 (https://arxiv.org/abs/2411.10803), stage 2 ("dual-attention filtering"). Stage 1
is the ``mustdrop`` merger (`vidsift.selectors.merge_mustdrop`), stage 3 the ``mustdrop`` cache press
(`vidsift.pipeline.press.mustdrop`); the ``mustdrop`` budget preset runs all three.

At layer ``k`` the layer's own queries and keys are recomputed from its inputs (q/k projections +
RoPE, as every vidsift pruner does, so SDPA works); A[t, j] is the attention text token t (the text
after the video: the question and the template's tail) gives visual token j, heads averaged, and
``a`` its mean over every such (t, j). Each visual token has two scores:

- global:     mean over the text tokens, ``mean_t A[t, j]`` (what the whole question attends to);
- individual: max over the text tokens, ``max_t A[t, j]`` (what any single word attends to).

A visual token is dropped when it is low on *both*: global < ``global_thr * a`` and individual <
``individual_thr * a``. So a token one word looks at strongly survives even when the question as a
whole ignores it. The count kept is decided per input. Layer k onwards sees only the kept visual
rows (and every text row); layers before k are untouched. ``global_thr=0`` (or ``individual_thr=0``)
keeps every token: the unpruned model.

Relation to the reference code: it drops a token when its summed text attention is below
``global_thr`` times the total and its max below an absolute ``individual_thr``; both depend on the
number of visual tokens (576 for LLaVA), so here both thresholds are in units of the mean attention
``a`` (the reference's TextVQA setting, 0.011 of the total at 576 tokens, is ``global_thr`` of about
6). Simplified against the paper: one filtering layer (the reference filters at several); the key
tokens of the vision stage are not shielded here (vidsift does not carry the key set into the LLM);
in a batch every row keeps the same count (the largest any row passes; other rows fill up with
their best-scoring dropped tokens). The defaults are a starting point, not tuned on a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .base import PrefillPruner, Selection, StageView, check_layer, keep_top_visual, rows_attention, text_after_video


def dual_scores(a: torch.Tensor, global_thr: float, individual_thr: float) -> dict[str, torch.Tensor]:
    """a (T, V): text-to-visual attention -> global (V,), individual (V,) and ``pass_score`` (V,)
    = max(global / (global_thr * mean), individual / (individual_thr * mean)); a token survives the
    filter when its pass_score is >= 1 (every token when a threshold is 0 or the attention is all 0)."""
    a = a.double()
    glob, indiv = a.mean(0), a.amax(0)
    mean = float(a.mean()) if a.numel() else 0.0
    if global_thr <= 0 or individual_thr <= 0 or not mean > 0:
        score = torch.full_like(glob, float("inf"))
    else:
        score = torch.maximum(glob / (global_thr * mean), indiv / (individual_thr * mean))
    return {"global": glob, "individual": indiv, "pass_score": score}


def _check_threshold(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass
class MustDropFilter(PrefillPruner):
    """Drop the visual tokens low on both global and individual text attention at layer ``k``.

    k:              decoder layer whose input is reduced (scores from this layer's recomputed attention)
    global_thr:     a token is globally low when its mean text attention is below this many times the
                    mean over all visual tokens (0: nothing is low: keep all)
    individual_thr: ... and individually low when no single text token gives it this many times that mean
    """

    k: int = 2
    global_thr: float = 1.0
    individual_thr: float = 3.0
    name: ClassVar[str] = "mustdrop"

    def __post_init__(self) -> None:
        self.last: dict[int, dict[str, Any]] = {}  # per layer, batch row 0: global/individual/pass_score (V,), count
        check_layer("k", self.k)
        _check_threshold("global_thr", self.global_thr)
        _check_threshold("individual_thr", self.individual_thr)

    def schedule(self, n_layers: int) -> dict[int, float]:
        return {self.k: 1.0}  # the upper bound; the stage decides the count per input

    def score(self, view: StageView) -> torch.Tensor:
        """``pass_score`` of every visual row (>= 1: it passes the filter), 0 for text rows -> float64 (B, n)."""
        return self._dual(view)[0]

    def select(self, view: StageView, count: int) -> Selection:
        """Keep the visual rows that pass (the most any batch row passes); ``count`` is V, an upper bound."""
        n_vis = view.n_visual
        if n_vis == 0 or self.global_thr <= 0 or self.individual_thr <= 0:
            self.last[view.layer] = {"count": n_vis}
            return view.all_rows()
        scores, passed, first = self._dual(view)
        final = max(passed)
        self.last[view.layer] = {**{key: v.cpu() for key, v in first.items()}, "count": final}
        if final >= n_vis:
            return view.all_rows()
        return keep_top_visual(scores, view.visual, final)

    def _dual(self, view: StageView) -> tuple[torch.Tensor, list[int], dict[str, torch.Tensor]]:
        """pass scores (B, n), visual rows passing per batch row, and batch row 0's `dual_scores`."""
        q, k = view.queries(), view.keys()  # (B, Hq, n, Dh), (B, Hk, n, Dh)
        scores = torch.zeros(view.positions.shape, dtype=torch.float64, device=view.positions.device)
        passed, first = [], {}
        for row in range(scores.shape[0]):
            vis = torch.nonzero(view.visual[row]).flatten()
            text = text_after_video(view.visual[row], view.valid[row])
            a = rows_attention(view.attn, q[row], k[row], text, view.valid[row])[:, vis]  # (T, V)
            s = dual_scores(a, self.global_thr, self.individual_thr)
            scores[row, vis] = s["pass_score"].to(scores.device)
            passed.append(int((s["pass_score"] >= 1.0).sum()))
            if row == 0:
                first = s
        return scores, passed, first
