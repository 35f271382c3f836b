"""Relevance scorers end to end on tiny random checkpoints saved to disk and loaded by path
(CLIP, SigLIP, BERT sentence embeddings), the feature cache (memory and disk), subtitles."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from videos import sample_clip, shapes_frame
from vidsift.errors import ConfigError, ModelError
from vidsift.frames import FrameBatch
from vidsift.pipeline.archs.tokenizer import byte_tokenizer
from vidsift.selectors import FEATURE_CACHE, SCORERS, plan, plan_frames
from vidsift.selectors.subtitles import find_subtitles, parse_subtitles

EOS = "<|endoftext|>"


def _tokenizer(path):
    tok = byte_tokenizer([EOS])
    tok.save_pretrained(str(path))
    return tok


@pytest.fixture(scope="module")
def clip_ckpt(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    path = tmp_path_factory.mktemp("tiny-clip")
    tok = _tokenizer(path)
    eos = tok.convert_tokens_to_ids(EOS)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=64, eos_token_id=eos, bos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps({
        "size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}, "rescale_factor": 1 / 255,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}))
    return str(path)


@pytest.fixture(scope="module")
def siglip_ckpt(tmp_path_factory):
    from transformers import SiglipConfig, SiglipModel

    path = tmp_path_factory.mktemp("tiny-siglip")
    _tokenizer(path)
    cfg = SiglipConfig(
        text_config=dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8))
    torch.manual_seed(0)
    SiglipModel(cfg).save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 32, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    return str(path)


@pytest.fixture(scope="module")
def bert_ckpt(tmp_path_factory):
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    _tokenizer(path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=128)).save_pretrained(str(path))
    return str(path)


def _frames(n=12, seed=0):
    data = np.stack([shapes_frame(i, (80, 48), seed=seed) for i in range(n)])
    return FrameBatch(data, np.arange(n) * 0.5, np.arange(n))


def test_clip_scorer_end_to_end_and_cache(clip_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSIFT_CACHE", str(tmp_path / "cache"))
    FEATURE_CACHE.clear()
    frames = _frames()
    first = SCORERS.build(f"clip:model={clip_ckpt},batch_size=5")
    s1 = first.score(frames, "a white square")
    assert first.frames_encoded == 12
    assert s1.scores.shape == (12,) and s1.scores.min() == 0.0 and s1.scores.max() == 1.0  # min-max per video
    assert s1.features.shape == (12, 16)
    np.testing.assert_allclose(np.linalg.norm(s1.features, axis=1), 1, rtol=1e-5)
    again = SCORERS.build(f"clip:model={clip_ckpt}")  # a new scorer, same video and checkpoint
    s2 = again.score(frames, "a pink disc")
    assert again.frames_encoded == 0  # features came from the cache: only the query was encoded
    np.testing.assert_array_equal(s2.features, s1.features)
    assert not np.array_equal(s2.scores, s1.scores)
    other = _frames(seed=3)
    again.score(other, "a pink disc")
    assert again.frames_encoded == 12  # different content is encoded
    # disk cache survives a cleared memory cache
    disk = SCORERS.build(f"clip:model={clip_ckpt},disk_cache=true")
    disk.score(frames, "x")
    assert disk.frames_encoded == 0 and list((tmp_path / "cache" / "features").glob("*.npy"))
    FEATURE_CACHE.clear()
    fresh = SCORERS.build(f"clip:model={clip_ckpt},disk_cache=true")
    s3 = fresh.score(frames, "a white square")
    assert fresh.frames_encoded == 0
    np.testing.assert_allclose(s3.scores, s1.scores, rtol=1e-5, atol=1e-6)
    noquery = fresh.score(frames, None)
    assert np.all(noquery.scores == 1.0)


def test_clip_batching_does_not_change_features(clip_ckpt):
    frames = _frames(7, seed=1)
    FEATURE_CACHE.clear()
    a = SCORERS.build(f"clip:model={clip_ckpt},batch_size=2").image_features(frames)
    FEATURE_CACHE.clear()
    b = SCORERS.build(f"clip:model={clip_ckpt},batch_size=32").image_features(frames)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_siglip_scorer_gives_probabilities(siglip_ckpt):
    frames = _frames(6)
    scorer = SCORERS.build(f"clip:model={siglip_ckpt}")
    out = scorer.score(frames, "a white square on a gradient")
    assert out.scores.shape == (6,) and np.all((out.scores > 0) & (out.scores < 1))
    assert out.features.shape[0] == 6


def test_clip_scorer_in_plan(clip_ckpt):
    frames = _frames(16)
    p = plan_frames(frames, "a pink disc", budget_tokens=100, tokens_per_frame=49, k=4, scorer=f"clip:model={clip_ckpt}",
                    selector="topk")
    assert len(p.frames) == 4 and p.total_tokens == 100 and p.settings["scorer"].startswith("clip:")
    assert max(f.score for f in p.frames) == 1.0


SRT = """1
00:00:00,000 --> 00:00:01,200
A red car <i>drives</i> past.

2
00:00:03,000 --> 00:00:04,000
the cat sleeps on the sofa
"""

VTT = """WEBVTT

NOTE a comment

00:00.000 --> 00:01.200 align:start
A red car drives past.

