"""Prefill pruners (fastv, pdrop, drop_after, schedule) on real tiny models through the real adapters."""

from __future__ import annotations

import pytest
import torch

from test_prune_press_kit import (adapter, batch_pair, cache_lengths, hooked, inputs, match_positions, prefill_cache,
                                  run)
from vidsift.errors import ConfigError
from vidsift.pipeline.hooks import count_hooks
from vidsift.pipeline.prune import PRUNERS, keep_top_visual
from vidsift.pipeline.prune.base import sigmoid_keep

FAMILIES = ["tiny-qwen2.5-vl", "tiny-qwen3-vl", "tiny-llava-onevision", "tiny-smolvlm2"]
IDENTITY = ["fastv:k=2,keep=1.0", "pdrop:layers=2/3,keep=1/1", "schedule:keep=1", "fastv:k=3,keep=1.0"]


def test_keep_one_is_the_unpruned_model_each_pruner():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x)
    for spec in IDENTITY:
        got = run(ad, x, PRUNERS.build_many(spec))
        assert torch.equal(got.ids, ref.ids), spec
        assert torch.equal(got.logits, ref.logits), spec
        assert cache_lengths(got.cache) == cache_lengths(ref.cache)


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_keep_one_is_the_unpruned_model_every_family(arch, attn):
    """All identity pruners stacked in one call: still the vanilla model's logits, bit for bit."""
    ad, x = adapter(attn, arch), inputs(attn=attn, arch=arch)
    ref = run(ad, x)
    got = run(ad, x, PRUNERS.build_many("+".join(IDENTITY)))
    assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits)


@pytest.mark.parametrize("arch", [a for a in FAMILIES if a != "tiny-qwen3-vl"])  # qwen3: deepstack test below
def test_cache_lengths_follow_the_schedule(arch):
    ad, x = adapter("sdpa", arch), inputs(arch=arch)
    L, V = x.prompt_len, int(x.visual_mask.sum())
    cases = {
        "fastv:k=1,keep=0.5": [L, L - V + round(0.5 * V), L - V + round(0.5 * V), L - V + round(0.5 * V)],
        "pdrop:layers=1/2/3,keep=0.5/0.25/0.125": [L, L - V + round(V / 2), L - V + round(V / 4), L - V + round(V / 8)],
        "drop_after:layer=2": [L, L, L - V, L - V],
        "schedule:keep=1/0.75/0.75/0": [L, L - V + round(0.75 * V), L - V + round(0.75 * V), L - V],
    }
    for spec, want in cases.items():
        got = run(ad, x, PRUNERS.build_many(spec))
        assert cache_lengths(got.cache) == [w + 3 for w in want], spec  # + 3 decoded tokens in the cache
        assert got.stats[0]["kv_len_per_layer"] == [w + 3 for w in want]
        assert got.stats[0]["prefill_rows_per_layer"] == want
        assert got.stats[0]["kv_bytes"] == sum(got.stats[0]["kv_bytes_per_layer"]) > 0
        assert got.stats[0]["prefill_forward_s"] > 0 and got.stats[0]["decode_steps_per_s"] > 0
    full = run(ad, x, PRUNERS.build_many("fastv:k=1,keep=1.0"), max_new_tokens=2).stats[0]
    pruned = run(ad, x, PRUNERS.build_many("fastv:k=1,keep=0.25"), max_new_tokens=2).stats[0]
    assert pruned["prefill_flops"] < full["prefill_flops"] and pruned["kv_bytes"] < full["kv_bytes"]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("rank_layer", ["prev", "same", None])
def test_fastv_keeps_the_visual_tokens_the_last_token_attends_to(attn, rank_layer):
    """Reference: the real attention map of layer k-1 (the paper's and the default) or layer k
    (rank_layer=same) of the unpruned model (eager, output_attentions)."""
    ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
    ref_ad = adapter("eager", "tiny-qwen2.5-vl")
    k, keep = 2, 0.25
    with torch.no_grad():
        out = ref_ad.model(**inputs(attn="eager").kwargs, output_attentions=True)
    ranked = k if rank_layer == "same" else k - 1
    scores = out.attentions[ranked][:, :, -1, :].mean(dim=1)  # (B, L)
    V = int(x.visual_mask.sum())
    want = keep_top_visual(scores, x.visual_mask, round(keep * V))
    other = keep_top_visual(out.attentions[k + k - 1 - ranked][:, :, -1, :].mean(dim=1), x.visual_mask, round(keep * V))
    assert not torch.equal(want, other)  # the two layers rank differently here, so the test tells them apart
    full = prefill_cache(ad, x)
    spec = f"fastv:k={k},keep={keep}" + ("" if rank_layer is None else f",rank_layer={rank_layer}")
    pruned = prefill_cache(ad, x, PRUNERS.build_many(spec))
    got = match_positions(pruned.layers[k].keys, full.layers[k].keys)  # (B, Hk, m)
    assert torch.equal(got[:, 0], want) and torch.equal(got[:, 1], want)
    # layers before k are untouched, later layers hold the same kept rows
    assert torch.equal(pruned.layers[0].keys, full.layers[0].keys)
    assert pruned.layers[3].keys.shape == pruned.layers[k].keys.shape


