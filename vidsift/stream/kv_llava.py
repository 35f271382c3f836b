"""Incremental KV cache for LLaVA-OneVision (1D RoPE on a Qwen2 LLM): `LlavaOnevisionCache`.

Layout (the adapter's: the checkpoint's chat template with one video placeholder)::

    [<|im_start|>user ] [memory tokens ...] [image_newline, \\n question <|im_end|><|im_start|>assistant\\n]

Head and tail ids come from tokenizing the adapter's ``prompt_parts`` around one video token and
splitting there, exactly as ``build_inputs`` tokenizes them. Memory tokens take consecutive
positions as they arrive; after an eviction the surviving keys are re-rotated by a per-token delta
so positions are contiguous again (``head_len + i``), which is the re-prefill layout of the
memory, and the tail starts right after the memory. Without evictions the cache equals ``build_inputs`` on the
same memory (tested).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .kvcache import IncrementalCache
from .memory import MemoryEntry


class LlavaOnevisionCache(IncrementalCache):
    """LLaVA-OneVision / LLaVA-Video memory cache (see module docstring)."""

    rope_rows = 1

    def __init__(self, adapter, *, chunk_tokens: int = 512, rebase: bool = True) -> None:
        super().__init__(adapter, chunk_tokens=chunk_tokens, rebase=rebase)
        if adapter.time_instruction:
            raise ConfigError("time_instruction", "the frame-time line changes with the memory; use re-prefill")
        self.video_token_id = int(adapter.model.config.video_token_id)
        self._on_reset()

    def _on_reset(self) -> None:
        self._next = 0  # next memory position offset (after the head)

    def _split(self, question: str) -> tuple[list[int], list[int]]:
        """(head ids, tail ids) of the adapter's prompt around one video placeholder."""
        parts, tok = self.adapter.prompt_parts(question), self.adapter.tokenizer
        ids = tok(parts.head + tok.convert_ids_to_tokens(self.video_token_id) + parts.tail)["input_ids"]
        at = ids.index(self.video_token_id)
        return ids[:at], ids[at + 1:]

    def head_ids(self) -> torch.Tensor:
        return torch.tensor(self._split("")[0], dtype=torch.long)

    def tail_embeds(self, question: str) -> torch.Tensor:
        newline = self.adapter.model.model.image_newline  # (D,)
        tail = torch.tensor(self._split(question)[1], dtype=torch.long, device=self.device)
        return torch.cat([newline[None].to(self.dtype), self.lm.embed_tokens(tail)])[None]  # (1, 1 + L, D)

    def question_start(self) -> int:
        return self.head_len + self._next

    def entry_positions(self, entry: MemoryEntry) -> torch.Tensor:
        n = entry.n_tokens
        pos = torch.arange(self.head_len + self._next, self.head_len + self._next + n)[None]  # (1, T)
        self._next += n
        return pos

    @torch.no_grad()
    def rebase(self, entries: list[MemoryEntry]) -> int:
        if self.cache is None or not self.positions or not self.rebase_positions:
            return 0
        old = torch.cat(self.positions, 1)[0]  # (N,)
        new = torch.arange(self.head_len, self.head_len + old.numel())
        if torch.equal(old, new):
            return 0
        delta = torch.zeros(1, self.length, dtype=torch.long)
        delta[0, self.head_len:] = new - old  # <= 0: close the gaps left by evicted tokens
        self._rotate_all(delta)
        self.positions = [new[None]]
        moved = int(self._next - old.numel())
        self._next = int(old.numel())
        return moved
