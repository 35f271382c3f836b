"""Temporal de-duplication of streaming tokens (`TemporalDedup`).

TimeChat-Online's Differential Token Drop (DTD, arXiv:2504.17343): a new frame's visual token
that is nearly identical to the token at the same grid cell (h, w) of the previous frame adds
nothing; drop it before it ever reaches the LLM. The kept previous token absorbs its ``size``
(how many original tokens it stands for), so merges preserve total size (ToMe convention).
Because the previous token's embedding is left unchanged, its cached keys/values stay valid:
DTD is free for an incremental KV cache.

The same-cell match is one concept with the offline ``temporal`` merger and the eviction
policy's temporal redundancy (InfiniPot-V TaR), written once in `vidsift.selectors.cells`: the
memory compares a new frame with the newest token it holds at every cell (`last_per_cell`), so a
cell dropped as static in later frames keeps its partner in the entry that still holds it, and a
partly static scene is stored once, not re-admitted every other frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..selectors.cells import same_cell_partner


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
        _, partner = same_cell_partner(new_embeds, new_coords, prev_embeds, prev_coords, self.threshold)
        return partner < 0, partner
