"""LLaVA-OneVision adapter on a tiny random checkpoint saved to disk and loaded back with from_pretrained.

Equivalence: with every token kept, encode -> build_inputs (mm_encoder_outputs) gives the stock
processor's token ids, logits (to float rounding) and greedy tokens (``tests/stock.py``), and
bit-identical logits to the same pixels through the model's own vision tower (``pixel_inputs``).
Reduced token sets produce exactly that many placeholders, and the LLM sees exactly the kept
embeddings (plus the one newline).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidsift.errors import ConfigError
from vidsift.pipeline.adapters.llava_onevision import LlavaOnevisionAdapter
from vidsift.pipeline.archs import names
from vidsift.pipeline.archs.llava_onevision import SPECIALS

from models import assert_close_to_stock, assert_same_as_pixel_inputs, load_tiny_adapter, real_frames
from stock import stock_inputs, stock_processor

QUESTION = "What is the rider doing?"


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return tiny_checkpoint("tiny-llava-onevision")


@pytest.fixture(scope="module")
def adapter(ckpt):
    return load_tiny_adapter(ckpt)


@pytest.fixture(scope="module")
def frames(bikes_path):
    return real_frames(bikes_path, 4, stride=20)


def test_arch_checkpoint_is_consistent(ckpt, adapter):
    assert {"tiny-llava-onevision", "llava-onevision-0.5b", "llava-video-7b"} <= set(names())
    assert isinstance(adapter, LlavaOnevisionAdapter)
    n_params = sum(p.numel() for p in adapter.model.parameters())
    assert 100_000 < n_params < 500_000
    tok, cfg = adapter.tokenizer, adapter.model.config
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<video>")
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert all(len(tok.encode(s)) == 1 for s in SPECIALS)
    image_pre = json.loads((ckpt / "preprocessor_config.json").read_text())
    assert image_pre["size"] == {"height": 98, "width": 98} and image_pre["image_mean"] == [0.5, 0.5, 0.5]


def test_encode_shapes_coords_saliency(adapter, frames):
    tokens = adapter.encode(frames)
    assert tokens.n_groups == 4 and tokens.tokens_per_group == [16] * 4  # 7x7 patches -> ceil(7/2)^2
    assert adapter.tokens_per_frame(272, 640) == 16.0
    assert tokens.embeds[0].shape == (16, adapter.model.config.text_config.hidden_size)
    assert tokens.grid_thw.tolist() == [[1, 4, 4]] * 4
    assert tokens.coords[2][5].tolist() == [2, 1, 1]
    np.testing.assert_array_equal(tokens.pts_seconds, frames.pts_seconds)
    assert tokens.saliency is not None and all(s.shape == (16,) and (s > 0).all() for s in tokens.saliency)


def test_full_budget_is_bit_identical_to_pixel_inputs(adapter, frames):
    inputs = adapter.build_inputs(adapter.encode(frames), QUESTION)
    pixel = adapter.pixel_inputs(frames, QUESTION)
    assert torch.equal(inputs.input_ids, pixel["input_ids"])
    assert int(inputs.visual_mask.sum()) == 64  # the trailing newline is structural, not visual
    new = assert_same_as_pixel_inputs(adapter, inputs, pixel, max_new_tokens=10)
    assert new.shape[1] > 0
    assert len(set(new[0].tolist())) > 1  # the random model is not degenerate


def test_full_budget_matches_the_stock_processor(ckpt, adapter, frames):
    """Against transformers' ``LlavaOnevisionProcessor`` (``tests/stock.py``): the checkpoint's chat
    template and the processor's placeholder count (frames x pooled tokens + the newline); the
    pixels are the image processor's base crop of each frame."""
    ref = stock_inputs(stock_processor(ckpt, "llava_onevision"), frames, QUESTION, fps=25.0, total_frames=80)
    pixels = adapter.pixel_inputs(frames, QUESTION)["pixel_values_videos"]
    torch.testing.assert_close(pixels, ref["pixel_values_videos"], atol=1e-6, rtol=0)
    assert_close_to_stock(adapter, adapter.build_inputs(adapter.encode(frames), QUESTION), ref, max_new_tokens=10)


