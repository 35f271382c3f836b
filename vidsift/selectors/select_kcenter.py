"""``kcenter``: greedy k-center over frame features, as in ToDRE's diversity stage.

ToDRE (Li, Yang and Lu 2025, "ToDRE: Visual Token Pruning via Diversity and Task Awareness for
Efficient Large Vision-Language Models", arXiv:2505.18757 v1, https://arxiv.org/abs/2505.18757)
keeps a diverse subset of visual tokens by greedy k-center: start from an anchor and repeatedly
add the element farthest from everything kept (v2 of the paper, retitled "Effective Visual Token
Pruning via Token Diversity and Task Relevance", uses greedy max-sum diversification instead).
Here it selects frames, not tokens.
The covering radius is within 2x of optimal (Gonzalez 1985), so every visually distinct stretch
(scene) gets a nearby keyframe. The anchor is the most relevant frame (ties: earliest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._diversity import farthest_point
from .base import check_k, check_select_inputs


@dataclass
class KCenter:
    """Greedy k-center in L2 feature space, anchored at the most relevant frame."""

    name: ClassVar[str] = "kcenter"

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        features, scores = check_select_inputs(features, scores)
        k = check_k(k, len(scores))
        if k == 0:
            return np.zeros(0, np.int64)
        first = int(np.argmax(scores))
        return np.sort(farthest_point(features, k, first=first))
