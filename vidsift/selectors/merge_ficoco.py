"""``ficoco_v``: FiCoCo-V, filter / correlate / compress on a frame's vision-output tokens.

Han et al., "Filter, Correlate, Compress: Training-Free Token Reduction for MLLM Acceleration",
arXiv:2411.17686 (https://arxiv.org/abs/2411.17686), the FiCoCo-V variant (reduction in the
visual encoding phase):

- filter: redundancy r_i = (1 - lam) * u(p2p_i) - lam * u(sal_i), where p2p_i is the token's mean
  cosine similarity to the frame's other tokens (patch-to-patch redundancy), sal_i the attention it
  receives in the tower's last block (the adapters' ``saliency``; left out when absent) and u()
  scales a score to unit L2 norm over the frame; then the local penalty (2x2 windows of the grid:
  each window's most redundant token is pushed further towards dropping). The T - target most
  redundant tokens are dropped.
- correlate: each dropped token's top-``topk`` kept tokens by cosine similarity; affinity
  exp(cos / tau), candidates under ``rel`` x the best affinity are left out; weights sum to one.
- compress: each dropped token is scattered into those kept tokens with its weights, size-weighted
  (ToMe convention: sizes add up, embeddings are size-weighted means).

Simplified against the paper: it reduces once, on the tower's output, not layer by layer inside
the tower; redundancy and correlation use cosine similarity of the output tokens instead of the
tower's attention logits; ``topk`` is a fixed cap with a relative cut instead of the reference's
quantile rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from . import ficoco_steps
from ._merge import _check
from .merging import Reduction


def p2p_redundancy(embeds: torch.Tensor) -> torch.Tensor:
    """float (T,): mean cosine similarity of each token to the other tokens of its frame."""
    x = F.normalize(embeds.float(), dim=-1)
    t = x.shape[0]
    return (x @ x.sum(0) - (x * x).sum(-1)) / max(t - 1, 1)


@dataclass
class FiCoCoV:
    """lam: weight of attention-received saliency against patch-to-patch redundancy (reference 0.35);
    topk: most kept tokens one dropped token is scattered into; tau: temperature of the cosine
    affinity; rel: targets below rel x the best affinity are left out; window: local-penalty window
    (1: off)."""

    lam: float = 0.35
    topk: int = 3
    tau: float = 0.1
    rel: float = 0.25
    window: int = 2
    name: ClassVar[str] = "ficoco_v"
    kind: ClassVar[str] = "spatial"

    def __post_init__(self) -> None:
        if not isinstance(self.lam, (int, float)) or not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam!r}")
        if isinstance(self.topk, bool) or not isinstance(self.topk, int) or self.topk < 1:
            raise ValueError(f"topk must be an int >= 1, got {self.topk!r}")
        if not isinstance(self.tau, (int, float)) or not self.tau > 0:
            raise ValueError(f"tau must be > 0, got {self.tau!r}")
        if not isinstance(self.rel, (int, float)) or not 0.0 <= self.rel <= 1.0:
            raise ValueError(f"rel must be in [0, 1], got {self.rel!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be an int >= 1, got {self.window!r}")

    def redundancy(self, embeds: torch.Tensor, coords: torch.Tensor | None,
                   saliency: torch.Tensor | None) -> torch.Tensor:
        """The filter score, float (T,): higher is dropped first."""
        score = (1.0 - self.lam) * ficoco_steps.l2_unit(p2p_redundancy(embeds))
        if saliency is not None:
            score = score - self.lam * ficoco_steps.l2_unit(saliency)
        return ficoco_steps.local_penalty(score, coords, self.window)

    def correlate(self, embeds: torch.Tensor, keep: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> targets (n_drop, k) into ``keep``, weights (n_drop, k) summing to one per row."""
        x = F.normalize(embeds.float(), dim=-1)
        cos = x[drop] @ x[keep].T  # (n_drop, m)
        return ficoco_steps.correlate(torch.exp((cos - 1.0) / self.tau), self.topk, self.rel)

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        _check(embeds, size, target)
        t = embeds.shape[0]
        if target >= t:
            return Reduction.identity(embeds, size)
        keep, drop = ficoco_steps.drop_by_score(self.redundancy(embeds, coords, saliency), t - target)
        targets, weights = self.correlate(embeds, keep, drop)
        share = ficoco_steps.scatter_share(t, keep, drop, targets, weights)  # compress, as merge weights
        source = share.argmax(dim=1)  # the output that received most of each input
        return Reduction.of(embeds, size, keep=keep, source=source, share=share)

