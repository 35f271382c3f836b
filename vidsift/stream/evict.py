"""Which memory tokens to evict when the streaming memory is over budget (`EvictionPolicy`).

After InfiniPot-V (arXiv:2506.15745): score every memory token and keep the top ``budget``.
A token is worth keeping when it is *novel* - low temporal-axis redundancy (TaR: cosine
similarity to the nearest earlier and nearest later memory token at the same grid cell, which
need not be in the neighbouring entry: a static cell dropped by dedup in between still has its
partner) -, *recent*, and, with a
standing query, *relevant* (cosine similarity to the query's mean embedding in LLM space: a
cheap, attention-free proxy). Evicted tokens can be merged into the same-cell neighbour they
are redundant with (their ``size`` moves there), so the memory's total size is preserved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..selectors.cells import cell_keys


def temporal_redundancy(embeds: list[torch.Tensor], coords: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """TaR of every memory token. embeds/coords: per entry (T_e, D) / (T_e, 3), in time order.

    Returns ``redundancy`` float (N,) in [-1, 1] (max cosine to the same-cell token of the nearest
    earlier entry holding that cell and of the nearest later one; -1 where neither exists) and
    ``partner`` long (N,): flat index of that most similar same-cell token (-1: none).
    """
    counts = [e.shape[0] for e in embeds]
    n = sum(counts)
    red = torch.full((n,), -1.0)
    partner = torch.full((n,), -1, dtype=torch.long)
    if n == 0:
        return red, partner
    keys = torch.cat(cell_keys(coords))  # (N,)
    _, cell = torch.unique(keys, return_inverse=True)  # (N,) compact cell id
    n_cells = int(cell.max()) + 1
    offsets = [0]
    for c in counts:
        offsets.append(offsets[-1] + c)
    prev = torch.full((n,), -1, dtype=torch.long)  # nearest earlier same-cell token
    nxt = torch.full((n,), -1, dtype=torch.long)  # nearest later same-cell token
    last = torch.full((n_cells,), -1, dtype=torch.long)
    for i in range(len(counts)):  # forward sweep: the newest token per cell before entry i
        lo, hi = offsets[i], offsets[i + 1]
        prev[lo:hi] = last[cell[lo:hi]]
        last.scatter_reduce_(0, cell[lo:hi], torch.arange(lo, hi), reduce="amax")
    first = torch.full((n_cells,), n, dtype=torch.long)
    for i in reversed(range(len(counts))):  # backward sweep: the oldest token per cell after entry i
        lo, hi = offsets[i], offsets[i + 1]
        nxt[lo:hi] = torch.where(first[cell[lo:hi]] < n, first[cell[lo:hi]], torch.full((hi - lo,), -1, dtype=torch.long))
        first.scatter_reduce_(0, cell[lo:hi], torch.arange(lo, hi), reduce="amin")
    x = torch.nn.functional.normalize(torch.cat(embeds).float(), dim=-1)  # (N, D)
    for cand in (prev, nxt):
        has = cand >= 0
        sim = torch.full((n,), -1.0)
        sim[has] = (x[has] * x[cand[has]]).sum(-1)
        better = has & (sim > red)
        red = torch.where(better, sim, red)
        partner = torch.where(better, cand, partner)
    return red, partner


@dataclass(kw_only=True)
class EvictionPolicy:
    """score = novelty * (1 - TaR) + recency * age_rank + relevance * cos(token, query).

    novelty, recency, relevance: non-negative weights (relevance only counts with a query).
    merge: move an evicted token's size into its redundant neighbour (if kept).
    """

    novelty: float = 1.0
    recency: float = 1.0
    relevance: float = 1.0
    merge: bool = True

    def __post_init__(self) -> None:
        for name in ("novelty", "recency", "relevance"):
            if getattr(self, name) < 0:
                raise ConfigError("eviction", f"{name} weight must be >= 0, got {getattr(self, name)}")

    def scores(self, embeds: list[torch.Tensor], coords: list[torch.Tensor], times_s: list[float],
               query: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (score (N,), partner (N,)) for the flattened memory tokens."""
        red, partner = temporal_redundancy(embeds, coords)
        counts = [e.shape[0] for e in embeds]
        t = torch.tensor(times_s, dtype=torch.float32).repeat_interleave(torch.tensor(counts))  # (N,)
        span = float(t.max() - t.min()) if t.numel() else 0.0
        age = (t - t.min()) / span if span > 0 else torch.ones_like(t)  # 0 oldest .. 1 newest
        score = self.novelty * (1 - red.clamp(min=0)) + self.recency * age
        if query is not None and self.relevance > 0:
            flat = torch.nn.functional.normalize(torch.cat(embeds).float(), dim=-1)  # (N, D)
            q = torch.nn.functional.normalize(query.float().reshape(-1), dim=0)  # (D,)
            score = score + self.relevance * (flat @ q)
        return score, partner

    def select(self, score: torch.Tensor, keep: int) -> torch.Tensor:
        """Sorted flat indices to evict so that ``keep`` tokens remain (lowest scores go;
        ties go to the oldest)."""
        n = score.numel()
        if n <= keep:
            return torch.empty(0, dtype=torch.long)
        # stable: among equal scores the earlier (older) token is evicted first
        order = torch.sort(score, stable=True).indices
        return torch.sort(order[: n - keep]).values
