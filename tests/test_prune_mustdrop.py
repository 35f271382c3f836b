"""MustDrop's LLM stages (Liu et al., arXiv:2411.10803): the ``mustdrop`` prefill pruner (text-guided
dual-attention filter), the ``mustdrop`` cache press (output-aware eviction of visual entries) and the
``mustdrop`` preset that composes them with the ``mustdrop`` merger. Oracles: brute force from the
unpruned model's eager attention maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from test_prune_press_kit import adapter, cache_lengths, fresh, inputs, match_positions, prefill_cache, run
from vidsift.errors import ConfigError
from vidsift.pipeline.hooks import count_hooks
from vidsift.pipeline.press import PRESSES
from vidsift.pipeline.prune import PRUNERS
from vidsift.pipeline.prune.mustdrop import dual_scores

K = 2


@pytest.fixture(scope="module")
def eager_maps():
    """The unpruned eager model: prefill attention maps (per layer (B, H, L, L)), the first decode
    step's (per layer (B, H, 1, L + 1)) and the first generated token."""
    ad, x = adapter("eager", "tiny-qwen2.5-vl"), inputs(attn="eager")
    with torch.no_grad():
        out = ad.model.generate(**fresh(x).kwargs, max_new_tokens=2, min_new_tokens=2, do_sample=False,
                                output_attentions=True, return_dict_in_generate=True)
    return out.attentions[0], out.attentions[1], out.sequences[0, x.prompt_len]


# -- the dual-attention filter (prefill pruner) ----------------------------------------------------

def test_dual_scores_keep_a_token_one_word_attends_even_when_the_mean_is_low():
    a = torch.tensor([[0.30, 0.02, 0.02, 0.10],
                      [0.30, 0.02, 0.02, 0.10],
                      [0.30, 0.40, 0.02, 0.10],
                      [0.30, 0.02, 0.02, 0.10]])  # token 1: one word looks at it; token 3: nobody in particular
    s = dual_scores(a, 1.0, 2.0)  # mean 0.1225: global low below 0.1225, individual low below 0.245
    assert (s["pass_score"] >= 1).tolist() == [True, True, False, False]
    assert float(s["global"][1]) < float(a.mean())  # kept for the individual score alone
    assert bool((dual_scores(a, 0.0, 2.0)["pass_score"] >= 1).all())  # a zero threshold keeps everything


def _filter_oracle(prefill_maps, x):
    """From layer K's eager map: A (T, V) of the text after the video over the visual tokens, heads
    averaged; thresholds picked so that some tokens pass on the individual score alone; the kept
    set by brute force over the tokens. -> (kept original positions, count, individual-only count)."""
    att = prefill_maps[K][0].double().mean(0)  # (L, L)
    is_vis = x.visual_mask[0]
    vis = torch.nonzero(is_vis).flatten().tolist()
    text = [i for i in range(att.shape[0]) if i > max(vis) and not is_vis[i]]
    a = att[text][:, vis]
    mean = float(a.mean())
    g = {j: float(a[:, n].mean()) / mean for n, j in enumerate(vis)}  # in units of the mean
    m = {j: float(a[:, n].max()) / mean for n, j in enumerate(vis)}
    gs = sorted(g.values())
    lo, hi = len(gs) // 4, 3 * len(gs) // 4
    gap = max(range(lo, hi), key=lambda n: gs[n + 1] - gs[n])
    global_thr = (gs[gap] + gs[gap + 1]) / 2  # in the widest gap of the middle half: no token sits on it
    low = sorted(m[j] for j in vis if g[j] < global_thr)  # globally low tokens, by individual score
    mid = len(low) // 2
    individual_thr = (low[mid - 1] + low[mid]) / 2  # half of them pass on the individual score
    kept = [j for j in vis if g[j] >= global_thr or m[j] >= individual_thr]
    only_individual = [j for j in kept if g[j] < global_thr]
    margin = min(min(abs(g[j] - global_thr) for j in vis), min(abs(m[j] - individual_thr) for j in vis))
    assert margin > 1e-4  # recomputed vs eager attention cannot flip a decision
    positions = sorted([i for i in range(att.shape[0]) if not is_vis[i]] + kept)
    return torch.tensor(positions), len(kept), len(only_individual), global_thr, individual_thr


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_filter_keeps_exactly_the_tokens_high_on_global_or_individual_attention(eager_maps, attn):
    ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
    want, c, only_individual, gt, it = _filter_oracle(eager_maps[0], x)
    V, L = int(x.visual_mask.sum()), x.prompt_len
    assert 0 < c < V and only_individual > 0  # both paths of the filter decide something here
    spec = f"mustdrop:k={K},global_thr={gt!r},individual_thr={it!r}"
    member = PRUNERS.build(spec)
    full = prefill_cache(ad, x)
    pruned = prefill_cache(ad, x, [member])
    got = match_positions(pruned.layers[K].keys, full.layers[K].keys)  # (B, Hk, m)
    assert torch.equal(got[0, 0], want) and torch.equal(got[0, 1], want)
    assert member.last[K]["count"] == c
    assert torch.equal(pruned.layers[K - 1].keys, full.layers[K - 1].keys)  # layers before k untouched
    r = run(ad, x, [PRUNERS.build(spec)], max_new_tokens=2)
    assert r.stats[0]["kept_visual_per_stage"] == {K: c}
    assert r.stats[0]["prefill_rows_per_layer"] == [L, L, L - V + c, L - V + c]