def test_reduced_tokens_shorten_the_prompt_exactly(adapter, frames):
    full = adapter.encode(frames)
    reduced = full.select([0, 2, 3]).keep([torch.tensor([0, 5, 15]), torch.arange(16), torch.tensor([], dtype=torch.long)])
    inputs = adapter.build_inputs(reduced, QUESTION)
    ids = inputs.input_ids[0]
    assert int((ids == adapter.video_token_id).sum()) == reduced.n_tokens + 1 == 20
    assert int(inputs.visual_mask.sum()) == 19
    # the LLM sees exactly the kept embeddings, then the newline: rebuild inputs_embeds by hand
    embed = adapter.model.get_input_embeddings()(inputs.input_ids)  # (1, L, D)
    slots = (ids == adapter.video_token_id).nonzero()[:, 0]
    manual = embed.clone()
    manual[0, slots] = torch.cat([*reduced.embeds, adapter.model.model.image_newline[None]])
    with torch.no_grad():
        ours = adapter.model(**inputs.kwargs).logits
        ref = adapter.model(inputs_embeds=manual, attention_mask=inputs.kwargs["attention_mask"]).logits
    assert torch.equal(ours, ref)
    assert adapter.generate(inputs, max_new_tokens=4).shape == (1, 4)
    full_len = adapter.build_inputs(full, QUESTION).prompt_len
    assert full_len - inputs.prompt_len == full.n_tokens - reduced.n_tokens


def test_bad_input_raises_one_line_errors(adapter, frames):
    with pytest.raises(ConfigError, match="no frames"):
        adapter.encode(frames[np.array([], dtype=int)])
    with pytest.raises(ConfigError, match="98x98"):
        LlavaOnevisionAdapter(adapter.model, adapter.tokenizer, {"size": {"height": 384, "width": 384}})
    with pytest.raises(ConfigError, match="chunk_frames"):
        LlavaOnevisionAdapter(adapter.model, adapter.tokenizer, {}, chunk_frames=0)


def test_chunked_encode_matches_and_saliency_can_be_off(adapter, frames):
    one = adapter.encode(frames)
    chunked = LlavaOnevisionAdapter(adapter.model, adapter.tokenizer, adapter.preprocessor, saliency=False, chunk_frames=3)
    two = chunked.encode(frames)
    assert two.saliency is None
    for a, b in zip(one.embeds, two.embeds):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    hooks = adapter.model.model.vision_tower.encoder.layers[-1]._forward_pre_hooks
    assert len(hooks) == 0  # the saliency hook is removed after encode


@pytest.mark.parametrize("spec, published", [("ONEVISION_05B", 893_675_552), ("VIDEO_7B", 8_030_807_584)])
def test_full_size_archs_match_published_parameter_counts(spec, published):
    """llava-onevision-qwen2-0.5b-ov-hf (894 M) and LLaVA-Video-7B-Qwen2-hf (8.03 B), on the meta device."""
    from transformers import LlavaOnevisionForConditionalGeneration

    from vidsift.pipeline.archs import llava_onevision as arch

    config, tok = arch.make_config(**getattr(arch, spec))
    assert config.video_token_id == tok.convert_tokens_to_ids("<video>")
    with torch.device("meta"):
        model = LlavaOnevisionForConditionalGeneration(config)
    assert sum(p.numel() for p in model.parameters()) == published


def test_time_instruction_writes_real_frame_times(adapter, frames):
    timed = LlavaOnevisionAdapter(adapter.model, adapter.tokenizer, adapter.preprocessor, time_instruction=True)
    tokens = timed.encode(frames)
    keep = [torch.arange(16), torch.tensor([], dtype=torch.long), torch.arange(4), torch.arange(2)]
    text = timed.tokenizer.decode(timed.build_inputs(tokens.keep(keep), QUESTION, duration_s=10.0).input_ids[0])
    shown = ",".join(f"{t:.2f}s" for t in frames.pts_seconds[[0, 2, 3]])
    assert f"The video lasts for 10.00 seconds, and 3 frames are uniformly sampled from it. These frames are located at {shown}." in text
    assert text.endswith(f"related to this video.\n{QUESTION}<|im_end|><|im_start|>assistant\n")
    full = timed.build_inputs(tokens, QUESTION)
    pixel = timed.pixel_inputs(frames, QUESTION)
    assert torch.equal(full.input_ids, pixel["input_ids"])
