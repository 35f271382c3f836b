"""``dycoke``: DyCoke's dynamic KV-cache reduction while decoding.

Tao et al., "DyCoke: Dynamic Compression of Tokens for Fast Video Large Language Models",
CVPR 2025, arXiv:2411.15024. Stage 1 (temporal token merging before the LLM) is the ``temporal``
merger. Stage 2, here: at every decoding step the current token's attention over the cache at
layer ``layer - 1`` (heads averaged) picks the ``ratio`` share of the prompt's visual entries it
attends to most, and layers ``layer`` and deeper attend only to those visual entries in this step.
Nothing is evicted: the other visual entries stay in the cache and may be picked again at a later
step (the paper keeps them in a pruned-token cache for exactly that), so the saving is attention
compute, not memory. Text entries are always seen. Stats: the visual entries seen per step.

Simplified, and said so: the selection is recomputed from this step's query at layer ``layer - 1``
(recomputed q/k against the cached keys, so SDPA works) rather than read from the attention maps;
the prefill is not pruned (``fastv`` or ``todre`` do that); heads share one selection; a cache that
another press has already cut per head is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import DecodeFilterPress


@dataclass
class DyCoke(DecodeFilterPress):
    """ratio: share of the prompt's visual entries each decoding step attends to, in (0, 1]
    layer: first decoder layer that sees only the chosen visual entries (>= 1; layer - 1 chooses)
    """

    name: ClassVar[str] = "dycoke"

    def decode_filter(self, attention: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Per row, the ``ratio`` share (rounded up) of the visual entries with the most attention."""
        chosen = torch.zeros_like(visual)
        for row in range(visual.shape[0]):
            vis = torch.nonzero(visual[row]).flatten()
            count = min(vis.numel(), math.ceil(self.ratio * vis.numel()))
            chosen[row, vis[torch.argsort(attention[row, vis], descending=True, stable=True)[:count]]] = True
        return chosen
