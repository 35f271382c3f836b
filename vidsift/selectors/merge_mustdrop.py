"""``mustdrop``: MustDrop's vision-encoding stage, a protected key-token set plus thresholded
merging of similar adjacent tokens.

Liu et al., "Multi-Stage Vision Token Dropping: Towards Efficient Multimodal Large Language Model",
arXiv:2411.10803 (https://arxiv.org/abs/2411.10803), stage 1 ("local spatial merging" and the "key
token set"). The other two stages are the ``mustdrop`` prefill pruner (`vidsift.pipeline.prune.mustdrop`)
and the ``mustdrop`` cache press (`vidsift.pipeline.press.mustdrop`); the ``mustdrop`` budget preset
runs all three.

Per frame:

- key set: the ``ceil(key * T)`` tokens with the highest encoder saliency (the attention each token
  receives in the tower, as the ``saliency`` merger uses; a model-free distinctiveness score when the
  adapter gives none). Key tokens are never merged: each leaves the frame as itself, size unchanged.
- merging: adjacent (4-neighbour) regions of the other tokens merge, most similar first, while their
  cosine similarity reaches ``threshold`` (so a frame with large flat areas can end with *fewer*
  tokens than its target), then, if the frame still holds more than its planned ``target``, on down to
  ``target``, most similar first. ``threshold=None`` (the default) merges exactly down to the target;
  the ``mustdrop`` preset sets the reference code's 0.8.

The token budget is a ceiling every path honours: a frame never leaves with more than its target
(the planner's share of the budget). So the threshold can only merge *more* than the budget asks,
never less, and the key set is capped at ``target - 1`` tokens (the non-key tokens must merge into
at least one region).

Simplified against the paper: the paper ranks key tokens by the [CLS] token's attention in the last
tower layer (none of vidsift's towers has a [CLS] token; attention received is used instead); it
merges inside the tower, after its first layer, fixed 3x3 windows whose mean pairwise similarity
reaches the threshold, where this merges the tower's output features (what the LLM receives) in
growing 4-neighbour regions, pairwise; and the key set is not handed on to the LLM stages (the
paper also shields it from the prefill filter; here only the merging respects it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ._merge import adjacent_merge, distinctiveness
from .merging import Reduction


def key_tokens(embeds: torch.Tensor, saliency: torch.Tensor | None, count: int) -> torch.Tensor:
    """long (count,): the ``count`` most salient tokens (encoder saliency, else distinctiveness)."""
    sal = distinctiveness(embeds) if saliency is None else saliency.float()  # (T,)
    return torch.argsort(-sal, stable=True)[:count]


@dataclass
class MustDrop:
    """key:       fraction of each frame's tokens in the never-merged key set, in [0, 1] (reference code: 0.08)
    threshold: cosine similarity from which adjacent regions merge even below the target, in [-1, 1]
               (reference code: 0.8, on its tower's features); none: merge exactly down to the target."""

    key: float = 0.08
    threshold: float | None = None
    name: ClassVar[str] = "mustdrop"
    kind: ClassVar[str] = "spatial"

    def __post_init__(self) -> None:
        if isinstance(self.key, bool) or not isinstance(self.key, (int, float)) or not 0.0 <= self.key <= 1.0:
            raise ValueError(f"key must be a number in [0, 1], got {self.key!r}")
        t = self.threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not -1.0 <= t <= 1.0):
            raise ValueError(f"threshold must be a number in [-1, 1] or none, got {t!r}")

    def key_count(self, n_tokens: int, target: int) -> int:
        """Size of the key set of a frame of ``n_tokens`` reduced to ``target`` (< n_tokens)."""
        return min(math.ceil(self.key * n_tokens), target - 1)

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        t = embeds.shape[0]
        protect = torch.zeros(t, dtype=torch.bool)
        if isinstance(target, int) and 1 <= target < t:  # adjacent_merge checks target, and is the identity above T
            protect[key_tokens(embeds, saliency, self.key_count(t, target))] = True
        return adjacent_merge(embeds, size, target, coords, protect=protect, threshold=self.threshold)
