"""SmolVLM2 adapter on a tiny random checkpoint saved to disk and loaded back with from_pretrained.

Equivalence: with every token kept, encode -> build_inputs (mm_encoder_outputs) gives the stock
processor's token ids (``tests/stock.py``), its pixels (two resizes, as its video processor) and
its logits and greedy tokens, and bit-identical logits and greedy tokens to the same pixels through
the model's own vision tower (``pixel_inputs``). Reduced token sets produce exactly that many
``<image>`` placeholders, frames keep their real timestamps in the text, and the LLM sees exactly
the kept embeddings.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidsift.errors import ConfigError
from vidsift.types import FrameBatch
from vidsift.pipeline.adapters.smolvlm import SmolVLMAdapter
from vidsift.pipeline.adapters.smolvlm_words import number_words
from vidsift.pipeline.archs import names
from vidsift.pipeline.archs.smolvlm import SPECIALS

from models import assert_close_to_stock, assert_same_as_pixel_inputs, load_tiny_adapter, real_frames
from stock import stock_inputs, stock_processor

QUESTION = "Where does the bike go?"


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return tiny_checkpoint("tiny-smolvlm2")


@pytest.fixture(scope="module")
def adapter(ckpt):
    return load_tiny_adapter(ckpt)


@pytest.fixture(scope="module")
def frames(bikes_path):
    data = real_frames(bikes_path, 4, stride=20).data
    # irregular keyframe times (seconds), as a keyframe selector would pick them
    return FrameBatch(data, np.array([0.4, 1.9, 7.25, 65.0]), np.array([10, 47, 181, 1625]))


def test_arch_checkpoint_is_consistent(ckpt, adapter):
    assert {"tiny-smolvlm2", "smolvlm2-500m", "smolvlm2-2.2b"} <= set(names())
    assert isinstance(adapter, SmolVLMAdapter) and adapter.model.config.model_type == "smolvlm"
    n_params = sum(p.numel() for p in adapter.model.parameters())
    assert 100_000 < n_params < 500_000
    tok, cfg = adapter.tokenizer, adapter.model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert cfg.text_config.eos_token_id == tok.convert_tokens_to_ids("<end_of_utterance>")
    assert all(len(tok.encode(s)) == 1 for s in SPECIALS)
    assert json.loads((ckpt / "processor_config.json").read_text())["image_seq_len"] == 9
    assert adapter.decoder_layers is adapter.model.model.text_model.layers


def test_encode_shapes_coords_saliency(adapter, frames):
    tokens = adapter.encode(frames)
    assert tokens.tokens_per_group == [9] * 4  # 96/16 = 6x6 patches, pixel shuffle 2 -> 3x3
    assert adapter.tokens_per_frame(272, 640) == 9.0
    assert tokens.grid_thw.tolist() == [[1, 3, 3]] * 4
    assert tokens.coords[3][7].tolist() == [3, 2, 1]
    assert all(s.shape == (9,) and (s > 0).all() for s in tokens.saliency)


def test_full_budget_is_bit_identical_to_pixel_inputs(adapter, frames):
    inputs = adapter.build_inputs(adapter.encode(frames), QUESTION)
    pixel = adapter.pixel_inputs(frames, QUESTION)
    assert torch.equal(inputs.input_ids, pixel["input_ids"])
    assert int(inputs.visual_mask.sum()) == 36
    new = assert_same_as_pixel_inputs(adapter, inputs, pixel, max_new_tokens=10)
    assert new.shape[1] > 0
    assert len(set(new[0].tolist())) > 1


def test_full_budget_matches_the_stock_processor(ckpt, adapter, frames, monkeypatch):
    """Against transformers' ``SmolVLMProcessor`` (``tests/stock.py``): its default chat template for a
    video turn, intro line, frame timestamps (frame index / fps: our pts are those) and image tokens
    give our ids exactly. Pixels: the stock image processor at the video size (its video processor's
    first resize, to the longest edge), then to the square, as ours; measured equal to 1.5e-5 of an
    8-bit level (resizing once, straight to the square, they differed by up to 6 levels). Then the
    logits and greedy tokens are the stock inputs' own."""
    ref = stock_inputs(stock_processor(ckpt, "smolvlm", monkeypatch=monkeypatch), frames, QUESTION, fps=25.0, total_frames=1626)
    assert torch.equal(adapter.build_inputs(adapter.encode(frames), QUESTION).input_ids, ref["input_ids"])
    ours = adapter.pixel_inputs(frames, QUESTION)
    assert torch.equal(ours["pixel_attention_mask"], ref["pixel_attention_mask"])
    levels = (ours["pixel_values"] - ref["pixel_values"]).abs() * 0.5 * 255  # image_std 0.5
    assert float(levels.max()) < 1e-3
    assert_close_to_stock(adapter, adapter.build_inputs(adapter.encode(frames), QUESTION), ref, max_new_tokens=10)