def test_sdpa_and_eager_keep_the_same_tokens():
    kept = {}
    for attn in ("sdpa", "eager"):
        ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
        full = prefill_cache(ad, x)
        pruned = prefill_cache(ad, x, PRUNERS.build_many("pdrop:layers=1/3,keep=0.5/0.2"))
        kept[attn] = [match_positions(pruned.layers[i].keys, full.layers[i].keys)[:, 0] if i else None for i in (1, 3)]
    assert torch.equal(kept["sdpa"][0], kept["eager"][0]) and torch.equal(kept["sdpa"][1], kept["eager"][1])
    a = run(adapter("sdpa"), inputs(), PRUNERS.build_many("fastv:k=1,keep=0.3"))
    b = run(adapter("eager"), inputs(attn="eager"), PRUNERS.build_many("fastv:k=1,keep=0.3"))
    assert torch.equal(a.ids, b.ids)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_decode_after_pruned_prefill_matches_full_recomputation(attn):
    """drop_after does not depend on scores, so cached decoding (per-layer cache lengths, rebuilt
    masks) must give the logits of recomputing the whole pruned sequence at every step."""
    ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
    for spec in ("drop_after:layer=2", "drop_after:layer=0"):
        cached = run(ad, x, PRUNERS.build_many(spec))
        nocache = run(ad, x, PRUNERS.build_many(spec), use_cache=False)
        assert torch.equal(cached.ids, nocache.ids), spec
        torch.testing.assert_close(cached.logits, nocache.logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("attn, specs", [("sdpa", ("fastv:k=1,keep=0.4", "drop_after:layer=2")),
                                         ("eager", ("pdrop:layers=1/2,keep=0.5/0.25",))])
def test_left_padded_batch_matches_single_prompts(attn, specs):
    ad = adapter(attn, "tiny-qwen2.5-vl")
    batch, singles = batch_pair(attn=attn)
    for spec in specs:
        both = run(ad, batch, PRUNERS.build_many(spec))
        for row, single in enumerate(singles):
            one = run(ad, single, PRUNERS.build_many(spec))
            assert torch.equal(both.ids[row], one.ids[0]), (spec, row)
            torch.testing.assert_close(both.logits[row], one.logits[0], atol=1e-4, rtol=1e-4)


def test_batch_with_different_visual_counts_is_a_clear_error():
    ad = adapter("sdpa", "tiny-qwen2.5-vl")
    batch, _ = batch_pair(n=(4, 2))
    before = count_hooks(ad.model)
    with pytest.raises(ConfigError, match="different numbers of visual tokens"):
        run(ad, batch, PRUNERS.build_many("fastv"))
    assert count_hooks(ad.model) == before


def test_hooks_are_removed_when_generation_fails():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    before = count_hooks(ad.model)
    members = PRUNERS.build_many("fastv:k=1,keep=0.5+pdrop:layers=2/3,keep=0.2/0.1")
    with pytest.raises(RuntimeError, match="boom"):
        from contextlib import ExitStack

        with ExitStack() as st:
            hooked(st, ad, x, members)
            assert count_hooks(ad.model) > before
            raise RuntimeError("boom")
    assert count_hooks(ad.model) == before


@pytest.mark.parametrize("spec, message", [
    ("fastv:keep=2", "keep must be a number in [0, 1]"),
    ("fastv:k=-1", "k must be a layer index"),
    ("fastv:speed=3", "options: k, keep, rank_layer"),
    ("fastv:rank_layer=next", "rank_layer must be one of: prev, same"),
    ("fastv:k=0", "k must be >= 1"),
    ("pdrop:keep=0.5/0.25", "keep needs layers"),
    ("pdrop:layers=2/1,keep=0.5/0.25", "strictly increasing"),
    ("schedule:keep=0.5/0.7", "must not increase"),
    ("nope", "unknown prefill pruner; choose one of: drop_after, fastv, ficoco_l, mustdrop, pdrop, schedule, todre, zipvl"),
])
def test_bad_specs_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        PRUNERS.build_many(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_layer_beyond_the_model_is_a_config_error():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    with pytest.raises(ConfigError, match="layers 0..3"):
        run(ad, x, PRUNERS.build_many("fastv:k=9"))


def test_a_score_layer_after_its_stage_is_a_config_error():
    from vidsift.pipeline.prune.fastv import FastV

    class ScoresLater(FastV):
        def score_layer(self, layer: int) -> int:
            return layer + 1

    with pytest.raises(ConfigError, match="stage 1 scores at layer 2, not in 0..1"):
        run(adapter("sdpa", "tiny-qwen2.5-vl"), inputs(), [ScoresLater(k=1, keep=0.5)])


def test_deepstack_models_refuse_pruning_before_the_deepstack_layers():
    """Qwen3-VL adds deepstack visual features after layers 0..1 (tiny): pruning must start later."""
    ad, x = adapter("sdpa", "tiny-qwen3-vl"), inputs(arch="tiny-qwen3-vl")
    with pytest.raises(ConfigError, match="prune at layer >= 2"):
        run(ad, x, PRUNERS.build_many("fastv:k=1"))
    V, L = int(x.visual_mask.sum()), x.prompt_len
    got = run(ad, x, PRUNERS.build_many("fastv:k=2,keep=0.5"))
    assert cache_lengths(got.cache) == [L + 3, L + 3, L - V + V // 2 + 3, L - V + V // 2 + 3]


def test_schedules():
    assert PRUNERS.build("pdrop").schedule(32) == {8: 0.5, 16: 0.25, 24: 0.125}
    curve = sigmoid_keep(28, mid=0.5, slope=10, floor=0.1)
    assert curve[0] == 1.0 and all(b <= a for a, b in zip(curve, curve[1:])) and curve[-1] > 0.1
    sched = PRUNERS.build("schedule:mid=0.4,slope=8").schedule(28)
    assert list(sched) == sorted(sched) and all(0 <= v < 1 for v in sched.values())
    assert PRUNERS.build("schedule:keep=1/1/0.5").schedule(4) == {2: 0.5}


def test_keep_top_visual_is_exact():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.8, 0.2]])
    visual = torch.tensor([[False, True, True, True, True, False]])
    assert keep_top_visual(scores, visual, 2).tolist() == [[0, 2, 4, 5]]
    assert keep_top_visual(scores, visual, 0).tolist() == [[0, 5]]


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 40), st.data())
def test_keep_top_visual_properties(batch, n, data):
    n_vis = data.draw(st.integers(0, n))
    count = data.draw(st.integers(0, n_vis))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    scores = torch.rand(batch, n, generator=g)
    visual = torch.zeros(batch, n, dtype=torch.bool)
    for b in range(batch):
        visual[b, torch.randperm(n, generator=g)[:n_vis]] = True
    keep = keep_top_visual(scores, visual, count)
    assert keep.shape == (batch, n - n_vis + count)
    for b in range(batch):
        kept = set(keep[b].tolist())
        assert keep[b].tolist() == sorted(kept)  # unique and sorted
        assert set((~visual[b]).nonzero().flatten().tolist()) <= kept  # every text row stays
        vis_kept = [i for i in kept if visual[b, i]]
        dropped = [i for i in range(n) if visual[b, i] and i not in kept]
        if vis_kept and dropped:
            assert min(scores[b, vis_kept]) >= max(scores[b, dropped])  # the kept ones are the top ones


