"""The QuoTA ``mllm`` relevance scorer on a tiny random LLaVA-OneVision checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from vidsift.errors import ConfigError
from vidsift.types import FrameBatch
from vidsift.pipeline.archs import build_checkpoint
from vidsift.pipeline.loader import load_adapter
from vidsift.pipeline.scorers.mllm import MllmScorer
from vidsift.selectors import SCORERS


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return load_adapter(build_checkpoint("tiny-llava-onevision", tmp_path_factory.mktemp("llava")), device="cpu")


@pytest.fixture(scope="module")
def frames() -> FrameBatch:
    rng = np.random.default_rng(0)
    return FrameBatch(rng.integers(0, 256, (5, 48, 64, 3), dtype=np.uint8), np.arange(5) * 0.5, np.arange(5) * 12)


def test_scores_in_unit_interval_and_cached(adapter, frames):
    scorer = MllmScorer(adapter=adapter, batch_size=2)
    out = scorer.score(frames, "Is there a dog?")
    assert out.scorer == "mllm" and out.scores.shape == (5,)
    assert ((out.scores >= 0) & (out.scores <= 1)).all() and np.ptp(out.scores) > 0
    assert out.features.shape[0] == 5 and np.allclose(np.linalg.norm(out.features, axis=1), 1, atol=1e-5)
    assert scorer.calls == 3  # ceil(5 / 2) stacked forwards
    again = scorer.score(frames, "Is there a dog?")
    assert scorer.calls == 3 and np.array_equal(again.scores, out.scores)
    part = scorer.score(frames[[1, 3]], "Is there a dog?")  # per-frame cache: content, not position
    assert scorer.calls == 3 and np.array_equal(part.scores, out.scores[[1, 3]])
    scorer.score(frames, "Is there a cat?")
    assert scorer.calls == 6


def test_batched_equals_one_by_one(adapter, frames):
    batched = MllmScorer(adapter=adapter, batch_size=8).score(frames, "What moves?").scores
    single = MllmScorer(adapter=adapter, batch_size=1).score(frames, "What moves?").scores
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_query_decoupling(adapter, frames, monkeypatch):
    """The cues come from the model's answer (parsed, de-duplicated, capped at max_cues) and each
    frame's score is the max over the question and every cue of that prompt's own yes-probability.
    The model's answer is fixed here so the cues are known; the per-cue references are scored by
    separate plain scorers, so a decoupled scorer that ignored the cues, or combined them other
    than by the max, fails."""
    answer = "1. a red door\n- A red door\n* a person walking; the hallway\n4) a dog"
    monkeypatch.setattr(MllmScorer, "_generate_text", lambda self, prompt, max_new_tokens: answer)
    scorer = MllmScorer(adapter=adapter, decouple=True, max_cues=3)
    question = "Who opens the door?"
    assert scorer.cues(question) == [question, "a red door", "a person walking", "the hallway"]
    out = scorer.score(frames, question)
    per_cue = np.stack([MllmScorer(adapter=adapter).score(frames, c).scores for c in scorer.cues(question)])  # (4, N)
    np.testing.assert_allclose(out.scores, per_cue.max(axis=0), atol=1e-6)
    # the cues change the result: some frame scores higher on a cue than on the question itself
    assert (per_cue[1:].max(axis=0) > per_cue[0] + 1e-6).any()
    assert not np.allclose(out.scores, per_cue[0])


def test_registered_and_validated(adapter, frames):
    assert "mllm" in SCORERS.names()
    built = SCORERS.build("mllm:decouple=true,batch_size=4", adapter=adapter)
    assert built.decouple and built.batch_size == 4
    with pytest.raises(ConfigError, match="needs a loaded model"):
        SCORERS.build("mllm").score(frames, "q")
    with pytest.raises(ConfigError, match="batch_size"):
        SCORERS.build("mllm:batch_size=0")
    with pytest.raises(ConfigError, match="needs a question"):
        MllmScorer(adapter=adapter).score(frames, None)
