"""``ficoco_l``: FiCoCo-L, filter / correlate / compress on the visual tokens inside the LLM.

Han et al., "Filter, Correlate, Compress: Training-Free Token Reduction for MLLM Acceleration",
arXiv:2411.17686 (https://arxiv.org/abs/2411.17686), the FiCoCo-L variant (reduction in the LLM's
prefill at one layer K):

- filter: at layer ``k`` the layer's own queries and keys are recomputed (q/k projections + RoPE,
  as every vidsift pruner does, so SDPA works). For visual token i: v2v_i, the attention mass its
  query puts on the *other* visual tokens (redundancy), and t2v_i, the mean attention the text
  tokens after the video give it (text-to-visual relevance). Score
  lam * u(v2v) - (1 - lam) * u(t2v) (u: unit L2 norm over the visual tokens); the highest
  ``V - round(keep * V)`` are dropped.
- correlate: affinity of a dropped token to a kept one = alpha * (symmetrised visual-to-visual
  attention) + (1 - alpha) * (indirect correlation through the text: sum_t A[t, i] A[t, j]), each
  row-normalised; its top-``topk`` kept tokens (cut at ``rel`` x the best) with weights summing to one.
- compress: the dropped tokens' hidden states are scattered into those kept tokens, size-weighted
  (every visual token counts 1 at layer k), so the kept rows enter layer k as weighted means; later
  layers and the KV cache hold only the kept rows (positions of the kept tokens are unchanged).

Simplified against the paper: one reduction layer; attention is the layer's recomputed softmax
(heads averaged), and the visual tokens' sizes from vision-side merges are not carried into the LLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ...selectors import ficoco_steps
from ..attn import gather_rows
from .base import PrefillPruner, Selection, StageView, check_fraction, check_layer, rows_attention, text_after_video

@dataclass
class FiCoCoL(PrefillPruner):
    """Merge the visual tokens down to ``keep`` of them at layer ``k``.

    k:     decoder layer whose input is reduced (the paper's K; 2 as FastV)
    keep:  fraction of the prompt's visual tokens kept, in [0, 1]
    lam:   weight of visual redundancy against text-to-visual attention in the filter (reference 0.6)
    alpha: weight of direct visual-visual attention against the indirect text path in correlate (0.6)
    topk:  most kept tokens a dropped token is scattered into; rel: relative cut of weak targets
    """

    k: int = 2
    keep: float = 0.5
    lam: float = 0.6
    alpha: float = 0.6
    topk: int = 3
    rel: float = 0.25
    name: ClassVar[str] = "ficoco_l"

    def __post_init__(self) -> None:
        self.last: dict[int, dict[str, torch.Tensor]] = {}  # per layer, batch row 0: vis/keep/drop/targets/weights/sizes
        check_layer("k", self.k)
        check_fraction("keep", self.keep)
        check_fraction("lam", self.lam)
        check_fraction("alpha", self.alpha)
        check_fraction("rel", self.rel)
        if isinstance(self.topk, bool) or not isinstance(self.topk, int) or self.topk < 1:
            raise ValueError(f"topk must be an int >= 1, got {self.topk!r}")

    def schedule(self, n_layers: int) -> dict[int, float]:
        return {self.k: float(self.keep)}

    def select(self, view: StageView, count: int) -> Selection:
        """Keep ``count`` visual rows and merge the dropped ones into them (filter, correlate, compress)."""
        visual = view.visual  # (B, n)
        if count >= view.n_visual:
            return view.all_rows()
        if count == 0:  # nothing to merge into: every visual row goes
            return torch.stack([torch.nonzero(~v).flatten() for v in visual])
        q, k = view.queries(), view.keys()  # (B, Hq, n, Dh), (B, Hk, n, Dh)
        plans, keeps = [], []
        for row in range(q.shape[0]):
            plan = self._plan(view.attn, q[row], k[row], visual[row], view.valid[row], count)
            plans.append(plan)
            keep_mask = ~visual[row].clone()
            keep_mask[plan["vis"][plan["keep"]]] = True
            keeps.append(torch.nonzero(keep_mask).flatten())
        keep = torch.stack(keeps)  # (B, m): every text row and ``count`` visual rows
        self.last[view.layer] = {key: v.cpu() for key, v in plans[0].items()}
        view.stats.setdefault("max_merged_size", {})[view.layer] = float(plans[0]["sizes"].max())

        def merge(hidden: torch.Tensor) -> torch.Tensor:
            out = gather_rows(hidden, keep, 1).clone()  # (B, m, D)
            for row, plan in enumerate(plans):
                vis = plan["vis"]
                h = hidden[row, vis]  # (V, D)
                merged, _, _ = ficoco_steps.compress(h, torch.ones(vis.numel()), plan["keep"], plan["drop"],
                                                     plan["targets"], plan["weights"])
                slots = torch.nonzero(visual[row][keep[row]]).flatten()  # kept visual rows, in order
                out[row, slots] = merged.to(out.dtype)
            return out

        return keep, merge

    def _plan(self, attn: torch.nn.Module, q: torch.Tensor, k: torch.Tensor, visual: torch.Tensor,
              valid: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
        """Filter and correlate for one batch row -> indices into its visual rows and the scatter."""
        vis = torch.nonzero(visual).flatten()  # (V,) rows of the visual tokens
        n_vis = vis.numel()
        text = text_after_video(visual, valid)
        a_tv = rows_attention(attn, q, k, text, valid)[:, vis].float().cpu()  # (Tq, V)
        a_vv = rows_attention(attn, q, k, vis, valid)[:, vis].float().cpu()  # (V, V), causal
        a_vv.fill_diagonal_(0.0)
        v2v = a_vv.sum(1)  # mass each visual query puts on other visual tokens
        t2v = a_tv.mean(0)
        score = self.lam * ficoco_steps.l2_unit(v2v) - (1.0 - self.lam) * ficoco_steps.l2_unit(t2v)
        keep, drop = ficoco_steps.drop_by_score(score, n_vis - count)
        sym = (a_vv + a_vv.T) / 2
        ind = a_tv.T @ a_tv  # (V, V) co-attention of the text
        ind.fill_diagonal_(0.0)

        def rownorm(m: torch.Tensor) -> torch.Tensor:
            return m / m.sum(1, keepdim=True).clamp(min=1e-30)

        affinity = (self.alpha * rownorm(sym[drop][:, keep]) + (1.0 - self.alpha) * rownorm(ind[drop][:, keep]))
        targets, weights = ficoco_steps.correlate(affinity, self.topk, self.rel)
        sizes = torch.ones(keep.numel()).index_add_(0, targets.flatten(), weights.flatten())
        dev = vis.device
        return {"vis": vis, "keep": keep.to(dev), "drop": drop.to(dev), "targets": targets.to(dev),
                "weights": weights.to(dev), "sizes": sizes}


