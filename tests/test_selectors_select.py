"""Keyframe selectors: invariants (hypothesis), k-center radius vs brute force, Max-Min diversity
vs random, scene coverage on synthesised scene videos, FAISS helpers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from videos import SCENE_COLORS, shapes_frame
from vidsift.errors import ConfigError
from vidsift.selectors import SELECTORS, ensure_coverage, frame_features, segment_scenes
from vidsift.selectors._diversity import min_pairwise_distance
from vidsift.selectors._faiss import coverage_radius, nearest_other_distance, search

SPECS = SELECTORS.names() + ["mmr:weight=0", "mmr:weight=1"]  # every registered member


@st.composite
def problems(draw):
    n = draw(st.integers(1, 60))
    f = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    dup = draw(st.booleans())  # exact duplicate frames (static video) are a real case
    x = rng.normal(size=(n, f)).astype(np.float32)
    if dup:
        x = x[rng.integers(0, max(1, n // 3), n)]
    scores = rng.random(n).astype(np.float32)
    if draw(st.booleans()):
        scores = np.round(scores, 1)  # ties
    k = draw(st.integers(0, n + 5))
    return x, scores, k


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=40, deadline=None)
@given(problem=problems())
def test_selection_unique_sorted_exact_deterministic(spec, problem):
    x, scores, k = problem
    sel = SELECTORS.build(spec).select(x, scores, k)
    assert sel.dtype == np.int64
    assert len(sel) == min(k, len(x))
    assert np.all(np.diff(sel) > 0) and (len(sel) == 0 or (sel[0] >= 0 and sel[-1] < len(x)))
    again = SELECTORS.build(spec).select(x.copy(), scores.copy(), k)
    np.testing.assert_array_equal(sel, again)


def test_topk_and_mmr_extremes():
    x = np.eye(5, dtype=np.float32)
    s = np.array([0.1, 0.9, 0.5, 0.9, 0.2], np.float32)
    assert SELECTORS.build("topk").select(x, s, 2).tolist() == [1, 3]
    assert SELECTORS.build("mmr:weight=1").select(x, s, 3).tolist() == [1, 2, 3]


def _optimal_radius(x: np.ndarray, k: int) -> float:
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    return min(d[:, list(c)].min(1).max() for c in itertools.combinations(range(len(x)), k))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 11), k=st.integers(1, 4))
def test_kcenter_within_twice_optimal_radius(seed, n, k):
    x = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    scores = np.random.default_rng(seed + 1).random(n).astype(np.float32)
    sel = SELECTORS.build("kcenter").select(x, scores, k)
    assert coverage_radius(x, sel) <= 2 * _optimal_radius(x, min(k, n)) + 1e-4


@pytest.mark.parametrize("seed", range(5))
def test_maxmin_beats_random_on_its_objective(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    k = 12
    sel = SELECTORS.build("maxmin").select(x, np.ones(300, np.float32), k)
    ours = min_pairwise_distance(x, sel)
    rand = [min_pairwise_distance(x, rng.choice(300, k, replace=False)) for _ in range(200)]
    assert ours > np.max(rand) * 0.999 and ours > np.mean(rand) * 1.2


def _scene_frames(scenes: list[tuple[int, int]], size=(64, 48)) -> tuple[np.ndarray, np.ndarray]:
    frames, labels = [], []
    for s, (seed, n) in enumerate(scenes):
        for j in range(n):
            frames.append(shapes_frame(j, size, base=SCENE_COLORS[seed], seed=seed + 1))
            labels.append(s)
    return np.stack(frames), np.array(labels)


SCENES = [(0, 40), (1, 3), (2, 40), (3, 3), (4, 30), (5, 2)]


@pytest.mark.parametrize("spec", ["kcenter", "maxmin", "kmeans"])
@pytest.mark.parametrize("extra", [0, 3])
def test_diverse_selectors_cover_every_scene(spec, extra):
    data, labels = _scene_frames(SCENES)
    feats = frame_features(data)
    k = len(SCENES) + extra
    sel = SELECTORS.build(spec).select(feats, np.ones(len(data), np.float32), k)
    assert set(labels[sel]) == set(range(len(SCENES)))


def test_uniform_misses_short_scenes():
    data, labels = _scene_frames(SCENES)
    feats = frame_features(data)
    sel = SELECTORS.build("uniform").select(feats, np.ones(len(data), np.float32), len(SCENES) + 3)
    missed = set(range(len(SCENES))) - set(labels[sel])
    assert missed  # the 2-3 frame scenes fall between evenly spaced picks
    assert missed <= {1, 3, 5}


def test_segment_scenes_finds_the_cuts():
    data, labels = _scene_frames(SCENES)
    seg = segment_scenes(frame_features(data))
    np.testing.assert_array_equal(seg, labels)
    assert segment_scenes(frame_features(data[:40])).max() == 0  # one moving-shapes scene: no cut
    assert segment_scenes(frame_features(data[:40]), min_segments=4).max() == 3
    assert segment_scenes(frame_features(data), max_segments=2).max() == 1


def test_ensure_coverage_swaps_into_missing_segments():
    seg = np.array([0] * 10 + [1] * 2 + [2] * 10)
    scores = np.linspace(0, 1, 22).astype(np.float32)
    out = ensure_coverage(np.array([0, 3, 5, 15]), seg, scores)
    assert len(out) == 4 and set(seg[out]) == {0, 1, 2}
    assert 11 in out and 0 not in out  # most relevant frame of segment 1 replaces the least relevant pick
    np.testing.assert_array_equal(ensure_coverage(np.array([0, 15]), seg, scores), [0, 15])  # k < segments


def test_faiss_helpers_match_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(nearest_other_distance(x), d.min(1), rtol=1e-4, atol=1e-4)
    # HNSW path (forced with a tiny exact limit) finds (almost always) the exact neighbour
    approx = nearest_other_distance(x, exact_limit=10)
    assert np.mean(np.isclose(approx, d.min(1), rtol=1e-4, atol=1e-4)) > 0.95
    _, ids = search(x, x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("spec, msg", [("kmeans:niter=0", "niter"), ("mmr:weight=2", "weight"), ("kcentre", "unknown selector")])
def test_bad_selector_specs(spec, msg):
    with pytest.raises(ConfigError, match=msg):
        SELECTORS.build(spec)


def test_bad_select_inputs():
    sel = SELECTORS.build("kcenter")
    with pytest.raises(ValueError, match="features"):
        sel.select(np.zeros(5, np.float32), np.zeros(5, np.float32), 2)
    with pytest.raises(ValueError, match="scores"):
        sel.select(np.zeros((5, 2), np.float32), np.zeros(4, np.float32), 2)
    with pytest.raises(ValueError, match="k must be"):
        sel.select(np.zeros((5, 2), np.float32), np.zeros(5, np.float32), -1)


def test_mmr_diversifies_even_when_all_features_are_similar():
    rng = np.random.default_rng(0)
    a = np.ones(32, np.float32)
    b = a.copy()
    b[0] = 1.3  # cos(a, b) ~ 0.999: e.g. a random or saturated embedding space
    x = np.stack([a] * 10 + [b] * 10) + 1e-5 * rng.normal(size=(20, 32)).astype(np.float32)
    rel = np.concatenate([np.linspace(1, 0.8, 10), np.full(10, 0.3)]).astype(np.float32)
    sel = SELECTORS.build("mmr:weight=0.5").select(x, rel, 2)
    assert sel[0] == 0 and sel[1] >= 10  # the second pick comes from the other group
    assert SELECTORS.build("mmr:weight=1").select(x, rel, 2).tolist() == [0, 1]
