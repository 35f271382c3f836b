"""``maxmin``: Max-Min diversity selection, as in DivPrune.

DivPrune (Alvar et al., CVPR 2025, https://arxiv.org/abs/2503.02175) casts token selection as the
Max-Min Diversity Problem (maximise the smallest pairwise distance of the kept set) and solves it
greedily: seed with the most isolated element, then repeatedly add the element whose distance to
the kept set is largest. Here the elements are frames (unit-normalised features, so L2 ranks like
cosine distance). The seed's nearest-neighbour distances come from an exact FAISS search up to
``exact_seed_limit`` frames; beyond, the seed is one end of an approximate diameter (O(N F)),
since an all-pairs neighbour search (even HNSW) costs far more than the greedy pass itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._diversity import farthest_point
from ._faiss import nearest_other_distance
from .base import check_k, check_select_inputs
from .features import l2_normalize


@dataclass
class MaxMin:
    """Greedy Max-Min diversity on cosine geometry, seeded at the most isolated frame.

    exact_seed_limit: largest N for the exact nearest-neighbour seed.
    """

    exact_seed_limit: int = 4096
    name: ClassVar[str] = "maxmin"

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        features, scores = check_select_inputs(features, scores)
        k = check_k(k, len(scores))
        if k == 0:
            return np.zeros(0, np.int64)
        x = l2_normalize(features)  # (N, F)
        if len(x) <= self.exact_seed_limit:
            iso = nearest_other_distance(x)  # (N,) distance to the nearest other frame (FAISS flat)
            first = int(np.lexsort((np.arange(len(iso)), -scores, -np.round(iso, 6)))[0])
        else:  # O(N F) seed: one end of an approximate diameter (farthest from the frame farthest from the mean)
            far = int(np.argmax(((x - x.mean(0)) ** 2).sum(1)))
            first = int(np.argmax(((x - x[far]) ** 2).sum(1)))
        return np.sort(farthest_point(x, k, first=first))
