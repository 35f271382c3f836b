"""`StreamMemory`: the rolling visual-token memory of a stream, bounded by a token budget.

Each encoded temporal group (a frame, or a Qwen2.5-VL frame pair) becomes a `MemoryEntry`.
On arrival its tokens that repeat the newest token the memory holds at the same grid cell are
dropped (`TemporalDedup`; that token may sit in an older entry when the cell was static since, as
the offline ``temporal`` merger tracks the last kept token per cell); when the
memory holds more than ``budget`` tokens the `EvictionPolicy` removes the least useful ones.
Both operations report exactly which flat token indices left, so an incremental KV cache can
drop the same rows from every layer and stay consistent with the memory. Memory use is
bounded by the budget however long the stream runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..types import VisualTokens
from ..selectors.cells import last_per_cell
from .dtd import TemporalDedup
from .evict import EvictionPolicy


@dataclass(eq=False)
class MemoryEntry:
    """One temporal group in memory. embeds (T, D); coords long (T, 3) (t, h, w) in the group's
    full LLM grid; size float (T,); grid_thw long (3,); t_s the stream time (seconds)."""

    entry_id: int
    t_s: float
    pts_seconds: float
    index: int
    grid_thw: torch.Tensor
    embeds: torch.Tensor
    coords: torch.Tensor
    size: torch.Tensor
    deepstack: list[torch.Tensor] | None = None  # Qwen3-VL: (T, D) per DeepStack level, pruned alike

    @property
    def n_tokens(self) -> int:
        return int(self.embeds.shape[0])


@dataclass(kw_only=True)
class StreamMemory:
    """Memory of at most ``budget`` visual tokens (ordered by time)."""

    budget: int
    dedup: TemporalDedup = field(default_factory=TemporalDedup)
    policy: EvictionPolicy = field(default_factory=EvictionPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.budget, int) or self.budget < 1:
            raise ConfigError("budget", f"must be an integer >= 1 visual tokens, got {self.budget!r}")
        self.entries: list[MemoryEntry] = []
        self.query: torch.Tensor | None = None  # (D,) standing-query embedding for relevance
        self._next_id = 0
        self.lock = threading.RLock()
        self.stats = {"tokens_in": 0, "tokens_deduped": 0, "tokens_evicted": 0, "entries_in": 0}

    @property
    def n_tokens(self) -> int:
        return sum(e.n_tokens for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def span_s(self) -> tuple[float, float] | None:
        return (self.entries[0].t_s, self.entries[-1].t_s) if self.entries else None

    def _new_entry(self, tokens: VisualTokens, t_s: float) -> tuple[MemoryEntry | None, int]:
        """Group 0 of ``tokens`` minus the tokens repeating the newest memory token at their cell (DTD),
        not yet stored."""
        if tokens.n_groups != 1:
            raise ValueError(f"StreamMemory takes one group at a time, got {tokens.n_groups}")
        embeds, coords, size = tokens.embeds[0].detach(), tokens.coords[0].long(), tokens.size[0].float().clone()
        deep = None if tokens.deepstack is None else [lvl.detach() for lvl in tokens.deepstack[0]]
        self.stats["tokens_in"] += embeds.shape[0]
        self.stats["entries_in"] += 1
        deduped = 0
        if self.entries:
            ref = last_per_cell([e.coords for e in self.entries])  # (C,) flat index of the newest token per cell
            flat_embeds = torch.cat([e.embeds for e in self.entries])
            flat_coords = torch.cat([e.coords for e in self.entries])
            keep, absorb = self.dedup(embeds, coords, flat_embeds[ref], flat_coords[ref])
            dropped = ~keep
            if dropped.any():
                sizes = torch.cat([e.size for e in self.entries])
                sizes.index_add_(0, ref[absorb[dropped]], size[dropped])
                start = 0
                for e in self.entries:  # sizes only change: cached keys/values stay valid
                    e.size = sizes[start:start + e.n_tokens]
                    start += e.n_tokens
                deduped = int(dropped.sum())
                embeds, coords, size = embeds[keep], coords[keep], size[keep]
                deep = None if deep is None else [lvl[keep] for lvl in deep]
        self.stats["tokens_deduped"] += deduped
        if embeds.shape[0] == 0:
            return None, deduped
        entry = MemoryEntry(self._next_id, float(t_s), float(tokens.pts_seconds[0]), int(tokens.index[0]),
                            tokens.grid_thw[0].clone(), embeds, coords, size, deep)
        self._next_id += 1
        return entry, deduped

    def admit(self, tokens: VisualTokens, *, t_s: float) -> tuple[MemoryEntry | None, torch.Tensor]:
        """Dedup, append and evict in one step, so nobody ever sees more than ``budget`` tokens.

        Returns the new entry with its surviving tokens (None if none survived) and the sorted flat
        indices evicted among the tokens that were in memory *before* - what an incremental KV cache
        drops before appending the new entry's survivors."""
        with self.lock:
            n_before = self.n_tokens
            entry, _ = self._new_entry(tokens, t_s)
            candidates = self.entries + ([entry] if entry is not None else [])
            evicted, kept = self._evict(candidates)
            self.entries = kept
            alive = entry is not None and any(e is entry for e in kept)
            return (entry if alive else None), evicted[evicted < n_before]

    def push(self, tokens: VisualTokens, *, t_s: float) -> tuple[MemoryEntry | None, int]:
        """Append group 0 of ``tokens`` at stream time ``t_s`` after dropping the tokens that
        repeat the newest memory token at their cell (DTD). Returns the new entry (None if every token was
        redundant) and how many tokens were dropped. Does not evict: call `evict` next."""
        with self.lock:
            entry, deduped = self._new_entry(tokens, t_s)
            if entry is not None:
                self.entries.append(entry)
            return entry, deduped

    def evict(self) -> torch.Tensor:
        """Evict until the memory fits the budget; returns the sorted flat indices (in the token
        order before eviction) that left, so a KV cache can drop the same rows."""
        with self.lock:
            evicted, self.entries = self._evict(self.entries)
            return evicted

    def _evict(self, entries: list[MemoryEntry]) -> tuple[torch.Tensor, list[MemoryEntry]]:
        """Trim ``entries`` to the budget -> (evicted flat indices, the entries still holding tokens)."""
        if sum(e.n_tokens for e in entries) <= self.budget:
            return torch.empty(0, dtype=torch.long), entries
        score, partner = self.policy.scores([e.embeds for e in entries], [e.coords for e in entries],
                                            [e.t_s for e in entries], self.query)
        evict = self.policy.select(score, self.budget)  # (E,) sorted flat indices
        gone = torch.zeros(score.numel(), dtype=torch.bool)
        gone[evict] = True
        sizes = torch.cat([e.size for e in entries])  # (N,)
        if self.policy.merge:
            target = partner[evict]
            ok = target >= 0
            ok[ok.clone()] = ~gone[target[ok]]
            sizes.index_add_(0, target[ok], sizes[evict[ok]])
        start, kept = 0, []
        for e in entries:
            keep = ~gone[start:start + e.n_tokens]
            e.size = sizes[start:start + e.n_tokens][keep]
            e.embeds, e.coords = e.embeds[keep], e.coords[keep]
            if e.deepstack is not None:
                e.deepstack = [lvl[keep] for lvl in e.deepstack]
            start += keep.numel()
            if e.n_tokens:
                kept.append(e)
        self.stats["tokens_evicted"] += int(evict.numel())
        return evict, kept

    def as_visual_tokens(self) -> VisualTokens | None:
        """The whole memory as `VisualTokens` (one group per entry) for re-prefilling adapters."""
        with self.lock:
            if not self.entries:
                return None
            es = self.entries
            return VisualTokens(
                embeds=[e.embeds for e in es], coords=[e.coords for e in es], size=[e.size for e in es],
                grid_thw=torch.stack([e.grid_thw for e in es]),
                pts_seconds=np.array([e.t_s for e in es], dtype=np.float64),
                index=np.array([e.index for e in es], dtype=np.int64),
                deepstack=[e.deepstack for e in es] if all(e.deepstack is not None for e in es) else None,
            )