def test_a_layout_without_members_reports_the_vanilla_cache():
    from contextlib import ExitStack

    from transformers import DynamicCache

    from test_prune_press_kit import fresh
    from vidsift.pipeline.hooks import CacheLayout

    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), fresh(inputs())
    x.kwargs["past_key_values"] = cache = DynamicCache(config=ad.model.config.get_text_config())
    before = count_hooks(ad.model)
    with ExitStack() as st:
        stats = st.enter_context(CacheLayout(ad, x)).observe()
        ad.generate(x, max_new_tokens=3, min_new_tokens=3)
    assert count_hooks(ad.model) == before
    held = sum(t.numel() * t.element_size() for lay in cache.layers for t in (lay.keys, lay.values))
    assert stats["kv_bytes"] == held and stats["kv_len_per_layer"] == [x.prompt_len + 2] * 4
    assert stats["prefill_forward_s"] > 0 and stats["decode_steps"] == 2 and stats["prefill_flops"] > 0


# --- FiCoCo-L (Han et al., arXiv:2411.17686): filter, correlate, compress inside the LLM -----------


def _layer_inputs(ad, layer: int) -> list[torch.Tensor]:
    """Every hidden state layer ``layer``'s input_layernorm sees, in call order (a pruning stage
    norms the incoming rows first, then the layer norms what it actually runs on)."""
    seen: list[torch.Tensor] = []
    handle = ad.decoder_layers[layer].input_layernorm.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone()))
    return seen, handle


