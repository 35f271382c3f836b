"""Temporal de-duplication of streaming tokens (`TemporalDedup`).

TimeChat-Online's Differential Token Drop (DTD, arXiv:2504.17343): a new frame's visual token
that is nearly identical to the token at the same grid cell (h, w) of the previous frame adds
nothing; drop it before it ever reaches the LLM. The kept previous token absorbs its ``size``
(how many original tokens it stands for), so merges preserve total size (ToMe convention).
Because the previous token's embedding is left unchanged, its cached keys/values stay valid:
DTD is free for an incremental KV cache.

`same_cell_match` is the pure tensor function shared with the eviction policy's temporal
redundancy (InfiniPot-V TaR). `last_per_cell` gives, for a memory of several entries, the newest
token held at every cell: a cell dropped as static in later frames keeps its partner in the entry
that still holds it (as the offline ``temporal`` merger tracks the last kept token per cell), so a
partly static scene is stored once, not re-admitted every other frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError


def same_cell_match(a_embeds: torch.Tensor, a_coords: torch.Tensor, b_embeds: torch.Tensor,
                    b_coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each token of ``a`` (Ta, D) the token of ``b`` (Tb, D) at the same (h, w) cell.

    coords are long (T, 3) rows (t, h, w). Returns ``sim`` float (Ta,) cosine similarity
    (0 where ``b`` has no token at that cell) and ``idx`` long (Ta,) index into ``b`` (-1: none).
    """
    ta = a_embeds.shape[0]
    sim = torch.zeros(ta, dtype=torch.float32)
    idx = torch.full((ta,), -1, dtype=torch.long)
    if ta == 0 or b_embeds.shape[0] == 0:
        return sim, idx
    span = int(max(a_coords[:, 2].max(), b_coords[:, 2].max())) + 1
    a_key = a_coords[:, 1].long() * span + a_coords[:, 2].long()  # (Ta,)
    b_key = b_coords[:, 1].long() * span + b_coords[:, 2].long()  # (Tb,)
    order = torch.argsort(b_key)
    sorted_key = b_key[order]
    pos = torch.searchsorted(sorted_key, a_key).clamp(max=sorted_key.numel() - 1)  # (Ta,)
    found = sorted_key[pos] == a_key
    match = order[pos]
    a_n = torch.nn.functional.normalize(a_embeds.float(), dim=-1)
    b_n = torch.nn.functional.normalize(b_embeds.float()[match], dim=-1)
    cos = (a_n * b_n).sum(-1)  # (Ta,)
    sim[found] = cos[found]
    idx[found] = match[found]
    return sim, idx


def cell_keys(coords: list[torch.Tensor]) -> list[torch.Tensor]:
    """long (T_e,) key of each token's (h, w) cell, comparable across the entries of ``coords``."""
    if not coords:
        return []
    span = max((int(c[:, 2].max()) + 1 for c in coords if c.shape[0]), default=1)
    return [c[:, 1].long() * span + c[:, 2].long() for c in coords]


def last_per_cell(coords: list[torch.Tensor]) -> torch.Tensor:
    """Flat indices (over the concatenated entries, in time order) of the newest token at each
    (h, w) cell any entry holds: long (C,), one per distinct cell (ties inside an entry: the later row)."""
    if not coords or sum(c.shape[0] for c in coords) == 0:
        return torch.empty(0, dtype=torch.long)
    keys = torch.cat(cell_keys(coords))  # (N,)
    uniq, inv = torch.unique(keys, return_inverse=True)
    flat = torch.arange(keys.numel())
    last = torch.full((uniq.numel(),), -1, dtype=torch.long).scatter_reduce(0, inv, flat, reduce="amax")
    return last


@dataclass(kw_only=True)
class TemporalDedup:
    """Drop new tokens whose cosine similarity to the same cell of the previous frame exceeds
    ``threshold`` (TimeChat-Online DTD). ``threshold >= 1`` disables it."""

    threshold: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError("dedup", f"threshold must be in (0, 1], got {self.threshold}")

    def __call__(self, new_embeds: torch.Tensor, new_coords: torch.Tensor, prev_embeds: torch.Tensor,
                 prev_coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``keep`` bool (Tn,) for the new tokens and ``absorb`` long (Tn,): for each dropped
        token the previous token that absorbs it (-1 where kept)."""
        if self.threshold >= 1.0:
            n = new_embeds.shape[0]
            return torch.ones(n, dtype=torch.bool), torch.full((n,), -1, dtype=torch.long)
        sim, idx = same_cell_match(new_embeds, new_coords, prev_embeds, prev_coords)
        drop = (sim > self.threshold) & (idx >= 0)  # (Tn,)
        return ~drop, torch.where(drop, idx, torch.full_like(idx, -1))