def test_filter_zero_threshold_is_the_unpruned_model():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x)
    for spec in ("mustdrop:k=2,global_thr=0", "mustdrop:k=1,individual_thr=0"):
        got = run(ad, x, PRUNERS.build_many(spec))
        assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits), spec
        assert cache_lengths(got.cache) == cache_lengths(ref.cache)
        assert count_hooks(ad.model) == 0


# -- the output-aware cache (press) ----------------------------------------------------------------

def _press_oracle(rows: list[torch.Tensor], x, ratio: float) -> tuple[torch.Tensor, float]:
    """Prompt positions a layer keeps: every text position and the ceil(ratio * V) visual positions
    with the most attention summed over the output rows (each (L',), heads averaged) -> (positions,
    gap between the last kept and the first evicted score)."""
    L = x.prompt_len
    score = sum(r[:L] for r in rows)
    is_vis = x.visual_mask[0]
    vis = torch.nonzero(is_vis).flatten()
    c = math.ceil(ratio * vis.numel())
    order = vis[score[vis].argsort(descending=True)]
    s = score[order]
    kept = torch.cat([torch.nonzero(~is_vis).flatten(), order[:c]]).sort().values
    return kept, float(s[c - 1] - s[c])


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_press_keeps_the_visual_entries_the_output_attends_most(eager_maps, attn):
    """warmup=0: ranked by the last prompt token (whose query emits the first output token), evicted at
    the end of prefill; text entries all stay."""
    ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
    ratio = 0.25
    pressed = prefill_cache(ad, x, [PRESSES.build(f"mustdrop:ratio={ratio}")])
    full = prefill_cache(ad, x)
    V, L = int(x.visual_mask.sum()), x.prompt_len
    for layer, att in enumerate(eager_maps[0]):
        want, gap = _press_oracle([att[0, :, L - 1].double().mean(0)], x, ratio)
        assert gap > 1e-6
        got = match_positions(pressed.layers[layer].keys, full.layers[layer].keys)
        assert got.shape[-1] == L - V + math.ceil(ratio * V)
        assert all(torch.equal(got[0, h], want) for h in range(got.shape[1])), layer


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_press_after_warmup_ranks_by_the_generated_tokens_too(eager_maps, attn):
    """warmup=1: the first decode step's query (the first generated token) adds its attention, then
    the layer evicts; the kept prompt entries follow the summed output attention, not the prompt's
    alone (the oracle's two rankings differ on this model, so ignoring warmup fails)."""
    ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
    ratio = 0.25
    V, L = int(x.visual_mask.sum()), x.prompt_len
    c = math.ceil(ratio * V)
    r = run(ad, x, [PRESSES.build(f"mustdrop:ratio={ratio},warmup=1")], max_new_tokens=3)
    assert int(r.ids[0, 0]) == int(eager_maps[2])
    full = prefill_cache(ad, x)
    differs = 0
    for layer, (pre, step) in enumerate(zip(eager_maps[0], eager_maps[1])):
        want, gap = _press_oracle([pre[0, :, L - 1].double().mean(0), step[0, :, 0].double().mean(0)], x, ratio)
        alone, _ = _press_oracle([pre[0, :, L - 1].double().mean(0)], x, ratio)
        differs += not torch.equal(want, alone)
        assert gap > 1e-6
        keys = r.cache.layers[layer].keys
        assert keys.shape[-2] == L - V + c + 2  # the prompt's kept entries + the two generated tokens after it
        got = match_positions(keys[:, :, :L - V + c], full.layers[layer].keys)
        assert all(torch.equal(got[0, h], want) for h in range(got.shape[1])), layer
    assert differs > 0
    assert r.stats[0]["kept_visual_per_layer"] == {i: c for i in range(len(eager_maps[0]))}


