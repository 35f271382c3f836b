"""Template of KV-cache presses: compress each layer's cache after prefill (and optionally every
N decode steps), writing back ``cache.layers[i].keys/values``.

How a press runs (after kvpress, rebuilt for transformers 5.x, whose attention kwargs have no
``cache_position``):

1. A forward hook on every ``layer.self_attn`` sees the layer's attention inputs (normed hidden
   states, ``position_embeddings``) and its freshly updated cache. During prefill (the layout
   marks the forward; ``q_len > 1`` and cache length == rows processed) the member's ``score``
   recomputes what it needs (a window of queries, accumulated attention, ...) against the cached
   keys and stores one score per entry and head, keyed by the entry's *original position*.
2. When the prefill forward ends, members compress in their given order (so
   ``snapkv+quantize`` means: select, then quantize what is left); each looks its scores up by
   the positions the layer still holds, keeps the top ``n_keep`` (per head, or shared) and
   tells the layout which positions remain, so masks stay right for eager and SDPA when layers
   keep different lengths.
3. With ``every=N`` the press re-scores on the current query and evicts back to the same per-layer
   budget every N decode steps.

A new method only writes ``score`` (and ``n_keep`` when its budget is not ``ratio * n``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import torch

from ...errors import ConfigError
from ..hooks import CacheLayout, HookSet, attention_probs, gather_entries, project_queries
from ..types import ModelInputs


def check_ratio(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


def check_count(name: str, value: Any, minimum: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def window_attention(layout: CacheLayout, attn: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor,
                     sin: torch.Tensor, keys: torch.Tensor, pos: torch.Tensor, qpos: torch.Tensor,
                     window: int) -> torch.Tensor:
    """Attention of the last ``window`` queries over the cached keys, per key head.

    hidden (B, q, D) attention inputs, cos/sin (B, q, Dh), keys (B, Hk, n, Dh), pos (B, h, n) original
    position of each entry, qpos (B, q) -> probabilities (B, Hk, w, n) (causal, padding excluded).
    """
    w = max(1, min(window, hidden.shape[1]))
    q = project_queries(attn, hidden[:, -w:], cos[:, -w:], sin[:, -w:])  # (B, Hq, w, Dh)
    allowed = layout.entry_valid(pos).unsqueeze(2) & (pos.unsqueeze(2) <= qpos[:, None, -w:, None])  # (B, h, w, n)
    return attention_probs(q, keys, scaling=attn.scaling, allowed=allowed)


def top_entries(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """scores (B, h, n) -> indices (B, h, n_keep) of the highest, sorted ascending."""
    return scores.topk(n_keep, dim=-1).indices.sort(dim=-1).values


@dataclass
class CachePress:
    """Base: subclasses set ``name`` and implement ``score``.

    ratio: fraction of each layer's prompt entries kept after prefill, in (0, 1]
    every: re-press every N decode steps back to the post-prefill size (0: prefill only)
    """

    ratio: float = 0.5
    every: int = 0
    name: ClassVar[str] = "press"

    def __post_init__(self) -> None:
        check_ratio("ratio", self.ratio)
        check_count("every", self.every)

    # -- what a method defines ---------------------------------------------------------------------

    def score(self, layout: CacheLayout, idx: int, attn: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor,
              sin: torch.Tensor, keys: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Importance of every cache entry: (B, Hk or 1, n); higher is kept."""
        raise NotImplementedError

    def reset(self) -> None:
        """Clear per-call state at the start of a session."""

    def n_keep(self, n: int) -> int:
        return min(n, max(1, math.ceil(self.ratio * n)))

    @property
    def is_identity(self) -> bool:
        return float(self.ratio) >= 1.0

    # -- machinery ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, adapter: Any, inputs: ModelInputs) -> Iterator[dict[str, Any]]:
        """Install the press for one generate call; yields stats filled as the model runs."""
        stats: dict[str, Any] = {"method": self.name}
        with CacheLayout.acquire(adapter, inputs) as layout, layout.stats_dict(stats):
            last = next((p for p in layout.presses if getattr(p, "must_be_last", False)), None)
            if last is not None:
                raise ConfigError(self.name, f"{last.name} must be the last cache press (e.g. snapkv:ratio=0.25+{last.name})")
            hooks = HookSet()
            self._pending: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
            self._budget: dict[int, int] = {}
            self._stats = stats
            self.reset()
            try:
                self._install(layout, hooks)
                layout.presses.append(self)
                layout.end_callbacks.append(self._end_of_forward)
                yield stats
            finally:
                hooks.remove()
                if self in layout.presses:
                    layout.presses.remove(self)
                if self._end_of_forward in layout.end_callbacks:
                    layout.end_callbacks.remove(self._end_of_forward)
                self._pending = {}

    def _install(self, layout: CacheLayout, hooks: HookSet) -> None:
        for i, layer in enumerate(layout.layers):
            hooks.post(layer.self_attn, self._attn_hook(layout, i))

    def _attn_hook(self, layout: CacheLayout, idx: int):
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
                scores = self.score(layout, idx, module, hidden, cos, sin, lay.keys, pos)
                self._pending[idx] = (scores.float(), pos.expand(-1, scores.shape[1], -1))
            else:
                self.on_decode(layout, idx, module, hidden, cos, sin, lay, pos)

        return hook

    def on_decode(self, layout: CacheLayout, idx: int, attn: torch.nn.Module, hidden: torch.Tensor,
                  cos: torch.Tensor, sin: torch.Tensor, lay: Any, pos: torch.Tensor) -> None:
        if not self.every or idx not in self._budget or (layout.step + 1) % self.every:
            return
        budget = self._budget[idx]
        if lay.keys.shape[-2] <= budget:
            return
        scores = self.score(layout, idx, attn, hidden, cos, sin, lay.keys, pos)
        self.compress(layout, idx, lay, scores.float(), pos, budget)

    def _end_of_forward(self, layout: CacheLayout, cache: Any) -> None:
        if not layout.is_prefill or not self._pending or cache is None:
            return
        pending, self._pending = self._pending, {}
        self.apply_prefill(layout, cache, pending)

    @staticmethod
    def lookup(layout: CacheLayout, stored: tuple[torch.Tensor, torch.Tensor], pos: torch.Tensor) -> torch.Tensor:
        """Scores stored at layer time, looked up for the positions the layer holds now -> (B, h, n)."""
        scores, at = stored
        dense = torch.full((*scores.shape[:2], layout.seen + layout.qpos.shape[1]), float("-inf"), device=scores.device)
        dense.scatter_(2, at, scores)
        return dense.gather(2, pos.expand(-1, scores.shape[1], -1))

    def apply_prefill(self, layout: CacheLayout, cache: Any, pending: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for idx, stored in sorted(pending.items()):
            lay = cache.layers[idx]
            n = lay.keys.shape[-2]
            pos = layout.positions(idx, n)
            self.compress(layout, idx, lay, self.lookup(layout, stored, pos), pos, self.n_keep(n))

    def compress(self, layout: CacheLayout, idx: int, lay: Any, scores: torch.Tensor, pos: torch.Tensor,
                 n_keep: int) -> None:
        """Keep the top ``n_keep`` entries of layer ``idx`` (padding is evicted first)."""
        n = lay.keys.shape[-2]
        n_keep = min(n_keep, n)
        self._budget[idx] = n_keep
        if n_keep >= n:
            return
        pos = pos.expand(-1, scores.shape[1], -1)
        scores = scores.masked_fill(~layout.entry_valid(pos), float("-inf"))
        keep = top_entries(scores, n_keep)  # (B, h, n_keep)
        lay.keys = gather_entries(lay.keys, keep)
        lay.values = gather_entries(lay.values, keep)
        layout.set_positions(idx, pos.gather(2, keep))
        self._stats.setdefault("kept_per_layer", {})[idx] = n_keep


def protect_recent(scores: torch.Tensor, pos: torch.Tensor, last: torch.Tensor, window: int) -> torch.Tensor:
    """Entries within ``window`` positions of the newest one (last: (B,)) always rank first."""
    if window <= 0:
        return scores
    recent = pos > (last[:, None, None] - window)
    top = scores.amax(dim=-1, keepdim=True).clamp(min=0) + 1.0
    return torch.where(recent, top, scores)
