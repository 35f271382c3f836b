"""Temporal de-duplication of streaming tokens (`TemporalDedup`).

TimeChat-Online's Differential Token Drop (DTD, arXiv:2504.17343): a new frame's visual token
that is nearly identical to the token at the same grid cell (h, w) of the previous frame adds
nothing; drop it before it ever reaches the LLM. The kept previous token absorbs its ``size``
(how many original tokens it stands for), so merges preserve total size (ToMe convention).
Because the previous token's embedding is left unchanged, its cached keys/values stay valid:
DTD is free for an incremental KV cache.

`same_cell_match` is the pure tensor function shared with the eviction policy's temporal
redundancy (InfiniPot-V TaR).
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
