"""Answering from a stream's memory: an incremental KV cache (Qwen-VL M-RoPE) or re-prefill.

`IncrementalCache` keeps the LLM's keys/values of ``[prompt head, memory tokens...]`` and
extends them as entries arrive (chunked prefill, at most ``chunk_tokens`` per forward), so a
question only costs its own prefill + decode, whatever the stream length (StreamingVLM,
arXiv:2510.09608; ReKV, arXiv:2503.00540; LION-FS). The question's rows are truncated after
the answer, so the cache again holds exactly the memory.

Positions are consistent across chunks: a memory token of group time ``t_s`` at LLM-grid cell
(h, w) gets M-RoPE position ``(O + floor(t_s * tokens_per_second) - origin, O + h, O + w)`` with
``O`` the head length - the column it has in the stock one-video layout of transformers 5.23
``get_rope_index`` (temporal row from real timestamps, relative to the oldest memory entry like
the adapter's ``build_inputs``); the question text starts at ``O + max(grid h, grid w)`` like
text after a video there. When eviction removes the oldest entry, the cache is *rebased*: every
cached memory key is re-rotated by ``-delta`` on the temporal M-RoPE frequencies (RoPE rotations
compose, so this is exact), so positions stay bounded by the memory's time span instead of
growing with the stream (StreamingLLM/StreamingVLM keep positions inside the cache the same way). When the memory evicts tokens the same
rows are dropped from every layer: the cache holds exactly the memory (the surviving keys keep
their rotary phases; later tokens computed while the evicted ones were present keep that
context - the usual streaming approximation, StreamingLLM-style).

`ReprefillAnswerer` is the fallback for adapters without an incremental path (or when asked):
each question re-prefills the whole memory through ``adapter.build_inputs`` + ``generate`` -
exact, but its cost grows with the memory size (bounded by the budget).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..pipeline.adapters.base import ModelAdapter
from .memory import MemoryEntry, StreamMemory

INCREMENTAL_MODEL_TYPES = ("qwen2_5_vl", "qwen2_vl")


@dataclass
class Reply:
    """An answer's text and its cost: prompt tokens prefilled, new tokens, seconds to the first token."""

    text: str
    prefill_tokens: int
    new_tokens: int
    ttft_s: float
    total_s: float
    context_tokens: int


def supports_incremental(adapter: ModelAdapter) -> bool:
    return getattr(getattr(adapter.model, "config", None), "model_type", None) in INCREMENTAL_MODEL_TYPES


