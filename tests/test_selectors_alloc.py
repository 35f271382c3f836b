"""Allocators and budget arithmetic: exact integer sums, floor/cap bounds, budget as resolution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vidsift.errors import ConfigError
from vidsift.selectors import ALLOCATORS, resolution_to_tokens, split_budget, tokens_to_resolution

ALLOC_SPECS = sorted(set(ALLOCATORS.names()) | {"proportional:alpha=0", "proportional:alpha=3"})  # every registered member

scores_st = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40).map(lambda v: np.array(v, np.float32))


@pytest.mark.parametrize("spec", ALLOC_SPECS)
@settings(max_examples=60, deadline=None)
@given(scores=scores_st, budget=st.integers(0, 5000), cap=st.integers(1, 300), floor=st.integers(0, 300))
def test_allocation_sums_exactly_within_bounds(spec, scores, budget, cap, floor):
    floor = min(floor, cap)
    alloc = ALLOCATORS.build(spec).allocate(scores, budget, floor=floor, cap=cap)
    k = len(scores)
    total = min(budget, k * cap)
    assert alloc.dtype == np.int64 and alloc.shape == (k,)
    assert int(alloc.sum()) == total
    assert alloc.max() <= cap and alloc.min() >= min(floor, total // k)
    again = ALLOCATORS.build(spec).allocate(scores, budget, floor=floor, cap=cap)
    np.testing.assert_array_equal(alloc, again)


@settings(max_examples=60, deadline=None)
@given(scores=scores_st, budget=st.integers(1, 3000))
def test_proportional_is_monotone_in_relevance(scores, budget):
    alloc = ALLOCATORS.build("proportional:alpha=1").allocate(scores, budget, floor=0, cap=10_000)
    order = np.argsort(scores, kind="stable")
    # a more relevant frame never gets fewer tokens than a less relevant one (ties may differ by 1)
    for a, b in zip(order[:-1], order[1:]):
        if scores[b] > scores[a]:
            assert alloc[b] >= alloc[a]


def test_proportional_follows_relevance_and_uniform_is_flat():
    s = np.array([0.0, 0.5, 1.0], np.float32)
    prop = ALLOCATORS.build("proportional:eps=0").allocate(s, 150, floor=0, cap=196)
    assert prop.tolist() == [0, 50, 100]
    uni = ALLOCATORS.build("uniform").allocate(s, 100, floor=1, cap=196)
    assert uni.tolist() == [33, 33, 34]  # leftover unit to the most relevant frame
    capped = ALLOCATORS.build("proportional:alpha=2").allocate(s, 10_000, floor=1, cap=196)
    assert capped.tolist() == [196, 196, 196]


def test_floor_lowered_when_budget_too_small():
    alloc = split_budget(np.ones(5), 7, floor=4, cap=10)
    assert alloc.sum() == 7 and alloc.min() >= 1


@pytest.mark.parametrize("spec, msg", [("proportional:alpha=-1", "alpha"), ("proportional:alpha=x", "alpha"),
                                       ("nope", "unknown allocator")])
def test_bad_allocator_specs(spec, msg):
    with pytest.raises(ConfigError, match=msg):
        ALLOCATORS.build(spec)


def test_bad_allocate_arguments():
    with pytest.raises(ValueError, match="budget"):
        split_budget(np.ones(3), -1, cap=3)
    with pytest.raises(ValueError, match="floor"):
        split_budget(np.ones(3), 5, floor=4, cap=3)


@settings(max_examples=80, deadline=None)
@given(tokens=st.integers(1, 5000), aspect=st.floats(0.2, 5), patch=st.sampled_from([14, 16]), merge=st.sampled_from([1, 2]))
def test_tokens_to_resolution_fits_budget(tokens, aspect, patch, merge):
    h, w = tokens_to_resolution(tokens, aspect=aspect, patch_size=patch, merge_size=merge)
    unit = patch * merge
    assert h % unit == 0 and w % unit == 0 and h >= unit and w >= unit
    assert 1 <= resolution_to_tokens(h, w, patch_size=patch, merge_size=merge) <= tokens


def test_tokens_to_resolution_examples():
    # Qwen2.5-VL style: patch 14, merge 2 -> 28 px per LLM token side; 16:9 at ~256 tokens
    h, w = tokens_to_resolution(256, aspect=16 / 9, patch_size=14, merge_size=2)
    t = resolution_to_tokens(h, w, patch_size=14, merge_size=2)
    assert 200 <= t <= 256 and 1.4 < w / h < 2.2


def test_plan_as_resolution_per_frame():
    from vidsift.frames import FrameBatch
    from vidsift.selectors import plan_frames, plan_resolutions

    frames = FrameBatch(np.zeros((8, 36, 64, 3), np.uint8), np.arange(8.0), np.arange(8))
    p = plan_frames(frames, budget_tokens=600, tokens_per_frame=16 * 9 * 1.0, k=6)
    sizes = plan_resolutions([f.tokens for f in p.frames], aspect=16 / 9, patch_size=14, merge_size=2)
    assert len(sizes) == 6
    for (h, w), f in zip(sizes, p.frames):
        assert resolution_to_tokens(h, w, patch_size=14, merge_size=2) <= f.tokens