def test_number_words_match_num2words():
    """Where SmolVLM's optional num2words is installed, our words are its words."""
    num2words = pytest.importorskip("num2words", reason="num2words is not installed (SmolVLM's optional dependency)").num2words
    assert [number_words(n) for n in (0, 7, 21, 64, 101, 1000, 4321, 999_999)] == \
        [num2words(n) for n in (0, 7, 21, 64, 101, 1000, 4321, 999_999)]


def test_prompt_layout_and_real_timestamps(adapter, frames):
    text = adapter.tokenizer.decode(adapter.build_inputs(adapter.encode(frames), QUESTION).input_ids[0])
    assert text.startswith("<|im_start|>User: You are provided the following series of four frames from a 0:01:05 [H:MM:SS] video.\n")
    stamps = [line.split(":<")[0] for line in text.split("\nFrame from ")[1:]]
    assert stamps == ["00:00", "00:01", "00:07", "01:05"]
    one = "<fake_token_around_image><global-img>" + "<image>" * 9 + "<fake_token_around_image>"
    assert text.count(one) == 4
    assert text.endswith(f"\n\n{QUESTION}<end_of_utterance>\nAssistant:")


def test_reduced_tokens_shorten_the_prompt_exactly(adapter, frames):
    full = adapter.encode(frames)
    reduced = full.select([1, 2, 3]).keep([torch.tensor([0, 4, 8]), torch.tensor([], dtype=torch.long), torch.arange(9)])
    inputs = adapter.build_inputs(reduced, QUESTION)
    ids = inputs.input_ids[0]
    assert int((ids == adapter.image_token_id).sum()) == reduced.n_tokens == 12 == int(inputs.visual_mask.sum())
    text = adapter.tokenizer.decode(ids)
    assert "series of two frames" in text and "Frame from 00:07" not in text  # an emptied frame leaves the prompt
    assert "Frame from 00:01:" in text and "Frame from 01:05:" in text
    embed = adapter.model.get_input_embeddings()(inputs.input_ids)
    manual = embed.clone()
    manual[0, ids == adapter.image_token_id] = torch.cat(reduced.embeds)
    with torch.no_grad():
        ours = adapter.model(**inputs.kwargs).logits
        ref = adapter.model(inputs_embeds=manual, attention_mask=inputs.kwargs["attention_mask"]).logits
    assert torch.equal(ours, ref)
    assert adapter.generate(inputs, max_new_tokens=4).shape == (1, 4)


def test_bad_input_raises_one_line_errors(adapter, frames):
    with pytest.raises(ConfigError, match="no frames"):
        adapter.encode(frames[np.array([], dtype=int)])
    with pytest.raises(ConfigError, match="multiple of"):
        SmolVLMAdapter(adapter.model, adapter.tokenizer, {"max_image_size": {"longest_edge": 100}})
    with pytest.raises(ConfigError, match="resample"):
        SmolVLMAdapter(adapter.model, adapter.tokenizer, {"resample": 42}).encode(frames)


@pytest.mark.parametrize("n, words", [(0, "zero"), (7, "seven"), (21, "twenty-one"), (64, "sixty-four"),
                                      (101, "one hundred and one"), (1000, "one thousand"), (2_000_000, "2000000")])
def test_number_words(n, words):
    assert number_words(n) == words


@pytest.mark.parametrize("spec, published, seq_len", [("SMOLVLM2_500M", 507_482_304, 64), ("SMOLVLM2_22B", 2_246_784_880, 81)])
def test_full_size_archs_match_published_parameter_counts(spec, published, seq_len):
    """SmolVLM2-500M-Video-Instruct (507 M, 64 tokens/frame) and SmolVLM2-2.2B-Instruct (2.25 B, 81), on meta."""
    from transformers import SmolVLMForConditionalGeneration

    from vidsift.pipeline.archs import smolvlm as arch

    config, _ = arch.make_config(**getattr(arch, spec))
    with torch.device("meta"):
        model = SmolVLMForConditionalGeneration(config)
    assert sum(p.numel() for p in model.parameters()) == published
    assert model.model.image_seq_len == seq_len
