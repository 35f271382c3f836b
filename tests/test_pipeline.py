"""Pipeline end to end on tiny random checkpoints of the real architectures (no downloads).

Equivalence: with an unlimited budget the Pipeline's prompt gives the same logits and greedy
tokens as the same frames through the model's own vision tower (``adapter.pixel_inputs`` +
``model.generate``; the adapter tests compare that with the stock processors). Reduced budgets: the
prompt holds exactly ``plan.total_tokens`` visual tokens.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsift.errors import ConfigError, ModelError
from vidsift.pipeline.archs import build_checkpoint
from vidsift.pipeline.pipeline import Pipeline, group_targets
from vidsift.types import Budget, PlannedFrame, TokenPlan

from videos import make_video

ARCHS = ["tiny-llava-onevision", "tiny-qwen2.5-vl", "tiny-qwen3-vl", "tiny-smolvlm2"]  # one tiny checkpoint per adapter family
SAMPLING = dict(fps=4.0, max_frames=6)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    return make_video(tmp_path_factory.mktemp("vid") / "clip.mp4", n_frames=48, fps=24, size=(96, 64))


@pytest.fixture(scope="module")
def pipes(tmp_path_factory):
    cache: dict[str, Pipeline] = {}

    def get(arch: str) -> Pipeline:
        if arch not in cache:
            path = build_checkpoint(arch, tmp_path_factory.mktemp(arch))
            cache[arch] = Pipeline.from_pretrained(path, device="cpu", **SAMPLING)
        return cache[arch]

    return get


@pytest.mark.parametrize("arch", ARCHS)
def test_unlimited_budget_equals_pixel_inputs(arch, pipes, video):
    pipe = pipes(arch)
    adapter, q = pipe.adapter, "What is moving in the video?"
    inputs, plan = pipe.prepare(video, q)
    frames = pipe.candidates(video)
    assert len(plan.frames) == len(frames) == 6
    pixel = adapter.pixel_inputs(frames, q)
    with torch.no_grad():
        ours = adapter.model(**inputs.kwargs).logits[:, -1]
        ref = adapter.model(**pixel).logits[:, -1]
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)

    answer = pipe.ask(video, q, max_new_tokens=8)
    out = adapter.model.generate(**pixel, max_new_tokens=8, do_sample=False)
    assert answer.text == adapter.decode(out[:, pixel["input_ids"].shape[1]:])[0].strip()
    assert answer.stats["tokens_in_prompt"] == answer.stats["tokens_encoded"] >= plan.total_tokens
    assert answer.stats["tokens_budget"] == answer.stats["tokens_full"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("budget", [0.25, 0.5])
def test_reduced_budget_prompt_holds_plan_tokens(arch, budget, pipes, video):
    pipe = pipes(arch)
    inputs, plan = pipe.prepare(video, "Where is the square?", budget=budget)
    full_inputs, full_plan = pipe.prepare(video, "Where is the square?")
    assert plan.total_tokens <= plan.budget <= max(1, round(budget * full_plan.total_tokens))
    assert int(inputs.visual_mask.sum()) == plan.total_tokens
    assert inputs.prompt_len < full_inputs.prompt_len
    answer = pipe.ask(video, "Where is the square?", budget=budget, max_new_tokens=2)
    assert answer.stats["tokens_in_prompt"] == answer.plan.total_tokens == plan.total_tokens


def test_questions_on_one_video_encode_once(pipes, video):
    pipe = pipes("tiny-llava-onevision")
    pipe.clear_cache()
    calls = []
    encode = pipe.adapter.encode
    pipe.adapter.encode = lambda frames: calls.append(len(frames)) or encode(frames)  # instance attribute, test only
    try:
        answers = pipe.ask_many(video, ["What colour is it?", "Is it moving?", "How many shapes?"], budget="50%",
                                max_new_tokens=2)
    finally:
        del pipe.adapter.encode
    assert len(answers) == 3 and len(calls) == 1
    assert all(a.plan.total_tokens == answers[0].plan.total_tokens for a in answers)


def test_stats_measure_every_stage(pipes, video):
    pipe = pipes("tiny-llava-onevision")
    a = pipe.ask(video, "Describe the video.", budget=0.5, max_new_tokens=4)
    s = a.stats
    assert set(s["time_s"]) >= {"decode", "score", "select", "encode", "prefill", "generate"}
    assert 0 < s["time_s"]["prefill"] <= s["ttft_s"] <= s["total_s"]
    assert s["new_tokens"] == 4 and s["peak_rss_bytes"] > 0 and s["peak_cuda_bytes"] is None
    # the cache holds every prompt token and all but the last new token, fp32 keys + values
    text = pipe.adapter.model.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    per_token = text.num_hidden_layers * 2 * text.num_key_value_heads * head_dim * 4
    assert s["kv_bytes"] == per_token * (s["prompt_len"] + s["new_tokens"] - 1)
    assert a.to_dict()["plan"]["total_tokens"] == s["tokens_in_prompt"]


def test_mllm_scorer_through_pipeline(pipes, video):
    pipe = pipes("tiny-llava-onevision")
    a = pipe.ask(video, "Is there a red square?", budget=0.5, scorer="mllm", max_new_tokens=2)
    assert a.plan.settings["scorer"] == "mllm"
    assert all(0.0 <= f.score <= 1.0 for f in a.plan.frames)
    assert len({round(f.score, 6) for f in a.plan.frames}) > 1  # real per-frame scores, not uniform


def test_frames_input_and_frame_cap(pipes, video):
    pipe = pipes("tiny-llava-onevision")
    frames = pipe.candidates(video)
    a = pipe.ask(frames, "What is it?", budget=Budget(max_frames=2), max_new_tokens=1)
    assert len(a.plan.frames) == 2


def test_group_targets_map_frames_to_frame_pairs():
    from vidsift.types import VisualTokens

    g = 3  # groups of 2 frames (Qwen2.5-VL pairs): frame indices 0-1, 10-11, 20-(pad)
    toks = VisualTokens(embeds=[torch.zeros(8, 4)] * g, coords=[torch.zeros(8, 3, dtype=torch.long)] * g,
                        size=[torch.ones(8)] * g, grid_thw=torch.tensor([[1, 2, 4]] * g),
                        pts_seconds=np.array([0.0, 1.0, 2.0]), index=np.array([0, 10, 20]))
    plan = TokenPlan("v", 20, [PlannedFrame(0, 0.0, 1, 3), PlannedFrame(1, 0.1, 1, 4), PlannedFrame(10, 1.0, 1, 2),
                               PlannedFrame(11, 1.1, 1, 2), PlannedFrame(20, 2.0, 1, 4)])
    assert group_targets(toks, plan) == [7, 4, 4]
    plan.frames[0].tokens = 7  # more than the group has: capped
    assert group_targets(toks, plan) == [8, 4, 4]


def test_bad_input_is_one_line(tmp_path, pipes, video):
    with pytest.raises(ModelError, match=r"no such file or directory$"):
        Pipeline.from_pretrained(tmp_path / "missing")
    pipe = pipes("tiny-llava-onevision")
    with pytest.raises(ConfigError, match="unknown option"):
        pipe.ask(video, "q", fsp=2)
    with pytest.raises(ConfigError, match="non-empty"):
        pipe.ask(video, "  ")
    with pytest.raises(ConfigError, match="max_new_tokens"):
        pipe.ask(video, "q", max_new_tokens=0)


def test_qwen_frame_pairs_with_an_odd_frame_count(pipes, video):
    pipe = pipes("tiny-qwen2.5-vl")
    inputs, plan = pipe.prepare(video, "Where is it?", budget=0.5, frames=3, selector="uniform")
    assert len(plan.frames) == 3  # two groups: a pair and a padded single frame
    assert int(inputs.visual_mask.sum()) == plan.total_tokens
    a = pipe.ask(video, "Where is it?", frames=3, selector="uniform", max_new_tokens=2)  # unlimited tokens
    assert a.stats["tokens_in_prompt"] == a.stats["tokens_encoded"]


def test_pruners_and_presses_are_wired(pipes, video):
    pipe = pipes("tiny-llava-onevision")
    base = pipe.ask(video, "What?", max_new_tokens=3)
    pruned = pipe.ask(video, "What?", prune="fastv:k=1,keep=0.5", max_new_tokens=3)
    pressed = pipe.ask(video, "What?", kv="snapkv:ratio=0.25", max_new_tokens=3)
    assert pruned.stats["prune"][0]["method"] == "fastv" and pressed.stats["kv"][0]["method"] == "snapkv"
    assert pruned.stats["kv_bytes"] < base.stats["kv_bytes"] and pressed.stats["kv_bytes"] < base.stats["kv_bytes"]
    assert "prune" not in base.stats and "kv" not in base.stats
    with pytest.raises(ConfigError, match="unknown prefill pruner"):
        pipe.ask(video, "What?", prune="nope", max_new_tokens=1)
