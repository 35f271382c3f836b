"""Incremental KV cache of the streaming memory (tiny random Qwen2.5-VL, real transformers
classes, loaded with from_pretrained): chunked prefill equals a one-shot forward, positions equal
the stock get_rope_index, answers equal the adapter's re-prefill, evictions keep the cache equal
to the memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsift.errors import ConfigError
from vidsift.types import FrameBatch
from vidsift.stream.dtd import TemporalDedup
from vidsift.stream.evict import EvictionPolicy
from vidsift.stream.kvcache import ReprefillAnswerer, make_cache, supports_incremental
from vidsift.stream.memory import StreamMemory
from vidsift.stream.sender import pattern

pytestmark = pytest.mark.timeout(120)


def first_logits(cache, question: str) -> torch.Tensor:
    """Logits (V,) of the first answer token, read from the LM head during ``cache.answer``."""
    seen = []
    handle = cache.adapter.model.lm_head.register_forward_hook(lambda _m, _a, out: seen.append(out))
    try:
        cache.answer(question, max_new_tokens=1)
    finally:
        handle.remove()
    return seen[0][0].float()


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from vidsift.pipeline.archs import build_checkpoint
    from vidsift.pipeline.loader import load_adapter

    path = build_checkpoint("tiny-qwen2.5-vl", tmp_path_factory.mktemp("qwen25"))
    return load_adapter(path, device="cpu")


def fill(adapter, n_groups: int, *, budget: int = 10**6, chunk_tokens: int = 512, dedup: float = 1.0,
         size=(160, 120), policy: EvictionPolicy | None = None):
    mem = StreamMemory(budget=budget, dedup=TemporalDedup(threshold=dedup), policy=policy or EvictionPolicy())
    cache = make_cache(adapter, chunk_tokens=chunk_tokens)
    cache.reset()
    for g in range(n_groups):
        frames = np.stack([pattern(2 * g, *size), pattern(2 * g + 1, *size)])
        tokens = adapter.encode(FrameBatch(frames, [g * 1.0, g * 1.0 + 0.5], [2 * g, 2 * g + 1]))
        entry, _ = mem.push(tokens, t_s=float(tokens.pts_seconds[0]))
        if entry is not None:
            cache.append(entry)
        evicted = mem.evict()
        cache.drop(evicted)
        if evicted.numel():
            cache.rebase(mem.entries)
        assert cache.length == cache.head_len + mem.n_tokens
    return mem, cache


@pytest.fixture(scope="module")
def filled(adapter):
    return fill(adapter, 4, chunk_tokens=7)  # chunks straddle entries


def test_chunked_incremental_prefill_equals_one_shot_forward_with_stock_positions(adapter, filled):
    model, tok = adapter.model, adapter.tokenizer
    mem, cache = filled
    question = "what moves?"
    incremental = first_logits(cache, question)
    tail = tok(f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    head = tok("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>",
               add_special_tokens=False)["input_ids"]
    assert cache.head_ids().tolist() == head
    vid = model.config.video_token_id
    n = mem.n_tokens
    ids = torch.tensor([head + [vid] * n + tail])
    h, w = (int(v) for v in mem.entries[0].grid_thw[1:])
    pos, _ = model.model.get_rope_index(ids, mm_token_type_ids=(ids == vid).long() * 2,
                                        video_grid_thw=torch.tensor([[4, 2 * h, 2 * w]]),
                                        second_per_grid_ts=torch.tensor([1.0]))
    ours = torch.cat([torch.arange(len(head))[None].expand(3, -1), *cache.positions,
                      (torch.arange(len(tail)) + cache.head_len + cache.max_hw)[None].expand(3, -1)], 1)
    assert torch.equal(pos[:, 0], ours)
    embeds = model.model.language_model.embed_tokens(ids)
    embeds[0, ids[0] == vid] = torch.cat([e.embeds for e in mem.entries])
    with torch.no_grad():
        hidden = model.model.language_model(inputs_embeds=embeds, position_ids=pos).last_hidden_state
        full = model.lm_head(hidden[:, -1])[0]
    torch.testing.assert_close(incremental, full, rtol=1e-4, atol=1e-5)
    assert cache.length == cache.head_len + n  # the question's rows are gone again


def test_incremental_answer_equals_adapter_reprefill(adapter, filled):
    mem, cache = filled
    question = "what happens?"
    inputs = adapter.build_inputs(mem.as_visual_tokens(), question)
    with torch.no_grad():
        ref = adapter.model(**inputs.kwargs).logits[0, -1]
    torch.testing.assert_close(first_logits(cache, question), ref.float(), rtol=1e-4, atol=1e-5)
    fast = cache.answer(question, max_new_tokens=8)
    slow = ReprefillAnswerer(adapter).answer(mem, question, max_new_tokens=8)
    assert fast.text == slow.text and fast.new_tokens == slow.new_tokens
    assert fast.prefill_tokens < slow.prefill_tokens  # the question only, not the memory


def test_evictions_drop_the_same_rows_from_every_layer(adapter):
    """Each eviction removes the evicted memory rows, and only those, from every layer (values are
    not re-rotated, so they must equal the rows kept, exactly); after the rebase the keys equal a
    fresh forward of the surviving memory at the cache's positions (layer 0: keys there depend on
    the token and its position only)."""
    mem = StreamMemory(budget=30, dedup=TemporalDedup(threshold=0.999), policy=EvictionPolicy())
    cache = make_cache(adapter)
    cache.reset()
    evictions = moved = 0
    for g in range(5):
        frames = np.stack([pattern(2 * g, 160, 120), pattern(2 * g + 1, 160, 120)])
        tokens = adapter.encode(FrameBatch(frames, [g * 1.0, g * 1.0 + 0.5], [2 * g, 2 * g + 1]))
        entry, _ = mem.push(tokens, t_s=float(tokens.pts_seconds[0]))
        if entry is not None:
            cache.append(entry)
        before = [layer.values.clone() for layer in cache.cache.layers]
        evicted = mem.evict()
        cache.drop(evicted)
        if evicted.numel():
            evictions += 1
            moved += cache.rebase(mem.entries)
        keep = torch.ones(before[0].shape[-2], dtype=torch.bool)
        keep[evicted + cache.head_len] = False
        for layer, values in zip(cache.cache.layers, before):
            assert torch.equal(layer.values, values[..., keep, :])
    assert evictions > 0 and moved > 0 and mem.n_tokens <= 30  # whole entries went: positions were rebased

    lm = adapter.model.model.language_model
    head = cache.head_ids()
    embeds = torch.cat([lm.embed_tokens(head[None]), torch.cat([e.embeds for e in mem.entries])[None]], 1)
    pos = torch.cat([torch.arange(cache.head_len)[None].expand(3, -1), *cache.positions], 1)
    with torch.no_grad():
        fresh = lm(inputs_embeds=embeds, position_ids=pos[:, None], use_cache=True).past_key_values
    assert cache.cache.layers[0].keys.shape == fresh.layers[0].keys.shape
    torch.testing.assert_close(cache.cache.layers[0].keys, fresh.layers[0].keys, rtol=1e-4, atol=1e-4)
    reply = cache.answer("still fine?", max_new_tokens=4)
    assert reply.context_tokens == cache.head_len + mem.n_tokens


def test_answer_cost_does_not_depend_on_memory_size(adapter, filled):
    _, small = fill(adapter, 1)
    _, large = filled
    a, b = small.answer("q?", max_new_tokens=3), large.answer("q?", max_new_tokens=3)
    assert a.prefill_tokens == b.prefill_tokens  # only the question is prefilled


def test_the_adapter_names_its_cache(adapter):
    from vidsift.pipeline.adapters import ADAPTERS
    from vidsift.stream.kv_qwen import QwenMRoPECache

    assert isinstance(make_cache(adapter), QwenMRoPECache)
    named = {name: ADAPTERS.get(name).incremental_cache for name in ADAPTERS.names()}
    assert named == {"llava_onevision": "llava_onevision", "qwen2_5_vl": "qwen_mrope", "qwen3_vl": None, "smolvlm": None}

    class Other:
        family, incremental_cache = "smolvlm", None

    assert supports_incremental(adapter) and not supports_incremental(Other())
    with pytest.raises(ConfigError, match="^smolvlm: no incremental KV cache"):
        make_cache(Other())


def test_rebase_rerotates_cached_keys_exactly(adapter):
    mem, cache = fill(adapter, 5, budget=40, dedup=0.999, policy=EvictionPolicy(novelty=0.0, recency=1.0))
    assert cache.origin > 0  # the oldest entries left: time zero moved forward
    pos = torch.cat(cache.positions, 1)
    assert int(pos[0].min()) == cache.head_len  # the oldest surviving entry sits at temporal offset zero
    # layer-0 keys depend only on each token's own embedding and position: a fresh one-shot
    # prefill of [head, surviving memory] at the rebased positions must give the same keys
    from transformers import DynamicCache

    lm = adapter.model.model.language_model
    head = cache.head_ids()
    embeds = torch.cat([lm.embed_tokens(head), torch.cat([e.embeds for e in mem.entries])])[None]
    positions = torch.cat([torch.arange(cache.head_len)[None].expand(3, -1), pos], 1)[:, None]
    fresh = DynamicCache(config=adapter.model.config.get_text_config())
    with torch.no_grad():
        lm(inputs_embeds=embeds, position_ids=positions, past_key_values=fresh, use_cache=True)
    torch.testing.assert_close(cache.cache.layers[0].keys, fresh.layers[0].keys, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cache.cache.layers[0].values, fresh.layers[0].values, rtol=1e-4, atol=1e-5)


def test_llava_onevision_incremental_equals_reprefill_and_rebases(tmp_path_factory):
    """1D-RoPE family: chunked incremental prefill == build_inputs on the same memory; after an
    eviction the surviving keys are re-rotated to contiguous positions exactly."""
    from transformers import DynamicCache

    from vidsift.pipeline.archs import build_checkpoint
    from vidsift.pipeline.loader import load_adapter

    llava = load_adapter(build_checkpoint("tiny-llava-onevision", tmp_path_factory.mktemp("llava")), device="cpu")
    mem = StreamMemory(budget=10**6, dedup=TemporalDedup(threshold=1.0))
    cache = make_cache(llava, chunk_tokens=5)
    cache.reset()
    for g in range(3):
        tokens = llava.encode(FrameBatch(np.stack([pattern(g, 160, 120)]), [g * 1.0], [g]))
        entry, _ = mem.push(tokens, t_s=g * 1.0)
        cache.append(entry)
    question = "what happens?"
    inputs = llava.build_inputs(mem.as_visual_tokens(), question)
    with torch.no_grad():
        ref = llava.model(**inputs.kwargs).logits[0, -1]
    torch.testing.assert_close(first_logits(cache, question), ref.float(), rtol=1e-4, atol=1e-4)
    fast, slow = cache.answer(question, max_new_tokens=6), ReprefillAnswerer(llava).answer(mem, question, max_new_tokens=6)
    assert fast.text == slow.text and fast.prefill_tokens < slow.prefill_tokens

    mem.budget = mem.n_tokens // 2
    cache.drop(mem.evict())
    assert cache.rebase(mem.entries) > 0
    pos = torch.cat(cache.positions, 1)
    assert torch.equal(pos[0], torch.arange(cache.head_len, cache.head_len + mem.n_tokens))
    lm = llava.model.model.language_model
    embeds = torch.cat([lm.embed_tokens(cache.head_ids()), torch.cat([e.embeds for e in mem.entries])])[None]
    fresh = DynamicCache(config=llava.model.config.get_text_config())
    with torch.no_grad():
        lm(inputs_embeds=embeds, position_ids=torch.cat([torch.arange(cache.head_len)[None], pos], 1),
           past_key_values=fresh, use_cache=True)
    torch.testing.assert_close(cache.cache.layers[0].keys, fresh.layers[0].keys, rtol=1e-4, atol=1e-5)


def test_a_session_groups_the_frames_its_adapter_encodes_together(adapter):
    """The stream encodes ``adapter.frames_per_group`` frames per step: Qwen's temporal pair, or one
    frame with ``pairing="duplicate"`` (the session had read the preprocessor's temporal_patch_size)."""
    from vidsift.stream.session import StreamSession

    source = "lavfi:testsrc2=size=64x64:rate=1"
    assert StreamSession(adapter, source).group_size == adapter.frames_per_group == 2
    single = type(adapter)(adapter.model, adapter.tokenizer, adapter.preprocessor, pairing="duplicate")
    assert StreamSession(single, source).group_size == single.frames_per_group == 1
