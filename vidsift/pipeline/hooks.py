"""Reversible hooks on a stock transformers decoder for one generate call, shared by the prefill
pruners and cache presses of that call.

In-LLM token pruning and KV-cache compression both leave *different layers holding different
tokens*: after FastV at layer K, layers >= K see fewer rows than layers < K; after SnapKV each
layer (even each head) keeps its own subset of cache entries. Stock transformers builds one
attention mask and one set of rotary embeddings for the whole stack, sized from layer 0's cache.
`CacheLayout` fixes this from the outside with forward hooks only (no forked model files, no
monkey-patched classes, nothing on ``model.config``):

* a pre-hook on the top-level model records the 2D padding mask, the query positions and whether
  this forward is a prefill (a new or empty cache);
* a pre-hook on every decoder layer (``with_kwargs=True``) runs the pruning stages registered at
  that layer, slices hidden states, ``position_embeddings`` (cos, sin), ``position_ids`` and the
  4D mask to the rows the layer keeps during prefill, and during decode rebuilds the layer's mask
  from the *original* position of every cache entry (``kv_pos``), so eager and SDPA stay right
  when layers hold different lengths;
* a post-hook on the top-level model hands each forward to the call's `CallObserver` (TTFT,
  decode speed, KV bytes, prefill FLOPs).

Positions never change: kept tokens carry the rotary embeddings of their original positions and
generate's ``position_ids`` keep counting over the full (unpruned) sequence.

The layout is scoped to one call, the kvpress ``with press(model):`` way: nothing is kept per model
or in a module global. ``with CacheLayout(adapter, inputs) as layout:`` installs the hooks,
``layout.add(member)`` installs a pruner or press into this call (members get the layout, never
look one up), and leaving the block removes every hook, the members' too. One layout per model at a
time: a second ``with`` on a model that has an active layout raises `ConfigError`. The pure
attention/RoPE maths the members use are in `vidsift.pipeline.attn`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..errors import ConfigError
from .attn import gather_rows
from .stats import CallObserver
from .types import ModelInputs

# ------------------------------------------------------------------------------------------------
# hook bookkeeping


class HookSet:
    """Forward (pre-)hooks registered with ``with_kwargs=True`` and removed together."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def pre(self, module: torch.nn.Module, fn: Callable) -> None:
        self._handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))

    def post(self, module: torch.nn.Module, fn: Callable) -> None:
        self._handles.append(module.register_forward_hook(fn, with_kwargs=True))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


def count_hooks(model: torch.nn.Module) -> int:
    """Forward hooks and pre-hooks on ``model`` and all its submodules (0 on a clean model)."""
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def active_layout(model: torch.nn.Module) -> "CacheLayout | None":
    """The `CacheLayout` whose ``with`` block is running on ``model``, read from the model's own
    hooks (no registry), or None."""
    for hook in model._forward_pre_hooks.values():
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, CacheLayout):
            return owner
    return None


# ------------------------------------------------------------------------------------------------
# the layout of one call

