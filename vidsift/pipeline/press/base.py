"""Template of KV-cache presses: compress each layer's cache after prefill (and optionally every
N decode steps), writing back ``cache.layers[i].keys/values``.

How a press runs (after kvpress, rebuilt for transformers 5.x, whose attention kwargs have no
``cache_position``):

1. ``install(layout)`` (``layout.add(press)`` inside one call's ``with CacheLayout(adapter,
   inputs) as layout:``) creates a `PressCall` holding everything that lives for that one generate
   call (the call's layout, its stats, pending scores, per-layer budgets, accumulated attention),
   so one press object can serve several calls at once, on several models; its hooks go with the
   layout's ``with`` block.
2. A forward hook on every ``layer.self_attn`` sees the layer's attention inputs (normed hidden
   states, ``position_embeddings``) and its freshly updated cache. During prefill (the layout
   marks the forward; ``q_len > 1`` and cache length == rows processed) the member's
   ``entry_scores`` recomputes what it needs against the cached keys and stores one score per
   entry and head, keyed by the entry's *original position*.
3. When the prefill forward ends, members compress in their given order (so
   ``snapkv+quantize`` means: select, then quantize what is left); each looks its scores up by
   the positions the layer still holds, keeps the top ``n_keep`` (per head, or shared) and
   tells the layout which positions remain, so masks stay right for eager and SDPA when layers
   keep different lengths.
4. With ``every=N`` the press re-scores on the current query and evicts back to the same per-layer
   budget every N decode steps.

A new method subclasses `WindowPress` and writes one function, ``score(module, hidden, keys,
positions, attention, *, visual)``: the attention of the last ``window`` queries is computed for
it, and it sees nothing of the layout (``n_keep`` too when its budget is not ``ratio * n``).
Methods that need other queries (h2o: every prompt query) subclass `CachePress` and write
``entry_scores(call, ...)``. A method that hides entries from one decoding step without evicting
them (DyCoke) subclasses `DecodeFilterPress` and writes one function, ``decode_filter(attention,
visual)``: which visual entries the deeper layers see in this step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ...errors import ConfigError
from ..attn import attention_probs, gather_entries, project_queries
from ..hooks import CacheLayout


def check_ratio(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


def check_count(name: str, value: Any, minimum: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def top_entries(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """scores (B, h, n) -> indices (B, h, n_keep) of the highest, sorted ascending."""
    return scores.topk(n_keep, dim=-1).indices.sort(dim=-1).values


@dataclass(eq=False)
class PressCall:
    """One press in one generate call: what lives for that call and no longer.

    layout:  the call's `CacheLayout`
    stats:   this call's stats dict
    pending: per layer, prefill scores (B, h, n) and their original positions, until the forward ends
    budget:  per layer, the entries kept after prefill (what ``every`` evicts back to)
    acc:     per layer, attention summed over queries, by original position (presses that accumulate it)
    """

    layout: CacheLayout
    stats: dict[str, Any]
    pending: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    budget: dict[int, int] = field(default_factory=dict)
    acc: dict[int, torch.Tensor] = field(default_factory=dict)

    def window_attention(self, attn: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                         keys: torch.Tensor, pos: torch.Tensor, window: int) -> torch.Tensor:
        """Attention of this forward's last ``window`` queries over the cached keys, per key head.

        hidden (B, q, D) attention inputs, cos/sin (B, q, Dh), keys (B, Hk, n, Dh), pos (B, h, n) original
        position of each entry -> probabilities (B, Hk, w, n) (causal, padding excluded).
        """
        layout = self.layout
        w = max(1, min(window, hidden.shape[1]))
        q = project_queries(attn, hidden[:, -w:], cos[:, -w:], sin[:, -w:])  # (B, Hq, w, Dh)
        allowed = layout.entry_valid(pos).unsqueeze(2) & (pos.unsqueeze(2) <= layout.seq_pos[:, None, -w:, None])
        return attention_probs(q, keys, scaling=attn.scaling, allowed=allowed)  # (B, Hk, w, n)

    def accumulate(self, idx: int, scores: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Add ``scores`` (B, h, n) of entries at original positions ``pos`` to layer ``idx``'s running sums
        by position, ``acc[idx]`` (B, h, positions seen so far), and return those sums."""
        total = self.layout.seen + self.layout.qpos.shape[1]
        acc = self.acc.get(idx)
        if acc is None:
            acc = torch.zeros(*scores.shape[:2], total, device=scores.device)
        elif acc.shape[2] < total:
            acc = torch.nn.functional.pad(acc, (0, total - acc.shape[2]))
        self.acc[idx] = acc.scatter_add_(2, pos.expand_as(scores), scores)
        return self.acc[idx]

    def lookup(self, stored: tuple[torch.Tensor, torch.Tensor], pos: torch.Tensor) -> torch.Tensor:
        """Scores stored at layer time, looked up for the positions the layer holds now -> (B, h, n)."""
        scores, at = stored
        total = self.layout.seen + self.layout.qpos.shape[1]
        dense = torch.full((*scores.shape[:2], total), float("-inf"), device=scores.device)
        dense.scatter_(2, at, scores)
        return dense.gather(2, pos.expand(-1, scores.shape[1], -1))


