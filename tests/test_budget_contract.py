"""The visual-token budget is a contract: the prompt never holds more visual tokens than the budget,
and neither does the plan, for every family, odd and even frame counts (Qwen pairs frames into
temporal patches and pads an odd count), any budget, every merger, with and without ``resize``.

Tiny random checkpoints of the real architectures (no downloads); frames are given decoded
(`FrameBatch`) so only planning, encoding, merging and the prompt run (no generation), plus one
end-to-end regression through the CLI on the real bikes.mp4 clip.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from vidsift.cli.app import run
from vidsift.types import FrameBatch
from vidsift.pipeline.pipeline import Pipeline
from vidsift.selectors import MERGERS as _REGISTRY

from models import load_tiny_adapter

FAMILIES = ["tiny-qwen2.5-vl", "tiny-qwen2-vl", "tiny-qwen3-vl", "tiny-llava-onevision", "tiny-smolvlm2"]
# every registered spatial merger (new ones too), and mustdrop's threshold, which may merge below the target
MERGERS = [n for n in _REGISTRY.names() if _REGISTRY.get(n).kind == "spatial"] + ["mustdrop:threshold=0.5"]
_RNG = np.random.default_rng(0)
_FRAMES = FrameBatch(_RNG.integers(0, 255, (7, 84, 112, 3), dtype=np.uint8), np.arange(7) / 2.0, np.arange(7) * 12)


@pytest.fixture(scope="module")
def pipes(tiny_checkpoint):
    built: dict[str, Pipeline] = {}

    def get(arch: str) -> Pipeline:
        if arch not in built:
            built[arch] = Pipeline(load_tiny_adapter(tiny_checkpoint(arch)), name=arch)
        return built[arch]

    return get


budgets = st.one_of(st.integers(1, 400), st.floats(0.01, 1.0))


@pytest.mark.parametrize("arch", FAMILIES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 7), budget=budgets, merger=st.sampled_from(MERGERS), resize=st.booleans())
def test_prompt_and_plan_never_exceed_the_budget(pipes, arch, n, budget, merger, resize):
    pipe = pipes(arch)
    frames = _FRAMES[np.arange(n)]
    inputs, plan = pipe.prepare(frames, "What moves?", budget=budget, merger=merger, resize=resize)
    in_prompt = int(inputs.visual_mask.sum())
    assert plan.total_tokens <= plan.budget
    assert in_prompt <= plan.budget, f"{in_prompt} visual tokens in the prompt for a budget of {plan.budget}"


@pytest.mark.parametrize("arch", FAMILIES)
def test_the_mustdrop_preset_and_its_merger_stay_within_the_budget(pipes, arch):
    """The preset's merger (key set + threshold) runs and the prompt stays within its 25%."""
    for n in (3, 4):
        inputs, plan = pipes(arch).prepare(_FRAMES[np.arange(n)], "What moves?", budget="mustdrop")
        assert plan.settings["merger"] == "mustdrop:threshold=0.8"
        assert int(inputs.visual_mask.sum()) <= plan.budget


@pytest.mark.parametrize("arch", ["tiny-qwen2.5-vl", "tiny-smolvlm2"])
def test_an_unlimited_budget_keeps_every_encoded_token(pipes, arch):
    """Counting what is encoded must not make an unlimited budget merge anything (odd counts too)."""
    pipe = pipes(arch)
    for n in (3, 4):
        inputs, plan = pipe.prepare(_FRAMES[np.arange(n)], "What moves?")
        h, w = _FRAMES.data.shape[1:3]
        assert int(inputs.visual_mask.sum()) == pipe.adapter.tokens_for_frames(n, h, w) == plan.budget


def test_ask_regression_qwen_odd_frames_stay_within_150(bikes_path, capsys):
    """The issue's exact command: 5 frames (an odd count) at 150 tokens once gave 180 in the prompt."""
    code = run(["ask", bikes_path, "Q?", "--model", "random:tiny-qwen2.5-vl", "--max-frames", "5", "--budget", "150",
                "--max-new-tokens", "1", "--json"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert stats["tokens_budget"] == 150
    assert stats["tokens_planned"] <= 150
    assert stats["tokens_in_prompt"] <= 150


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    from videos import make_video

    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", n_frames=280, fps=4, size=(112, 84))


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("budget", [1, 5, 37, 0.3])
def test_the_temporal_search_stays_within_the_budget(pipes, arch, budget, long_clip, tmp_path):
    """The search path (a 70-s file, every 1-fps candidate in the index, the model's own P(yes) as the
    scorer, relevance-true or spread allocation, a family's temporal pairs) obeys the same contract."""
    pipe = pipes(arch)
    pipe.index_dir = tmp_path
    inputs, plan = pipe.prepare(long_clip, "What moves?", budget=budget, search="on")
    assert plan.stats["n_candidates"] == 70 and "scorer_calls" in plan.stats
    assert plan.total_tokens <= plan.budget
    assert int(inputs.visual_mask.sum()) <= plan.budget
