"""Planning: from candidate frames and a query to a :class:`TokenPlan` under one token budget.

``plan_frames`` is pure planning on already-decoded candidates:

1. score     relevance per frame (a scorer spec or instance; or ``scores`` given by the caller)
2. features  the scorer's features, else the model-free descriptors (thumbnail + colour histogram)
3. segment   scenes from adjacent-frame similarity (FastVID DySeg)
4. select    k keyframes (a selector), then every scene keeps at least one frame when k allows
5. allocate  tokens per chosen frame (an allocator), each <= ceil(tokens_per_frame), summing to
             ``min(budget, k * ceil(tokens_per_frame))``

``plan`` decodes candidates from a video file with :mod:`vidsift.frames` and calls ``plan_frames``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import time
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..frames.types import DECODE_MAX_PIXELS
from ..types import Budget, FrameBatch, FrameScores, PlannedFrame, TokenPlan, whole_tokens
from .base import ALLOCATORS, SCORERS, SELECTORS
from .features import frame_features
from .search import ENCODE_RATIO
from .segments import ensure_coverage, segment_scenes

# How a query-aware plan spends the budget (option ``allocation``): relevance-true (coverage frames at
# half their tokens), relevance-true encoding at most ENCODE_RATIO x the tokens kept, or spread.
ALLOCATIONS = ("relevance", "lean", "spread")

# Candidate sampling and decode resolution shared by `plan` and `Pipeline.ask`, so that a plan
# previews exactly the frames (and features) an ask plans with.
SAMPLE_FPS = 1.0  # candidate frames per second of video
SAMPLE_MAX_FRAMES = 64  # at most this many candidates, spread over the video
# DECODE_MAX_PIXELS (imported above from vidsift.frames): larger videos decode downscaled


def scorer_spec(text: str) -> str:
    """CLI shorthand ``clip:/path/to/ckpt`` -> ``clip:model=/path/to/ckpt`` (specs with ``=`` pass through)."""
    name, sep, rest = text.partition(":")
    if sep and rest and "=" not in rest:
        return f"{name}:model={rest}"
    return text


def _label(member: Any, spec: Any) -> str:
    return spec if isinstance(spec, str) else getattr(member, "name", type(member).__name__)


def score_frames(scorer: Any, frames: FrameBatch, query: str | None, video: str) -> FrameScores:
    """``scorer.score(frames, query)``, passing ``video=`` (the path, e.g. to find subtitles beside
    it) to scorers that take it. Every entry point scores through here."""
    try:
        accepts_video = "video" in inspect.signature(scorer.score).parameters
    except (TypeError, ValueError):
        accepts_video = False
    if accepts_video:
        return scorer.score(frames, query, video=video or None)
    return scorer.score(frames, query)


def default_k(n: int, budget_tokens: int, tokens_per_frame: float, min_fraction: float) -> int:
    """Frames to keep: all if the budget covers them at full size, else as many as fit at
    ``min_fraction`` of a frame's tokens (at least 1, at most one token each)."""
    full = whole_tokens(tokens_per_frame)
    if budget_tokens >= n * full:
        return n
    return int(max(1, min(n, budget_tokens, math.floor(budget_tokens / (tokens_per_frame * min_fraction)))))


