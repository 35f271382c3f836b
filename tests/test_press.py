"""KV-cache presses (snapkv, h2o, prefixkv, visual_first, quantize, composed) on real tiny models."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F

from test_prune_press_kit import (adapter, batch_pair, cache_lengths, fresh, hooked, inputs, match_positions, prefill_cache,
                                  run)
from vidsift.errors import ConfigError
from vidsift.pipeline.press import PRESSES, WindowPress, compose, prefix_lengths
from vidsift.pipeline.press.quantize import dequantize, quantize
from vidsift.pipeline.prune import PRUNERS

FAMILIES = ["tiny-qwen2.5-vl", "tiny-qwen3-vl", "tiny-llava-onevision", "tiny-smolvlm2"]
IDENTITY = ["snapkv:ratio=1.0", "h2o:ratio=1.0", "prefixkv:ratio=1.0", "visual_first:ratio=1.0", "quantize:ratio=1.0",
            "snapkv:ratio=1.0+quantize:ratio=1.0"]


def test_ratio_one_is_the_uncompressed_model_each_press():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x)
    for spec in IDENTITY:
        got = run(ad, x, PRESSES.build_many(spec))
        assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits), spec
        assert cache_lengths(got.cache) == cache_lengths(ref.cache)


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_ratio_one_is_the_uncompressed_model_every_family(arch, attn):
    ad, x = adapter(attn, arch), inputs(attn=attn, arch=arch)
    ref = run(ad, x)
    members = [PRESSES.build("composed", presses="+".join(s for s in IDENTITY if "+" not in s))]
    got = run(ad, x, PRUNERS.build_many("fastv:k=2,keep=1.0") + members)
    assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits)


def _window_probs(attentions, layer: int, hk: int, w: int) -> torch.Tensor:
    att = attentions[layer]  # (B, Hq, L, L) real attention maps
    b, hq, L, _ = att.shape
    return att.view(b, hk, hq // hk, L, L).mean(dim=2)[:, :, -w:]  # (B, Hk, w, L)


@pytest.fixture(scope="module")
def reference():
    """Unpressed eager prefill: real attention maps and the full cache."""
    ad, x = adapter("eager", "tiny-qwen2.5-vl"), inputs(attn="eager")
    with torch.no_grad():
        out = ad.model(**fresh(x).kwargs, output_attentions=True)
    return out.attentions, prefill_cache(ad, x), x


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_snapkv_keeps_the_top_scoring_entries_per_head(reference, attn):
    attentions, full, x = reference
    ad = adapter(attn, "tiny-qwen2.5-vl")
    L, w, ratio = x.prompt_len, 8, 0.3
    pressed = prefill_cache(ad, inputs(attn=attn), [PRESSES.build(f"snapkv:ratio={ratio},window={w}")])
    n_keep = math.ceil(ratio * L)
    assert cache_lengths(pressed) == [n_keep] * 4
    for layer in range(4):
        hk = full.layers[layer].keys.shape[1]
        scores = F.avg_pool1d(_window_probs(attentions, layer, hk, w).mean(dim=2), 7, 1, 3, count_include_pad=False)
        scores[..., L - w:] = scores.max() + 1  # the observation window is always kept
        want = scores.topk(n_keep, dim=-1).indices.sort(dim=-1).values
        got = match_positions(pressed.layers[layer].keys, full.layers[layer].keys)
        assert torch.equal(got, want), layer


def test_h2o_keeps_heavy_hitters_and_recent_entries(reference):
    attentions, full, x = reference
    ad = adapter("sdpa", "tiny-qwen2.5-vl")
    L, ratio = x.prompt_len, 0.25
    pressed = prefill_cache(ad, inputs(), [PRESSES.build(f"h2o:ratio={ratio},recent=0.5,chunk=16")])
    n_keep = math.ceil(ratio * L)
    recent = round(0.5 * n_keep)
    for layer in range(4):
        hk = full.layers[layer].keys.shape[1]
        att = attentions[layer]
        acc = att.view(att.shape[0], hk, -1, L, L).mean(dim=2).sum(dim=2)  # (B, Hk, L) accumulated attention
        acc[..., L - recent:] = acc.max() + 1
        want = acc.topk(n_keep, dim=-1).indices.sort(dim=-1).values
        assert torch.equal(match_positions(pressed.layers[layer].keys, full.layers[layer].keys), want)
    # while decoding, the cache is evicted back to the same budget every step
    got = run(ad, inputs(), [PRESSES.build(f"h2o:ratio={ratio}")], max_new_tokens=5)
    assert cache_lengths(got.cache) == [n_keep] * 4


def test_visual_first_evicts_only_visual_entries_while_text_fits(reference):
    _, full, x = reference
    ad = adapter("sdpa", "tiny-qwen2.5-vl")
    L, V = x.prompt_len, int(x.visual_mask.sum())
    ratio = (L - V + V // 4) / L
    pressed = prefill_cache(ad, inputs(), [PRESSES.build(f"visual_first:ratio={ratio}")])
    text = (~x.visual_mask[0]).nonzero().flatten()
    for layer in range(4):
        got = match_positions(pressed.layers[layer].keys, full.layers[layer].keys)  # (B, Hk, n)
        assert got.shape[-1] == math.ceil(ratio * L)
        for head in range(got.shape[1]):
            assert set(text.tolist()) <= set(got[0, head].tolist())


def test_prefixkv_gives_layers_different_lengths_under_one_budget():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    got = run(ad, x, [PRESSES.build("prefixkv:ratio=0.3")], max_new_tokens=2)
    s = got.stats[0]
    prompt_lens = [n - 1 for n in s["kv_len_per_layer"]]
    assert sum(prompt_lens) <= s["budget_entries"] == math.ceil(0.3 * 4 * x.prompt_len)
    assert sum(prompt_lens) >= 0.9 * s["budget_entries"]
    assert cache_lengths(got.cache) == s["kv_len_per_layer"]


def test_prefix_lengths():
    flat = torch.ones(100)  # diffuse attention needs many entries
    peaked = torch.tensor([50.0, 30.0, 10.0] + [0.1] * 97)  # concentrated attention needs few
    lengths = prefix_lengths([flat, peaked], 60)
    assert sum(lengths) <= 60 and lengths[0] > lengths[1] >= 1
    assert prefix_lengths([flat, peaked], 200) == [100, 100]
    assert prefix_lengths([torch.zeros(5)], 2) == [2]


@dataclass
class EvenPositions(WindowPress):
    """Test press: keep even positions (earliest first), the same in every head and layer."""

    name: ClassVar[str] = "even"

    def score(self, module, hidden, keys, positions, attention, *, visual):
        return -(positions % 2).float() - positions.float() * 1e-4


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_decode_after_press_equals_masking_the_evicted_entries(attn):
    """Evicting entries after prefill must decode exactly like the full cache with those entries
    masked out: checks the per-layer masks the layout rebuilds (SDPA and eager)."""
    ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
    L, steps = x.prompt_len, 4
    got = run(ad, x, [EvenPositions(ratio=0.5)], max_new_tokens=steps)
    assert cache_lengths(got.cache) == [math.ceil(L / 2) + steps - 1] * 4
    from transformers import DynamicCache

    kept = torch.zeros(L, dtype=torch.bool)
    kept[0::2] = True
    kw = fresh(x).kwargs
    cache = DynamicCache(config=ad.model.config.get_text_config())
    with torch.no_grad():
        logits = [ad.model(**kw, past_key_values=cache, use_cache=True).logits[:, -1]]
        pos = kw["position_ids"][..., -1:]
        for t in range(steps - 1):
            tok = logits[-1].argmax(-1, keepdim=True)
            pos = pos + 1
            allowed = torch.cat([kept, torch.ones(t + 1, dtype=torch.bool)])[None, None, None]
            mask = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
            logits.append(ad.model(input_ids=tok, position_ids=pos, attention_mask=mask, past_key_values=cache,
                                   use_cache=True).logits[:, -1])
    torch.testing.assert_close(got.logits[0], torch.cat(logits), atol=1e-4, rtol=1e-4)


def test_sdpa_and_eager_keep_the_same_entries():
    kept = {}
    for attn in ("sdpa", "eager"):
        ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
        full = prefill_cache(ad, x)
        pressed = prefill_cache(ad, x, PRESSES.build_many("prefixkv:ratio=0.4"))
        snap = prefill_cache(ad, x, PRESSES.build_many("snapkv:ratio=0.3"))
        kept[attn] = [match_positions(c.layers[i].keys, full.layers[i].keys) for c in (pressed, snap) for i in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(kept["sdpa"], kept["eager"]))
    a = run(adapter("sdpa"), inputs(), PRESSES.build_many("snapkv:ratio=0.3,every=2"), max_new_tokens=5)
    b = run(adapter("eager"), inputs(attn="eager"), PRESSES.build_many("snapkv:ratio=0.3,every=2"), max_new_tokens=5)
    assert torch.equal(a.ids, b.ids)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("attn, specs", [("sdpa", ("h2o:ratio=0.4", "snapkv:ratio=0.5+quantize:bits=4")),
                                         ("eager", ("prefixkv:ratio=0.4", "snapkv:ratio=0.4"))])
def test_left_padded_batch(attn, specs):
    """The unpadded (longest) row matches its single run; the padded row never keeps padding."""
    ad = adapter(attn, "tiny-qwen2.5-vl")
    batch, singles = batch_pair(attn=attn)
    long_row = max(range(2), key=lambda r: singles[r].prompt_len)
    short_row = 1 - long_row
    pad = batch.prompt_len - singles[short_row].prompt_len
    full = prefill_cache(ad, batch)
    for spec in specs:
        both = run(ad, batch, PRESSES.build_many(spec))
        one = run(ad, singles[long_row], PRESSES.build_many(spec))
        assert torch.equal(both.ids[long_row], one.ids[0]), spec
        torch.testing.assert_close(both.logits[long_row], one.logits[0], atol=1e-4, rtol=1e-4)
        pressed = prefill_cache(ad, batch, PRESSES.build_many(spec.split("+")[0]))
        for layer in range(4):
            got = match_positions(pressed.layers[layer].keys, full.layers[layer].keys)[short_row]
            assert bool((got >= pad).all()), (spec, layer)


def test_quantize_holds_fewer_real_bytes():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x, PRESSES.build_many("snapkv:ratio=1.0"))
    full_bytes = ref.stats[0]["kv_bytes"]
    assert full_bytes == sum(t.numel() * t.element_size() for lay in ref.cache.layers for t in (lay.keys, lay.values))
    sizes, errors = {}, {}
    for spec in ("quantize:bits=8,ratio=0", "quantize:bits=8,format=int,ratio=0", "quantize:bits=4,ratio=0",
                 "quantize:bits=2,ratio=0", "quantize:bits=8,ratio=0.5"):
        got = run(ad, x, PRESSES.build_many(spec))
        s = got.stats[0]
        assert s["kv_len_per_layer"] == ref.stats[0]["kv_len_per_layer"]  # nothing evicted
        held = sum(t.numel() * t.element_size() for lay in got.cache.layers for t in (lay.keys, lay.values))
        assert s["kv_bytes"] > held  # the packed entries live outside the cache layers
        sizes[spec], errors[spec] = s["kv_bytes"], (got.logits - ref.logits).abs().max().item()
    assert sizes["quantize:bits=2,ratio=0"] < sizes["quantize:bits=4,ratio=0"] < sizes["quantize:bits=8,ratio=0"]
    assert sizes["quantize:bits=8,ratio=0"] < sizes["quantize:bits=8,ratio=0.5"] < full_bytes
    assert sizes["quantize:bits=8,ratio=0"] < 0.4 * full_bytes  # fp32 tiny model: ~4x smaller
    assert errors["quantize:bits=8,format=int,ratio=0"] < errors["quantize:bits=2,ratio=0"]


@pytest.mark.parametrize("bits, fmt, tol", [(8, "fp8", 0.07), (8, "int", 0.005), (4, "int", 0.07), (2, "int", 0.34)])
def test_quantize_roundtrip(bits, fmt, tol):
    x = torch.randn(2, 3, 50, 16)
    store = quantize(x, bits=bits, fmt=fmt)
    y = dequantize(store, bits=bits, fmt=fmt, dtype=torch.float32)
    span = x.abs().amax(-1, keepdim=True) if fmt == "fp8" else (x.amax(-1, keepdim=True) - x.amin(-1, keepdim=True))
    assert y.shape == x.shape and bool(((y - x).abs() <= tol * span + 1e-6).all())
    assert store["q"].numel() * store["q"].element_size() == x.numel() * bits // 8


def test_composition_order_and_stats():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    press = compose("snapkv:ratio=0.25+quantize:bits=8")
    got = run(ad, x, PRUNERS.build_many("fastv:k=1,keep=0.5") + [press])
    s = got.stats[-1]
    assert s["method"] == "composed" and [m["method"] for m in s["members"]] == ["snapkv", "quantize"]
    L, V = x.prompt_len, int(x.visual_mask.sum())
    pruned = L - V + round(V / 2)
    assert s["kv_len_per_layer"] == [math.ceil(0.25 * L) + 3] + [math.ceil(0.25 * pruned) + 3] * 3
    assert s["kv_bytes"] == sum(s["kv_bytes_per_layer"]) and s["prefill_flops"] > 0
    with pytest.raises(ConfigError, match="quantize must be the last"):
        run(ad, x, PRESSES.build_many("quantize+snapkv"))
    with pytest.raises(ConfigError, match="quantize must be the last"):
        PRESSES.build("composed", presses="quantize+snapkv")


@pytest.mark.parametrize("spec, message", [
    ("snapkv:ratio=0", "ratio must be a number in (0, 1]"),
    ("snapkv:kernel=4", "kernel must be odd"),
    ("quantize:bits=3", "bits must be one of: 2, 4, 8"),
    ("quantize:bits=4,format=fp8", "format=fp8 needs bits=8"),
    ("quantize:format=nf4", "format must be one of: fp8, int"),
    ("h2o:recent=2", "recent must be a number in (0, 1]"),
    ("zip", "unknown cache press; choose one of: composed, dycoke, h2o, mustdrop, prefixkv, quantize, snapkv, visual_first"),
])
def test_bad_specs_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        PRESSES.build_many(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=6), st.floats(0.05, 1.0), st.integers(0, 2**16))
def test_prefix_lengths_properties(sizes, ratio, seed):
    g = torch.Generator().manual_seed(seed)
    imps = [torch.rand(n, generator=g) ** 4 for n in sizes]
    budget = max(len(sizes), int(ratio * sum(sizes)))
    lengths = prefix_lengths(imps, budget)
    assert all(1 <= k <= n for k, n in zip(lengths, sizes))
    assert sum(lengths) <= budget
    more = prefix_lengths(imps, min(sum(sizes), budget + 5))
    assert all(a <= b for a, b in zip(lengths, more))  # a larger budget never shortens a layer


# -- one member object, two calls at once: per-call state lives on the call, not on the member -------------

def _stats_without_timing(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k not in ("prefill_forward_s", "decode_steps_per_s")}


def _generate(ad, x, processors=()):
    out = ad.model.generate(**x.kwargs, max_new_tokens=4, min_new_tokens=4, do_sample=False, output_logits=True,
                            return_dict_in_generate=True, logits_processor=list(processors))
    return out.sequences[:, x.prompt_len:], torch.stack(out.logits, dim=1)


@pytest.mark.parametrize("kind, spec", [("kv", "h2o:ratio=0.4"), ("kv", "snapkv:ratio=0.3,every=2"),
                                        ("kv", "snapkv:ratio=0.4+quantize:bits=4,ratio=0.3"),
                                        ("kv", "mustdrop:ratio=0.5,warmup=2"), ("kv", "prefixkv:ratio=0.4"),
                                        ("kv", "zipvl:tau=0.8"), ("prune", "mustdrop:k=1,global_thr=1.5"),
                                        ("prune", "zipvl:k=1,tau=0.8"), ("prune", "fastv:k=2,keep=0.5")])
def test_one_member_object_serves_two_interleaved_calls(kind, spec):
    """The same member objects serve two calls at once (call A on one model, call B on another, with
    another prompt); B's whole generate runs from inside A's, after A's prefill and before its decode
    steps. Each call must match a run with freshly built members (ids, logits and stats)."""
    from transformers import DynamicCache, LogitsProcessor

    registry = PRESSES if kind == "kv" else PRUNERS
    ad_a, ad_b = adapter("sdpa"), adapter("eager")  # two models: two layouts
    x_a, x_b = inputs(), inputs("Describe the colours of every object, in order.", attn="eager", n=2, seed=1)
    want_a, want_b = run(ad_a, x_a, registry.build_many(spec)), run(ad_b, x_b, registry.build_many(spec))
    x_a, x_b = fresh(x_a), fresh(x_b)
    for ad, x in ((ad_a, x_a), (ad_b, x_b)):
        x.kwargs["past_key_values"] = DynamicCache(config=ad.model.config.get_text_config())
    got_b: list = []

    class RunB(LogitsProcessor):
        def __call__(self, ids, scores):
            if not got_b:
                got_b.append(_generate(ad_b, x_b))
            return scores

    shared = registry.build_many(spec)
    with contextlib.ExitStack() as st:
        stats_a = hooked(st, ad_a, x_a, shared)
        stats_b = hooked(st, ad_b, x_b, shared)
        got_a = _generate(ad_a, x_a, [RunB()])
    for (ids, logits), want in ((got_a, want_a), (got_b[0], want_b)):
        assert torch.equal(ids, want.ids)
        torch.testing.assert_close(logits, want.logits)
    for stats, want in ((stats_a, want_a), (stats_b, want_b)):
        assert [_stats_without_timing(s) for s in stats] == [_stats_without_timing(s) for s in want.stats]
