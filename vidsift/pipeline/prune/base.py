"""Template of in-LLM prefill pruners: drop visual tokens between decoder layers during prefill.

A pruner only says *how many* visual tokens survive at which layer (`schedule`); this base does
the rest through `CacheLayout` stages: at a stage layer it recomputes the last text token's query
and the layer's keys from that layer's own inputs (q/k projections + RoPE, so it works with SDPA,
eager or flash attention and never needs attention maps), keeps the top-scoring visual rows plus
every text row, and the layout slices hidden states, rotary embeddings, position ids and masks
for that layer and all later ones. Later layers' caches hold only the kept tokens; decode stays
consistent because the layout rebuilds each layer's mask from original positions.

Counts are absolute: ``keep`` fractions refer to the prompt's *original* number of visual tokens
V, so a stage keeps ``round(keep * V)``. Batches need the same V in every row (left padding of
different-length questions is fine); otherwise a `ConfigError` says so.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import torch

from ...errors import ConfigError
from ..hooks import CacheLayout, attention_probs, project_keys, project_queries
from ..types import ModelInputs


_CHUNK = 256  # query rows per attention block (bounds memory on long prompts)


def rows_attention(attn: torch.nn.Module, q: torch.Tensor, k: torch.Tensor, rows: torch.Tensor,
                   valid: torch.Tensor) -> torch.Tensor:
    """Causal attention of query rows ``rows`` over all keys of one batch row, heads averaged.
    q (Hq, n, Dh), k (Hk, n, Dh), rows long (r,), valid bool (n,) -> (r, n)."""
    n = k.shape[1]
    out = []
    for lo in range(0, rows.numel(), _CHUNK):
        r = rows[lo:lo + _CHUNK]
        allowed = (torch.arange(n, device=k.device)[None, :] <= r[:, None]) & valid[None, :]  # (r, n)
        p = attention_probs(q[None, :, r], k[None], scaling=attn.scaling, allowed=allowed[None, None])  # (1, Hk, r, n)
        out.append(p[0].mean(0))
    return torch.cat(out) if out else torch.zeros(0, n)


def text_after_video(visual: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Rows of the text after the last visual row of one batch row (visual, valid: bool (n,));
    the last row when there is none."""
    n = visual.numel()
    after = torch.arange(n, device=visual.device) > torch.nonzero(visual).max()
    text = torch.nonzero(after & valid & ~visual).flatten()
    return text if text.numel() else torch.tensor([n - 1], device=visual.device)


def keep_top_visual(scores: torch.Tensor, visual: torch.Tensor, count: int) -> torch.Tensor:
    """Rows to keep: every non-visual row and the ``count`` highest-scoring visual rows.

    scores (B, n) float, visual (B, n) bool with the same number V of True per row, 0 <= count <= V
    -> long (B, n - V + count), sorted ascending.
    """
    n = scores.shape[1]
    n_vis = int(visual[0].sum())
    ranked = scores.float().masked_fill(~visual, float("inf"))
    keep = ranked.topk(n - n_vis + count, dim=1).indices  # (B, m)
    return keep.sort(dim=1).values


def last_query_scores(attn: torch.nn.Module, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                      valid: torch.Tensor) -> torch.Tensor:
    """Attention of the last row's query over all rows, averaged over heads.

    normed (B, n, D) inputs of the attention module, cos/sin (B, n, Dh), valid (B, n) bool
    (False for padding) -> (B, n).
    """
    q = project_queries(attn, normed[:, -1:], cos[:, -1:], sin[:, -1:])  # (B, Hq, 1, Dh)
    k = project_keys(attn, normed, cos, sin)  # (B, Hk, n, Dh)
    probs = attention_probs(q, k, scaling=attn.scaling, allowed=valid[:, None, None, :])  # (B, Hk, 1, n)
    return probs.mean(dim=(1, 2))


def check_fraction(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def check_layer(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a layer index >= 0, got {value!r}")


@dataclass
class PrefillPruner:
    """Base: subclasses implement ``schedule(n_layers) -> {layer: keep fraction of original V}``."""

    name: ClassVar[str] = "pruner"

    def schedule(self, n_layers: int) -> dict[int, float]:
        raise NotImplementedError

    def _checked_schedule(self, adapter: Any, n_layers: int) -> dict[int, float]:
        sched = dict(sorted(self.schedule(n_layers).items()))
        last = 1.0
        for layer, frac in sched.items():
            if layer >= n_layers:
                raise ConfigError(f"{self.name}:layer={layer}", f"the model has layers 0..{n_layers - 1}")
            if frac > last + 1e-9:
                raise ConfigError(self.name, f"keep fractions must not grow with depth (layer {layer}: {frac} > {last})")
            last = frac
        vision = getattr(getattr(adapter.model, "config", None), "vision_config", None)
        deepstack = len(getattr(vision, "deepstack_visual_indexes", None) or ())
        if sched and deepstack and min(sched) < deepstack:
            raise ConfigError(f"{self.name}:layer={min(sched)}",
                              f"this model adds deepstack visual features up to layer {deepstack - 1}; prune at layer >= {deepstack}")
        return sched

    @contextlib.contextmanager
    def session(self, adapter: Any, inputs: ModelInputs) -> Iterator[dict[str, Any]]:
        """Install the stages for one generate call; yields stats filled as the model runs."""
        vis_counts = inputs.visual_mask.sum(dim=1).tolist()
        if len(set(vis_counts)) > 1:
            raise ConfigError(self.name, f"batch rows hold different numbers of visual tokens {vis_counts}; "
                                         "in-LLM pruning needs the same count in every row (run them one at a time)")
        n_visual = int(vis_counts[0]) if vis_counts else 0
        stats: dict[str, Any] = {"method": self.name, "visual_tokens": n_visual, "kept_visual_per_stage": {}}
        with CacheLayout.acquire(adapter, inputs) as layout, layout.stats_dict(stats):
            sched = self._checked_schedule(adapter, layout.n_layers)
            removers = []
            try:
                for layer, frac in sched.items():
                    count = int(round(frac * n_visual))
                    stats["kept_visual_per_stage"][layer] = count
                    removers.append(layout.add_stage(layer, self._stage(count)))
                yield stats
            finally:
                for remove in removers:
                    remove()

    @staticmethod
    def _stage(count: int):
        def stage(layout: CacheLayout, idx: int, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  seq_pos: torch.Tensor) -> torch.Tensor:
            visual = layout.entry_visual(seq_pos)  # (B, n)
            n = seq_pos.shape[1]
            if count >= int(visual[0].sum()):
                return torch.arange(n, device=seq_pos.device).expand(seq_pos.shape[0], n)
            attn = layout.layers[idx].self_attn
            scores = last_query_scores(attn, normed, cos, sin, layout.entry_valid(seq_pos))
            return keep_top_visual(scores, visual, count)

        return stage


def sigmoid_keep(n_layers: int, *, mid: float, slope: float, floor: float) -> list[float]:
    """Keep fraction per layer on a decreasing sigmoid, 1.0 at layer 0 (P-Sigmoid of "Searching
    Optimal Vision Token Reduction", https://arxiv.org/abs/2412.00556)."""
    s = [1.0 / (1.0 + math.exp(slope * (layer / max(n_layers - 1, 1) - mid))) for layer in range(n_layers)]
    return [floor + (1.0 - floor) * v / s[0] for v in s]
