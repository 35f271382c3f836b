"""Reversible hooks on a stock transformers decoder, shared by prefill pruners and cache presses.

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
* a post-hook on the top-level model measures TTFT, decode speed, KV bytes and prefill FLOPs.

Positions never change: kept tokens carry the rotary embeddings of their original positions and
generate's ``position_ids`` keep counting over the full (unpruned) sequence.

Several members (a pruner and two presses, say) share one layout per model: it is reference
counted, the first ``acquire`` installs the hooks and the last exit removes every one of them.
One model runs one generate at a time under a layout (hooks are per model, not per call).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any, Callable, Iterator

import torch

from ..errors import ConfigError
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

    def on_remove(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when the set is removed (undo a registration that is not a torch hook)."""
        self._handles.append(_Undo(fn))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


class _Undo:
    def __init__(self, fn: Callable[[], None]) -> None:
        self.remove = fn


def count_hooks(model: torch.nn.Module) -> int:
    """Forward hooks and pre-hooks on ``model`` and all its submodules (0 on a clean model)."""
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


# ------------------------------------------------------------------------------------------------
# recomputing queries and keys of one attention module (no attention maps needed)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, L, D), cos/sin (B, L, D) -> rotated x (B, H, L, D)."""
    return x * cos.unsqueeze(1) + rotate_half(x) * sin.unsqueeze(1)


def _heads(attn: torch.nn.Module, proj: torch.nn.Linear, norm_name: str, x: torch.Tensor) -> torch.Tensor:
    head_dim = attn.head_dim
    out = proj(x).view(*x.shape[:-1], -1, head_dim)  # (B, L, H, D)
    norm = getattr(attn, norm_name, None)  # Qwen3 q_norm / k_norm
    if norm is not None:
        out = norm(out)
    return out.transpose(1, 2)  # (B, H, L, D)


