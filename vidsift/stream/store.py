"""`MemoryStore`: the memory part of a `StreamSession` - the `StreamMemory` sized by the budget and
the way answers read it: the incremental KV cache the adapter names (`make_cache`), kept in step
with every admission and eviction, or a `ReprefillAnswerer` for families without one.

A share budget is resolved at the first admitted frames (their size sets the tokens per frame);
until then the memory is sized for frames of ``max_side`` pixels. ``lock`` guards the memory and
the cache; the session takes it (after the model's shared lock) around each model call.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import torch

from ..errors import ConfigError
from ..pipeline.adapters.base import ModelAdapter
from ..types import VisualTokens
from .budget import memory_tokens
from .dtd import TemporalDedup
from .evict import EvictionPolicy
from .kvcache import ReprefillAnswerer, make_cache, supports_incremental
from .memory import StreamMemory
from .options import StreamOptions


class MemoryStore:
    """The stream's bounded memory and its answering state (cache or re-prefill)."""

    def __init__(self, adapter: ModelAdapter, options: StreamOptions, *, length_s: Callable[[], float | None]) -> None:
        self.adapter, self.budget, self.fps = adapter, options.budget, options.fps
        self._length_s = lambda: options.duration_s or length_s()
        side = options.max_side or 448  # until the first frame: frames of the largest size they may arrive in
        size = memory_tokens(self.budget, tokens_per_frame=adapter.tokens_per_frame(side, side), fps=self.fps,
                             length_s=options.duration_s, group_frames=adapter.frames_per_group)
        self.memory = StreamMemory(budget=size, dedup=TemporalDedup(threshold=options.dedup),
                                   policy=options.policy or EvictionPolicy())
        self._sized = self.budget.tokens is not None
        self.cache = None
        if options.incremental or (options.incremental is None and supports_incremental(adapter)):
            try:
                self.cache = make_cache(adapter, chunk_tokens=options.chunk_tokens)
            except ConfigError:
                if options.incremental:  # asked for explicitly: say why not
                    raise
        self.reprefill = None if self.cache is not None else ReprefillAnswerer(adapter)
        self.mode = "incremental" if self.cache is not None else "reprefill"
        self.lock = threading.RLock()  # the memory and the cache
        self.has_frames = threading.Event()  # set once the memory holds a frame (or the session ends)
        self.groups = 0

    def reset(self, query: str | None) -> None:
        """Before the stream starts: the standing query's embedding (relevance) and an empty cache."""
        with self.lock:
            if query:
                emb = self.adapter.model.get_input_embeddings()
                ids = self.adapter.tokenizer(query, add_special_tokens=False)["input_ids"]
                with torch.no_grad():
                    self.memory.query = emb(torch.tensor(ids, device=self.adapter.device)).float().mean(0).cpu()
            if self.cache is not None:
                self.cache.reset()

    def _size(self, height: int, width: int) -> None:
        """Resolve a share budget once the frames' size is known (before the first admission)."""
        self.memory.budget = memory_tokens(self.budget, tokens_per_frame=self.adapter.tokens_per_frame(height, width),
                                           fps=self.fps, length_s=self._length_s(),
                                           group_frames=self.adapter.frames_per_group)
        self._sized = True

    def admit(self, tokens: VisualTokens, *, height: int, width: int) -> None:
        """Admit each temporal group of ``tokens`` (frames of ``height`` x ``width``): dedup and
        eviction in one step, the cache dropping, appending and rebasing alike."""
        with self.lock:
            if not self._sized:
                self._size(height, width)
            for g in range(tokens.n_groups):
                group = tokens.select([g])
                # one step: the memory (and the cache) never hold more than the budget
                entry, evicted = self.memory.admit(group, t_s=float(group.pts_seconds[0]))
                if self.cache is not None:
                    self.cache.drop(evicted)
                    if entry is not None:
                        self.cache.append(entry)
                    if evicted.numel():
                        self.cache.rebase(self.memory.entries)
            self.groups += tokens.n_groups
            if len(self.memory):
                self.has_frames.set()

    def answer(self, question: str, *, max_new_tokens: int) -> Any:
        """The model's reply from the memory as it is now (call under ``lock``)."""
        if self.cache is not None:
            return self.cache.answer(question, max_new_tokens=max_new_tokens)
        return self.reprefill.answer(self.memory, question, max_new_tokens=max_new_tokens)
