"""FAISS helpers shared by the keyframe selectors: nearest-neighbour search and seeded k-means.

Exact ``IndexFlatL2`` / ``IndexFlatIP`` up to ``exact_limit`` database vectors, an HNSW graph
beyond (approximate, memory-light, no training). k-means is ``faiss.Kmeans`` with a fixed seed
and a fixed thread count during training so the same input gives the same clusters.
"""

from __future__ import annotations

import threading

import faiss
import numpy as np

from ..threads import apply_here

_THREADS_LOCK = threading.Lock()
apply_here()  # the process's thread policy (vidsift.threads), when one was chosen before FAISS loaded


def build_index(xb: np.ndarray, *, metric: str = "l2", exact_limit: int = 20000, hnsw_m: int = 32) -> faiss.Index:
    """An index over ``xb`` (N, F): flat (exact) for small N, HNSW for large N."""
    if metric not in ("l2", "ip"):
        raise ValueError(f"metric must be 'l2' or 'ip', got {metric!r}")
    xb = np.ascontiguousarray(xb, dtype=np.float32)
    d = xb.shape[1]
    if xb.shape[0] <= exact_limit:
        index = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
    else:
        mt = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        index = faiss.IndexHNSWFlat(d, hnsw_m, mt)
        index.hnsw.efConstruction = 64
        index.hnsw.efSearch = 64
    index.add(xb)
    return index


def search(xb: np.ndarray, xq: np.ndarray, k: int = 1, *, metric: str = "l2", exact_limit: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """``(distances (Q, k), ids (Q, k))`` of the k nearest rows of ``xb`` for each row of ``xq``."""
    index = build_index(xb, metric=metric, exact_limit=exact_limit)
    dist, ids = index.search(np.ascontiguousarray(xq, dtype=np.float32), int(k))
    return dist, ids


def nearest_other_distance(x: np.ndarray, *, exact_limit: int = 20000) -> np.ndarray:
    """float32 (N,): squared L2 distance from each row to its nearest *other* row (HNSW for large N)."""
    n = x.shape[0]
    if n < 2:
        return np.zeros(n, np.float32)
    dist, ids = search(x, x, 2, exact_limit=exact_limit)  # (N, 2): self (or a duplicate) and the next
    self_first = ids[:, 0] == np.arange(n)
    out = np.where(self_first, dist[:, 1], dist[:, 0])
    return np.maximum(out, 0).astype(np.float32)


def kmeans(x: np.ndarray, k: int, *, seed: int = 1234, niter: int = 20,
           init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids (k, F), assignment (N,))`` of seeded FAISS k-means; requires N >= k >= 1.
    ``init`` (k, F): starting centroids (e.g. farthest-point seeds) instead of a random draw."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    km = faiss.Kmeans(x.shape[1], int(k), niter=niter, seed=seed, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=256)  # large N: train on a seeded sample
    with _THREADS_LOCK:
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # reduction order fixed: same input, same clusters
        try:
            km.train(x, init_centroids=None if init is None else np.ascontiguousarray(init, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(before)
    _, assign = km.index.search(x, 1)
    return km.centroids.copy(), assign[:, 0].astype(np.int64)


def coverage_radius(x: np.ndarray, centers: np.ndarray) -> float:
    """The k-center objective: max over points of the L2 distance to the nearest chosen center."""
    dist, _ = search(x[np.asarray(centers)], x, 1, exact_limit=1 << 30)
    return float(np.sqrt(max(0.0, float(dist.max()))))
