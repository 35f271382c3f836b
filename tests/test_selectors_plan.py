"""``plan_frames`` / ``plan``: budget never exceeded, exact sums, unique time-sorted frames,
determinism, JSON round trip, scene coverage on synthesised scene videos, real clips, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import vidsift
from videos import make_scene_video, sample_clip
from vidsift.errors import ConfigError, VidsiftError
from vidsift.frames import FrameBatch, open_video, sample
from vidsift.selectors import ALLOCATORS, SCORERS, SELECTORS, FrameScores, TokenPlan, plan_frames

SELECTOR_SPECS = SELECTORS.names() + ["mmr:weight=0.9"]


@st.composite
def candidates(draw):
    n = draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    colours = rng.integers(0, 256, (draw(st.integers(1, 5)), 3))
    which = np.sort(rng.integers(0, len(colours), n))  # runs of colour = scenes
    data = np.empty((n, 12, 16, 3), np.uint8)
    data[:] = colours[which][:, None, None, :]
    data += rng.integers(0, 20, data.shape, dtype=np.uint8)
    pts = np.cumsum(rng.uniform(0.04, 1.0, n))
    return FrameBatch(data, pts, np.arange(n) * 3 + 1)


@settings(max_examples=40, deadline=None)
@given(frames=candidates(), budget=st.integers(1, 3000), tpf=st.floats(0.5, 400), selector=st.sampled_from(SELECTOR_SPECS),
       allocator=st.sampled_from(ALLOCATORS.names() + ["proportional:alpha=2"]), k=st.one_of(st.none(), st.integers(1, 30)),
       scored=st.booleans())
def test_plan_invariants(frames, budget, tpf, selector, allocator, k, scored):
    scores = None
    if scored:  # the pipeline's path: scores computed elsewhere, no features
        scores = FrameScores(np.random.default_rng(len(frames)).random(len(frames)).astype(np.float32), None, scorer="x")
    kw = dict(budget_tokens=budget, tokens_per_frame=tpf, k=k, selector=selector, allocator=allocator, scores=scores, video="v.mp4")
    plan = plan_frames(frames, "q", **kw)
    full = math.ceil(tpf - 1e-9)
    toks = [f.tokens for f in plan.frames]
    assert plan.total_tokens <= budget and plan.budget == budget
    assert plan.total_tokens == min(budget, len(plan.frames) * full)  # allocations sum exactly
    assert all(1 <= t <= full for t in toks)
    idx = [f.index for f in plan.frames]
    assert idx == sorted(set(idx)) and set(idx) <= set(frames.index.tolist())
    assert [f.pts_seconds for f in plan.frames] == sorted(f.pts_seconds for f in plan.frames)
    if k is not None:
        assert len(plan.frames) == min(k, len(frames), budget)
    again = plan_frames(frames, "q", **kw)
    assert [vars(f) for f in again.frames] == [vars(f) for f in plan.frames]  # same inputs, same plan
    back = TokenPlan.from_dict(json.loads(plan.to_json()))
    assert back.to_dict() == plan.to_dict()


def test_plan_frames_defaults_and_stats():
    data = np.zeros((10, 8, 8, 3), np.uint8)
    frames = FrameBatch(data, np.arange(10) * 0.5, np.arange(10))
    everything = plan_frames(frames, budget_tokens=10 * 196, tokens_per_frame=196)
    assert len(everything.frames) == 10 and {f.tokens for f in everything.frames} == {196}
    half = plan_frames(frames, budget_tokens=5 * 196, tokens_per_frame=196)
    assert len(half.frames) == 10 and half.total_tokens == 5 * 196  # k from budget at min_fraction 0.5
    tight = plan_frames(frames, budget_tokens=196, tokens_per_frame=196)
    assert len(tight.frames) == 2 and tight.total_tokens == 196
    for key in ("score", "features", "segment", "select", "allocate"):
        assert tight.stats["time_s"][key] >= 0
    assert tight.settings["selector"] == "kcenter" and tight.stats["n_candidates"] == 10


@pytest.fixture(scope="module")
def five_scene_video(tmp_path_factory):
    scenes = [(0, 30), (1, 4), (2, 30), (3, 4), (4, 24)]
    path, cuts = make_scene_video(tmp_path_factory.mktemp("scenes") / "scenes.mp4", scenes=scenes, fps=24)
    with open_video(path) as reader:
        frames = sample(reader)
    starts = [0] + cuts
    scene_of = np.searchsorted(np.array(starts), frames.index, side="right") - 1
    return path, frames, scene_of, len(scenes)


@pytest.mark.parametrize("selector", ["kcenter", "maxmin", "kmeans", "mmr", "topk"])
@pytest.mark.parametrize("extra", [0, 2])
def test_plan_covers_every_scene(five_scene_video, selector, extra):
    _, frames, scene_of, k_scenes = five_scene_video
    plan = plan_frames(frames, budget_tokens=1000, tokens_per_frame=64, k=k_scenes + extra, selector=selector)
    pos = np.searchsorted(frames.index, plan.indices)
    assert set(scene_of[pos]) == set(range(k_scenes))
    assert plan.stats["n_segments"] == k_scenes and plan.stats["segments_covered"] == k_scenes


def test_uniform_plan_misses_short_scenes(five_scene_video):
    _, frames, scene_of, k_scenes = five_scene_video
    plan = plan_frames(frames, budget_tokens=1000, tokens_per_frame=64, k=k_scenes, selector="uniform")
    pos = np.searchsorted(frames.index, plan.indices)
    missed = set(range(k_scenes)) - set(scene_of[pos].tolist())
    assert missed and missed <= {1, 3}  # a 4-frame scene falls between evenly spaced picks


def test_plan_on_real_clip_is_deterministic():
    path = sample_clip("bikes.mp4")
    a = vidsift.plan(path, budget="10%", fps=4, max_frames=40, selector="maxmin")
    b = vidsift.plan(path, budget=0.1, fps=4, max_frames=40, selector="maxmin")
    assert a.frames == b.frames and a.budget == round(0.1 * 40 * 196)
    assert a.total_tokens <= a.budget and a.stats["time_s"]["decode"] > 0
    capped = vidsift.plan(path, budget=vidsift.Budget(tokens=5000, max_frames=6), fps=4, max_frames=40)
    assert len(capped.frames) == 6 and capped.total_tokens == min(5000, 6 * 196)
    full = vidsift.plan(path, fps=2, max_frames=12, tokens_per_frame=10.5)
    assert len(full.frames) == 12 and {f.tokens for f in full.frames} == {11}


def test_scorer_instances_and_scores_are_accepted():
    frames = FrameBatch(np.zeros((6, 8, 8, 3), np.uint8), np.arange(6.0), np.arange(6))
    scorer = SCORERS.build("uniform")
    plan = plan_frames(frames, budget_tokens=30, tokens_per_frame=10, scorer=scorer, selector=SELECTORS.build("topk"),
                       allocator=ALLOCATORS.build("uniform"))
    assert plan.settings["scorer"] == "uniform" and plan.settings["selector"] == "topk"
    relevant = FrameScores(np.array([0, 0, 1, 0, 0, 0.5], np.float32), None, scorer="mllm")
    plan = plan_frames(frames, budget_tokens=30, tokens_per_frame=10, k=2, selector="topk", scores=relevant)
    assert plan.indices.tolist() == [2, 5] and plan.settings["scorer"] == "mllm"


def test_plan_bad_input(tmp_path):
    frames = FrameBatch(np.zeros((3, 8, 8, 3), np.uint8), np.arange(3.0), np.arange(3))
    with pytest.raises(ConfigError, match="budget"):
        plan_frames(frames, budget_tokens=0, tokens_per_frame=10)
    with pytest.raises(ConfigError, match="tokens_per_frame"):
        plan_frames(frames, budget_tokens=10, tokens_per_frame=0)
    with pytest.raises(ConfigError, match="frames=0"):
        plan_frames(frames, budget_tokens=10, tokens_per_frame=1, k=0)
    with pytest.raises(ConfigError, match="unknown selector"):
        plan_frames(frames, budget_tokens=10, tokens_per_frame=1, selector="best")
    with pytest.raises(ConfigError, match="no candidate frames"):
        plan_frames(frames[np.zeros(3, bool)], budget_tokens=10, tokens_per_frame=1, video="x.mp4")
    with pytest.raises(VidsiftError, match="missing.mp4"):
        vidsift.plan(tmp_path / "missing.mp4", budget=100)
    with pytest.raises(ConfigError, match="budget"):
        vidsift.plan(sample_clip("bikes.mp4"), budget="lots")


def test_whole_tokens_is_the_ceiling_forgiving_float_noise():
    from vidsift.types import whole_tokens

    assert [whole_tokens(x) for x in (196, 196.0, 0.1 * 3 * 10, 195.5, 196 + 1e-12, 196.01)] == [196, 196, 3, 196, 196, 197]
    plan = plan_frames(FrameBatch(np.zeros((4, 8, 8, 3), np.uint8), np.arange(4.0), np.arange(4)),
                       budget_tokens=12, tokens_per_frame=0.1 * 3 * 10)  # 3.0000000000000004 tokens: every frame fits
    assert len(plan.frames) == 4 and plan.total_tokens == 12