intro
00:00:03.000 --> 00:00:04.000
the cat sleeps on the sofa
"""


def test_subtitle_parsing_and_discovery(tmp_path):
    srt, vtt = parse_subtitles(SRT), parse_subtitles(VTT)
    assert [(s.start_s, s.end_s, s.text) for s in srt] == [(0.0, 1.2, "A red car drives past."), (3.0, 4.0, "the cat sleeps on the sofa")]
    assert [(s.start_s, s.end_s, s.text) for s in vtt] == [(s.start_s, s.end_s, s.text) for s in srt]
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert find_subtitles(str(video)) is None
    (tmp_path / "clip.en.vtt").write_text(VTT)
    assert find_subtitles(str(video)).name == "clip.en.vtt"
    (tmp_path / "clip.srt").write_text(SRT)
    assert find_subtitles(str(video)).name == "clip.srt"
    with pytest.raises(ConfigError, match="no subtitle cues"):
        parse_subtitles("hello\nworld", source="bad.srt")
    with pytest.raises(ConfigError, match="bad cue timing"):
        parse_subtitles("1\nxx --> yy\ntext", source="bad.srt")


def test_text_scorer_end_to_end(bert_ckpt, tmp_path):
    FEATURE_CACHE.clear()
    video = tmp_path / "talk.mp4"
    shutil.copy(sample_clip("bikes.mp4"), video)
    (tmp_path / "talk.srt").write_text(SRT)
    frames = FrameBatch(np.zeros((10, 8, 8, 3), np.uint8), np.arange(10) * 0.5, np.arange(10))
    scorer = SCORERS.build(f"text:model={bert_ckpt}")
    out = scorer.score(frames, "the cat sleeps on the sofa", video=str(video))
    # identical text -> cosine 1 -> the best cue; frames 3.0-4.0 s show it; uncovered frames score 0
    np.testing.assert_allclose(out.scores, [0, 0, 0, 0, 0, 0, 1, 1, 1, 0], atol=1e-6)
    assert scorer.texts_encoded == 3  # two cues + the query
    scorer.score(frames, "a red car drives past.", video=str(video))
    assert scorer.texts_encoded == 4  # cue embeddings cached: only the new query
    padded = SCORERS.build(f"text:model={bert_ckpt},pad_s=0.5,subtitles={tmp_path / 'talk.srt'}")
    assert padded.score(frames, "the cat sleeps on the sofa").scores[5] == 1.0
    p = plan(video, "the cat sleeps on the sofa", budget=400, max_frames=20, frames=2, scorer=f"text:{bert_ckpt}", selector="topk",
             coverage=False)
    assert all(3.0 <= f.pts_seconds <= 4.0 for f in p.frames)
    with pytest.raises(ConfigError, match="no subtitles"):
        scorer.score(frames, "q", video=str(tmp_path / "other.mp4"))


def test_text_scorer_finds_subtitles_through_the_pipeline(bert_ckpt, tiny_checkpoint, tmp_path):
    """The Pipeline scores before planning; the video path must still reach the text scorer."""
    from models import load_tiny_adapter
    from vidsift.pipeline.pipeline import Pipeline

    video = tmp_path / "talk.mp4"
    shutil.copy(sample_clip("bikes.mp4"), video)
    (tmp_path / "talk.srt").write_text(SRT)
    pipe = Pipeline(load_tiny_adapter(tiny_checkpoint("tiny-smolvlm2")))
    p = pipe.plan(str(video), "the cat sleeps on the sofa", scorer=f"text:{bert_ckpt}", selector="topk", frames=2,
                  fps=2.0, max_frames=20, budget=0.5)
    assert p.settings["scorer"].startswith("text") and any(3.0 <= f.pts_seconds <= 4.0 and f.score == 1.0 for f in p.frames)


def test_scorer_bad_specs(tmp_path):
    with pytest.raises(ConfigError, match=r"clip:MODEL"):
        SCORERS.build("clip")
    with pytest.raises(ConfigError, match="norm"):
        SCORERS.build("clip:model=x,norm=best")
    with pytest.raises(ModelError, match="no such file or directory"):
        SCORERS.build(f"clip:model={tmp_path / 'nothing'}").score(_frames(2), "q")
    with pytest.raises(ConfigError, match="unknown scorer"):
        SCORERS.build("vibes")


def test_wrong_checkpoint_kinds(clip_ckpt, bert_ckpt, tmp_path):
    with pytest.raises(ModelError, match="not a CLIP/SigLIP"):
        SCORERS.build(f"clip:model={bert_ckpt}").score(_frames(2), "q")
    (tmp_path / "a.srt").write_text(SRT)
    frames = FrameBatch(np.zeros((2, 8, 8, 3), np.uint8), np.arange(2.0), np.arange(2))
    with pytest.raises(ModelError, match="not a sentence-embedding"):
        SCORERS.build(f"text:model={clip_ckpt},subtitles={tmp_path / 'a.srt'}").score(frames, "q")


def test_scorer_checkpoints_load_safetensors_only(clip_ckpt, tmp_path):
    """A scorer checkpoint holding only a pickled pytorch_model.bin is refused (pickles can run code
    when loaded), with one line; the same weights as safetensors load."""
    from safetensors.torch import load_file

    from vidsift.selectors import _hf

    pickled = tmp_path / "pickled-clip"
    shutil.copytree(clip_ckpt, pickled)
    weights = load_file(str(pickled / "model.safetensors"))
    (pickled / "model.safetensors").unlink()
    torch.save(weights, pickled / "pytorch_model.bin")
    with pytest.raises(ModelError, match=r"cannot load checkpoint") as err:
        _hf.load(str(pickled))
    assert str(err.value).startswith(str(pickled)) and "\n" not in str(err.value)
    net, _ = _hf.load(clip_ckpt)
    assert net is not None
