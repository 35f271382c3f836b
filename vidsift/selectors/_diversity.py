"""Pure greedy diversity algorithms on feature matrices (numpy, O(N k F)).

farthest_point:  greedy k-center (Gonzalez 1985), a 2-approximation of the optimal covering radius;
                 used by ``kcenter`` (ToDRE) and ``maxmin`` (DivPrune's greedy Max-Min diversity).
mmr:             maximal marginal relevance (Carbonell & Goldstein 1998), scale-free redundancy.
"""

from __future__ import annotations

import numpy as np


def sq_dist_to(x: np.ndarray, c: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    """float64 (N,): squared L2 distance of every row of ``x`` (N, F) to ``c`` (F,)."""
    return np.maximum(x_sq - 2.0 * (x @ c).astype(np.float64) + float(c @ c), 0.0)


def farthest_point(x: np.ndarray, k: int, *, first: int) -> np.ndarray:
    """Indices (k,) in pick order: ``first``, then repeatedly the row farthest from those picked."""
    n = x.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.int64)
    x_sq = np.einsum("nf,nf->n", x, x).astype(np.float64)  # (N,)
    picks = [int(first)]
    mind = sq_dist_to(x, x[first], x_sq)  # (N,)
    mind[first] = -1.0
    for _ in range(k - 1):
        j = int(np.argmax(mind))  # ties: earliest frame
        if mind[j] < 0:
            break
        picks.append(j)
        mind = np.minimum(mind, sq_dist_to(x, x[j], x_sq))
        mind[picks] = -1.0
    if len(picks) < k:  # duplicates exhausted: fill in time order
        rest = np.setdiff1d(np.arange(n), picks)[: k - len(picks)]
        picks.extend(rest.tolist())
    return np.asarray(picks, dtype=np.int64)


def mmr(x: np.ndarray, relevance: np.ndarray, k: int, *, weight: float) -> np.ndarray:
    """Indices (k,): argmax of ``weight * rel - (1 - weight) * redundancy`` one pick at a time.

    Redundancy is the cosine similarity to the nearest picked frame, expressed relative to the
    current spread (``1 - novelty / max novelty`` over unpicked frames) so that relevance in [0, 1]
    and redundancy weigh alike whatever the feature space's scale (random or near-duplicate
    embeddings would otherwise leave only relevance).
    """
    n = x.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.int64)
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (N, F)
    rel = relevance.astype(np.float64)
    novelty = np.ones(n)  # 1 - max cosine similarity to the picked frames (all novel before the first pick)
    taken = np.zeros(n, bool)
    picks: list[int] = []
    for step in range(k):
        top = novelty[~taken].max()
        redundancy = 1.0 - novelty / top if step and top > 1e-12 else np.zeros(n)
        gain = weight * rel - (1.0 - weight) * redundancy
        gain[taken] = -np.inf
        j = int(np.argmax(gain))
        picks.append(j)
        taken[j] = True
        novelty = np.minimum(novelty, 1.0 - (xn @ xn[j]).astype(np.float64))
    return np.asarray(picks, dtype=np.int64)


def min_pairwise_distance(x: np.ndarray, idx: np.ndarray) -> float:
    """The Max-Min diversity objective of a subset: its smallest pairwise L2 distance."""
    sub = x[np.asarray(idx)]
    if len(sub) < 2:
        return float("inf")
    d = np.sqrt(np.maximum(((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1), 0.0))
    d[np.diag_indices(len(sub))] = np.inf
    return float(d.min())
