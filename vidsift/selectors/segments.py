"""Scene segmentation from adjacent-frame similarity, and a coverage guarantee for selections.

After FastVID's dynamic segmentation (DySeg, Shen et al. 2025, https://arxiv.org/abs/2503.11187):
cut between frames t and t+1 where their cosine similarity falls below ``threshold``, and also at
the ``min_segments - 1`` lowest similarities, so that both hard cuts and a minimum granularity are
respected. ``ensure_coverage`` then edits a selection so every segment has at least one frame
whenever ``k`` is at least the number of segments.
"""

from __future__ import annotations

import numpy as np

from .features import l2_normalize


def adjacent_similarity(features: np.ndarray) -> np.ndarray:
    """float32 (N-1,): cosine similarity of each frame with the next one."""
    x = l2_normalize(features)  # (N, F)
    return np.einsum("nf,nf->n", x[:-1], x[1:]).astype(np.float32)


def segment_scenes(features: np.ndarray, *, threshold: float = 0.5, min_segments: int = 1,
                   max_segments: int | None = None) -> np.ndarray:
    """int64 (N,) segment label of each frame, 0..S-1, non-decreasing in time."""
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold must be in [-1, 1], got {threshold}")
    n = len(features)
    if n == 0:
        return np.zeros(0, np.int64)
    sim = adjacent_similarity(features)  # (N-1,)
    order = np.lexsort((np.arange(n - 1), sim))  # lowest similarity first, ties by time
    cut = sim < threshold
    cut[order[: max(0, min(min_segments, n) - 1)]] = True
    if max_segments is not None and cut.sum() > max_segments - 1:
        cut[:] = False
        cut[order[: max(0, max_segments - 1)]] = True
    return np.concatenate([[0], np.cumsum(cut)]).astype(np.int64)


def ensure_coverage(selected: np.ndarray, segments: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Swap picks so every segment holds one when ``len(selected) >= n_segments``.

    A missing segment gets its most relevant frame (ties: the middle frame); it replaces the least
    relevant pick of the segment that holds the most picks. The size of the selection is unchanged.
    """
    selected = np.unique(np.asarray(selected, dtype=np.int64))
    n_seg = int(segments.max()) + 1 if len(segments) else 0
    if len(selected) < n_seg or n_seg <= 1:
        return selected
    chosen = set(selected.tolist())
    counts = np.bincount(segments[selected], minlength=n_seg)
    for s in np.flatnonzero(counts == 0):
        members = np.flatnonzero(segments == s)
        mid = members[len(members) // 2]
        # most relevant; ties broken by closeness to the middle of the segment
        best = int(members[np.lexsort((np.abs(members - mid), -scores[members]))[0]])
        donor = int(np.argmax(counts))
        pool = [i for i in chosen if segments[i] == donor]
        drop = min(pool, key=lambda i: (scores[i], i))
        chosen.discard(drop)
        chosen.add(best)
        counts[donor] -= 1
        counts[s] += 1
    return np.array(sorted(chosen), dtype=np.int64)
