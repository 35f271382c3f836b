"""Answering from a stream's memory: an incremental KV cache, or re-prefill as the fallback.

`IncrementalCache` keeps the LLM's keys/values of ``[prompt head, memory tokens...]`` and
extends them as entries arrive (chunked prefill, at most ``chunk_tokens`` per forward), so a
question only costs its own prefill + decode, whatever the stream length (StreamingVLM,
arXiv:2510.09608; ReKV, arXiv:2503.00540; LION-FS, arXiv:2503.03663). The question's rows are
truncated after the answer, so the cache again holds exactly the memory. When the memory evicts
tokens the same rows are dropped from every layer; the surviving keys are then *rebased* (exact
re-rotation of their RoPE phases) so positions stay bounded and match the layout a re-prefill of
the memory would use. Tokens computed while now-evicted tokens were present keep that context -
the usual streaming approximation (StreamingLLM-style); without evictions the cache equals a
one-shot prefill of the same layout (tested).

Families (``make_cache``): an adapter names its cache in `CACHES` (``ModelAdapter.incremental_cache``):
Qwen2-VL / Qwen2.5-VL (M-RoPE, `kv_qwen.QwenMRoPECache`) and LLaVA-OneVision (1D RoPE,
`kv_llava.LlavaOnevisionCache`). Others (SmolVLM2's per-frame text, Qwen3-VL's deepstack and
timestamp text) name none and use `ReprefillAnswerer`: each question re-prefills the
whole memory through ``adapter.build_inputs`` + ``generate`` - exact, but its cost grows with
the memory size (bounded by the budget).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..registry import Registry
from ..pipeline.adapters.base import ModelAdapter
from ..pipeline.attn import apply_rope
from .memory import MemoryEntry, StreamMemory


@dataclass
class Reply:
    """An answer's text and its cost: prompt tokens prefilled, new tokens, seconds to the first token."""

    text: str
    prefill_tokens: int
    new_tokens: int
    ttft_s: float
    total_s: float
    context_tokens: int


def _stop_ids(adapter: ModelAdapter) -> set[int]:
    ids: set[int] = set()
    eos = getattr(getattr(adapter.model, "generation_config", None), "eos_token_id", None)
    ids.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    tok = adapter.tokenizer
    for name in ("<|im_end|>", "<|endoftext|>"):
        tid = tok.convert_tokens_to_ids(name)
        if isinstance(tid, int) and tid >= 0 and (tid != tok.unk_token_id or name == tok.unk_token):
            ids.add(int(tid))
    if tok.eos_token_id is not None:
        ids.add(int(tok.eos_token_id))
    return ids


