"""``Pipeline(resize=True)``: the budget spent as a resolution per frame before encoding.

Tiny random checkpoints of the real Qwen2.5-VL / Qwen3-VL architectures (no downloads), a
224x160 synthetic clip so frames have room to shrink. With resize on, a reduced budget encodes
smaller grids (fewer pixels into the vision tower), the prompt holds at most the planned tokens
(exactly on Qwen2.5-VL here; Qwen3-VL's aspect lattice lands a little below, as documented in
``vidsift.pipeline.pipeline``), and generation runs. An unlimited budget is unchanged by resize,
and a family without the capability (LLaVA-OneVision) ignores it.
"""

from __future__ import annotations

import math

import pytest
import torch

from vidsift.pipeline.archs import build_checkpoint
from vidsift.pipeline.pipeline import Pipeline

from videos import make_video

QWEN = ["tiny-qwen2.5-vl", "tiny-qwen3-vl"]
SAMPLING = dict(fps=4.0, max_frames=6)
Q = "Where is the square?"


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    return make_video(tmp_path_factory.mktemp("vid") / "clip.mp4", n_frames=48, fps=24, size=(224, 160))


@pytest.fixture(scope="module")
def pipes(tmp_path_factory):
    cache: dict[str, Pipeline] = {}

    def get(arch: str) -> Pipeline:
        if arch not in cache:
            cache[arch] = Pipeline.from_pretrained(build_checkpoint(arch, tmp_path_factory.mktemp(arch)), device="cpu", **SAMPLING)
        return cache[arch]

    return get


def _spy(pipe: Pipeline, calls: list) -> None:
    """Record (frames, max_pixels, grid_thw) of every tower run (instance attribute, test only)."""
    encode = type(pipe.adapter).encode.__get__(pipe.adapter)

    def spy(frames, **kw):
        out = encode(frames, **kw)
        calls.append((len(frames), kw.get("max_pixels"), out.grid_thw.clone()))
        return out

    pipe.adapter.encode = spy


@pytest.mark.parametrize("arch", QWEN)
def test_resize_encodes_smaller_grids_and_holds_plan(arch, pipes, video):
    pipe = pipes(arch)
    pipe.clear_cache()
    calls: list = []
    _spy(pipe, calls)
    try:
        full = pipe.ask(video, Q, budget=0.25, max_new_tokens=2)  # resize off: full grid, then merged
        assert len(calls) == 1 and calls[0][1] is None
        full_grid = calls[0][2][0]
        small = pipe.ask(video, Q, budget=0.25, resize=True, max_new_tokens=2)
    finally:
        del pipe.adapter.encode
    resized = calls[1:]
    assert resized and all(cap is not None for _, cap, _ in resized)
    for _, _, grid in resized:  # every group smaller than at full resolution
        assert all(int(g[1:].prod()) < int(full_grid[1:].prod()) for g in grid)
        assert all(int(g[1]) <= int(full_grid[1]) and int(g[2]) <= int(full_grid[2]) for g in grid)
    s, plan = small.stats, small.plan
    assert plan.total_tokens == full.plan.total_tokens  # same plan, spent differently
    assert s["resized"] is True and full.stats["resized"] is False
    assert s["tokens_encoded"] < full.stats["tokens_encoded"]
    assert s["tokens_in_prompt"] <= plan.total_tokens == full.stats["tokens_in_prompt"]
    assert s["tokens_in_prompt"] >= 0.6 * plan.total_tokens  # close to the plan, not a collapse
    if arch == "tiny-qwen2.5-vl":  # 12 tokens per frame, 24 per pair: a 4x6 / 3x4 grid fits exactly
        assert s["tokens_in_prompt"] == plan.total_tokens
    assert s["new_tokens"] == 2 and isinstance(small.text, str)


