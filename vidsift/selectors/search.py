"""Temporal search and relevance-true allocation: find the moments a question needs in a long video
with few scorer calls, then spend the budget where relevance is.

**Search** (`TemporalSearch.run`). The candidates are every ``1/fps`` seconds of the whole video
(the cheap pass: decoded at a low resolution and described by features, `vidsift.selectors.video_index`);
a query scorer (the MLLM's own P(yes), QuoTA) is called only on a share of them, coarse to fine:

1. ``grid``    every ``grid``-th candidate (coverage of slow, long relevance);
2. ``events``  the peaks of *novelty*, a candidate's feature distance to the median of its
               ``window`` temporal neighbours: a short event (something appears for a second or
               two) stands out from its surroundings, a drifting background does not. Peaks are
               scored from the most novel down;
3. ``zoom``    around every relevant candidate (score >= ``relevant``; the best few when none is),
               its unscored neighbours within ``radius``, repeated while new relevant ones appear.

Calls stop at ``call_share`` of the candidates (a dense pass scores them all). This follows the
coarse-to-fine idea of T* (Ye et al., CVPR 2025, arXiv:2504.02259: score a sparse set, zoom where
the score is high, keep the rest as coverage) and AKS (Tang et al., CVPR 2025, arXiv:2502.21271:
relevance plus coverage over the timeline). Simplified: T* scores a grid image of many frames with
an open-vocabulary detector and updates a sampling distribution; here the VLM scores single
frames, and where to look first comes from feature novelty rather than a detector.

**Allocation** (`allocate_relevance`). When the scores are concentrated (the relevant frames fit in
the budget at their full tokens), every relevant frame keeps its full tokens and the rest of the
budget is spread over coverage frames across the whole timeline; when they are flat (a uniform
scorer, or relevance everywhere) it returns None and the caller spreads the budget as before. Frames are chosen in units of ``group`` neighbouring candidates, so a family that
pairs frames into one temporal patch (Qwen2-VL / Qwen2.5-VL) gets each relevant frame paired with
its neighbour, not with a frame minutes away. The result never exceeds the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ConfigError


def novelty(features: np.ndarray, window: int = 5) -> np.ndarray:
    """float32 (N,): 1 - cosine similarity of each row with the (L2-normalised) median of its
    ``window`` temporal neighbours (itself included; the ends repeat the edge rows)."""
    x = np.asarray(features, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n, half = len(x), max(1, int(window) // 2)
    if n == 0:
        return np.zeros(0, np.float32)
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)])
    out = np.empty(n, np.float32)
    for lo in range(0, n, 4096):  # bounded memory: (chunk, window, F) at a time
        hi = min(n, lo + 4096)
        win = np.lib.stride_tricks.sliding_window_view(padded[lo:hi + 2 * half], 2 * half + 1, axis=0)  # (c, F, w)
        med = np.median(win, axis=2)
        med /= np.maximum(np.linalg.norm(med, axis=1, keepdims=True), 1e-12)
        out[lo:hi] = 1.0 - np.einsum("nf,nf->n", x[lo:hi], med)
    return out


@dataclass
class SearchResult:
    """``scores`` (N,) float32, NaN where the scorer never looked; ``found_by`` (N,) the round that
    scored each candidate ("" if none); ``rounds`` one dict per round (kind, candidates scored)."""

    scores: np.ndarray
    found_by: np.ndarray
    rounds: list[dict] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return int(np.isfinite(self.scores).sum())


@dataclass
class TemporalSearch:
    """Coarse-to-fine search over ``N`` candidates (see the module docstring).

    call_share: at most this share of the candidates is scored (at least ``min_calls``)
    grid:       round 1 scores every ``grid``-th candidate
    window:     novelty compares a candidate with the median of this many neighbours
    relevant:   a score at or above this is relevant (the scorers' P(yes) is calibrated at 0.5)
    radius:     zoom rounds score unscored candidates within this many of a relevant one
    rounds:     at most this many zoom rounds
    min_calls:  a video with at most this many candidates is scored densely
    """

    call_share: float = 0.2
    grid: int = 16
    window: int = 5
    relevant: float = 0.5
    radius: int = 2
    rounds: int = 4
    min_calls: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.call_share <= 1:
            raise ConfigError(f"call_share={self.call_share!r}", "must be in (0, 1]")
        for name in ("grid", "window", "radius", "rounds", "min_calls"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r}", "must be an int >= 1")

    def max_calls(self, n: int) -> int:
        return min(n, max(self.min_calls, math.ceil(self.call_share * n)))

    def run(self, features: np.ndarray, score: Callable[[np.ndarray], np.ndarray]) -> SearchResult:
        """``score(indices int64 (M,)) -> (M,) in [0, 1]`` is called once per round."""
        n = len(features)
        scores = np.full(n, np.nan, np.float32)
        found = np.full(n, "", dtype=object)
        result = SearchResult(scores, found)
        budget = self.max_calls(n)

        def look(kind: str, idx: np.ndarray) -> None:
            idx = np.unique(np.asarray(idx, dtype=np.int64))
            idx = idx[~np.isfinite(scores[idx])][: budget - result.calls]
            if idx.size:
                got = np.asarray(score(idx), dtype=np.float32)
                if got.shape != idx.shape or not np.isfinite(got).all():
                    raise ValueError(f"the scorer returned {got.shape} scores for {idx.size} frames")
                scores[idx], found[idx] = got, kind
            result.rounds.append({"round": len(result.rounds) + 1, "kind": kind, "scored": int(idx.size)})

        if budget >= n:  # a short video: every candidate is scored (what a dense pass does)
            look("dense", np.arange(n))
            return result
        look("grid", np.arange(0, n, self.grid))
        nov = novelty(features, self.window)
        peak = (nov >= np.r_[-np.inf, nov[:-1]]) & (nov >= np.r_[nov[1:], -np.inf])
        peaks = np.flatnonzero(peak)
        peaks = peaks[np.argsort(-nov[peaks], kind="stable")]
        reserve = max(1, budget // 8)  # left for zooming in
        look("events", peaks[: max(0, budget - reserve - result.calls)])
        for _ in range(self.rounds):
            done = np.flatnonzero(np.isfinite(scores))
            hits = done[scores[done] >= self.relevant]
            if hits.size == 0:  # nothing clearly relevant: look closer at the best few
                hits = done[np.argsort(-scores[done], kind="stable")[:4]]
            near = (hits[:, None] + np.arange(-self.radius, self.radius + 1)[None]).ravel()
            near = near[(near >= 0) & (near < n)]
            near = near[~np.isfinite(scores[near])]
            if near.size == 0 or result.calls >= budget:
                break
            look("zoom", near)
        return result


@dataclass
class RelevancePlan:
    """Chosen candidate positions (sorted), their tokens, and why each was kept."""

    chosen: np.ndarray
    tokens: np.ndarray
    reasons: list[str]
    relevant_frames: int


def _unit(i: int, n: int, group: int, scores: np.ndarray, taken: dict[int, str]) -> tuple[int, ...] | None:
    """``group`` neighbouring candidates holding ``i`` and none already taken, the better-scored
    side first (ties: later frames); None when no such run exists."""
    if group <= 1 or n < group:
        return (i,)
    s = lambda j: float(scores[j]) if np.isfinite(scores[j]) else -1.0  # noqa: E731
    starts = [lo for lo in range(i - group + 1, i + 1) if 0 <= lo and lo + group <= n]
    starts.sort(key=lambda lo: (-sum(s(j) for j in range(lo, lo + group)), -lo))
    for lo in starts:
        if not any(j in taken for j in range(lo, lo + group)):
            return tuple(range(lo, lo + group))
    return None


ENCODE_RATIO = 1.2  # allocation "lean": the cap on tokens encoded per token kept in a relevance plan (issue 24)


def allocate_relevance(scores: np.ndarray, budget: int, *, full: int, group: int = 1, relevant: float = 0.5,
                       coverage_fraction: float = 0.5, found_by: np.ndarray | None = None,
                       encode_ratio: float | None = None) -> RelevancePlan | None:
    """Relevance-true plan over ``N`` candidates (``scores`` (N,), NaN = never scored), or None
    when relevance is flat: no informative score (all equal), nothing at or above ``relevant``, or
    more relevant frames than the budget holds at ``full`` tokens each.

    Relevant frames (score >= ``relevant``) keep ``full`` tokens, in units of ``group`` neighbours.
    The rest of the budget goes to coverage units spread evenly over the timeline, at
    ``coverage_fraction`` of a frame's tokens (at least 1), then any tokens left raise coverage
    frames towards ``full``. ``sum(tokens) <= budget`` always.

    encode_ratio: every chosen frame is encoded at ``full`` tokens and merged down to its share,
    so the tokens encoded are ``len(chosen) * full``; fewer coverage frames (each with more tokens)
    are chosen until that is at most ``encode_ratio`` x the tokens kept (None: no cap, coverage
    at ``coverage_fraction``). With a cap of 1.2 a coverage frame keeps >= 5/6 of its tokens on
    average, so the vision encoder's work follows the budget."""
    if encode_ratio is not None and not encode_ratio >= 1:
        raise ConfigError(f"encode_ratio={encode_ratio!r}", "must be a number >= 1 (tokens encoded per token kept), or None")
    scores = np.asarray(scores, dtype=np.float32)
    n, full, budget, group = len(scores), int(full), int(budget), max(1, int(group))
    seen = np.isfinite(scores)
    if n == 0 or budget < 1 or not seen.any():
        return None
    vals = scores[seen]
    if float(vals.max() - vals.min()) < 1e-6:  # flat: a uniform scorer, nothing to concentrate on
        return None
    hits = np.flatnonzero(seen & (scores >= relevant))
    hits = hits[np.argsort(-scores[hits], kind="stable")]
    taken: dict[int, str] = {}
    for i in hits:
        unit = None if int(i) in taken else _unit(int(i), n, group, scores, taken)
        if unit is None:  # kept already, or boxed in by kept neighbours (which hold its moment)
            continue
        if (len(taken) + len(unit)) * full > budget:  # relevance everywhere: spread instead
            return None
        for j in unit:
            taken[j] = "relevant" if j == i or (np.isfinite(scores[j]) and scores[j] >= relevant) else "pair"
    if not taken:
        return None
    return _finish(taken, scores, budget, full, group, coverage_fraction, found_by, encode_ratio)


def _finish(taken: dict[int, str], scores: np.ndarray, budget: int, full: int, group: int,
            coverage_fraction: float, found_by: np.ndarray | None, encode_ratio: float | None) -> RelevancePlan:
    n = len(scores)
    left = budget - len(taken) * full
    per = max(1, min(full, int(round(full * coverage_fraction))))
    units = [u for u in (tuple(range(s, min(n, s + group))) for s in range(0, n, group)) if not set(u) & taken.keys()]
    want = min(len(units), left // (per * group)) if left > 0 else 0
    capped = False
    if encode_ratio is not None:  # every chosen frame is encoded at full tokens: keep encoded / kept <= encode_ratio
        kept = lambda c: len(taken) * full + min(left, c * group * full)  # noqa: E731
        while want and (len(taken) + want * group) * full > encode_ratio * kept(want):
            want, capped = want - 1, True
    cover: list[int] = []
    if want:
        picks = np.unique(np.linspace(0, len(units) - 1, want).round().astype(np.int64))
        cover = [j for p in picks for j in units[int(p)]]
    if capped:  # fewer coverage frames than `per` allows: each gets an even share (at most full)
        per = min(full, left // len(cover)) if cover else per
    tokens = {j: full for j in taken}
    tokens.update({j: per for j in cover})
    spare = budget - sum(tokens.values())
    for j in cover:  # leftover tokens raise coverage frames towards full, in time order
        if spare <= 0:
            break
        extra = min(full - tokens[j], spare)
        tokens[j] += extra
        spare -= extra
    chosen = np.array(sorted(tokens), dtype=np.int64)
    reason = {j: f"{why} (score {scores[j]:.2f}, {found_by[j] if found_by is not None else 'scored'})"
              if np.isfinite(scores[j]) else why for j, why in taken.items()}
    reasons = [reason.get(int(j), "coverage") for j in chosen]
    out = RelevancePlan(chosen, np.array([tokens[int(j)] for j in chosen], dtype=np.int64), reasons,
                        sum(1 for w in taken.values() if w == "relevant"))
    if int(out.tokens.sum()) > budget:  # the budget contract, checked where it is made
        raise RuntimeError(f"relevance plan holds {int(out.tokens.sum())} tokens for a budget of {budget}")
    return out
