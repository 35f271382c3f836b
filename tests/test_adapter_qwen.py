"""Qwen2.5-VL / Qwen2-VL / Qwen3-VL adapters on tiny random checkpoints saved to disk and loaded back
with ``from_pretrained``.

Equivalence: every token kept -> the stock transformers processor's token ids, its logits (to float
rounding) and greedy tokens (``tests/stock.py``: the processor class on the chat template, the image
processor's pixels per frame), and bit-identical logits to the same pixels through the model's own
vision tower (``pixel_inputs``). Reduced token sets: exactly that many placeholders, exactly the kept
embeddings (and DeepStack rows) reach the LLM, and every kept token keeps the M-RoPE position it
had in the full layout. Qwen2.5-VL temporal ids follow real keyframe times; Qwen3-VL writes them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import DynamicCache

from vidsift.errors import ConfigError
from vidsift.types import FrameBatch
from vidsift.pipeline.adapters.qwen2_5_vl import Qwen2_5_VLAdapter
from vidsift.pipeline.adapters.qwen3_vl import Qwen3VLAdapter
from vidsift.pipeline.archs import names

from models import assert_close_to_stock, assert_same_as_pixel_inputs, load_tiny_adapter, real_frames
from stock import stock_inputs, stock_processor

ARCHS = ["tiny-qwen2.5-vl", "tiny-qwen2-vl", "tiny-qwen3-vl"]
QUESTION = "What is the rider doing?"


def random_frames(pts, size=(90, 120), seed=0) -> FrameBatch:
    rng = np.random.default_rng(seed)
    n = len(pts)
    return FrameBatch(rng.integers(0, 256, (n, *size, 3), dtype=np.uint8), np.asarray(pts, float), np.arange(n))


@pytest.fixture(scope="module")
def ckpts(tiny_checkpoint):
    return {name: tiny_checkpoint(name) for name in ARCHS}


@pytest.fixture(scope="module")
def adapters(ckpts):
    return {name: load_tiny_adapter(path) for name, path in ckpts.items()}


@pytest.fixture(scope="module")
def bikes(bikes_path):
    return real_frames(bikes_path, 6, stride=10)


def logits(adapter, kwargs):
    with torch.no_grad():
        return adapter.model(**kwargs).logits


def rope(inputs):
    """M-RoPE rows (3, L) of built inputs."""
    return inputs.kwargs["position_ids"][1:, 0]


def full_index(tokens_full, tokens):
    """Index of each token of ``tokens`` among the visual tokens of the full layout (by group + coords)."""
    out, offset = [], np.cumsum([0] + tokens_full.tokens_per_group)
    for g, c in enumerate(tokens.coords):
        full_g = int(np.flatnonzero(tokens_full.pts_seconds == tokens.pts_seconds[g])[0])
        w = int(tokens_full.grid_thw[full_g, 2])
        out.append(offset[full_g] + c[:, 1] * w + c[:, 2])
    return torch.cat(out)


# --- archs -------------------------------------------------------------------------------------------

def test_archs_registered_and_full_sizes_match_published():
    from vidsift.pipeline.archs.qwen import full_size_config

    assert {"tiny-qwen2.5-vl", "tiny-qwen2-vl", "tiny-qwen3-vl", "tiny-qwen3-vl-moe", "qwen2.5-vl-3b", "qwen2.5-vl-7b", "qwen3-vl-2b"} <= set(names())
    published = {"qwen2.5-vl-3b": 3_754_622_976, "qwen2.5-vl-7b": 8_292_166_656, "qwen3-vl-2b": 2_127_532_032}
    for name, n_params in published.items():
        config, model_cls = full_size_config(name)
        with torch.device("meta"):
            model = model_cls(config)
        assert sum(p.numel() for p in model.parameters()) == n_params, name


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_token_ids_match_tokenizer(adapters, arch):
    a = adapters[arch]
    cfg, tok = a.model.config, a.tokenizer
    for key, token in [("video_token_id", "<|video_pad|>"), ("image_token_id", "<|image_pad|>"),
                       ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]:
        assert getattr(cfg, key) == tok.convert_tokens_to_ids(token)
    assert cfg.text_config.vocab_size == len(tok)
    assert a.model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert sum(p.numel() for p in a.model.parameters()) < 500_000


def test_adapter_selection_and_model_class(adapters):
    assert type(adapters["tiny-qwen2.5-vl"]) is Qwen2_5_VLAdapter
    assert type(adapters["tiny-qwen2-vl"]) is Qwen2_5_VLAdapter
    assert type(adapters["tiny-qwen3-vl"]) is Qwen3VLAdapter
    assert type(adapters["tiny-qwen2-vl"].model).__name__ == "Qwen2VLForConditionalGeneration"


# --- preprocessing -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_preprocess_matches_hf_pil_image_processor(adapters, arch):
    """A still image (= two identical frames) patchifies exactly like HF's PIL Qwen2-VL image processor."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    pre = adapters[arch].pre
    hf = Qwen2VLImageProcessorPil(min_pixels=pre.min_pixels, max_pixels=pre.max_pixels, patch_size=pre.patch_size,
                                  temporal_patch_size=2, merge_size=pre.merge_size, image_mean=list(pre.mean),
                                  image_std=list(pre.std))
    img = random_frames([0.0], size=(100, 130)).data[0]
    ref = hf(images=[img], return_tensors="pt")
    ours, grid = pre(np.stack([img, img]))
    assert torch.equal(grid, ref["image_grid_thw"])
    torch.testing.assert_close(ours, ref["pixel_values"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_tokens_per_frame_matches_encode(adapters, bikes, arch):
    a = adapters[arch]
    tokens = a.encode(bikes[:2])
    assert a.tokens_per_frame(*bikes.data.shape[1:3]) == tokens.n_tokens / 2
    small = a.encode(bikes[:2], max_pixels=(a.pre.factor * 3) ** 2)
    assert small.n_tokens <= 9 < tokens.n_tokens


# --- equivalence ---------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_unlimited_budget_is_bit_identical(adapters, bikes, arch):
    a = adapters[arch]
    tokens = a.encode(bikes)
    assert tokens.n_groups == 3 and tokens.n_tokens == 3 * int(tokens.grid_thw[0].prod())
    ours = a.build_inputs(tokens, QUESTION)
    pixel = a.pixel_inputs(bikes, QUESTION)
    assert torch.equal(ours.input_ids, pixel["input_ids"])
    assert int(ours.visual_mask.sum()) == tokens.n_tokens
    assert_same_as_pixel_inputs(a, ours, pixel, max_new_tokens=8)


def stock(a, ckpt, frames, **options):
    """The stock processor's inputs for the bikes frames (25 fps, every 10th frame of the first 60)."""
    return stock_inputs(stock_processor(ckpt, a.model.config.model_type), frames, QUESTION, fps=25.0, total_frames=60, **options)


@pytest.mark.parametrize("arch", ARCHS)
def test_unlimited_budget_matches_the_stock_processor(adapters, ckpts, bikes, arch):
    """Against transformers' own processor (``tests/stock.py``): the chat template, the placeholder
    expansion, Qwen3-VL's timestamp text, ``mm_token_type_ids`` and Qwen2.5-VL's
    ``second_per_grid_ts`` are the processor's; the pixels the image processor's, per frame; the
    positions the model's own (no ``position_ids`` passed)."""
    a = adapters[arch]
    ref = stock(a, ckpts[arch], bikes, unwrap_video=arch == "tiny-qwen3-vl")
    assert "position_ids" not in ref
    pixel = a.pixel_inputs(bikes, QUESTION)
    assert torch.equal(pixel["video_grid_thw"], ref["video_grid_thw"])
    torch.testing.assert_close(pixel["pixel_values_videos"], ref["pixel_values_videos"], atol=1e-5, rtol=0)
    ours = a.build_inputs(a.encode(bikes), QUESTION)
    assert_close_to_stock(a, ours, ref, max_new_tokens=8)


def test_qwen3_vl_irregular_keyframes_match_the_stock_timestamps(adapters, ckpts, bikes_path):
    """Keyframes at uneven times: the processor's timestamps (mean of a pair's frame index / fps, one
    decimal) are ours, token for token."""
    a = adapters["tiny-qwen3-vl"]
    frames = real_frames(bikes_path, 12, stride=5)[np.array([0, 1, 5, 6, 10, 11])]  # frames 0, 5, 25, 30, 50, 55
    ours = a.build_inputs(a.encode(frames), QUESTION)
    assert "<0.1 seconds>" in a.tokenizer.decode(ours.input_ids[0])
    assert_close_to_stock(a, ours, stock(a, ckpts["tiny-qwen3-vl"], frames, unwrap_video=True), max_new_tokens=4)


def test_qwen3_vl_stock_processor_wraps_the_groups_in_the_template_markers(adapters, ckpts, bikes):
    """transformers 5.23 expands only ``<|video_pad|>`` of the template's
    ``<|vision_start|><|video_pad|><|vision_end|>``, so the per-group markers and timestamps sit inside
    one more pair of markers; 4.x's ``Qwen3VLProcessor`` (and we) replace the marked block. Pinned
    here so a change on either side shows."""
    a = adapters["tiny-qwen3-vl"]
    ids = a.build_inputs(a.encode(bikes), QUESTION).input_ids[0].tolist()
    parts = a.prompt_parts(QUESTION)
    h, t = (len(a.tokenizer(x, add_special_tokens=False)["input_ids"]) for x in (parts.head, parts.tail))
    cfg = a.model.config
    wrapped = ids[:h] + [cfg.vision_start_token_id] + ids[h:-t] + [cfg.vision_end_token_id] + ids[-t:]
    assert stock(a, ckpts["tiny-qwen3-vl"], bikes)["input_ids"][0].tolist() == wrapped


@pytest.mark.parametrize("arch", ARCHS)
def test_odd_frame_count_repeats_last_frame(adapters, arch):
    a = adapters[arch]
    frames = random_frames([0.0, 0.5, 1.0])
    tokens = a.encode(frames)
    assert tokens.n_groups == 2
    assert tokens.index.tolist() == [0, 2]
    pixels, grid = a.pre(frames.data)
    twice, _ = a.pre(np.concatenate([frames.data, frames.data[-1:]]))
    assert torch.equal(pixels, twice) and int(grid[0, 0]) == 2
    ours, pixel = a.build_inputs(tokens, QUESTION), a.pixel_inputs(frames, QUESTION)
    assert torch.equal(logits(a, ours.kwargs), logits(a, pixel))


# --- reduced token sets ------------------------------------------------------------------------

def reduce(tokens, seed=0):
    """Keep a random sorted subset per group (group 0 keeps everything)."""
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for g, n in enumerate(tokens.tokens_per_group):
        k = n if g == 0 else max(1, n // (g + 2))
        keep.append(torch.randperm(n, generator=gen)[:k].sort().values)
    return tokens.keep(keep)


@pytest.mark.parametrize("arch", ARCHS)
def test_reduced_tokens_keep_full_layout_positions(adapters, bikes, arch):
    a = adapters[arch]
    full = a.encode(bikes)
    small = reduce(full)
    full_in, small_in = a.build_inputs(full, QUESTION), a.build_inputs(small, QUESTION)
    n_vis = int((small_in.input_ids == a.video_token_id).sum())
    assert n_vis == small.n_tokens == int(small_in.visual_mask.sum()) < full.n_tokens
    # every kept visual token sits where it sat in the full layout
    expect = rope(full_in)[:, full_in.visual_mask[0]][:, full_index(full, small)]
    assert torch.equal(rope(small_in)[:, small_in.visual_mask[0]], expect)
    # text keeps its positions too (the question after the video, the head before it)
    assert torch.equal(rope(small_in)[:, ~small_in.visual_mask[0]], rope(full_in)[:, ~full_in.visual_mask[0]])
    # row 0 is the plain 1D index (mask creation would read gaps as packed sequences)
    assert torch.equal(small_in.kwargs["position_ids"][0, 0], torch.arange(small_in.prompt_len))
    out = a.generate(small_in, max_new_tokens=4)
    assert out.shape == (1, 4)


@pytest.mark.parametrize("arch", ARCHS)
def test_llm_receives_exactly_the_kept_embeddings(adapters, bikes, arch):
    a = adapters[arch]
    small = reduce(a.encode(bikes), seed=1)
    inputs = a.build_inputs(small, QUESTION)
    seen = {}

    def grab(_module, _args, kwargs):
        seen["embeds"] = kwargs["inputs_embeds"]

    hook = a.model.model.language_model.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        logits(a, inputs.kwargs)
    finally:
        hook.remove()
    assert torch.equal(seen["embeds"][0, inputs.visual_mask[0]], torch.cat(small.embeds))


@pytest.mark.parametrize("arch", ARCHS)
def test_generate_continues_positions_after_the_prompt(adapters, bikes, arch):
    """Decoding continues at last prompt position + 1 on every M-RoPE row (what stock generate does)."""
    a = adapters[arch]
    inputs = a.build_inputs(reduce(a.encode(bikes), seed=2), QUESTION)
    new = a.generate(inputs, max_new_tokens=5)
    kw = dict(inputs.kwargs)
    cache, pos, ids, mask, manual = DynamicCache(config=a.model.config), kw.pop("position_ids"), kw.pop("input_ids"), kw.pop("attention_mask"), []
    with torch.no_grad():
        out = a.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, **kw)
        for _ in range(5):
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            manual.append(nxt)
            pos = pos[..., -1:] + 1
            mask = torch.cat([mask, torch.ones_like(nxt)], 1)
            out = a.model(input_ids=nxt, attention_mask=mask, position_ids=pos, past_key_values=cache)
    assert torch.equal(new, torch.cat(manual, 1))


@pytest.mark.parametrize("arch", ARCHS)
def test_selected_groups(adapters, bikes, arch):
    """Dropping whole groups (frame selection): the first group keeps its positions, placeholders match."""
    a = adapters[arch]
    full = a.encode(bikes)
    sel = full.select([0, 2])
    full_in, sel_in = a.build_inputs(full, QUESTION), a.build_inputs(sel, QUESTION)
    assert int(sel_in.visual_mask.sum()) == sel.n_tokens
    n0 = full.tokens_per_group[0]
    assert torch.equal(rope(sel_in)[:, sel_in.visual_mask[0]][:, :n0], rope(full_in)[:, full_in.visual_mask[0]][:, :n0])
    if arch == "tiny-qwen2.5-vl":  # time-aligned temporal ids: the last group keeps its temporal id
        t_full = rope(full_in)[0, full_in.visual_mask[0]][-1]
        assert rope(sel_in)[0, sel_in.visual_mask[0]][-1] == t_full


# --- time ----------------------------------------------------------------------------------------

def test_qwen2_5_temporal_ids_follow_real_keyframe_times(adapters):
    a = adapters["tiny-qwen2.5-vl"]
    tps = a.model.config.vision_config.tokens_per_second
    frames = random_frames([0.0, 0.5, 3.0, 3.5, 10.0, 10.5])  # keyframes at 0 s, 3 s, 10 s
    tokens = a.encode(frames)
    assert tokens.pts_seconds.tolist() == [0.0, 3.0, 10.0]
    inputs = a.build_inputs(tokens, QUESTION)
    vis = rope(inputs)[:, inputs.visual_mask[0]].reshape(3, 3, -1)  # (rows, groups, tokens)
    start = int(vis[1, 0, 0])
    assert [int(vis[0, g].unique()) for g in range(3)] == [start + int(t * tps) for t in (0.0, 3.0, 10.0)]
    # height/width rows are those of the regular layout
    regular = a.build_inputs(a.encode(random_frames([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])), QUESTION)
    assert torch.equal(rope(regular)[1:, regular.visual_mask[0]], rope(inputs)[1:, inputs.visual_mask[0]])
    # regular times: exactly get_rope_index with second_per_grid_ts (the stock numbers)
    assert [int(t) for t in rope(regular)[0, regular.visual_mask[0]].reshape(3, -1)[:, 0]] == [start + int(g * 1.0 * tps) for g in range(3)]
    # and dropping the middle keyframe leaves the last one at its real time
    sel = a.build_inputs(tokens.select([0, 2]), QUESTION)
    assert int(rope(sel)[0, sel.visual_mask[0]][-1]) == start + int(10.0 * tps)
    assert a.generate(inputs, max_new_tokens=2).shape == (1, 2)


def test_qwen2_vl_temporal_ids_are_patch_indices(adapters):
    a = adapters["tiny-qwen2-vl"]
    inputs = a.build_inputs(a.encode(random_frames([0.0, 0.5, 3.0, 3.5, 10.0, 10.5])), QUESTION)
    vis = rope(inputs)[:, inputs.visual_mask[0]].reshape(3, 3, -1)
    start = int(vis[1, 0, 0])
    assert [int(vis[0, g].unique()) for g in range(3)] == [start, start + 1, start + 2]


def test_qwen3_writes_real_timestamps(adapters):
    a = adapters["tiny-qwen3-vl"]
    frames = random_frames([0.0, 0.4, 3.0, 3.4, 10.0, 10.4])
    tokens = a.encode(frames)
    np.testing.assert_allclose(tokens.pts_seconds, [0.2, 3.2, 10.2])
    text = a.tokenizer.decode(a.build_inputs(tokens, QUESTION).input_ids[0])
    assert text.startswith("<|im_start|>user\n<0.2 seconds><|vision_start|><|video_pad|>")
    assert "<3.2 seconds><|vision_start|>" in text and "<10.2 seconds><|vision_start|>" in text
    assert text.endswith(f"<|vision_end|>{QUESTION}<|im_end|>\n<|im_start|>assistant\n")
    # a group reduced to nothing loses its timestamp and markers; the rest keep their positions
    keep = [torch.arange(n) for n in tokens.tokens_per_group]
    keep[1] = keep[1][:0]
    reduced, full_in = a.build_inputs(tokens.keep(keep), QUESTION), a.build_inputs(tokens, QUESTION)
    assert "<3.2 seconds>" not in a.tokenizer.decode(reduced.input_ids[0])
    kept_full = torch.cat([torch.arange(tokens.tokens_per_group[0]),
                           torch.arange(tokens.tokens_per_group[2]) + sum(tokens.tokens_per_group[:2])])
    assert torch.equal(rope(reduced)[:, reduced.visual_mask[0]], rope(full_in)[:, full_in.visual_mask[0]][:, kept_full])


def test_qwen3_deepstack_rows_travel_with_tokens(adapters, bikes):
    a = adapters["tiny-qwen3-vl"]
    tokens = reduce(a.encode(bikes), seed=3)
    assert len(tokens.deepstack[0]) == a.deepstack_layers == 2
    assert all(lv.shape == e.shape for d, e in zip(tokens.deepstack, tokens.embeds) for lv in d)
    inputs = a.build_inputs(tokens, QUESTION)
    deep = inputs.kwargs["mm_encoder_outputs"]["video"].deepstack_features
    assert [torch.equal(d[0], torch.cat([g[i] for g in tokens.deepstack])) for i, d in enumerate(deep)] == [True, True]
    # the features are really used: zeroing them changes the logits
    zeroed = tokens.keep([torch.arange(n) for n in tokens.tokens_per_group])
    zeroed.deepstack = [[torch.zeros_like(lv) for lv in d] for d in zeroed.deepstack]
    assert not torch.equal(logits(a, inputs.kwargs), logits(a, a.build_inputs(zeroed, QUESTION).kwargs))
    zeroed.deepstack = None
    with pytest.raises(ValueError, match="deepstack"):
        a.build_inputs(zeroed, QUESTION)


# --- bad input ------------------------------------------------------------------------------------

def test_bad_input_raises_one_line_errors(adapters, ckpts, bikes):
    a = adapters["tiny-qwen2.5-vl"]
    with pytest.raises(ConfigError, match="^frames: no frames"):
        a.encode(bikes[:0])
    tokens = a.encode(bikes[:2])
    with pytest.raises(ConfigError, match="no visual tokens"):
        a.build_inputs(tokens.keep([torch.arange(0)]), QUESTION)
    pre = json.loads((ckpts["tiny-qwen2.5-vl"] / "preprocessor_config.json").read_text())
    with pytest.raises(ConfigError, match="disagree"):
        type(a)(a.model, a.tokenizer, {**pre, "patch_size": 16})
    with pytest.raises(ConfigError, match="min_pixels"):
        type(a)(a.model, a.tokenizer, {**pre, "min_pixels": 10**7})
    with pytest.raises(ConfigError, match="aspect ratio"):
        a.encode(FrameBatch(np.zeros((1, 2, 500, 3), np.uint8), [0.0], [0]))


def test_loader_picks_the_qwen_adapters(ckpts):
    from vidsift.pipeline.loader import load_adapter

    for arch, model_name in [("tiny-qwen2-vl", "Qwen2VLForConditionalGeneration"),
                             ("tiny-qwen2.5-vl", "Qwen2_5_VLForConditionalGeneration"),
                             ("tiny-qwen3-vl", "Qwen3VLForConditionalGeneration")]:
        adapter = load_adapter(ckpts[arch], device="cpu", dtype="float32")
        assert isinstance(adapter, (Qwen2_5_VLAdapter, Qwen3VLAdapter))
        assert type(adapter.model).__name__ == model_name


def concat(a, b):
    """Groups of two encode calls in one VisualTokens (as a streaming memory holds them)."""
    from vidsift.types import VisualTokens

    both = lambda f: getattr(a, f) + getattr(b, f)  # noqa: E731
    return VisualTokens(embeds=both("embeds"), coords=both("coords"), size=both("size"),
                        grid_thw=torch.cat([a.grid_thw, b.grid_thw]), pts_seconds=np.concatenate([a.pts_seconds, b.pts_seconds]),
                        index=np.concatenate([a.index, b.index]), deepstack=None if a.deepstack is None else both("deepstack"))


@pytest.mark.parametrize("arch", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_groups_of_different_resolutions(adapters, arch):
    """Groups encoded at different sizes: Qwen2.5-VL gets one video block per grid, on one timeline."""
    a = adapters[arch]
    first = a.encode(random_frames([0.0, 0.5, 1.0, 1.5]))
    second = a.encode(random_frames([2.0, 2.5], size=(200, 260)))
    assert first.grid_thw[0].tolist() != second.grid_thw[0].tolist()
    mixed = concat(first, second)
    inputs, alone = a.build_inputs(mixed, QUESTION), a.build_inputs(first, QUESTION)
    text = a.tokenizer.decode(inputs.input_ids[0])
    assert text.count("<|vision_start|>") == (2 if arch == "tiny-qwen2.5-vl" else 3)
    assert int(inputs.visual_mask.sum()) == mixed.n_tokens
    n = first.n_tokens  # the first groups sit exactly where they sit without the second
    assert torch.equal(rope(inputs)[:, inputs.visual_mask[0]][:, :n], rope(alone)[:, alone.visual_mask[0]])
    last = rope(inputs)[:, inputs.visual_mask[0]][:, n:]
    if arch == "tiny-qwen2.5-vl":  # block start + 2 s * tokens_per_second
        tps = a.model.config.vision_config.tokens_per_second
        assert last[0].unique().tolist() == [int(last[1].min()) + int(2.0 * tps)]
    assert a.generate(inputs, max_new_tokens=2).shape == (1, 2)
    # a block (or Qwen3-VL group) that keeps nothing disappears with its markers
    emptied = mixed.keep([torch.arange(n) for n in first.tokens_per_group] + [torch.arange(0)])
    assert a.tokenizer.decode(a.build_inputs(emptied, QUESTION).input_ids[0]) == a.tokenizer.decode(alone.input_ids[0])


# --- encoder saliency, chunking ----------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_saliency_is_attention_received_in_output_order(adapters, arch):
    from vidsift.pipeline.adapters.qwen_saliency import output_order

    a = adapters[arch]
    frames = random_frames([0.0, 0.5, 1.0, 1.5], size=(200, 300))
    visual = a.model.model.visual
    merged = []
    hook = visual.merger.register_forward_hook(lambda m, args, out: merged.append(out))
    try:
        tokens = a.encode(frames)
    finally:
        hook.remove()
    assert not visual.blocks[-1].attn._forward_pre_hooks  # the saliency hook is gone
    assert [s.shape for s in tokens.saliency] == [(n,) for n in tokens.tokens_per_group]
    # the last block is a full-attention block: each frame's attention sums to 1 over its patches
    torch.testing.assert_close(torch.stack([s.sum() for s in tokens.saliency]), torch.full((2,), 0.25))
    # the order we put saliency in is the order the tower puts its merged tokens in
    order = output_order(visual, torch.tensor([[2, *(int(x) * a.merge for x in tokens.grid_thw[0, 1:])]]))
    out = merged[0] if order is None else merged[0][order]
    assert torch.equal(out, torch.cat(tokens.embeds))
    if arch == "tiny-qwen2.5-vl":
        assert order is not None and not torch.equal(order, torch.arange(len(order)))  # windows really permute
    kept = tokens.keep([torch.tensor([0, 3]), torch.tensor([1])])
    assert torch.equal(kept.saliency[0], tokens.saliency[0][[0, 3]])


@pytest.mark.parametrize("arch", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_chunked_encode_matches_one_call(ckpts, arch):
    a = load_tiny_adapter(ckpts[arch])
    frames = random_frames([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    whole = a.encode(frames)
    a.chunk_groups = 2
    parts = a.encode(frames)
    for x, y in zip(whole.embeds + whole.saliency, parts.embeds + parts.saliency):
        torch.testing.assert_close(x, y)
    if whole.deepstack is not None:
        torch.testing.assert_close(torch.cat([torch.cat(d) for d in whole.deepstack]), torch.cat([torch.cat(d) for d in parts.deepstack]))
    with pytest.raises(ConfigError, match="chunk_groups"):
        type(a)(a.model, a.tokenizer, a.preprocessor, chunk_groups=0)


def test_full_size_preprocessors_cap_video_frames():
    """Hub preprocessor files carry image limits (Qwen2.5-VL: 16384 tokens) or a whole-video total
    (Qwen3-VL): video frames are capped at 768 LLM tokens, as qwen-vl-utils does."""
    from vidsift.pipeline.adapters.qwen_preprocess import VIDEO_FRAME_TOKENS, QwenPreprocess
    from vidsift.pipeline.archs.qwen import FULL_SIZE, full_size_config

    assert VIDEO_FRAME_TOKENS == 768
    for name, spec in FULL_SIZE.items():
        config, _ = full_size_config(name)
        pre = QwenPreprocess.from_dict(spec["preprocessor"], vision_config=config.vision_config)
        assert pre.max_pixels == 768 * pre.factor ** 2
        h, w = pre.target_size(1080, 1920)
        assert (h // pre.factor) * (w // pre.factor) <= 768 and h % pre.factor == w % pre.factor == 0


def test_reserved_tokens_and_bad_coords_are_refused(adapters, bikes):
    a = adapters["tiny-qwen3-vl"]
    tokens = a.encode(bikes[:2])
    with pytest.raises(ConfigError, match="reserved video placeholder"):
        a.build_inputs(tokens, "what is <|video_pad|>?")
    bad = tokens.keep([torch.arange(2)])
    bad.coords[0][0, 1] = 99
    with pytest.raises(ValueError, match="outside its"):
        a.build_inputs(bad, QUESTION)


@pytest.mark.parametrize("arch", ["tiny-qwen2.5-vl", "tiny-qwen3-vl"])
def test_duplicate_pairing_gives_each_keyframe_its_own_patch(adapters, arch):
    a = adapters[arch]
    frames = random_frames([0.0, 7.0, 14.0])  # sparse (evenly spaced: one second_per_grid_ts expresses them)
    a.pairing = "duplicate"
    try:
        tokens = a.encode(frames)
        assert tokens.n_groups == 3 and tokens.index.tolist() == [0, 1, 2]
        assert tokens.pts_seconds.tolist() == [0.0, 7.0, 14.0]
        assert a.tokens_per_frame(90, 120) == tokens.tokens_per_group[0]
        ours, pixel = a.build_inputs(tokens, QUESTION), a.pixel_inputs(frames, QUESTION)
        assert torch.equal(logits(a, ours.kwargs), logits(a, pixel))
        if arch == "tiny-qwen3-vl":
            assert "<7.0 seconds>" in a.tokenizer.decode(ours.input_ids[0])
    finally:
        a.pairing = "consecutive"
    with pytest.raises(ConfigError, match="pairing"):
        type(a)(a.model, a.tokenizer, a.preprocessor, pairing="odd")


def test_text_after_long_video_option(ckpts):
    """5.23 starts the question at start + max(h, w) even when the temporal ids run further; the
    ``text_after_video="qwen"`` option restores the original max + 1 rule."""
    stock = load_tiny_adapter(ckpts["tiny-qwen2.5-vl"])
    frames = random_frames([i * 0.5 for i in range(20)], size=(56, 56))  # 10 groups of 2x2 tokens
    tokens = stock.encode(frames)
    ours = stock.build_inputs(tokens, QUESTION)
    vis = ours.visual_mask[0]
    end = int(vis.nonzero().max()) + 1  # <|vision_end|>
    assert int(rope(ours)[0, vis].max()) > int(rope(ours)[0, end])  # the stock overlap
    fixed = type(stock)(stock.model, stock.tokenizer, stock.preprocessor, text_after_video="qwen")
    qwen = fixed.build_inputs(tokens, QUESTION)
    assert torch.equal(rope(qwen)[:, : end], rope(ours)[:, : end])
    assert rope(qwen)[:, end].tolist() == [int(rope(ours)[:, vis].max()) + 1] * 3
    assert torch.equal(torch.diff(rope(qwen)[0, end:]), torch.ones(ours.prompt_len - end - 1, dtype=torch.long))
    assert fixed.generate(qwen, max_new_tokens=2).shape == (1, 2)
    with pytest.raises(ConfigError, match="text_after_video"):
        type(stock)(stock.model, stock.tokenizer, stock.preprocessor, text_after_video="x")


def test_qwen3_vl_moe_is_served_too(tiny_checkpoint, bikes):
    a = load_tiny_adapter(tiny_checkpoint("tiny-qwen3-vl-moe"))
    assert type(a) is Qwen3VLAdapter and type(a.model).__name__ == "Qwen3VLMoeForConditionalGeneration"
    frames = bikes[:4]
    ours, pixel = a.build_inputs(a.encode(frames), QUESTION), a.pixel_inputs(frames, QUESTION)
    assert_same_as_pixel_inputs(a, ours, pixel, max_new_tokens=4)
    assert_close_to_stock(a, ours, stock(a, tiny_checkpoint("tiny-qwen3-vl-moe"), frames, unwrap_video=True), max_new_tokens=4)