@pytest.mark.parametrize("arch", QWEN)
def test_resize_prompt_is_consistent(arch, pipes, video):
    pipe = pipes(arch)
    inputs, plan = pipe.prepare(video, Q, budget=0.5, resize=True)
    n_vis = int(inputs.visual_mask.sum())
    assert 0 < n_vis <= plan.total_tokens
    pos = inputs.kwargs["position_ids"]
    assert pos.shape == (4, 1, inputs.prompt_len)
    with torch.no_grad():
        logits = pipe.adapter.model(**inputs.kwargs).logits
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", QWEN)
def test_unlimited_budget_resize_equals_off(arch, pipes, video):
    pipe = pipes(arch)
    on, _ = pipe.prepare(video, Q, resize=True)
    off, _ = pipe.prepare(video, Q)
    for k in ("input_ids", "position_ids"):
        assert torch.equal(on.kwargs[k], off.kwargs[k])
    with torch.no_grad():
        a = pipe.adapter.model(**on.kwargs).logits[:, -1]
        b = pipe.adapter.model(**off.kwargs).logits[:, -1]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    x, y = pipe.ask(video, Q, resize=True, max_new_tokens=4), pipe.ask(video, Q, max_new_tokens=4)
    assert x.text == y.text and x.stats["tokens_in_prompt"] == y.stats["tokens_in_prompt"]


def test_encode_cache_keys_on_resolution(pipes, video):
    pipe = pipes("tiny-qwen2.5-vl")
    pipe.clear_cache()
    before = pipe.encode_calls
    pipe.prepare(video, Q, budget=0.5, resize=True)
    after_resized = pipe.encode_calls
    pipe.prepare(video, Q, budget=0.5, resize=True)  # same plan and resolution: cached
    assert pipe.encode_calls == after_resized > before
    pipe.prepare(video, Q, budget=0.5)  # same frames at full resolution: a different entry
    assert pipe.encode_calls == after_resized + 1


def test_pipeline_default_resize_and_tokens_rule(pipes, video):
    pipe = pipes("tiny-qwen2.5-vl")
    on = Pipeline(pipe.adapter, budget=0.25, resize=True, **SAMPLING)
    inputs, plan = on.prepare(video, Q)
    off_inputs, _ = Pipeline(pipe.adapter, budget=0.25, **SAMPLING).prepare(video, Q)
    assert not torch.equal(inputs.kwargs["mm_encoder_outputs"]["video"].pooler_output[0],
                           off_inputs.kwargs["mm_encoder_outputs"]["video"].pooler_output[0])
    # the largest cap under Qwen's resize rule: tokens never above the target, and no larger
    # cap (up to the next lattice step) fits more tokens under it
    a, pre = pipe.adapter, pipe.adapter.pre
    count = lambda cap: math.prod(pre.target_size(160, 224, max_pixels=cap)) // pre.factor ** 2  # noqa: E731
    last = 0
    for t in range(1, count(None)):
        cap = a.max_pixels_for_tokens(160, 224, t)
        got = count(cap)
        assert got <= t or cap == max(pre.min_pixels, pre.factor ** 2)
        assert got >= last  # more tokens allowed never shrinks the frame
        assert count(cap + 1) > t or cap + 1 > pre.max_pixels or count(cap + 1) == got
        last = got
    assert a.max_pixels_for_tokens(160, 224, count(None)) is None  # the full grid already fits


def test_fixed_resolution_family_ignores_resize(pipes, video):
    pipe = pipes("tiny-llava-onevision")
    on, _ = pipe.prepare(video, Q, budget=0.5, resize=True)
    off, _ = pipe.prepare(video, Q, budget=0.5)
    tensors = [k for k, v in off.kwargs.items() if isinstance(v, torch.Tensor)]
    assert "input_ids" in tensors and set(on.kwargs) == set(off.kwargs)
    assert all(torch.equal(on.kwargs[k], off.kwargs[k]) for k in tensors)
    assert pipe.ask(video, Q, budget=0.5, resize=True, max_new_tokens=1).stats["resized"] is False


def test_cli_ask_resize(video, tmp_path_factory, capsys):
    import json

    from vidsift.cli.app import run

    ckpt = str(build_checkpoint("tiny-qwen2.5-vl", tmp_path_factory.mktemp("cli-qwen")))
    args = ["ask", video, "What moves?", "--model", ckpt, "--budget", "25%", "--fps", "4", "--max-frames", "6",
            "--max-new-tokens", "2", "--device", "cpu", "--json"]
    assert run([*args, "--resize"]) == 0
    on = json.loads(capsys.readouterr().out)["stats"]
    assert run(args) == 0
    off = json.loads(capsys.readouterr().out)["stats"]
    assert on["resized"] is True and off["resized"] is False
    assert on["tokens_encoded"] < off["tokens_encoded"] and on["tokens_in_prompt"] <= off["tokens_in_prompt"]
