"""Incremental KV cache for Qwen2-VL / Qwen2.5-VL (M-RoPE): `QwenMRoPECache`.

Layout (the adapter's ``prompt_parts`` around one video block, transformers 5.23 ``get_rope_index``)::

    [head: system turn, <|im_start|>user\\n] [<|vision_start|>] [memory tokens ...]
    [<|vision_end|>] [tail: question<|im_end|>\\n<|im_start|>assistant\\n]

A memory token of group time ``t_s`` at LLM-grid cell (h, w) sits at M-RoPE position
``(O + floor(t_s * tokens_per_second) - origin, O + h, O + w)`` (``O`` = head length; Qwen2-VL:
the temporal-patch counter instead of time); the tail starts at ``O + max(grid h, grid w)`` like
text after a video. ``origin`` is the oldest memory entry's time: when it leaves, every cached
memory key is re-rotated by ``-delta`` on the temporal frequencies only (position ``(-delta, 0, 0)``
rotates nothing else), so positions match the adapter's re-prefill layout (temporal ids relative
to the first group shown) and stay bounded by the memory's time span.
"""

from __future__ import annotations

import math

import torch

from .kvcache import IncrementalCache
from .memory import MemoryEntry


class QwenMRoPECache(IncrementalCache):
    """Qwen2-VL / Qwen2.5-VL memory cache (see module docstring)."""

    rope_rows = 3

    def __init__(self, adapter, *, chunk_tokens: int = 512, rebase: bool = True) -> None:
        super().__init__(adapter, chunk_tokens=chunk_tokens, rebase=rebase)
        cfg = adapter.model.config
        self.tokens_per_second = adapter.tokens_per_second  # None: Qwen2-VL counts temporal patches
        self.vision_start, self.vision_end = int(cfg.vision_start_token_id), int(cfg.vision_end_token_id)
        self._on_reset()

    def _on_reset(self) -> None:
        self.max_hw = 0  # largest LLM grid side seen (the tail's start offset)
        self.origin = 0  # temporal units subtracted from every memory token
        self._group_counter = 0
        self._t_units: dict[int, int] = {}  # entry_id -> absolute temporal units

    def head_ids(self) -> torch.Tensor:
        head = self._ids(self.adapter.prompt_parts("").head)
        return torch.cat([head, torch.tensor([self.vision_start])])

    def tail_embeds(self, question: str) -> torch.Tensor:
        ids = torch.cat([torch.tensor([self.vision_end]), self._ids(self.adapter.prompt_parts(question).tail)])
        return self.lm.embed_tokens(ids[None].to(self.device))

    def question_start(self) -> int:
        return self.head_len + self.max_hw

    def _time_units(self, entry: MemoryEntry) -> int:
        if self.tokens_per_second is None:
            return self._group_counter
        return int(math.floor(entry.t_s * float(self.tokens_per_second) + 1e-6))

    def entry_positions(self, entry: MemoryEntry) -> torch.Tensor:
        if entry.entry_id not in self._t_units:
            if not self._t_units:
                self.origin = self._time_units(entry)  # the first entry defines time zero
            self._t_units[entry.entry_id] = self._time_units(entry)
            self._group_counter += 1
            self.max_hw = max(self.max_hw, int(entry.grid_thw[1:].max()))
        o, c = self.head_len, entry.coords.long().cpu()
        t = self._t_units[entry.entry_id] - self.origin
        return torch.stack([torch.full_like(c[:, 1], o + t), o + c[:, 1], o + c[:, 2]])  # (3, T)

    @torch.no_grad()
    def rebase(self, entries: list[MemoryEntry]) -> int:
        alive = {e.entry_id for e in entries}
        self._t_units = {k: v for k, v in self._t_units.items() if k in alive}
        if not entries or self.cache is None or not self.rebase_positions:
            return 0
        delta = self._t_units[entries[0].entry_id] - self.origin
        if delta <= 0:
            return 0
        shift = torch.zeros(3, self.length, dtype=torch.long)
        shift[0, self.head_len:] = -delta  # (t, h, w) rows: rotate the temporal frequencies only
        self._rotate_all(shift)
        self.origin += delta
        if self.positions:
            flat = torch.cat(self.positions, 1)
            flat[0] -= delta
            self.positions = [flat]
        return delta