def plan_frames(candidates: FrameBatch, query: str | None = None, *, budget_tokens: int, tokens_per_frame: float,
                k: int | None = None, scorer: Any = "uniform", selector: Any = "kcenter", allocator: Any = "proportional",
                video: str = "", scores: FrameScores | None = None, min_fraction: float = 0.5, floor_tokens: int = 1,
                coverage: bool | None = None, scene_threshold: float = 0.5,
                allocation: str = "relevance", group: int = 1, encode_ratio: float | None = None) -> TokenPlan:
    """Choose frames of ``candidates`` and tokens per frame so the total stays within ``budget_tokens``.

    coverage: keep one frame per detected scene when ``k`` allows (default: on, except for the
    ``uniform`` selector, which stays a plain baseline).
    allocation: ``"relevance"`` (default): when ``k`` is not fixed and the scores are concentrated,
    the relevant frames keep their full tokens and coverage gets the rest (`allocate_relevance`,
    in units of ``group`` neighbouring frames: the model's temporal patch); flat scores, or
    ``"spread"``, choose ``k`` frames with the selector and split the budget with the allocator.
    ``"lean"`` is ``"relevance"`` with ``encode_ratio=ENCODE_RATIO`` (1.2) unless one is given.
    encode_ratio: the most tokens encoded per token kept (every chosen frame is encoded whole): a
    relevance plan takes fewer, fuller coverage frames; a spread plan (flat scores) without a fixed
    ``k`` keeps at most ``encode_ratio * budget / full`` frames, in units of ``group``, at least one
    unit. None: coverage at half a frame's tokens, and a spread plan as many frames as fit at
    ``min_fraction``.
    """
    times: dict[str, float] = {}
    n = len(candidates)
    if n == 0:
        raise ConfigError(video or "frames", "no candidate frames to plan")
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, (int, np.integer)) or budget_tokens < 1:
        raise ConfigError("budget", f"budget_tokens must be an int >= 1, got {budget_tokens!r}")
    if not isinstance(tokens_per_frame, (int, float, np.number)) or not tokens_per_frame > 0:
        raise ConfigError("tokens_per_frame", f"must be > 0, got {tokens_per_frame!r}")
    if not 0 < min_fraction <= 1:
        raise ConfigError("min_fraction", f"must be in (0, 1], got {min_fraction!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ConfigError(f"frames={k!r}", "must be an int >= 1")
    full = whole_tokens(tokens_per_frame)
    budget_tokens = int(budget_tokens)
    scorer_m = SCORERS.build(scorer)
    selector_m = SELECTORS.build(selector)
    allocator_m = ALLOCATORS.build(allocator)

    t0 = time.perf_counter()
    if scores is None:
        scores = score_frames(scorer_m, candidates, query, video)
    if len(scores) != n:
        raise ValueError(f"scores hold {len(scores)} frames for {n} candidates")
    times["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    features = scores.features if scores.features is not None else frame_features(candidates)  # (N, F)
    times["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    segments = segment_scenes(features, threshold=scene_threshold)  # (N,)
    n_segments = int(segments.max()) + 1
    times["segment"] = time.perf_counter() - t0

    allocation, encode_ratio = _allocation(allocation, encode_ratio)
    rel = None
    if allocation == "relevance" and k is None and budget_tokens < n * full:
        from .search import allocate_relevance

        t0 = time.perf_counter()
        rel = allocate_relevance(scores.scores, budget_tokens, full=full, group=group, encode_ratio=encode_ratio)
        times["allocate"] = time.perf_counter() - t0
    if rel is not None:
        frames, kept = _planned(candidates.index, candidates.pts_seconds, scores.scores, rel.chosen, rel.tokens, rel.reasons)
        settings = {"scorer": _label(scorer_m, scorer) if scores.scorer == getattr(scorer_m, "name", None) else scores.scorer,
                    "allocation": "relevance", "encode_ratio": encode_ratio, "group": group,
                    "tokens_per_frame": float(tokens_per_frame),
                    "query": query, "frames": k}
        stats = {"time_s": {key: round(v, 6) for key, v in times.items()}, "n_candidates": n, "n_segments": n_segments,
                 "n_selected": len(frames), "relevant_frames": rel.relevant_frames, "tokens_full": n * full,
                 "tokens_planned": int(sum(f.tokens for f in frames)), "kept": kept}
        return TokenPlan(video=video, budget=budget_tokens, frames=frames, settings=settings, stats=stats)
    want = default_k(n, budget_tokens, float(tokens_per_frame), min_fraction) if k is None else min(int(k), n)
    if k is None and encode_ratio is not None:  # every chosen frame is encoded whole: fewer, fuller frames,
        # in units of the model's temporal patch (`group` frames are encoded together)
        want = min(want, max(group, int(encode_ratio * budget_tokens // (full * group)) * group))
    want = min(want, budget_tokens)  # every chosen frame gets at least one token
    t0 = time.perf_counter()
    chosen = np.asarray(selector_m.select(features, scores.scores, want), dtype=np.int64)
    if coverage is None:
        coverage = getattr(selector_m, "name", "") != "uniform"
    if coverage:
        chosen = ensure_coverage(chosen, segments, scores.scores)
    times["select"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    floor = min(int(floor_tokens), full)
    tokens = allocator_m.allocate(scores.scores[chosen], budget_tokens, floor=floor, cap=full)  # (K,)
    times["allocate"] = time.perf_counter() - t0

    frames = [PlannedFrame(index=int(candidates.index[i]), pts_seconds=float(candidates.pts_seconds[i]),
                           score=float(scores.scores[i]), tokens=int(t)) for i, t in zip(chosen, tokens) if t > 0]
    frames.sort(key=lambda f: (f.pts_seconds, f.index))
    covered = len(set(segments[chosen].tolist()))
    settings = {
        "scorer": _label(scorer_m, scorer) if scores.scorer == getattr(scorer_m, "name", None) else scores.scorer,
        "selector": _label(selector_m, selector), "allocator": _label(allocator_m, allocator),
        "tokens_per_frame": float(tokens_per_frame), "frames": k, "min_fraction": min_fraction,
        "floor_tokens": floor, "coverage": bool(coverage), "scene_threshold": scene_threshold, "query": query,
        "allocation": "spread", "encode_ratio": encode_ratio,
    }
    stats = {
        "time_s": {key: round(v, 6) for key, v in times.items()},
        "n_candidates": n, "n_segments": n_segments, "segments_covered": covered, "n_selected": len(frames),
        "tokens_full": n * full, "tokens_selected_full": len(chosen) * full, "tokens_planned": int(sum(f.tokens for f in frames)),
    }
    return TokenPlan(video=video, budget=budget_tokens, frames=frames, settings=settings, stats=stats)


def sample_candidates(video: str | os.PathLike, *, fps: float | None = SAMPLE_FPS, max_frames: int | None = SAMPLE_MAX_FRAMES,
                      start_s: float | None = None, end_s: float | None = None,
                      max_pixels: int | None = DECODE_MAX_PIXELS) -> FrameBatch:
    """Decode the candidate frames of ``video`` for planning (downscaled to ``max_pixels``), sampled
    as `Pipeline.ask` samples them (``fps=None``: every frame)."""
    from ..frames import open_for_planning, sample

    with open_for_planning(video, max_pixels=max_pixels) as reader:
        frames = sample(reader, fps=fps, max_frames=max_frames, start_s=start_s, end_s=end_s, exact_count=True)
    if len(frames) == 0:
        raise ConfigError(str(video), "no frames were sampled (check fps, start and end)")
    return frames


def plan_video(video: str | os.PathLike, query: str | None = None, *, budget: Budget | int | str | None = None,
               fps: float | None = None, max_frames: int | None = None, frames: int | None = None,
               scorer: Any = "uniform", selector: Any = "kcenter", allocator: Any = "proportional",
               tokens_per_frame: float = 196, **options: Any) -> tuple[TokenPlan, FrameBatch]:
    """:func:`plan` that also returns the decoded candidate frames (for contact sheets)."""
    b = Budget.parse(budget)
    if max_frames is None and b.max_frames is not None and frames is None:
        frames = b.max_frames
    t0 = time.perf_counter()
    candidates = sample_candidates(video, fps=SAMPLE_FPS if fps is None else fps,
                                   max_frames=SAMPLE_MAX_FRAMES if max_frames is None else max_frames)
    decode_s = time.perf_counter() - t0
    full_tokens = len(candidates) * whole_tokens(tokens_per_frame)
    if b.max_frames is not None:
        frames = min(frames or b.max_frames, b.max_frames)
    if isinstance(scorer, str):
        scorer = scorer_spec(scorer)
    result = plan_frames(candidates, query, budget_tokens=b.resolve(full_tokens), tokens_per_frame=tokens_per_frame,
                         k=frames, scorer=scorer, selector=selector, allocator=allocator, video=str(video), **options)
    result.stats["time_s"] = {"decode": round(decode_s, 6), **result.stats["time_s"]}
    result.stats["decode"] = candidates.decode  # the file's decode report: frames expected, decoded, missing
    result.settings.update({"fps": fps, "max_frames": max_frames, "budget_spec": None if budget is None else str(budget)})
    return result, candidates


def plan(video: str | os.PathLike, query: str | None = None, *, budget: Budget | int | str | None = None,
         fps: float | None = None, max_frames: int | None = None, frames: int | None = None,
         scorer: Any = "uniform", selector: Any = "kcenter", allocator: Any = "proportional",
         tokens_per_frame: float = 196, **options: Any) -> TokenPlan:
    """Plan which frames of ``video`` a video LLM should see and how many tokens each gets.

    budget: anything `Budget.parse` reads (``2048``, ``0.25``, ``"25%"``, a preset) or None
    (unlimited: every candidate frame at full size). fps / max_frames: candidate sampling (default:
    1 fps, at most 64 spread over the video, as `Pipeline.ask`). frames: how many keyframes (default: from the budget).
    """
    return plan_video(video, query, budget=budget, fps=fps, max_frames=max_frames, frames=frames, scorer=scorer,
                      selector=selector, allocator=allocator, tokens_per_frame=tokens_per_frame, **options)[0]


def plan_search(index: Any, query: str | None, *, budget_tokens: int, tokens_per_frame: float, scorer: Any,
                group: int = 1, search: Any = None, video: str = "", selector: Any = "kcenter",
                allocator: Any = "proportional", min_fraction: float = 0.5, k: int | None = None,
                allocation: str = "relevance", encode_ratio: float | None = None) -> TokenPlan:
    """Plan over a `VideoIndex` (every candidate of the whole video) with the temporal search:
    the scorer sees only the candidates the search asks for (`TemporalSearch`), then the budget goes
    to the relevant frames at full tokens and to coverage (`allocate_relevance`); when relevance is
    flat the budget is spread as `plan_frames` spreads it (``allocation`` and ``encode_ratio`` as in
    `plan_frames`). The plan's stats say how many frames were decoded, scored per round and why each frame was kept (``PlannedFrame``s in ``stats["kept"]``)."""
    from .search import TemporalSearch, allocate_relevance

    search = search if search is not None else TemporalSearch()
    scorer_m = SCORERS.build(scorer)
    n = len(index)
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, (int, np.integer)) or budget_tokens < 1:
        raise ConfigError("budget", f"budget_tokens must be an int >= 1, got {budget_tokens!r}")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    embed, fkey = getattr(scorer_m, "embed", None), getattr(scorer_m, "feature_key", None)
    if callable(embed):  # the scorer's own cheap features (the model's vision tower), kept with the index
        features = index.derived(f"embed-{fkey}", lambda: embed(index.batch())) if fkey else embed(index.batch())
    else:
        features = index.features
    times["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = search.run(features, lambda rows: score_frames(scorer_m, index.batch(rows), query, video).scores)
    times["score"] = time.perf_counter() - t0
    full = whole_tokens(tokens_per_frame)
    t0 = time.perf_counter()
    allocation, encode_ratio = _allocation(allocation, encode_ratio)
    spread = k is not None or allocation == "spread" or budget_tokens >= n * full
    rel = None if spread else allocate_relevance(result.scores, int(budget_tokens), full=full, group=group,
                                                 found_by=result.found_by, encode_ratio=encode_ratio)
    if rel is None:  # flat relevance (or a fixed frame count): spread the budget as plan_frames does
        seen = np.isfinite(result.scores)
        fill = float(result.scores[seen].mean()) if seen.any() else 1.0
        scores = FrameScores(np.where(seen, result.scores, fill), features=index.features, scorer=getattr(scorer_m, "name", "scorer"))
        plan = plan_frames(index.batch(), query, budget_tokens=int(budget_tokens), tokens_per_frame=tokens_per_frame, k=k,
                           scorer=scorer_m, selector=selector, allocator=allocator, video=video, scores=scores,
                           min_fraction=min_fraction, allocation="spread", encode_ratio=encode_ratio, group=group)
        kept = [{"pts_seconds": f.pts_seconds, "index": f.index, "tokens": f.tokens, "why": "spread"} for f in plan.frames]
        allocation = "spread"
    else:
        frames, kept = _planned(index.index, index.pts, result.scores, rel.chosen, rel.tokens, rel.reasons)
        plan = TokenPlan(video=video, budget=int(budget_tokens), frames=frames)
        allocation = "relevance"
    times["allocate"] = time.perf_counter() - t0
    plan.settings.update({"scorer": _label(scorer_m, scorer), "search": dataclasses.asdict(search), "allocation": allocation,
                          "tokens_per_frame": float(tokens_per_frame), "query": query, "group": group})
    plan.stats.update({
        "n_candidates": n, "frames_decoded_scan": int(index.meta.get("frames", n)), "index_cached": bool(index.meta.get("cached")),
        "scorer_calls": result.calls, "scorer_calls_dense": n, "search_rounds": result.rounds,
        "relevant_frames": rel.relevant_frames if rel is not None else 0,
        "time_s": {**plan.stats.get("time_s", {}), **{key: round(v, 6) for key, v in times.items()}},
        "kept": kept,
        "tokens_planned": plan.total_tokens, "tokens_full": n * full,
    })
    return plan


def _allocation(allocation: str, encode_ratio: float | None) -> tuple[str, float | None]:
    """``allocation`` as ``relevance`` or ``spread``, and the encode cap it implies ("lean")."""
    if allocation not in ALLOCATIONS:
        raise ConfigError(f"allocation={allocation!r}", f"choose from: {', '.join(ALLOCATIONS)}")
    if allocation == "lean":
        return "relevance", ENCODE_RATIO if encode_ratio is None else encode_ratio
    return allocation, encode_ratio


def _planned(index: np.ndarray, pts: np.ndarray, scores: np.ndarray, chosen: np.ndarray, tokens: np.ndarray,
             reasons: list[str]) -> tuple[list[PlannedFrame], list[dict[str, Any]]]:
    """The chosen candidates as `PlannedFrame`s (time order, as given) and the plan's ``kept`` list:
    each frame with why it was kept (relevant, its pair, coverage, spread)."""
    frames = [PlannedFrame(index=int(index[i]), pts_seconds=float(pts[i]),
                           score=float(scores[i]) if np.isfinite(scores[i]) else 0.0, tokens=int(t))
              for i, t in zip(chosen, tokens)]
    kept = [{"pts_seconds": f.pts_seconds, "index": f.index, "tokens": f.tokens, "why": why} for f, why in zip(frames, reasons)]
    return frames, kept
