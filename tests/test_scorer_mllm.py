"""The QuoTA ``mllm`` relevance scorer on a tiny random LLaVA-OneVision checkpoint."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from vidsift.errors import ConfigError
from vidsift.types import FrameBatch
from vidsift.pipeline.archs import build_checkpoint
from vidsift.pipeline.loader import load_adapter
from vidsift.pipeline.scorers.mllm import MllmScorer
from vidsift.probe import checkpoint_path
from vidsift.probe.generate import draw_scene
from vidsift.probe.scene import render
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
    # calls: frames scored; forwards: ceil(5 / 2) stacked forwards + the shared prompt head once;
    # vision_calls: one tower call per chunk
    assert (scorer.calls, scorer.forwards, scorer.vision_calls) == (5, 4, 3)
    again = scorer.score(frames, "Is there a dog?")
    assert (scorer.calls, scorer.forwards, scorer.vision_calls) == (5, 4, 3) and np.array_equal(again.scores, out.scores)
    part = scorer.score(frames[[1, 3]], "Is there a dog?")  # per-frame cache: content, not position
    assert (scorer.calls, scorer.forwards) == (5, 4) and np.array_equal(part.scores, out.scores[[1, 3]])
    scorer.score(frames, "Is there a cat?")  # the head is the same: its cache is reused
    assert (scorer.calls, scorer.forwards, scorer.vision_calls) == (10, 7, 6)


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


# -- batched scoring against the one-frame-at-a-time reference ----------------------------------------

def one_at_a_time(adapter, frames: FrameBatch, question: str) -> np.ndarray:
    """The reference: each frame encoded alone (``adapter.encode(frame)``), its prompt run alone."""
    prompt = MllmScorer.prompt.format(question=question)
    tok = adapter.tokenizer
    first = lambda words: {tok.encode(w, add_special_tokens=False)[0] for w in words}  # noqa: E731
    yes_words, no_words = first(("yes", "Yes", "YES", " yes", " Yes")), first(("no", "No", "NO", " no", " No"))
    yes, no = sorted(yes_words - no_words), sorted(no_words - yes_words)
    out = []
    with torch.no_grad():
        for i in range(len(frames)):
            inputs = adapter.build_inputs(adapter.encode(frames[i]), prompt)
            probs = adapter.model(**inputs.kwargs).logits[0, -1].float().softmax(-1)
            out.append(float(probs[yes].sum() / (probs[yes].sum() + probs[no].sum())))
    return np.array(out)


def distinct(adapter, pool: FrameBatch, question: str, n: int = 12) -> FrameBatch:
    """The first ``n`` frames of ``pool`` whose one-at-a-time P(yes) differ pairwise by > 1e-5: many
    frames score alike (near 0 on the probe), and frames that alike could be swapped unnoticed."""
    ref, picked = one_at_a_time(adapter, pool, question), []
    for i, p in enumerate(ref):
        if len(picked) < n and all(abs(p - ref[j]) > 1e-5 for j in picked):
            picked.append(i)
    assert len(picked) == n
    return pool[picked]


@pytest.fixture(scope="module", params=["probe", "tiny-qwen2.5-vl", "tiny-qwen3-vl", "tiny-smolvlm2", "tiny-llava-onevision"])
def case(request, tiny_checkpoint):
    """(adapter, frames, question): the shipped probe checkpoint on frames of a probe scene (rendered,
    as training sees them) and its needle question, or a tiny random model on random frames."""
    if request.param == "probe":
        adapter = load_adapter(checkpoint_path(), device="cpu")
        scene, questions = draw_scene(random.Random(3), 30.0)
        times = np.linspace(0, scene.duration_s - 0.1, 60)
        pool, question = FrameBatch(np.stack([render(scene, t) for t in times]), times, np.arange(60)), questions["needle"]["question"]
    else:
        adapter, question = load_adapter(tiny_checkpoint(request.param), device="cpu"), "Is there a dog?"
        rng = np.random.default_rng(1)
        pool = FrameBatch(rng.integers(0, 256, (60, 56, 84, 3), dtype=np.uint8), np.arange(60) * 0.5, np.arange(60) * 5)
    return adapter, distinct(adapter, pool, question), question


def test_batched_scoring_equals_one_frame_at_a_time(case):
    """One vision-tower call per chunk and one stacked LLM forward give each frame the P(yes) it gets
    alone (to 1e-6). The frames' references differ by far more than that, so a batch whose frames
    were mixed up (shuffled, shifted) fails."""
    adapter, frames, question = case
    ref = one_at_a_time(adapter, frames, question)
    gaps = np.abs(ref[:, None] - ref[None, :])[~np.eye(len(ref), dtype=bool)]
    assert gaps.min() > 1e-5, "frames too alike to catch a mix-up"
    for batch_size in (5, 16):  # chunks of 5, 5, 2 and one chunk of 12
        scorer = MllmScorer(adapter=adapter, batch_size=batch_size, prefix_cache=False)
        np.testing.assert_allclose(scorer.score(frames, question).scores, ref, atol=1e-6, rtol=0)
        assert scorer.vision_calls == -(-len(frames) // batch_size) and scorer.calls == len(frames)


def test_prefix_cache_is_exact(case):
    """The shared prompt head computed once (its KV cache reused by every chunk) changes no P(yes)
    beyond 1e-6, and the head really is reused: one forward for it, then one per chunk."""
    adapter, frames, question = case
    plain = MllmScorer(adapter=adapter, batch_size=5, prefix_cache=False).score(frames, question).scores
    scorer = MllmScorer(adapter=adapter, batch_size=5)
    np.testing.assert_allclose(scorer.score(frames, question).scores, plain, atol=1e-6, rtol=0)
    # Qwen3-VL's timestamps give prompts of different lengths: they do not stack, but share the head
    assert scorer.forwards == 1 + (len(frames) if adapter.family == "qwen3_vl" else 3)


def test_prompt_layout_kept_per_frame_is_each_frames_own(case):
    """Qwen adapters keep the prompt layout per (grid, times, question): every frame's inputs, built
    after the others', equal those a fresh adapter builds for it alone (Qwen3-VL's timestamps differ
    per frame, Qwen2.5-VL's relative times do not)."""
    adapter, frames, question = case
    clips = adapter.encode_each(frames)
    built = [adapter.build_inputs(c, question) for c in clips]
    for clip, inputs in zip(clips, built):
        fresh = type(adapter)(adapter.model, adapter.tokenizer, adapter.preprocessor).build_inputs(clip, question)
        for key in ("input_ids", "attention_mask", "position_ids"):
            if key in fresh.kwargs:
                assert torch.equal(inputs.kwargs[key], fresh.kwargs[key]), key
