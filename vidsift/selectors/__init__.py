"""Deciding, before the LLM runs, which frames and how many visual tokens each deserves.

Registries (``vidsift.registry.Registry``; build members from specs or pass instances):

- ``SCORERS``     ``uniform``, ``clip`` (CLIP/SigLIP), ``text`` (subtitles), ``mllm`` (QuoTA, from the
  pipeline). ``RelevanceScorer.score(frames: FrameBatch, query: str | None) -> FrameScores``;
  attribute ``name``. ``SCORERS.build("clip:model=/path")``.
- ``SELECTORS``   ``uniform``, ``topk``, ``kcenter`` (ToDRE), ``maxmin`` (DivPrune), ``kmeans`` (FAISS),
  ``mmr``. ``KeyframeSelector.select(features (N, F), scores (N,), k) -> unique sorted int64 indices``.
- ``MERGERS``     spatial ``tome``, ``adjacent`` (MustDrop's merging alone), ``mustdrop`` (MustDrop's key set +
  threshold), ``saliency`` (VisionZip), ``hired`` (HiRED), ``diverse`` (DivPrune), ``ficoco_v``:
  ``reduce(embeds (T, D), size (T,), target, *, coords, saliency) -> Reduction`` (at most ``target`` tokens);
  temporal ``temporal`` (DyCoke/EVS/DTD): ``apply(tokens: VisualTokens) -> VisualTokens``.
- ``ALLOCATORS``  ``proportional`` (QuoTA, relevance**alpha), ``uniform``:
  ``allocate(scores (K,), budget, *, floor, cap) -> int (K,)`` summing exactly to min(budget, K*cap).

Functions:

- ``plan_frames(candidates, query=None, *, budget_tokens, tokens_per_frame, k=None, scorer="uniform",
  selector="kcenter", allocator="proportional", video="", scores=None) -> TokenPlan`` (pure planning)
- ``plan(video, query=None, *, budget=None, fps=None, max_frames=None, frames=None, scorer=...,
  selector=..., allocator=..., tokens_per_frame=196) -> TokenPlan`` (decodes, then plans; ``vidsift.plan``)
- ``load_index(video) -> VideoIndex`` (the long-video cheap pass, kept on disk), ``plan_search(index,
  query, *, budget_tokens, tokens_per_frame, scorer, group) -> TokenPlan`` (``TemporalSearch`` then
  ``allocate_relevance``: relevant frames at full tokens, coverage over the timeline)
- ``reduce_tokens(tokens, per_group, *, merger="tome", temporal=None) -> VisualTokens``; a `Reduction`'s
  ``merge(x)`` / ``unmerge(y)`` and ``merge_groups(tokens, reductions)`` apply a merge to every per-token
  field (embeds, DeepStack levels, saliency; coords of the representatives), batched over groups
- ``segment_scenes(features) -> labels``, ``frame_features(frames) -> (N, F)``,
  ``split_budget``, ``tokens_to_resolution`` / ``resolution_to_tokens`` / ``plan_resolutions(tokens, *, aspect,
  patch_size, merge_size)`` (the budget as a resolution per frame before encoding).
"""

from __future__ import annotations

from ..lazy import lazy_attributes

# name -> module, imported on first use: the registries are listed and checked without importing
# torch, FAISS or any member
_LAZY = {
    **dict.fromkeys(("ALLOCATORS", "MERGERS", "SCORERS", "SELECTORS", "BudgetAllocator", "KeyframeSelector",
                     "RelevanceScorer", "TokenMerger", "uses_query"), ".base"),
    **dict.fromkeys(("Reduction", "merge_groups", "merge_tokens"), ".merging"),
    **dict.fromkeys(("plan_resolutions", "resolution_to_tokens", "split_budget", "tokens_to_resolution"), ".budget"),
    **dict.fromkeys(("FEATURE_CACHE", "frame_features"), ".features"),
    **dict.fromkeys(("plan", "plan_frames", "plan_search", "plan_video", "score_frames", "scorer_spec"),
                    ".planner"),
    **dict.fromkeys(("TemporalSearch", "allocate_relevance", "novelty"), ".search"),
    **dict.fromkeys(("VideoIndex", "load_index"), ".video_index"),
    "reduce_tokens": ".reduce",
    **dict.fromkeys(("ensure_coverage", "segment_scenes"), ".segments"),
    **dict.fromkeys(("Budget", "FrameScores", "PlannedFrame", "TokenPlan"), "..types"),
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_attributes(__name__, _LAZY)
