"""Mixed-precision KV cache: salient entries at full precision, the rest in fp8 or 2/4/8-bit ints.

MiKV-like, after "No Token Left Behind: Reliable KV Cache Compression via Importance-Aware Mixed
Precision Quantization" (Yang et al., 2024, https://arxiv.org/abs/2402.18096): instead of
evicting, keep every entry but store the unimportant ones in low precision. Importance is the
attention of the last ``window`` prompt queries (SnapKV-style window attention, plus the most
recent entries); each low-precision key/value vector (one token, one head) gets its own scale
(and zero point for ints). Not ZipCache (He et al., NeurIPS 2024, arXiv:2405.14256): there is no
normalized attention score and no channel-separable quantization here.

Bytes reported are the bytes really held: between forward
passes the cache layer keeps only the full-precision entries and this press keeps the packed
low-precision ones (+ fp16 scales); each layer dequantizes them just for its own attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..attn import gather_entries
from .base import PressCall, WindowPress, check_count, protect_recent

FORMATS = ("fp8", "int")
FP8_MAX = 448.0  # float8_e4m3fn


def quantize(x: torch.Tensor, *, bits: int, fmt: str) -> dict[str, torch.Tensor]:
    """x (..., D) -> packed tensors; per-vector scale (and zero point for ints) in fp16."""
    xf = x.float()
    if fmt == "fp8":
        scale = (xf.abs().amax(-1, keepdim=True) / FP8_MAX).clamp(min=1e-8)
        return {"q": (xf / scale).to(torch.float8_e4m3fn), "scale": scale.half()}
    lo, hi = xf.amin(-1, keepdim=True), xf.amax(-1, keepdim=True)
    levels = 2**bits - 1
    scale = ((hi - lo) / levels).clamp(min=1e-8)
    q = ((xf - lo) / scale).round().clamp(0, levels).to(torch.uint8)  # (..., D)
    per_byte = 8 // bits
    q = q.view(*q.shape[:-1], -1, per_byte)
    packed = torch.zeros(q.shape[:-1], dtype=torch.uint8, device=x.device)
    for j in range(per_byte):
        packed |= q[..., j] << (bits * j)
    return {"q": packed, "scale": scale.half(), "zero": lo.half()}


def dequantize(store: dict[str, torch.Tensor], *, bits: int, fmt: str, dtype: torch.dtype) -> torch.Tensor:
    if fmt == "fp8":
        return (store["q"].float() * store["scale"].float()).to(dtype)
    per_byte = 8 // bits
    mask = 2**bits - 1
    parts = [(store["q"] >> (bits * j)) & mask for j in range(per_byte)]
    q = torch.stack(parts, dim=-1).flatten(-2).float()  # (..., D)
    return (q * store["scale"].float() + store["zero"].float()).to(dtype)


def nbytes(store: dict[str, torch.Tensor] | None) -> int:
    return 0 if not store else sum(t.numel() * t.element_size() for t in store.values())


@dataclass(eq=False)
class QuantizeCall(PressCall):
    """A `PressCall` plus, per layer: the packed low-precision keys and values (``store``), the entry
    count the layer held after its last split or decode step (``expect``) and how many of its entries
    are quantized (``nq``)."""

    store: dict[int, tuple[dict, dict]] = field(default_factory=dict)
    expect: dict[int, int] = field(default_factory=dict)
    nq: dict[int, int] = field(default_factory=dict)

    def held_bytes(self, idx: int) -> int:
        k, v = self.store.get(idx, (None, None))
        return nbytes(k) + nbytes(v)


@dataclass
class Quantize(WindowPress):
    """ratio: fraction of prompt entries per layer and head kept at full precision (salient by
    window attention, plus the last ``window`` prompt entries); the rest is quantized.
    bits: 8 (fp8 or int8), 4 or 2 (packed ints); format: fp8 | int (default: fp8 for 8 bits).
    Decoded tokens stay at full precision. Must be the last press."""

    ratio: float = 0.1
    bits: int = 8
    format: str | None = None
    window: int = 8
    must_be_last: ClassVar[bool] = True
    name: ClassVar[str] = "quantize"
    call_type: ClassVar[type[PressCall]] = QuantizeCall

    def __post_init__(self) -> None:
        if not isinstance(self.ratio, (int, float)) or not 0.0 <= float(self.ratio) <= 1.0:
            raise ValueError(f"ratio must be a number in [0, 1], got {self.ratio!r}")
        check_count("every", self.every)
        check_count("window", self.window)
        if self.bits not in (2, 4, 8):
            raise ValueError(f"bits must be one of: 2, 4, 8; got {self.bits!r}")
        if self.format is None:
            self.format = "fp8" if self.bits == 8 else "int"
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of: {', '.join(FORMATS)}; got {self.format!r}")
        if self.format == "fp8" and self.bits != 8:
            raise ValueError("format=fp8 needs bits=8")

    def _install(self, call: QuantizeCall) -> None:
        for i, layer in enumerate(call.layout.layers):
            call.layout.hooks.pre(layer.self_attn, self._materialize(call, i))
        super()._install(call)
        call.layout.observer.add_bytes(call.held_bytes)

    def score(self, module, hidden, keys, positions, attention, *, visual) -> torch.Tensor:
        return protect_recent(attention.mean(dim=2), positions, self.window)

    def _materialize(self, call: QuantizeCall, idx: int):
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            cache = kwargs.get("past_key_values")
            if cache is None or call.layout.is_prefill or idx not in call.store:
                return
            lay = cache.layers[idx]
            k, v = call.store[idx]
            fmt = dict(bits=self.bits, fmt=self.format, dtype=lay.keys.dtype)
            lay.keys = torch.cat([dequantize(k, **fmt), lay.keys], dim=2)
            lay.values = torch.cat([dequantize(v, **fmt), lay.values], dim=2)

        return hook

    def on_decode(self, call: QuantizeCall, idx, attn, hidden, cos, sin, lay, pos) -> None:
        expected = call.expect.get(idx)
        if expected is None:
            return
        n = lay.keys.shape[-2]
        if n != expected + hidden.shape[1]:  # an earlier press changed this layer: split again
            probs = call.window_attention(attn, hidden, cos, sin, lay.keys, pos, 1)
            self.split(call, idx, lay, probs.mean(dim=2), pos, n_quant=call.nq.get(idx, 0))
            return
        nq = call.nq[idx]  # the dequantized copies go; the packed store stays
        lay.keys = lay.keys[:, :, nq:].contiguous()
        lay.values = lay.values[:, :, nq:].contiguous()
        call.expect[idx] = n

    def apply_prefill(self, call: QuantizeCall, cache, pending) -> None:
        for idx, stored in sorted(pending.items()):
            lay = cache.layers[idx]
            n = lay.keys.shape[-2]
            pos = call.layout.positions(idx, n)
            n_full = min(n, max(math.ceil(self.ratio * n), min(self.window, n)))
            self.split(call, idx, lay, call.lookup(stored, pos), pos, n_quant=n - n_full)

    def split(self, call: QuantizeCall, idx, lay, scores, pos, *, n_quant: int) -> None:
        """Quantize the ``n_quant`` lowest-scoring entries and keep only the rest in the cache layer
        (reordered: quantized entries first, so the layer materializes as ``cat(dequantized, kept)``)."""
        n = lay.keys.shape[-2]
        n_quant = max(0, min(n_quant, n - 1))
        call.nq[idx] = n_quant
        pos = pos.expand(-1, scores.shape[1], -1)
        order = scores.masked_fill(~call.layout.entry_valid(pos), float("-inf")).argsort(dim=-1)  # low first
        quant = order[..., :n_quant].sort(dim=-1).values
        full = order[..., n_quant:].sort(dim=-1).values
        perm = torch.cat([quant, full], dim=-1)
        lay.keys, lay.values = gather_entries(lay.keys, perm), gather_entries(lay.values, perm)
        call.layout.set_positions(idx, pos.gather(2, perm))
        fmt = dict(bits=self.bits, fmt=self.format)
        k = quantize(lay.keys[:, :, :n_quant], **fmt)
        v = quantize(lay.values[:, :, :n_quant], **fmt)
        call.store[idx] = (k, v)
        lay.keys = lay.keys[:, :, n_quant:].contiguous()
        lay.values = lay.values[:, :, n_quant:].contiguous()
        call.expect[idx] = n
        call.stats.setdefault("quantized_per_layer", {})[idx] = n_quant