def test_ficoco_l_keep_one_is_identity_and_counts_follow_keep():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x)
    got = run(ad, x, PRUNERS.build_many("ficoco_l:k=1,keep=1.0"))
    assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits)
    L, V = x.prompt_len, int(x.visual_mask.sum())
    for keep in (0.5, 0.2, 0.0):
        got = run(ad, x, PRUNERS.build_many(f"ficoco_l:k=1,keep={keep}"))
        want = L - V + round(keep * V)
        assert got.stats[0]["prefill_rows_per_layer"] == [L, want, want, want]  # never above the budget
        assert count_hooks(ad.model) == 0


@pytest.mark.parametrize("arch", ["tiny-qwen2.5-vl", "tiny-llava-onevision"])
def test_ficoco_l_kept_rows_are_the_size_weighted_scatter_of_the_dropped_ones(arch):
    """The defining step: each dropped visual row is split over its top-k kept rows with weights
    summing to one, and each kept row enters layer k as (h_t + sum_d w_dt h_d) / (1 + sum_d w_dt)."""
    ad, x = adapter("sdpa", arch), inputs(arch=arch)
    member = PRUNERS.build("ficoco_l:k=2,keep=0.25,topk=3,rel=0")
    seen, handle = _layer_inputs(ad, 2)
    try:
        with torch.no_grad():
            run(ad, x, [member], max_new_tokens=1)
    finally:
        handle.remove()
    raw, merged = seen[0][0], seen[1][0]  # (n, D) rows before the stage, (m, D) rows the layer runs on
    plan = member.last[2]
    vis, keep, drop, targets, weights = (plan[k] for k in ("vis", "keep", "drop", "targets", "weights"))
    V = vis.numel()
    assert keep.numel() == round(0.25 * V) and drop.numel() == V - keep.numel()
    torch.testing.assert_close(weights.sum(1), torch.ones(drop.numel()))
    assert bool((weights > 0).any(1).all()) and (weights > 0).sum(1).max() > 1  # one-to-many
    acc = raw[vis[keep]].clone()
    mass = torch.ones(keep.numel())
    for i, d in enumerate(drop.tolist()):
        for t, w in zip(targets[i].tolist(), weights[i].tolist()):
            acc[t] += w * raw[vis[d]]
            mass[t] += w
    is_vis = x.visual_mask[0]
    kept_rows = torch.nonzero(~is_vis).flatten().tolist() + vis[keep].tolist()
    kept_rows.sort()
    assert merged.shape[0] == len(kept_rows)
    text_out = [i for i, r in enumerate(kept_rows) if not is_vis[r]]
    vis_out = [i for i, r in enumerate(kept_rows) if is_vis[r]]
    assert torch.equal(merged[text_out], raw[[r for r in kept_rows if not is_vis[r]]])  # text rows untouched
    torch.testing.assert_close(merged[vis_out], acc / mass[:, None], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plan["sizes"], mass)
    assert float(plan["sizes"].sum()) == pytest.approx(V)
    # the scatter preserves the visual rows' total (size-weighted) hidden state
    torch.testing.assert_close((merged[vis_out] * mass[:, None]).sum(0), raw[vis].sum(0), rtol=1e-4, atol=1e-4)


def test_ficoco_l_filter_follows_the_question():
    """Text-to-visual attention is part of the filter: with lam=0 (relevance only) two questions
    keep different visual tokens; with lam=1 (redundancy only, visual queries, which precede the
    question under the causal mask) the kept set does not depend on the question."""
    ad = adapter("sdpa", "tiny-qwen2.5-vl")
    kept = {}
    for lam in (0.0, 1.0):
        for q in ("What happens in the video?", "Count the red squares near the left edge please"):
            member = PRUNERS.build(f"ficoco_l:k=1,keep=0.3,lam={lam}")
            run(ad, inputs(q), [member], max_new_tokens=1)
            kept[lam, q] = member.last[1]["keep"].tolist()
    a, b = kept[0.0, "What happens in the video?"], kept[0.0, "Count the red squares near the left edge please"]
    assert a != b
    assert kept[1.0, "What happens in the video?"] == kept[1.0, "Count the red squares near the left edge please"]