def project_queries(attn: torch.nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Queries of the attention module for normed inputs x (B, L, D) -> (B, Hq, L, Dh), with RoPE."""
    return apply_rope(_heads(attn, attn.q_proj, "q_norm", x), cos, sin)


def project_keys(attn: torch.nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Keys for normed inputs x (B, L, D) -> (B, Hk, L, Dh), with RoPE (what the cache would store)."""
    return apply_rope(_heads(attn, attn.k_proj, "k_norm", x), cos, sin)


def attention_probs(q: torch.Tensor, k: torch.Tensor, *, scaling: float, allowed: torch.Tensor | None) -> torch.Tensor:
    """Softmax attention of queries q (B, Hq, w, D) over keys k (B, Hk, n, D) -> (B, Hk, w, n),
    averaged over the query heads that share each key head (GQA). ``allowed``: bool
    broadcastable to (B, 1 or Hk, w, n); disallowed pairs get zero probability."""
    b, hq, w, d = q.shape
    hk = k.shape[1]
    qg = q.float().view(b, hk, hq // hk, w, d)  # (B, Hk, G, w, D)
    logits = torch.einsum("bhgwd,bhnd->bhgwn", qg, k.float()) * scaling  # (B, Hk, G, w, n)
    if allowed is not None:
        logits = logits.masked_fill(~allowed.unsqueeze(2), float("-inf"))
    probs = torch.softmax(logits, dim=-1).nan_to_num(0.0)
    return probs.mean(dim=2)  # (B, Hk, w, n)


def decoder_prefill_flops(layer_params: float, d_attn: int, rows: int) -> float:
    """FLOPs of one decoder layer's prefill over ``rows`` tokens: 2 x params x rows for its linear
    maps ("C = 2N" per token, Kaplan et al., arXiv:2001.08361) + 2 x rows^2 x d_attn for causal
    QK^T and AV (each rows^2 / 2 x d_attn multiply-adds). The one count the layout's stats and the
    bench's whole-question estimate share."""
    return 2.0 * layer_params * rows + 2.0 * rows * rows * d_attn


def gather_rows(x: torch.Tensor, idx: torch.Tensor, dim: int) -> torch.Tensor:
    """Batched gather along ``dim``: x (B, ..., L, ...), idx (B, n) -> (B, ..., n, ...)."""
    shape = [1] * x.ndim
    shape[0], shape[dim] = idx.shape[0], idx.shape[1]
    expand = list(x.shape)
    expand[0], expand[dim] = idx.shape[0], idx.shape[1]
    return x.expand(idx.shape[0], *x.shape[1:]).gather(dim, idx.view(shape).expand(expand))


def gather_entries(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Cache entries: x (B, H, n, D), idx (B, H or 1, m) -> (B, H, m, D)."""
    idx = idx.expand(x.shape[0], x.shape[1], idx.shape[-1])
    return x.gather(2, idx.unsqueeze(-1).expand(-1, -1, -1, x.shape[-1]))


# ------------------------------------------------------------------------------------------------
# the shared per-model layout

Stage = Callable[["CacheLayout", int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""A prefill pruning stage: ``fn(layout, layer_idx, normed_hidden (B,n,D), cos (B,n,Dh), sin,
seq_pos (B,n)) -> keep (B, m)`` sorted row indices into the current rows, or ``(keep, merge)`` where
``merge(hidden (B,n,D)) -> (B,m,D)`` gives the kept rows' new hidden states (token merging, e.g.
FiCoCo-L) instead of plain row selection."""

_LAYOUTS: "weakref.WeakKeyDictionary[torch.nn.Module, CacheLayout]" = weakref.WeakKeyDictionary()


class CacheLayout:
    """Which original positions every layer holds, for one model, across prefill and decode.

    Attributes read by members:
      pad2d:    bool (B, T) padding mask over every position seen so far (True = real token)
      qpos:     long (B, q) original positions of this forward's queries
      seq_pos:  long (B, n) original positions of the rows the current layer processes (prefill)
      kv_pos:   per layer: long (B, 1 or Hk, n_i) original position of every cache entry, or None
                while the layer holds every position in order
      visual:   bool (B, L) visual positions of the prompt (ModelInputs.visual_mask)
      is_prefill, step (decode steps done), prompt_len
    """

    def __init__(self, model: torch.nn.Module, layers: torch.nn.ModuleList) -> None:
        self.model = model
        self.layers = layers
        self.n_layers = len(layers)
        self.hooks = HookSet()
        self.users = 0
        self.stages: dict[int, list[Stage]] = {}
        self.end_callbacks: list[Callable[["CacheLayout", Any], None]] = []
        self.byte_reporters: list[Callable[[int], int]] = []
        self.presses: list[Any] = []
        self.decode_filters: list[Callable[[int, torch.Tensor], torch.Tensor | None]] = []
        self.stat_dicts: list[dict[str, Any]] = []
        self.visual: torch.Tensor | None = None
        self._layer_params = [sum(p.numel() for p in layer.parameters()) for layer in layers]
        self._reset()
        for i, layer in enumerate(layers):
            self.hooks.pre(layer, self._layer_pre_hook(i))
        self.hooks.pre(model, self._model_pre_hook)
        self.hooks.post(model, self._model_post_hook)

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
        self._t0 = 0.0
        self._t_prefill_end = 0.0
        self.timing: dict[str, float] = {}

    # -- registration ----------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def acquire(cls, adapter: Any, inputs: ModelInputs | None = None) -> Iterator["CacheLayout"]:
        """The model's layout (installed on first use, removed after the last user exits)."""
        model = adapter.model
        layout = _LAYOUTS.get(model)
        if layout is None:
            text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
            if "sliding_attention" in (getattr(text_config, "layer_types", None) or ()):
                raise ConfigError(getattr(model, "name_or_path", "model") or "model",
                                  "sliding-window attention layers are not supported by in-LLM pruning or cache presses")
            layout = cls(model, adapter.decoder_layers)
            _LAYOUTS[model] = layout
        layout.users += 1
        if inputs is not None:
            layout.visual = inputs.visual_mask
        try:
            yield layout
        finally:
            layout.users -= 1
            if layout.users == 0:
                layout.hooks.remove()
                _LAYOUTS.pop(model, None)

    def add_stage(self, layer_idx: int, fn: Stage) -> Callable[[], None]:
        if not 0 <= layer_idx < self.n_layers:
            raise ConfigError(f"layer={layer_idx}", f"the model has layers 0..{self.n_layers - 1}")
        self.stages.setdefault(layer_idx, []).append(fn)
        return lambda: self.stages[layer_idx].remove(fn)

    @contextlib.contextmanager
    def stats_dict(self, stats: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.stat_dicts.append(stats)
        try:
            yield stats
        finally:
            self.stat_dicts.remove(stats)

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
        self._t0 = time.perf_counter()

    def _model_post_hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        for fn in list(self.end_callbacks):
            fn(self, kwargs.get("past_key_values"))
        q = self.qpos.shape[1]
        self.seen += q
        now = time.perf_counter()
        if self.is_prefill:
            self._t_prefill_end = now
            self.timing = {"ttft_s": now - self._t0}
        else:
            self.step += 1
            elapsed = now - self._t_prefill_end
            self.timing["decode_tokens_per_s"] = self.step / elapsed if elapsed > 0 else float("nan")
        self._publish(kwargs.get("past_key_values"))

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

    # -- stats ------------------------------------------------------------------------------------

    def kv_bytes_per_layer(self, cache: Any) -> list[int]:
        out = []
        for i in range(self.n_layers):
            n = 0
            if cache is not None and i < len(cache.layers):
                lay = cache.layers[i]
                for t in (getattr(lay, "keys", None), getattr(lay, "values", None)):
                    if isinstance(t, torch.Tensor):
                        n += t.numel() * t.element_size()
            n += sum(rep(i) for rep in self.byte_reporters)
            out.append(n)
        return out

    def kv_len_per_layer(self, cache: Any) -> list[int]:
        out = []
        for i in range(self.n_layers):
            pos = self.kv_pos[i]
            out.append(self.seen if pos is None else int(pos.shape[-1]))
        return out

    def prefill_flops(self) -> float:
        """`decoder_prefill_flops` of every layer with the rows it kept during prefill."""
        return sum(decoder_prefill_flops(params, layer.self_attn.q_proj.out_features, rows)
                   for layer, params, rows in zip(self.layers, self._layer_params, self.prefill_rows))

    def _publish(self, cache: Any) -> None:
        per_layer = self.kv_bytes_per_layer(cache)
        update = {
            "kv_bytes_per_layer": per_layer, "kv_bytes": int(sum(per_layer)),
            "kv_len_per_layer": self.kv_len_per_layer(cache),
            "prefill_rows_per_layer": list(self.prefill_rows), "prefill_flops": self.prefill_flops(),
            "decode_steps": self.step, **self.timing,
        }
        for d in self.stat_dicts:
            d.update(update)


@contextlib.contextmanager
def measure(adapter: Any, inputs: ModelInputs | None = None) -> Iterator[dict[str, Any]]:
    """Stats of one generate call with or without pruners/presses: TTFT, decode tokens/s, KV bytes
    held per layer and in total, kept lengths, prefill FLOPs (the dict fills as the model runs)."""
    stats: dict[str, Any] = {}
    with CacheLayout.acquire(adapter, inputs) as layout, layout.stats_dict(stats):
        yield stats
