"""Pure budget arithmetic: exact integer splits and tokens <-> per-frame resolution.

``split_budget`` is the water-filling + largest-remainder core of every allocator: real shares
``clip(lambda * w_i, floor, cap)`` summing to ``min(budget, K * cap)``, rounded so the integers sum
exactly. A budget can be spent either as tokens per frame *after* encoding (merge / prune down to
``tokens``) or as a resolution per frame *before* encoding: ``tokens_to_resolution`` gives the
largest patch-aligned size with at most ``tokens`` LLM tokens.
"""

from __future__ import annotations

import math

import numpy as np


def split_budget(weights: np.ndarray, budget: int, *, floor: int = 0, cap: int | np.ndarray,
                 priority: np.ndarray | None = None) -> np.ndarray:
    """int64 (K,) shares proportional to ``weights`` within [floor, cap], summing to min(budget, sum of caps).

    ``cap`` is one int for every share or an int array (K,) of per-share caps. If ``K * floor``
    exceeds the total, the floor is lowered to ``total // K``. Leftover units go to the largest
    fractional parts, ties broken by ``priority`` (higher first) then index.
    """
    w = np.asarray(weights, dtype=np.float64)
    k = w.shape[0]
    if isinstance(budget, bool) or int(budget) != budget or budget < 0:
        raise ValueError(f"budget must be an int >= 0, got {budget!r}")
    if w.ndim != 1 or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite, >= 0 and of shape (K,)")
    caps = np.broadcast_to(np.asarray(cap), (k,)).astype(np.int64)
    if (caps < 1).any() or int(floor) < 0 or (k and int(floor) > int(caps.min())):
        raise ValueError(f"need 0 <= floor <= cap and cap >= 1, got floor={floor}, cap={cap}")
    if k == 0:
        return np.zeros(0, np.int64)
    cap, floor = caps, int(floor)
    total = min(int(budget), int(caps.sum()))
    floor = min(floor, total // k)
    if w.sum() <= 0:
        w = np.ones(k)
    w = w / w.max()
    # water-filling: find lam with sum(clip(lam * w, floor, cap)) == total (monotone in lam)
    lo, hi = 0.0, 1.0
    while np.clip(hi * w, floor, cap).sum() < total and hi < 1e300:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(mid * w, floor, cap).sum() < total:
            lo = mid
        else:
            hi = mid
    x = np.clip(hi * w, floor, cap)  # (K,) real shares
    base = np.clip(np.floor(x + 1e-9), floor, cap).astype(np.int64)
    frac = x - base
    prio = np.zeros(k) if priority is None else np.asarray(priority, dtype=np.float64)
    r = total - int(base.sum())
    idx = np.arange(k)
    while r > 0:  # hand out leftover units: largest remainder first
        ok = base < cap
        order = np.lexsort((idx, -prio, -frac))
        order = order[ok[order]][:r]
        base[order] += 1
        frac[order] = -np.inf
        r -= len(order)
    while r < 0:  # numerical overshoot: take back from the smallest remainders
        ok = base > floor
        order = np.lexsort((-idx, prio, frac))
        order = order[ok[order]][: -r]
        base[order] -= 1
        frac[order] = np.inf
        r += len(order)
    return base


def resolution_to_tokens(height: int, width: int, *, patch_size: int, merge_size: int = 1) -> int:
    """LLM tokens of one frame encoded at ``height x width`` pixels (patch grid / merge^2)."""
    unit = patch_size * merge_size
    return (height // unit) * (width // unit)


def tokens_to_resolution(tokens: int, *, aspect: float, patch_size: int, merge_size: int = 1,
                         max_height: int | None = None, max_width: int | None = None) -> tuple[int, int]:
    """Largest (height, width) in pixels, multiples of ``patch_size * merge_size`` and close to ``aspect``
    (width / height), whose token count is <= ``tokens`` (at least one token)."""
    if tokens < 1 or aspect <= 0 or patch_size < 1 or merge_size < 1:
        raise ValueError(f"need tokens >= 1, aspect > 0, patch_size >= 1, merge_size >= 1; got {tokens}, {aspect}, {patch_size}, {merge_size}")
    unit = patch_size * merge_size
    max_gh = (max_height // unit) if max_height else 10**6
    max_gw = (max_width // unit) if max_width else 10**6
    best = (1, 1)
    gh0 = max(1, int(math.sqrt(tokens / aspect)))
    for gh in range(max(1, gh0 - 2), gh0 + 3):
        gh = min(gh, max_gh)
        gw = max(1, min(tokens // gh, max_gw, max(1, round(gh * aspect))))
        if gh * gw <= tokens and gh * gw > best[0] * best[1]:
            best = (gh, gw)
    return best[0] * unit, best[1] * unit


def plan_resolutions(tokens_per_frame: "list[int] | np.ndarray", *, aspect: float, patch_size: int, merge_size: int = 1,
                     max_height: int | None = None, max_width: int | None = None) -> list[tuple[int, int]]:
    """The budget spent *before* encoding: a (height, width) per planned frame whose token count is
    at most that frame's planned tokens (e.g. ``[f.tokens for f in plan.frames]``)."""
    return [tokens_to_resolution(int(t), aspect=aspect, patch_size=patch_size, merge_size=merge_size,
                                 max_height=max_height, max_width=max_width) for t in tokens_per_frame]