@dataclass
class CachePress:
    """Base: subclasses set ``name`` and implement ``entry_scores`` (or subclass `WindowPress`).

    ratio: fraction of each layer's prompt entries kept after prefill, in (0, 1]
    every: re-press every N decode steps back to the post-prefill size (0: prefill only)
    """

    ratio: float = 0.5
    every: int = 0
    name: ClassVar[str] = "press"
    call_type: ClassVar[type[PressCall]] = PressCall

    def __post_init__(self) -> None:
        check_ratio("ratio", self.ratio)
        check_count("every", self.every)

    # -- what a method defines ---------------------------------------------------------------------

    def entry_scores(self, call: PressCall, idx: int, attn: torch.nn.Module, hidden: torch.Tensor,
                     cos: torch.Tensor, sin: torch.Tensor, keys: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Importance of every cache entry of layer ``idx``: (B, Hk or 1, n); higher is kept."""
        raise NotImplementedError

    def n_keep(self, n: int) -> int:
        return min(n, max(1, math.ceil(self.ratio * n)))

    @property
    def is_identity(self) -> bool:
        return float(self.ratio) >= 1.0

    # -- machinery ---------------------------------------------------------------------------------

    def install(self, layout: CacheLayout) -> dict[str, Any]:
        """Install the press into one call's layout (``layout.add(press)``); returns the call's stats,
        filled as the model runs."""
        stats = layout.observe({"method": self.name})
        last = next((p for p in layout.presses if getattr(p, "must_be_last", False)), None)
        if last is not None:
            raise ConfigError(self.name, f"{last.name} must be the last cache press (e.g. snapkv:ratio=0.25+{last.name})")
        call = self.call_type(layout=layout, stats=stats)

        def end_of_forward(layout: CacheLayout, cache: Any) -> None:
            if layout.is_prefill and call.pending and cache is not None:
                pending, call.pending = call.pending, {}
                self.apply_prefill(call, cache, pending)

        self._install(call)
        layout.presses.append(self)
        layout.end_callbacks.append(end_of_forward)
        return stats

    def _install(self, call: PressCall) -> None:
        for i, layer in enumerate(call.layout.layers):
            call.layout.hooks.post(layer.self_attn, self._attn_hook(call, i))

    def _attn_hook(self, call: PressCall, idx: int):
        layout = call.layout

        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            cache = kwargs.get("past_key_values")
            if cache is None or layout.qpos is None or self.is_identity:
                return
            lay = cache.layers[module.layer_idx if getattr(module, "layer_idx", None) is not None else idx]
            hidden = args[0] if args else kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"]
            n = lay.keys.shape[-2]
            pos = layout.positions(idx, n)
            if layout.is_prefill:
                if n != hidden.shape[1]:  # not a plain prefill (continued cache): leave it alone
                    return
                scores = self.entry_scores(call, idx, module, hidden, cos, sin, lay.keys, pos)
                call.pending[idx] = (scores.float(), pos.expand(-1, scores.shape[1], -1))
            else:
                self.on_decode(call, idx, module, hidden, cos, sin, lay, pos)

        return hook

    def on_decode(self, call: PressCall, idx: int, attn: torch.nn.Module, hidden: torch.Tensor,
                  cos: torch.Tensor, sin: torch.Tensor, lay: Any, pos: torch.Tensor) -> None:
        if not self.every or idx not in call.budget or (call.layout.step + 1) % self.every:
            return
        budget = call.budget[idx]
        if lay.keys.shape[-2] <= budget:
            return
        scores = self.entry_scores(call, idx, attn, hidden, cos, sin, lay.keys, pos)
        self.compress(call, idx, lay, scores.float(), pos, budget)

    def apply_prefill(self, call: PressCall, cache: Any, pending: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for idx, stored in sorted(pending.items()):
            lay = cache.layers[idx]
            n = lay.keys.shape[-2]
            pos = call.layout.positions(idx, n)
            self.compress(call, idx, lay, call.lookup(stored, pos), pos, self.n_keep(n))

    def compress(self, call: PressCall, idx: int, lay: Any, scores: torch.Tensor, pos: torch.Tensor,
                 n_keep: int) -> None:
        """Keep the top ``n_keep`` entries of layer ``idx`` (padding is evicted first)."""
        n = lay.keys.shape[-2]
        n_keep = min(n_keep, n)
        call.budget[idx] = n_keep
        if n_keep >= n:
            return
        pos = pos.expand(-1, scores.shape[1], -1)
        scores = scores.masked_fill(~call.layout.entry_valid(pos), float("-inf"))
        keep = top_entries(scores, n_keep)  # (B, h, n_keep)
        lay.keys = gather_entries(lay.keys, keep)
        lay.values = gather_entries(lay.values, keep)
        call.layout.set_positions(idx, pos.gather(2, keep))
        call.stats.setdefault("kept_per_layer", {})[idx] = n_keep


@dataclass
class WindowPress(CachePress):
    """Template: a method writes ``score``; the attention of the last ``window`` queries is computed for it.

    window: observation-window queries (the last prompt queries after prefill; the current query
            when ``every`` re-presses while decoding)
    """

    window: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("window", self.window, 1)

    def score(self, module: torch.nn.Module, hidden: torch.Tensor, keys: torch.Tensor, positions: torch.Tensor,
              attention: torch.Tensor, *, visual: torch.Tensor) -> torch.Tensor:
        """Importance of every cache entry of one layer -> (B, Hk or 1, n); higher is kept.

        module: the layer's attention module; hidden (B, q, D): its inputs in this forward; keys
        (B, Hk, n, Dh): the cached keys (RoPE applied); positions long (B, 1 or Hk, n): each entry's
        original position (the newest entry has the largest); attention (B, Hk, w, n): softmax
        attention of the last w queries over the entries (causal, padding excluded, the query heads
        of each key head averaged); visual bool like positions: the entry is a visual token of the prompt.
        """
        raise NotImplementedError

    def entry_scores(self, call, idx, attn, hidden, cos, sin, keys, pos) -> torch.Tensor:
        attention = call.window_attention(attn, hidden, cos, sin, keys, pos, self.window)
        return self.score(attn, hidden, keys, pos, attention, visual=call.layout.entry_visual(pos))


@dataclass(eq=False)
class FilterCall(PressCall):
    """A `PressCall` plus ``chosen``: bool (B, positions) the visual entries this decoding step sees."""

    chosen: torch.Tensor | None = None


@dataclass
class DecodeFilterPress(CachePress):
    """Template: hide cache entries from one decoding step without evicting them; a method writes
    ``decode_filter``.

    At every decoding step the current query's attention over layer ``layer - 1``'s cache (recomputed
    q/k, heads averaged, padding excluded) reaches ``decode_filter``, which picks the visual entries
    that layers ``layer`` and deeper see in this step; the other visual entries stay in the cache and
    may be picked again later. Text entries are always seen; nothing happens during prefill; heads
    share one choice, so a choice layer that another press has cut per head is refused. Stats:
    ``layer`` and the visual entries seen per step (first batch row), ``visual_seen_per_step``.

    layer: first decoder layer that sees only the chosen visual entries (>= 1; layer - 1 chooses)
    """

    layer: int = 2
    call_type: ClassVar[type[PressCall]] = FilterCall

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("layer", self.layer, 1)
        if self.every:
            raise ValueError(f"{self.name} re-selects at every decoding step by itself; every must be 0")

    def decode_filter(self, attention: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """The visual entries this decoding step sees at layers >= ``layer`` -> bool (B, n), within ``visual``.

        attention float (B, n): the current query's attention over layer ``layer - 1``'s entries, heads
        averaged; visual bool (B, n): the entry is a (real) visual token of the prompt."""
        raise NotImplementedError

    def _install(self, call: FilterCall) -> None:
        layout = call.layout
        if self.is_identity:
            return
        if self.layer >= layout.n_layers:
            raise ConfigError(f"{self.name}:layer={self.layer}", f"the model has layers 0..{layout.n_layers - 1}")
        layout.hooks.post(layout.layers[self.layer - 1].self_attn, self._choose(call))
        layout.decode_filters.append(self._hide(call))
        call.stats["layer"] = self.layer

    def _choose(self, call: FilterCall):
        layout = call.layout

        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            call.chosen = None
            cache = kwargs.get("past_key_values")
            if layout.is_prefill or layout.qpos is None or cache is None:
                return
            idx = self.layer - 1
            lay = cache.layers[idx]
            pos = layout.positions(idx, lay.keys.shape[-2])  # (B, h, n)
            if pos.shape[1] > 1:
                raise ConfigError(self.name, f"its selection layer holds a per-head cache (put {self.name} before "
                                             "per-head presses, or drop them)")
            hidden = args[0] if args else kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"]
            att = call.window_attention(module, hidden, cos, sin, lay.keys, pos, 1).mean(dim=(1, 2))  # (B, n)
            visual = layout.entry_visual(pos[:, 0]) & layout.entry_valid(pos[:, 0])  # (B, n)
            chosen = self.decode_filter(att, visual) & visual
            by_pos = torch.zeros(pos.shape[0], layout.seen + layout.qpos.shape[1], dtype=torch.bool, device=pos.device)
            call.chosen = by_pos.scatter_(1, pos[:, 0], chosen)
            call.stats.setdefault("visual_seen_per_step", []).append(int(chosen[0].sum()))

        return hook

    def _hide(self, call: FilterCall):
        def hide(idx: int, pos: torch.Tensor) -> torch.Tensor | None:
            """Layers >= ``layer`` in a decoding step: the prompt's visual entries not chosen this step."""
            if idx < self.layer or call.chosen is None:
                return None
            b = pos.shape[0]
            chosen = call.chosen.gather(1, pos.reshape(b, -1).clamp(max=call.chosen.shape[1] - 1)).view_as(pos)
            return call.layout.entry_visual(pos) & ~chosen

        return hide


def protect_recent(scores: torch.Tensor, pos: torch.Tensor, window: int) -> torch.Tensor:
    """Entries within ``window`` positions of the newest one (the largest of ``pos`` (B, h, n)) always rank first."""
    if window <= 0:
        return scores
    recent = pos > (pos.amax(dim=-1, keepdim=True) - window)
    top = scores.amax(dim=-1, keepdim=True).clamp(min=0) + 1.0
    return torch.where(recent, top, scores)