class IncrementalCache(ABC):
    """The memory's KV cache, extended incrementally (shared machinery; families subclass).

    chunk_tokens: most tokens per prefill forward. rebase: re-rotate cached keys after evictions
    so positions stay bounded (off: positions keep growing with the stream).
    Subclasses define the prompt head/tail, the positions of memory tokens and the rebase.
    Not thread-safe by itself: `StreamSession` serialises calls with one lock.
    """

    rope_rows: int = 1  # rows of position_ids the language model takes (3 for M-RoPE)

    def __init__(self, adapter: ModelAdapter, *, chunk_tokens: int = 512, rebase: bool = True) -> None:
        if chunk_tokens < 1:
            raise ConfigError("chunk_tokens", f"must be >= 1, got {chunk_tokens}")
        self.adapter, self.chunk_tokens, self.rebase_positions = adapter, chunk_tokens, rebase
        self.lm = adapter.model.model.language_model
        self.lm_head = adapter.model.lm_head
        self.stop_ids = _stop_ids(adapter)
        self.cache = None
        self.head_len = 0
        self.positions: list[torch.Tensor] = []  # (rope_rows, T) blocks of the cached memory tokens

    # -- family hooks ---------------------------------------------------------------------------
    @abstractmethod
    def head_ids(self) -> torch.Tensor:
        """Token ids (L,) of the prompt before the first visual token."""

    @abstractmethod
    def tail_embeds(self, question: str) -> torch.Tensor:
        """Embeddings (1, L, D) of everything after the memory: closing markers, question, assistant turn."""

    @abstractmethod
    def entry_positions(self, entry: MemoryEntry) -> torch.Tensor:
        """Positions (rope_rows, T) of a new memory entry's tokens."""

    @abstractmethod
    def question_start(self) -> int:
        """Position of the first tail token."""

    @abstractmethod
    def rebase(self, entries: list[MemoryEntry]) -> int:
        """Re-rotate cached memory keys after an eviction; returns how much positions moved."""

    def _on_reset(self) -> None:
        """Family state to clear with the cache."""

    # -- helpers ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.adapter.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm.embed_tokens.weight.dtype

    @property
    def length(self) -> int:
        return 0 if self.cache is None else int(self.cache.get_seq_length())

    def _ids(self, text: str) -> torch.Tensor:
        return torch.tensor(self.adapter.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)

    def _pos_arg(self, pos: torch.Tensor) -> torch.Tensor:
        """(R, L) positions -> what the language model takes: (3, 1, L) for M-RoPE, (1, L) for 1D."""
        return (pos[:, None] if self.rope_rows == 3 else pos[:1]).to(self.device)

    @torch.no_grad()
    def _forward(self, embeds: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Append embeds (1, L, D) at positions (R, L); returns the last hidden state (1, D)."""
        out = None
        for lo in range(0, embeds.shape[1], self.chunk_tokens):
            hi = lo + self.chunk_tokens
            out = self.lm(inputs_embeds=embeds[:, lo:hi].to(self.device, self.dtype),
                          position_ids=self._pos_arg(pos[:, lo:hi]), past_key_values=self.cache, use_cache=True)
        return out.last_hidden_state[:, -1]

    def _rotate_all(self, delta: torch.Tensor) -> None:
        """Rotate every cached key by ``delta`` (R, L) positions (0 leaves a row unchanged).
        Rotations compose, so keys already at position p rotated by delta sit exactly at p + delta."""
        keys0 = self.cache.layers[0].keys
        cos, sin = (t.to(keys0.dtype) for t in self.lm.rotary_emb(keys0, self._pos_arg(delta)))  # (1, L, d)
        for layer in self.cache.layers:
            layer.keys = apply_rope(layer.keys, cos, sin)

    def _truncate(self, length: int) -> None:
        for layer in self.cache.layers:
            layer.keys = layer.keys[..., :length, :]
            layer.values = layer.values[..., :length, :]

    # -- memory side ---------------------------------------------------------------------------
    @torch.no_grad()
    def reset(self) -> None:
        """An empty cache holding only the prompt head."""
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.adapter.model.config.get_text_config())
        ids = self.head_ids()
        self.head_len = int(ids.numel())
        self.positions = []
        self._on_reset()
        pos = torch.arange(self.head_len)[None].expand(self.rope_rows, -1)
        self._forward(self.lm.embed_tokens(ids[None].to(self.device)), pos)

    @torch.no_grad()
    def append(self, entry: MemoryEntry) -> None:
        """Prefill a new memory entry's tokens on top of the cache."""
        if self.cache is None:
            self.reset()
        pos = self.entry_positions(entry)
        self._forward(entry.embeds[None], pos)
        self.positions.append(pos)

    def drop(self, memory_idx: torch.Tensor) -> None:
        """Remove memory tokens ``memory_idx`` (flat, sorted) from every layer's keys/values."""
        if self.cache is None or memory_idx.numel() == 0:
            return
        keep = torch.ones(self.length, dtype=torch.bool)
        keep[memory_idx + self.head_len] = False
        keep_idx = keep.nonzero().squeeze(1).to(self.device)
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(-2, keep_idx)
            layer.values = layer.values.index_select(-2, keep_idx)
        flat = torch.cat(self.positions, 1)[:, keep[self.head_len:]]
        self.positions = [flat] if flat.numel() else []

    # -- question side -------------------------------------------------------------------------
    @torch.no_grad()
    def _prefill_question(self, question: str) -> tuple[torch.Tensor, int, int]:
        embeds = self.tail_embeds(question)  # (1, L, D)
        p0 = self.question_start()
        pos = (torch.arange(embeds.shape[1]) + p0)[None].expand(self.rope_rows, -1)
        return self._forward(embeds, pos), int(embeds.shape[1]), p0 + int(embeds.shape[1])

    @torch.no_grad()
    def answer(self, question: str, *, max_new_tokens: int = 32) -> Reply:
        """Prefill the tail (question) on top of the memory, decode greedily, then drop the
        question's rows again."""
        if self.cache is None:
            self.reset()
        start = time.perf_counter()
        base = self.length
        out: list[int] = []
        try:
            hidden, n_prompt, next_pos = self._prefill_question(question)
            ttft = time.perf_counter() - start
            for _ in range(max_new_tokens):
                token = int(self.lm_head(hidden).argmax(-1))
                if token in self.stop_ids:
                    break
                out.append(token)
                if len(out) == max_new_tokens:
                    break
                emb = self.lm.embed_tokens(torch.tensor([[token]], device=self.device))
                hidden = self._forward(emb, torch.full((self.rope_rows, 1), next_pos))
                next_pos += 1
        finally:
            self._truncate(base)
        text = self.adapter.tokenizer.decode(out, skip_special_tokens=True)
        return Reply(text, n_prompt, len(out), ttft, time.perf_counter() - start, base)


# cache name (``ModelAdapter.incremental_cache``) -> the incremental cache, imported when first made
CACHES: Registry[type[IncrementalCache]] = Registry("incremental KV cache", {
    "llava_onevision": "vidsift.stream.kv_llava:LlavaOnevisionCache",
    "qwen_mrope": "vidsift.stream.kv_qwen:QwenMRoPECache",
})


def supports_incremental(adapter: ModelAdapter) -> bool:
    return adapter.incremental_cache is not None


def make_cache(adapter: ModelAdapter, **options) -> IncrementalCache:
    """The incremental cache the adapter names; `ConfigError` when its family has none."""
    if adapter.incremental_cache is None:
        raise ConfigError(adapter.family, "no incremental KV cache for this family (it names none; use re-prefill)")
    return CACHES.get(adapter.incremental_cache)(adapter, **options)


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