Stage = Callable[["CacheLayout", int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""A prefill pruning stage: ``fn(layout, layer_idx, normed_hidden (B,n,D), cos (B,n,Dh), sin,
seq_pos (B,n)) -> keep (B, m)`` sorted row indices into the current rows, or ``(keep, merge)`` where
``merge(hidden (B,n,D)) -> (B,m,D)`` gives the kept rows' new hidden states (token merging, e.g.
FiCoCo-L) instead of plain row selection."""


class CacheLayout:
    """Which original positions every layer holds during one generate call, across prefill and decode.

    ``with CacheLayout(adapter, inputs) as layout: stats = layout.add(member); adapter.generate(...)``

    Attributes read by members:
      pad2d:    bool (B, T) padding mask over every position seen so far (True = real token)
      qpos:     long (B, q) original positions of this forward's queries
      seq_pos:  long (B, n) original positions of the rows the current layer processes (prefill)
      kv_pos:   per layer: long (B, 1 or Hk, n_i) original position of every cache entry, or None
                while the layer holds every position in order
      visual:   bool (B, L) visual positions of the prompt (ModelInputs.visual_mask)
      is_prefill, step (decode steps done), prompt_len
      hooks:    the call's `HookSet` (members register theirs here; all go when the block ends)
      observer: the call's `CallObserver` (members' stats dicts, bytes held outside the cache)
    """

    def __init__(self, adapter: Any, inputs: ModelInputs | None = None) -> None:
        model = adapter.model
        text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        if "sliding_attention" in (getattr(text_config, "layer_types", None) or ()):
            raise ConfigError(getattr(model, "name_or_path", "model") or "model",
                              "sliding-window attention layers are not supported by in-LLM pruning or cache presses")
        self.model = model
        self.layers = adapter.decoder_layers
        self.n_layers = len(self.layers)
        self.hooks = HookSet()
        self.stages: dict[int, list[Stage]] = {}
        self.end_callbacks: list[Callable[["CacheLayout", Any], None]] = []
        self.presses: list[Any] = []
        self.decode_filters: list[Callable[[int, torch.Tensor], torch.Tensor | None]] = []
        self.observer = CallObserver(self.layers)
        self.visual: torch.Tensor | None = None if inputs is None else inputs.visual_mask
        self.state = "new"  # -> "active" inside the with block -> "closed"
        self._reset()

    def _reset(self) -> None:
        self.cache: Any = None
        self.seen = 0
        self.step = 0
        self.is_prefill = False
        self.prompt_len = 0
        self.pad2d: torch.Tensor | None = None
        self.qpos: torch.Tensor | None = None
        self.seq_pos: torch.Tensor | None = None
        self.kv_pos: list[torch.Tensor | None] = [None] * self.n_layers
        self.prefill_rows: list[int] = [0] * self.n_layers
        self.modified = False
        self.observer.reset()

    # -- the call's scope ---------------------------------------------------------------------------

    def __enter__(self) -> "CacheLayout":
        if self.state != "new":
            raise ConfigError("CacheLayout", "a layout serves one call; make a new one for the next call")
        if active_layout(self.model) is not None:
            raise ConfigError("CacheLayout", "this model already runs a call under another layout "
                                             "(one call at a time per model; add every member to that layout)")
        for i, layer in enumerate(self.layers):
            self.hooks.pre(layer, self._layer_pre_hook(i))
        self.hooks.pre(self.model, self._model_pre_hook)
        self.hooks.post(self.model, self._model_post_hook)
        self.state = "active"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.hooks.remove()
        self.state = "closed"

    def add(self, member: Any) -> dict[str, Any]:
        """Install a pruner or press (anything with ``install(layout) -> stats dict``) into this call;
        returns its stats dict, filled as the model runs."""
        if self.state != "active":
            raise ConfigError(getattr(member, "name", type(member).__name__),
                              "members are added inside the layout's with block")
        return member.install(self)

    def observe(self, stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """A dict the call's stats (`CallObserver`) fill as the model runs."""
        return self.observer.observe(stats)

    def add_stage(self, layer_idx: int, fn: Stage) -> None:
        if not 0 <= layer_idx < self.n_layers:
            raise ConfigError(f"layer={layer_idx}", f"the model has layers 0..{self.n_layers - 1}")
        self.stages.setdefault(layer_idx, []).append(fn)

    # -- helpers for members ----------------------------------------------------------------------

    def positions(self, layer_idx: int, n: int) -> torch.Tensor:
        """Original positions of layer ``layer_idx``'s n cache entries -> long (B, 1 or Hk, n)."""
        pos = self.kv_pos[layer_idx]
        if pos is None:
            b = self.pad2d.shape[0]
            return torch.arange(n, device=self.pad2d.device).expand(b, 1, n)
        if pos.shape[-1] != n:
            raise RuntimeError(f"layer {layer_idx}: layout tracks {pos.shape[-1]} entries, cache holds {n}")
        return pos

    def entry_valid(self, pos: torch.Tensor) -> torch.Tensor:
        """bool like pos: the entry is a real (non-padding) token."""
        b = pos.shape[0]
        return self.pad2d.gather(1, pos.reshape(b, -1)).view_as(pos)

    def entry_visual(self, pos: torch.Tensor) -> torch.Tensor:
        """bool like pos: the entry is a visual token of the prompt."""
        if self.visual is None:
            return torch.zeros_like(pos, dtype=torch.bool)
        b, lp = pos.shape[0], self.visual.shape[1]
        vis = self.visual.to(pos.device).expand(b, lp)
        inside = pos < lp
        return vis.gather(1, pos.clamp(max=lp - 1).reshape(b, -1)).view_as(pos) & inside

    def set_positions(self, layer_idx: int, pos: torch.Tensor) -> None:
        self.kv_pos[layer_idx] = pos
        self.modified = True

    # -- hooks ------------------------------------------------------------------------------------

    def _model_pre_hook(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        ref = ids if ids is not None else embeds
        b, q = ref.shape[0], ref.shape[1]
        cache = kwargs.get("past_key_values")
        fresh = cache is None or cache is not self.cache
        if fresh:
            self._reset()
            self.cache = cache
            self.is_prefill = True
            self.prompt_len = q
            if self.visual is not None and (self.visual.shape[0] != b or self.visual.shape[1] > q):
                raise ConfigError("visual_mask", f"shape {tuple(self.visual.shape)} does not fit the prompt ({b}, {q})")
        else:
            self.is_prefill = False
        mask = kwargs.get("attention_mask")
        device = ref.device
        if isinstance(mask, torch.Tensor) and mask.ndim == 2:
            self.pad2d = mask.to(device=device, dtype=torch.bool)
        else:
            self.pad2d = torch.ones(b, self.seen + q, dtype=torch.bool, device=device)
        if self.pad2d.shape[1] != self.seen + q:
            raise RuntimeError(f"attention mask covers {self.pad2d.shape[1]} positions, expected {self.seen + q}")
        self.qpos = torch.arange(self.seen, self.seen + q, device=device).expand(b, q)
        self.seq_pos = self.qpos
        self.observer.forward_start()

    def _model_post_hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        cache = kwargs.get("past_key_values")
        for fn in list(self.end_callbacks):
            fn(self, cache)
        self.seen += self.qpos.shape[1]
        if not self.is_prefill:
            self.step += 1
        kv_len = [self.seen if pos is None else int(pos.shape[-1]) for pos in self.kv_pos]
        self.observer.forward_end(cache, prefill=self.is_prefill, step=self.step, kv_len=kv_len,
                                  prefill_rows=self.prefill_rows)

    def _layer_pre_hook(self, idx: int) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            if self.qpos is None:
                return None
            hidden = args[0] if args else kwargs["hidden_states"]
            if self.is_prefill:
                hidden, kwargs = self._prefill_layer(idx, module, hidden, kwargs)
            else:
                kwargs = self._decode_layer(idx, module, kwargs)
            if args:
                return (hidden, *args[1:]), kwargs
            kwargs["hidden_states"] = hidden
            return args, kwargs

        return hook

    def _prefill_layer(self, idx: int, layer: torch.nn.Module, hidden: torch.Tensor, kwargs: dict):
        cos_full, sin_full = kwargs["position_embeddings"]
        full_len = self.qpos.shape[1]
        if self.seq_pos.shape[1] != hidden.shape[1]:
            raise RuntimeError(f"layer {idx}: {hidden.shape[1]} rows, layout expects {self.seq_pos.shape[1]}")
        for stage in self.stages.get(idx, ()):
            cos, sin = (gather_rows(t, self.seq_pos, 1) for t in (cos_full, sin_full))
            normed = layer.input_layernorm(hidden)
            keep = stage(self, idx, normed, cos, sin, self.seq_pos)  # (B, m) rows, or (rows, merge)
            if isinstance(keep, tuple):
                keep, merge = keep
                hidden = merge(hidden)
            else:
                hidden = gather_rows(hidden, keep, 1)
            self.seq_pos = self.seq_pos.gather(1, keep)
        self.prefill_rows[idx] = int(self.seq_pos.shape[1])
        if self.seq_pos.shape[1] == full_len:
            return hidden, kwargs
        pos = self.seq_pos
        kwargs = dict(kwargs)
        kwargs["position_embeddings"] = (gather_rows(cos_full, pos, 1), gather_rows(sin_full, pos, 1))
        if isinstance(kwargs.get("position_ids"), torch.Tensor):
            kwargs["position_ids"] = gather_rows(kwargs["position_ids"], pos, kwargs["position_ids"].ndim - 1)
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.ndim == 4:  # (B or 1, 1, L, L): rows and columns of kept tokens
            kwargs["attention_mask"] = gather_rows(gather_rows(mask, pos, 2), pos, 3)
        elif isinstance(mask, torch.Tensor) and mask.ndim == 2:  # flash attention's (B, L) padding mask
            kwargs["attention_mask"] = gather_rows(mask, pos, 1)
        self.set_positions(idx, pos.unsqueeze(1))
        return hidden, kwargs

    def _decode_layer(self, idx: int, layer: torch.nn.Module, kwargs: dict) -> dict:
        pos = self.kv_pos[idx]
        if pos is not None:
            pos = torch.cat([pos, self.qpos.unsqueeze(1).expand(-1, pos.shape[1], -1)], dim=-1)
            self.kv_pos[idx] = pos
        if pos is None and (self.modified or self.decode_filters):
            pos = torch.arange(self.seen + self.qpos.shape[1], device=self.qpos.device).expand(self.qpos.shape[0], 1, -1)
        hide = None  # bool like pos: entries this step's query must not see (decode filters, e.g. DyCoke)
        for fn in self.decode_filters:
            h = fn(idx, pos)
            if h is not None:
                hide = h if hide is None else hide | h
        if not self.modified and hide is None:
            return kwargs
        mask = kwargs.get("attention_mask")
        if mask is None and bool(self.pad2d.all()) and self.qpos.shape[1] == 1 and hide is None:
            return kwargs  # SDPA without padding: a single query sees every entry
        if isinstance(mask, torch.Tensor) and mask.ndim == 2:  # flash attention: a (B, n) padding mask
            if pos.shape[1] > 1 or hide is not None:
                raise ConfigError("attn_implementation", "per-head cache presses and decode filters need sdpa or eager attention")
            kwargs = dict(kwargs)
            kwargs["attention_mask"] = self.entry_valid(pos[:, 0]).to(mask.dtype)
            return kwargs
        allowed = self.entry_valid(pos).unsqueeze(2) & (pos.unsqueeze(2) <= self.qpos[:, None, :, None])  # (B,h,q,n)
        if hide is not None:
            allowed = allowed & ~hide.unsqueeze(2)
        if allowed.shape[1] > 1:  # per-head layouts: one mask row per query head
            groups = getattr(layer.self_attn, "num_key_value_groups", 1)
            allowed = allowed.repeat_interleave(groups, dim=1)
        if isinstance(mask, torch.Tensor) and mask.dtype != torch.bool:
            zero = torch.zeros((), dtype=mask.dtype, device=mask.device)
            allowed = torch.where(allowed, zero, torch.finfo(mask.dtype).min)
        kwargs = dict(kwargs)
        kwargs["attention_mask"] = allowed
        return kwargs
