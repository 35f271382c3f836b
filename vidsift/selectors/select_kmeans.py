"""``kmeans``: FAISS k-means over frame features, keeping the most relevant frame of each cluster.

Cluster-then-pick keyframe selection (e.g. KeyVideoLLM, Liang et al. 2024,
https://arxiv.org/abs/2407.03104; the classic clustering keyframe extractors): k clusters of
visually similar frames, one representative each, so every recurring scene type is covered once
and relevance decides which of its frames is shown. Seeded, single-threaded training: deterministic.
Lloyd iterations start from greedy k-center seeds (so a short, distinct scene owns a cluster);
empty clusters (duplicate frames) are refilled by farthest-point picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._diversity import farthest_point, sq_dist_to
from ._faiss import kmeans
from .base import check_k, check_select_inputs


@dataclass
class KMeans:
    """seed: k-means seed; niter: Lloyd iterations."""

    seed: int = 1234
    niter: int = 20
    name: ClassVar[str] = "kmeans"

    def __post_init__(self) -> None:
        if not isinstance(self.niter, int) or self.niter < 1:
            raise ValueError(f"niter must be an int >= 1, got {self.niter!r}")

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        features, scores = check_select_inputs(features, scores)
        n = len(scores)
        k = check_k(k, n)
        if k == 0:
            return np.zeros(0, np.int64)
        if k == n:
            return np.arange(n, dtype=np.int64)
        seeds = farthest_point(features, k, first=int(np.argmax(scores)))  # k-center seeding: small distinct scenes get a cluster
        centroids, assign = kmeans(features, k, seed=self.seed, niter=self.niter, init=features[seeds])  # (k, F), (N,)
        x_sq = np.einsum("nf,nf->n", features, features).astype(np.float64)
        picks: list[int] = []
        for c in range(k):
            members = np.flatnonzero(assign == c)
            if len(members) == 0:
                continue
            d = sq_dist_to(features[members], centroids[c], x_sq[members])
            picks.append(int(members[np.lexsort((members, d, -scores[members]))[0]]))  # relevant, then central
        if len(picks) < k:  # fill from frames farthest from what is picked
            mind = np.full(n, np.inf)
            for p in picks:
                mind = np.minimum(mind, sq_dist_to(features, features[p], x_sq))
            mind[picks] = -1.0
            while len(picks) < k:
                j = int(np.argmax(mind))
                picks.append(j)
                mind = np.minimum(mind, sq_dist_to(features, features[j], x_sq))
                mind[picks] = -1.0
        return np.unique(np.asarray(picks, dtype=np.int64))
