"""Protocols and name registries for the selector stage.

Four extension points, each a ``Registry`` whose members are small dataclasses built from a
spec string (``SELECTORS.build("mmr:weight=0.7")``) or passed in already built:

SCORERS     RelevanceScorer   ``score(frames, query) -> FrameScores``
SELECTORS   KeyframeSelector  ``select(features (N, F), scores (N,), k) -> indices`` unique, sorted
MERGERS     TokenMerger       ``reduce(embeds (T, D), size (T,), target, *, coords, saliency) -> Reduction``
                              (spatial; `vidsift.selectors.merging`: ``Reduction.merge(x)`` merges any
                              per-token tensor with the same weights), or ``apply(tokens) -> tokens``
                              (temporal, across groups)
ALLOCATORS  BudgetAllocator   ``allocate(scores (K,), budget, *, floor, cap) -> int (K,)``

Each registry names its members as ``"module:Class"``; a member's module is imported when it is
first built (`vidsift.registry`). Other layers add members by name (``mllm``: `vidsift.pipeline.scorers`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..types import FrameBatch, FrameScores
from ..registry import Registry

if TYPE_CHECKING:
    import torch

    from .merging import Reduction

SCORERS: Registry = Registry("scorer", {
    "clip": "vidsift.selectors.scorer_clip:ClipScorer",
    "text": "vidsift.selectors.scorer_text:TextScorer",
    "uniform": "vidsift.selectors.scorer_uniform:UniformScorer",
})
SELECTORS: Registry = Registry("selector", {
    "kcenter": "vidsift.selectors.select_kcenter:KCenter",
    "kmeans": "vidsift.selectors.select_kmeans:KMeans",
    "maxmin": "vidsift.selectors.select_maxmin:MaxMin",
    "mmr": "vidsift.selectors.select_mmr:MMR",
    "topk": "vidsift.selectors.select_topk:TopK",
    "uniform": "vidsift.selectors.select_uniform:UniformSelector",
})
MERGERS: Registry = Registry("merger", {
    "adjacent": "vidsift.selectors.merge_adjacent:Adjacent",
    "diverse": "vidsift.selectors.merge_diverse:Diverse",
    "ficoco_v": "vidsift.selectors.merge_ficoco:FiCoCoV",
    "hired": "vidsift.selectors.merge_hired:HiRED",
    "mustdrop": "vidsift.selectors.merge_mustdrop:MustDrop",
    "saliency": "vidsift.selectors.merge_saliency:Saliency",
    "temporal": "vidsift.selectors.merge_temporal:Temporal",
    "tome": "vidsift.selectors.merge_tome:ToMe",
})
ALLOCATORS: Registry = Registry("allocator", {
    "proportional": "vidsift.selectors.alloc_proportional:Proportional",
    "uniform": "vidsift.selectors.alloc_uniform:UniformAllocator",
})


@runtime_checkable
class RelevanceScorer(Protocol):
    """Scores candidate frames by relevance to a query (all equal when it needs none). A scorer
    that ignores the query says so with a class attribute ``uses_query = False`` (`uses_query`)."""

    name: str

    def score(self, frames: FrameBatch, query: str | None) -> FrameScores: ...


@runtime_checkable
class KeyframeSelector(Protocol):
    """Picks ``min(k, N)`` unique frame indices, returned sorted (time order)."""

    name: str

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray: ...


@runtime_checkable
class BudgetAllocator(Protocol):
    """Splits a token budget over chosen frames; the result sums exactly to ``min(budget, K * cap)``."""

    name: str

    def allocate(self, scores: np.ndarray, budget: int, *, floor: int, cap: int) -> np.ndarray: ...


@runtime_checkable
class TokenMerger(Protocol):
    """Reduces the tokens of one group (frame) to ``target`` tokens (``kind == "spatial"``): exactly, except
    that a content-adaptive merger (``mustdrop``'s threshold) may leave fewer; never more."""

    name: str
    kind: str

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction: ...


def check_k(k: Any, n: int) -> int:
    """``k`` clipped to ``n``; bad values raise ValueError."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    return int(min(int(k), n))


def check_select_inputs(features: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``features`` (N, F) and ``scores`` (N,) to contiguous float32."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, F), got shape {features.shape}")
    if scores.shape != (features.shape[0],):
        raise ValueError(f"scores must be (N,) with N={features.shape[0]}, got shape {scores.shape}")
    if not (np.isfinite(features).all() and np.isfinite(scores).all()):
        raise ValueError("features and scores must be finite")
    return features, scores


def uses_query(scorer: str | None) -> bool:
    """Whether the scorer a spec names (None: ``uniform``, the default) reads the query; from the
    member's class (``uses_query``, True unless it says otherwise), so nothing is built."""
    name = (scorer or "uniform").partition(":")[0]
    if name not in SCORERS.names():  # not registered here (mllm comes with the pipeline): it reads it
        return True
    return bool(getattr(SCORERS.get(name), "uses_query", True))
