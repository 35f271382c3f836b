"""Template of in-LLM prefill pruners: drop visual tokens between decoder layers during prefill.

A new method writes one function: ``schedule(n_layers) -> {layer: keep fraction}`` says how many
visual tokens survive at which layer, ``score(view) -> (B, n)`` ranks the rows at such a layer
(default: the last text token's attention, `last_query_scores`). Methods that decide the count per
input or merge instead of select override ``select(view, count)``; FastV-style ranking at an
earlier layer is ``score_layer(layer)``. A `StageView` carries the layer's inputs for the rows it
still holds (attention module, normed hidden states, rotary cos/sin, original positions, visual and
padding masks); the layout stays inside this base. Queries and keys are recomputed from the layer's
own inputs (q/k projections + RoPE, so it works with SDPA, eager or flash attention and never needs
attention maps); the kept rows are every text row plus the chosen visual rows, and the layout
slices hidden states, rotary embeddings, position ids and masks for that layer and all later ones.
Later layers' caches hold only the kept tokens; decode stays consistent because the layout rebuilds
each layer's mask from original positions.

Counts are absolute: ``keep`` fractions refer to the prompt's *original* number of visual tokens
V, so a stage keeps ``round(keep * V)``. Batches need the same V in every row (left padding of
different-length questions is fine); otherwise a `ConfigError` says so.

``install(layout)`` adds the stages to one call's `CacheLayout` (``layout.add(pruner)`` inside
``with CacheLayout(adapter, inputs) as layout:``); per-call state lives with that call (its stats
dict, scores remembered for a later layer), so one pruner object can serve several calls at once;
``last`` only keeps the latest call's diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from ...errors import ConfigError
from ..attn import attention_probs, project_keys, project_queries
from ..hooks import CacheLayout, Stage


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


def text_attention(view: "StageView") -> torch.Tensor:
    """Mean attention the text after the video gives every row, over those query rows and over heads
    (the layer's recomputed q/k, causal, padding excluded) -> float (B, n)."""
    q, k = view.queries(), view.keys()  # (B, Hq, n, Dh), (B, Hk, n, Dh)
    return torch.stack([
        rows_attention(view.attn, q[row], k[row], text_after_video(view.visual[row], view.valid[row]),
                       view.valid[row]).float().mean(0)
        for row in range(q.shape[0])])


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


@dataclass(frozen=True)
class StageView:
    """What a pruner sees at one stage layer during prefill: that layer's inputs for the rows it still holds.

    layer: decoder layer index; attn: its attention module; hidden (B, n, D): the attention's (normed)
    inputs; cos, sin (B, n, Dh): the rows' rotary embeddings; positions long (B, n): their original
    positions in the prompt; visual, valid bool (B, n): the row is a visual token of the prompt / a
    real token (not padding); earlier (B, n) or None: what ``score`` gave these rows at
    ``score_layer(layer)`` when that is an earlier layer; stats: this call's stats dict (a method may
    add entries of its own).
    """

    layer: int
    attn: torch.nn.Module
    hidden: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    positions: torch.Tensor
    visual: torch.Tensor
    valid: torch.Tensor
    earlier: torch.Tensor | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def n_visual(self) -> int:
        """Visual rows per batch row (the same V in every row)."""
        return int(self.visual[0].sum())

    def all_rows(self) -> torch.Tensor:
        """Keep everything: long (B, n) = 0..n-1 in every row."""
        b, n = self.positions.shape
        return torch.arange(n, device=self.positions.device).expand(b, n)

    def queries(self) -> torch.Tensor:
        """The layer's queries of every row, with RoPE -> (B, Hq, n, Dh)."""
        return project_queries(self.attn, self.hidden, self.cos, self.sin)

    def keys(self) -> torch.Tensor:
        """The layer's keys of every row, with RoPE -> (B, Hk, n, Dh)."""
        return project_keys(self.attn, self.hidden, self.cos, self.sin)


Selection = torch.Tensor | tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]
"""What ``select`` returns: kept rows (B, m), or (kept rows, merge) for token merging."""


