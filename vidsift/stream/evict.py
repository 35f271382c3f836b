"""Which memory tokens to evict when the streaming memory is over budget (`EvictionPolicy`).

After InfiniPot-V (arXiv:2506.15745): score every memory token and keep the top ``budget``.
A token is worth keeping when it is *novel* - low temporal-axis redundancy (TaR: cosine
similarity to the same grid cell in the neighbouring memory entries) -, *recent*, and, with a
standing query, *relevant* (cosine similarity to the query's mean embedding in LLM space: a
cheap, attention-free proxy). Evicted tokens can be merged into the same-cell neighbour they
are redundant with (their ``size`` moves there), so the memory's total size is preserved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .dtd import same_cell_match


def temporal_redundancy(embeds: list[torch.Tensor], coords: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """TaR of every memory token. embeds/coords: per entry (T_e, D) / (T_e, 3), in time order.

    Returns ``redundancy`` float (N,) in [-1, 1] (max same-cell cosine to the previous or next
    entry) and ``partner`` long (N,): flat index of that most similar neighbour (-1: none).
    """
    offsets = [0]
    for e in embeds:
        offsets.append(offsets[-1] + e.shape[0])
    n = offsets[-1]
    red = torch.full((n,), -1.0)
    partner = torch.full((n,), -1, dtype=torch.long)
    for i in range(len(embeds)):
        lo, hi = offsets[i], offsets[i + 1]
        for j in (i - 1, i + 1):
            if not 0 <= j < len(embeds):
                continue
            sim, idx = same_cell_match(embeds[i], coords[i], embeds[j], coords[j])
            sim = torch.where(idx >= 0, sim, torch.full_like(sim, -1.0))
            better = sim > red[lo:hi]
            red[lo:hi] = torch.where(better, sim, red[lo:hi])
            partner[lo:hi] = torch.where(better, idx + offsets[j], partner[lo:hi])
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