def _stop_ids(adapter: ModelAdapter) -> set[int]:
    ids: set[int] = set()
    gen = getattr(adapter.model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    ids.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    tok = adapter.tokenizer
    for name in ("<|im_end|>", "<|endoftext|>"):
        tid = tok.convert_tokens_to_ids(name)
        if isinstance(tid, int) and tid >= 0 and (tid != tok.unk_token_id or name == tok.unk_token):
            ids.add(int(tid))
    if tok.eos_token_id is not None:
        ids.add(int(tok.eos_token_id))
    return ids


class IncrementalCache:
    """The memory's KV cache for Qwen2-VL / Qwen2.5-VL, extended incrementally.

    chunk_tokens: most tokens per prefill forward. rebase: keep the oldest memory entry at
    temporal position zero (re-rotating cached keys after evictions); off: absolute stream time.

    Not thread-safe by itself: `StreamSession` serialises calls with one lock.
    """

    def __init__(self, adapter: ModelAdapter, *, chunk_tokens: int = 512, rebase: bool = True,
                 system_prompt: str | None = "You are a helpful assistant.") -> None:
        if not supports_incremental(adapter):
            raise ConfigError(getattr(adapter.model.config, "model_type", "model"),
                              f"no incremental KV cache for this family; supported: {', '.join(INCREMENTAL_MODEL_TYPES)}")
        if chunk_tokens < 1:
            raise ConfigError("chunk_tokens", f"must be >= 1, got {chunk_tokens}")
        self.adapter, self.chunk_tokens, self.rebase_positions = adapter, chunk_tokens, rebase
        model = adapter.model
        self.lm = model.model.language_model
        self.lm_head = model.lm_head
        self.tokens_per_second = float(getattr(model.config.vision_config, "tokens_per_second", 1.0) or 1.0)
        if getattr(model.config, "model_type", "") == "qwen2_vl":
            self.tokens_per_second = None  # Qwen2-VL: temporal row is the group counter, not time
        system = f"<|im_start|>system\n{system_prompt}<|im_end|>\n" if system_prompt else ""
        self.head_text = f"{system}<|im_start|>user\n<|vision_start|>"
        self.stop_ids = _stop_ids(adapter)
        self.cache = None
        self.head_len = 0
        self.max_hw = 0  # largest LLM grid side seen (the question's start offset)
        self._group_counter = 0
        self.origin = 0  # temporal position units subtracted from every memory token (rebasing)
        self._t_units: dict[int, int] = {}  # entry_id -> absolute temporal units at append
        self.positions: list[torch.Tensor] = []  # per cached memory token block (3, T): kept for checks

    # -- helpers ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.adapter.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm.embed_tokens.weight.dtype

    def _ids(self, text: str) -> torch.Tensor:
        return torch.tensor(self.adapter.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)

    @property
    def length(self) -> int:
        return 0 if self.cache is None else int(self.cache.get_seq_length())

    @torch.no_grad()
    def _forward(self, embeds: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Append embeds (1, L, D) at M-RoPE positions (3, L); returns the last hidden state (1, D)."""
        out = None
        for lo in range(0, embeds.shape[1], self.chunk_tokens):
            hi = lo + self.chunk_tokens
            out = self.lm(inputs_embeds=embeds[:, lo:hi], position_ids=pos[:, None, lo:hi].to(self.device),
                          past_key_values=self.cache, use_cache=True)
        return out.last_hidden_state[:, -1]

    # -- memory side ---------------------------------------------------------------------------
    @torch.no_grad()
    def reset(self) -> None:
        """Empty cache holding only the prompt head (system turn, ``<|vision_start|>``)."""
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.adapter.model.config.get_text_config())
        ids = self._ids(self.head_text)
        self.head_len = int(ids.numel())
        pos = torch.arange(self.head_len)[None].expand(3, -1)
        self._forward(self.lm.embed_tokens(ids[None].to(self.device)), pos)
        self.max_hw, self._group_counter, self.positions, self.origin, self._t_units = 0, 0, [], 0, {}

    def entry_positions(self, entry: MemoryEntry) -> torch.Tensor:
        """M-RoPE positions (3, T) of a memory entry's tokens (see module docstring)."""
        o = self.head_len
        t = self._t_units.get(entry.entry_id)
        if t is None:
            t = self._time_units(entry)
        c = entry.coords.long().cpu()
        return torch.stack([torch.full_like(c[:, 1], o + t - self.origin), o + c[:, 1], o + c[:, 2]])

    def _time_units(self, entry: MemoryEntry) -> int:
        """Absolute temporal position units of an entry (before subtracting the origin)."""
        if self.tokens_per_second is None:
            return self._group_counter  # Qwen2-VL: one unit per temporal patch
        return int(math.floor(entry.t_s * self.tokens_per_second + 1e-6))

    @torch.no_grad()
    def append(self, entry: MemoryEntry) -> None:
        if self.cache is None:
            self.reset()
        if not self._t_units:
            self.origin = self._time_units(entry)  # the first entry defines time zero
        self._t_units[entry.entry_id] = self._time_units(entry)
        pos = self.entry_positions(entry)
        self._group_counter += 1
        self.max_hw = max(self.max_hw, int(entry.grid_thw[1:].max()))
        self._forward(entry.embeds[None].to(self.device, self.dtype), pos)
        self.positions.append(pos)

    def drop(self, memory_idx: torch.Tensor) -> None:
        """Remove memory tokens ``memory_idx`` (flat, sorted) from every layer's keys/values."""
        if self.cache is None or memory_idx.numel() == 0:
            return
        n = self.length
        keep = torch.ones(n, dtype=torch.bool)
        keep[memory_idx + self.head_len] = False
        keep_idx = keep.nonzero().squeeze(1).to(self.device)
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(-2, keep_idx)
            layer.values = layer.values.index_select(-2, keep_idx)
        flat = torch.cat(self.positions, 1)[:, keep[self.head_len:]]
        self.positions = [flat] if flat.numel() else []

    @torch.no_grad()
    def rebase(self, entries: list[MemoryEntry]) -> int:
        """Make the oldest entry still in memory time zero again: re-rotate the cached memory keys
        by ``-delta`` temporal units (M-RoPE temporal frequencies only). Returns delta."""
        alive = {e.entry_id for e in entries}
        self._t_units = {k: v for k, v in self._t_units.items() if k in alive}
        if not entries or self.cache is None:
            return 0
        delta = self._t_units[entries[0].entry_id] - self.origin
        if delta <= 0:
            return 0
        shift = torch.zeros(3, 1, self.length, dtype=torch.long, device=self.device)
        shift[0, 0, self.head_len:] = -delta  # (t, h, w) rows: rotate the temporal frequencies only
        keys0 = self.cache.layers[0].keys
        cos, sin = self.lm.rotary_emb(keys0, shift)  # (1, L, d)
        cos, sin = cos[:, None], sin[:, None]  # (1, 1, L, d) against keys (B, H, L, d)
        for layer in self.cache.layers:
            k = layer.keys
            half = k.shape[-1] // 2
            rotated = torch.cat((-k[..., half:], k[..., :half]), dim=-1)
            layer.keys = (k * cos + rotated * sin).to(k.dtype)
        self.origin += delta
        if self.positions:
            flat = torch.cat(self.positions, 1)
            flat[0] -= delta
            self.positions = [flat]
        return delta

    def _truncate(self, length: int) -> None:
        for layer in self.cache.layers:
            layer.keys = layer.keys[..., :length, :]
            layer.values = layer.values[..., :length, :]

    # -- question side -------------------------------------------------------------------------
    @torch.no_grad()
    def answer(self, question: str, *, max_new_tokens: int = 32) -> Reply:
        """Prefill ``<|vision_end|>question`` + assistant turn on top of the memory, decode
        greedily, then drop the question's rows again."""
        if self.cache is None:
            self.reset()
        start = time.perf_counter()
        base = self.length
        ids = self._ids(f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n")
        p0 = self.head_len + self.max_hw
        pos = (torch.arange(ids.numel()) + p0)[None].expand(3, -1)
        try:
            hidden = self._forward(self.lm.embed_tokens(ids[None].to(self.device)), pos)
            ttft = time.perf_counter() - start
            out: list[int] = []
            next_pos = p0 + ids.numel()
            for _ in range(max_new_tokens):
                token = int(self.lm_head(hidden).argmax(-1))
                if token in self.stop_ids:
                    break
                out.append(token)
                if len(out) == max_new_tokens:
                    break
                emb = self.lm.embed_tokens(torch.tensor([[token]], device=self.device))
                hidden = self._forward(emb, torch.full((3, 1), next_pos))
                next_pos += 1
        finally:
            self._truncate(base)
        text = self.adapter.tokenizer.decode(out, skip_special_tokens=True)
        return Reply(text, int(ids.numel()), len(out), ttft, time.perf_counter() - start, base)

    @torch.no_grad()
    def question_logits(self, question: str) -> torch.Tensor:
        """Logits (V,) of the first answer token (for equivalence tests); cache unchanged."""
        base = self.length
        ids = self._ids(f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n")
        p0 = self.head_len + self.max_hw
        try:
            hidden = self._forward(self.lm.embed_tokens(ids[None].to(self.device)),
                                   (torch.arange(ids.numel()) + p0)[None].expand(3, -1))
        finally:
            self._truncate(base)
        return self.lm_head(hidden)[0].float()


class ReprefillAnswerer:
    """Fallback: every question re-reads the whole memory via the adapter's own prompt layout."""

    def __init__(self, adapter: ModelAdapter) -> None:
        self.adapter = adapter

    @torch.no_grad()
    def answer(self, memory: StreamMemory, question: str, *, max_new_tokens: int = 32) -> Reply:
        start = time.perf_counter()
        tokens = memory.as_visual_tokens()
        if tokens is None:
            return Reply("", 0, 0, 0.0, 0.0, 0)
        inputs = self.adapter.build_inputs(tokens, question)
        new = self.adapter.generate(inputs, max_new_tokens=max_new_tokens)
        total = time.perf_counter() - start
        text = self.adapter.decode(new)[0]
        return Reply(text, inputs.prompt_len, int(new.shape[1]), total, total, inputs.prompt_len)