@dataclass
class PrefillPruner:
    """Base: subclasses implement ``schedule(n_layers) -> {layer: keep fraction of original V}`` and may
    override ``score`` (how rows rank), ``select`` (which rows stay) and ``score_layer``."""

    name: ClassVar[str] = "pruner"

    # -- what a method defines ---------------------------------------------------------------------

    def schedule(self, n_layers: int) -> dict[int, float]:
        raise NotImplementedError

    def score(self, view: StageView) -> torch.Tensor:
        """Importance of every row at a stage -> (B, n); the highest-scoring visual rows stay.
        Default: attention of the last row's query (the last prompt token), heads averaged."""
        return last_query_scores(view.attn, view.hidden, view.cos, view.sin, view.valid)

    def score_layer(self, layer: int) -> int:
        """The layer whose inputs ``score`` sees for the stage at ``layer`` (an earlier one: the scores
        are remembered by original position and reach ``select`` as ``view.earlier``)."""
        return layer

    def select(self, view: StageView, count: int) -> Selection:
        """Rows the stage keeps: long (B, m) sorted indices into the view's rows, or ``(rows, merge)``
        where ``merge(hidden (B, n, D)) -> (B, m, D)`` gives the kept rows' new hidden states (token
        merging). ``count``: visual rows the schedule keeps. Default: every text row and the ``count``
        visual rows ``score`` ranks highest (all rows when ``count >= V``)."""
        if count >= view.n_visual:
            return view.all_rows()
        scores = view.earlier if view.earlier is not None else self.score(view)
        return keep_top_visual(scores, view.visual, count)

    # -- machinery ---------------------------------------------------------------------------------

    def _checked_schedule(self, model: torch.nn.Module, n_layers: int) -> dict[int, float]:
        sched = dict(sorted(self.schedule(n_layers).items()))
        last = 1.0
        for layer, frac in sched.items():
            if layer >= n_layers:
                raise ConfigError(f"{self.name}:layer={layer}", f"the model has layers 0..{n_layers - 1}")
            if frac > last + 1e-9:
                raise ConfigError(self.name, f"keep fractions must not grow with depth (layer {layer}: {frac} > {last})")
            if not 0 <= self.score_layer(layer) <= layer:
                raise ConfigError(self.name, f"stage {layer} scores at layer {self.score_layer(layer)}, not in 0..{layer}")
            last = frac
        vision = getattr(getattr(model, "config", None), "vision_config", None)
        deepstack = len(getattr(vision, "deepstack_visual_indexes", None) or ())
        if sched and deepstack and min(sched) < deepstack:
            raise ConfigError(f"{self.name}:layer={min(sched)}",
                              f"this model adds deepstack visual features up to layer {deepstack - 1}; prune at layer >= {deepstack}")
        return sched

    def install(self, layout: CacheLayout) -> dict[str, Any]:
        """Add the stages to one call's layout (``layout.add(pruner)``); returns the call's stats, filled
        as the model runs."""
        if layout.visual is None:
            raise ConfigError(self.name, "in-LLM pruning needs the prompt's visual mask (CacheLayout(adapter, inputs))")
        vis_counts = layout.visual.sum(dim=1).tolist()
        if len(set(vis_counts)) > 1:
            raise ConfigError(self.name, f"batch rows hold different numbers of visual tokens {vis_counts}; "
                                         "in-LLM pruning needs the same count in every row (run them one at a time)")
        n_visual = int(vis_counts[0]) if vis_counts else 0
        stats = layout.observe({"method": self.name, "visual_tokens": n_visual, "kept_visual_per_stage": {}})
        self.last: dict[int, dict[str, Any]] = {}
        for layer, frac in self._checked_schedule(layout.model, layout.n_layers).items():
            count = int(round(frac * n_visual))
            stats["kept_visual_per_stage"][layer] = count
            earlier: dict[str, torch.Tensor] | None = None
            if self.score_layer(layer) != layer:
                earlier = {}
                layout.add_stage(self.score_layer(layer), self._remember(count, stats, earlier))
            layout.add_stage(layer, self._stage(count, stats, earlier))
        return stats

    @staticmethod
    def _view(layout: CacheLayout, idx: int, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
              seq_pos: torch.Tensor, stats: dict[str, Any], earlier: torch.Tensor | None = None) -> StageView:
        return StageView(layer=idx, attn=layout.layers[idx].self_attn, hidden=normed, cos=cos, sin=sin,
                         positions=seq_pos, visual=layout.entry_visual(seq_pos), valid=layout.entry_valid(seq_pos),
                         earlier=earlier, stats=stats)

    def _stage(self, count: int, stats: dict[str, Any], earlier: dict[str, torch.Tensor] | None) -> Stage:
        def stage(layout: CacheLayout, idx: int, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  seq_pos: torch.Tensor):
            remembered = earlier["by_pos"].gather(1, seq_pos) if earlier else None
            view = self._view(layout, idx, normed, cos, sin, seq_pos, stats, remembered)
            keep = self.select(view, count)
            rows = keep[0] if isinstance(keep, tuple) else keep
            stats["kept_visual_per_stage"][idx] = int(view.visual[0, rows[0]].sum())
            return keep

        return stage

    def _remember(self, count: int, stats: dict[str, Any], earlier: dict[str, torch.Tensor]) -> Stage:
        """At the score layer: record ``score`` of every row by original position; keeps all rows."""
        def stage(layout: CacheLayout, idx: int, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  seq_pos: torch.Tensor) -> torch.Tensor:
            view = self._view(layout, idx, normed, cos, sin, seq_pos, stats)
            earlier.clear()
            if count < view.n_visual:
                scores = self.score(view)
                full = torch.zeros(seq_pos.shape[0], int(seq_pos.max()) + 1, dtype=scores.dtype, device=scores.device)
                earlier["by_pos"] = full.scatter(1, seq_pos, scores)  # (B, L) by original position
            return view.all_rows()

        return stage


def sigmoid_keep(n_layers: int, *, mid: float, slope: float, floor: float) -> list[float]:
    """Keep fraction per layer on a decreasing sigmoid, 1.0 at layer 0 (P-Sigmoid of "Searching
    Optimal Vision Token Reduction", https://arxiv.org/abs/2412.00556)."""
    s = [1.0 / (1.0 + math.exp(slope * (layer / max(n_layers - 1, 1) - mid))) for layer in range(n_layers)]
    return [floor + (1.0 - floor) * v / s[0] for v in s]
