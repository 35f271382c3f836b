"""Same-cell temporal redundancy: a token that repeats the token at the same grid cell (h, w) of an
earlier frame adds (almost) nothing. One concept, used offline by the ``temporal`` merger and live
by the stream's dedup (`vidsift.stream.dtd.TemporalDedup`) and eviction.

DyCoke (Tao et al., arXiv:2411.15024) and TimeChat-Online's Differential Token Drop
(arXiv:2504.17343) compare each new token with the newest kept token at its cell.

- `same_cell_match`: for every token of one set, the token of another at the same cell and their cosine
- `same_cell_partner`: that token when the cosine exceeds a threshold (the token is redundant)
- `cell_keys`, `last_per_cell`: cell keys across several groups, and the newest token at each cell
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
    a_key, b_key = cell_keys([a_coords, b_coords])
    order = torch.argsort(b_key)
    sorted_key = b_key[order]
    pos = torch.searchsorted(sorted_key, a_key).clamp(max=sorted_key.numel() - 1)  # (Ta,)
    found = sorted_key[pos] == a_key
    match = order[pos]
    cos = (F.normalize(a_embeds.float(), dim=-1) * F.normalize(b_embeds.float()[match], dim=-1)).sum(-1)  # (Ta,)
    sim[found] = cos[found]
    idx[found] = match[found]
    return sim, idx


def same_cell_partner(a_embeds: torch.Tensor, a_coords: torch.Tensor, b_embeds: torch.Tensor,
                      b_coords: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`same_cell_match`, thresholded: -> ``sim`` float (Ta,) and ``partner`` long (Ta,), the index into
    ``b`` of the same-cell token each token of ``a`` repeats (cosine > ``threshold``), -1 where none."""
    sim, idx = same_cell_match(a_embeds, a_coords, b_embeds, b_coords)
    redundant = (sim > threshold) & (idx >= 0)
    return sim, torch.where(redundant, idx, torch.full_like(idx, -1))


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
    return torch.full((uniq.numel(),), -1, dtype=torch.long).scatter_reduce(0, inv, flat, reduce="amax")