def test_press_ratio_one_is_the_uncompressed_model():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x)
    for spec in ("mustdrop:ratio=1.0", "mustdrop:ratio=1,warmup=2"):
        got = run(ad, x, PRESSES.build_many(spec))
        assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits), spec
        assert cache_lengths(got.cache) == cache_lengths(ref.cache)


@pytest.mark.parametrize("registry, spec, message", [
    (PRUNERS, "mustdrop:global_thr=-1", "global_thr must be a number >= 0"),
    (PRUNERS, "mustdrop:k=-1", "k must be a layer index"),
    (PRESSES, "mustdrop:ratio=0", "ratio must be a number in (0, 1]"),
    (PRESSES, "mustdrop:every=2", "mustdrop evicts once"),
])
def test_bad_specs_are_one_line_config_errors(registry, spec, message):
    with pytest.raises(ConfigError) as err:
        registry.build_many(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- the preset: all three stages ------------------------------------------------------------------

def test_mustdrop_preset_runs_the_three_stages_within_the_budget(tiny_checkpoint):
    from models import load_tiny_adapter
    from vidsift.pipeline.pipeline import Pipeline
    from vidsift.types import FrameBatch

    rng = np.random.default_rng(0)
    frames = FrameBatch(rng.integers(0, 255, (4, 112, 112, 3), dtype=np.uint8), np.arange(4) / 2.0, np.arange(4))
    pipe = Pipeline(load_tiny_adapter(tiny_checkpoint("tiny-qwen2.5-vl")), name="tiny")
    ans = pipe.ask(frames, "What happens?", budget="mustdrop", max_new_tokens=3)
    s = ans.stats
    assert ans.plan.settings["merger"] == "mustdrop:threshold=0.8"
    assert [m["method"] for m in s["prune"]] == ["mustdrop"] and [m["method"] for m in s["kv"]] == ["mustdrop"]
    assert s["tokens_in_prompt"] <= s["tokens_budget"] < s["tokens_full"]
    after_filter = s["prune"][0]["kept_visual_per_stage"][2]
    assert after_filter <= s["tokens_in_prompt"]  # layers 0-1 hold every prompt token, layers 2-3 the filtered ones
    assert s["kv"][0]["kept_visual_per_layer"] == {0: math.ceil(0.5 * s["tokens_in_prompt"]), 1: math.ceil(0.5 * s["tokens_in_prompt"]),
                                                   2: math.ceil(0.5 * after_filter), 3: math.ceil(0.5 * after_filter)}
    explicit = pipe.ask(frames, "What happens?", budget="mustdrop", merger="tome", max_new_tokens=1)
    assert explicit.plan.settings["merger"] == "tome"  # an explicit merger wins over the preset's
