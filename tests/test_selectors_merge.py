"""Token mergers and ``reduce_tokens``: exact counts, preserved size and size-weighted sums,
order and coords of representatives, identity when nothing needs reducing, temporal redundancy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from vidsift.errors import ConfigError
from vidsift.types import VisualTokens
from vidsift.selectors import MERGERS, reduce_tokens

SPATIAL = [n for n in MERGERS.names() if MERGERS.get(n).kind == "spatial"]  # every registered spatial merger


def make_tokens(grids: list[tuple[int, int]], *, d: int = 16, seed: int = 0, static: bool = False,
                saliency: bool = False, dtype=torch.float32) -> VisualTokens:
    g = torch.Generator().manual_seed(seed)
    embeds, coords, sizes, sal = [], [], [], []
    base = None
    for t, (h, w) in enumerate(grids):
        hh, ww = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        c = torch.stack([torch.full_like(hh, t), hh, ww], -1).reshape(-1, 3)  # (T, 3)
        # smooth-ish content: a few patterns plus noise, so merges have real structure
        e = torch.randn(h * w, d, generator=g) * 0.3 + torch.sin(c[:, 1:2] * 0.7 + torch.arange(d) * 0.3)
        if static:
            base = e if base is None or base.shape != e.shape else base
            e = base.clone()
        embeds.append(e.to(dtype))
        coords.append(c)
        sizes.append(torch.ones(h * w))
        sal.append(torch.rand(h * w, generator=g))
    return VisualTokens(embeds=embeds, coords=coords, size=sizes, grid_thw=torch.tensor([[1, h, w] for h, w in grids]),
                        pts_seconds=np.arange(len(grids), dtype=np.float64), index=np.arange(len(grids)),
                        saliency=sal if saliency else None)


@pytest.mark.parametrize("spec", SPATIAL)
@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), frac=st.floats(0.01, 1.0), seed=st.integers(0, 999),
       sal=st.booleans())
def test_spatial_merge_invariants(spec, h, w, frac, seed, sal):
    tok = make_tokens([(h, w)], seed=seed, saliency=sal)
    x, size, coords = tok.embeds[0], torch.rand(h * w) + 0.5, tok.coords[0]
    t = h * w
    target = max(1, int(round(frac * t)))
    red = MERGERS.build(spec).reduce(x, size, target, coords=coords, saliency=tok.saliency[0] if sal else None)
    assert red.embeds.shape == (target, x.shape[1]) and red.size.shape == (target,) and red.keep.shape == (target,)
    assert torch.all(red.keep[1:] > red.keep[:-1])  # survivors in original order
    assert red.source.shape == (t,) and int(red.source.min()) >= 0 and int(red.source.max()) < target
    assert torch.equal(red.source[red.keep], torch.arange(target))  # representatives stand for themselves
    torch.testing.assert_close(red.size.sum(), size.sum())  # total size preserved
    # size-weighted means: sum(size * embed) is invariant under merging
    torch.testing.assert_close((red.size[:, None] * red.embeds).sum(0), (size[:, None] * x).sum(0), rtol=1e-4, atol=1e-4)
    # each output's size is the size of the inputs it absorbed (fractions of them for one-to-many merges)
    if red.share is None:
        torch.testing.assert_close(torch.zeros(target).index_add_(0, red.source, size), red.size)
    else:
        assert red.share.shape == (t, target) and bool((red.share >= 0).all())
        torch.testing.assert_close(red.share.sum(1), torch.ones(t))
        torch.testing.assert_close(red.share.T @ size.float(), red.size.float())
        assert torch.equal(red.source, red.share.argmax(1))
    again = MERGERS.build(spec).reduce(x, size, target, coords=coords, saliency=tok.saliency[0] if sal else None)
    assert torch.equal(red.keep, again.keep) and torch.equal(red.embeds, again.embeds)


def test_tome_merges_duplicates_first():
    x = torch.eye(4).repeat_interleave(2, 0)  # 8 tokens: 4 distinct, each twice (adjacent pairs)
    red = MERGERS.build("tome").reduce(x, torch.ones(8), 4)
    assert red.size.tolist() == [2.0, 2.0, 2.0, 2.0]
    torch.testing.assert_close(red.embeds, torch.eye(4))


def test_adjacent_only_merges_neighbours():
    tok = make_tokens([(4, 4)], seed=3)
    red = MERGERS.build("adjacent").reduce(tok.embeds[0], tok.size[0], 14, coords=tok.coords[0])
    c = tok.coords[0]
    for out in range(14):
        members = (red.source == out).nonzero().flatten()
        if len(members) == 2:
            a, b = c[members[0]], c[members[1]]
            assert int((a - b).abs().sum()) == 1  # 4-neighbours in the grid


def test_saliency_keeps_most_salient_and_drop_mode():
    tok = make_tokens([(3, 3)], saliency=True, seed=1)
    sal = tok.saliency[0]
    red = MERGERS.build("saliency:merge=false").reduce(tok.embeds[0], tok.size[0], 3, saliency=sal)
    assert set(red.keep.tolist()) == set(torch.argsort(-sal)[:3].tolist())
    assert torch.equal(red.embeds, tok.embeds[0][red.keep]) and float(red.size.sum()) == 3.0


@settings(max_examples=12, deadline=None)
@given(grids=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=4),
       fracs=st.lists(st.floats(0.01, 1.5), min_size=4, max_size=4), merger=st.sampled_from(SPATIAL),
       temporal=st.sampled_from([None, "temporal", "temporal:threshold=0.5,mode=drop"]))
def test_reduce_tokens_counts_and_coords(grids, fracs, merger, temporal):
    tok = make_tokens(grids, seed=len(grids))
    counts = tok.tokens_per_group
    targets = [max(1, int(f * c)) for f, c in zip(fracs, counts)]
    out = reduce_tokens(tok, targets, merger=merger, temporal=temporal)
    for g, (t, c) in enumerate(zip(targets, counts)):
        n = out.tokens_per_group[g]
        assert n <= min(t, c) if temporal else n == min(t, c)
        assert n >= 1
        # every kept token keeps the coords of a token of the same group, in original order
        assert torch.all(out.coords[g][:, 0] == g)
        key = out.coords[g][:, 1] * 100 + out.coords[g][:, 2]
        assert torch.all(key[1:] > key[:-1])
    if temporal is None or "drop" not in temporal:
        torch.testing.assert_close(sum(s.sum() for s in out.size), sum(s.sum() for s in tok.size))


@pytest.mark.parametrize("merger", SPATIAL)
def test_reduce_tokens_identity_when_counts_match(merger):
    tok = make_tokens([(4, 5), (4, 5), (2, 3)], dtype=torch.bfloat16, saliency=True)
    assert reduce_tokens(tok, tok.tokens_per_group, merger=merger) is tok
    assert reduce_tokens(tok, [100, 100, 100], merger=merger) is tok
    out = reduce_tokens(tok, [20, 5, 6], merger=merger)  # only group 1 changes
    for g in (0, 2):
        assert torch.equal(out.embeds[g], tok.embeds[g]) and torch.equal(out.coords[g], tok.coords[g])
        assert torch.equal(out.size[g], tok.size[g]) and torch.equal(out.saliency[g], tok.saliency[g])
    assert out.embeds[1].dtype == torch.bfloat16 and out.tokens_per_group == [20, 5, 6]


def test_temporal_merges_static_positions():
    tok = make_tokens([(3, 4)] * 4, static=True)
    out = reduce_tokens(tok, tok.tokens_per_group, temporal="temporal:threshold=0.9")
    assert out.tokens_per_group == [12, 1, 1, 1]  # static: later groups keep only min_keep
    assert float(out.size[0].sum()) == 12 * 4 - 3  # their tokens folded into group 0
    torch.testing.assert_close(out.embeds[0], tok.embeds[0])  # identical content: means unchanged
    dropped = MERGERS.build("temporal:mode=drop,min_keep=2").apply(tok)
    assert dropped.tokens_per_group == [12, 2, 2, 2] and float(sum(s.sum() for s in dropped.size)) == 18
    moving = make_tokens([(3, 4)] * 3, seed=5)
    assert MERGERS.build("temporal:threshold=0.999").apply(moving) is moving


def test_reduce_tokens_bad_input():
    tok = make_tokens([(2, 2), (2, 2)])
    with pytest.raises(ValueError, match="entries"):
        reduce_tokens(tok, [4])
    with pytest.raises(ValueError, match=">= 1"):
        reduce_tokens(tok, [0, 4])
    with pytest.raises(ConfigError, match="not a spatial merger"):
        reduce_tokens(tok, [2, 2], merger="temporal")
    with pytest.raises(ConfigError, match="not a temporal merger"):
        reduce_tokens(tok, [2, 2], temporal="tome")
    with pytest.raises(ConfigError, match="unknown merger"):
        reduce_tokens(tok, [2, 2], merger="bogus")
    with pytest.raises(ConfigError, match="mode"):
        MERGERS.build("temporal:mode=fold")


# --- FiCoCo-V (Han et al., arXiv:2411.17686): filter, correlate, compress -------------------------


def test_ficoco_scatter_weights_sum_to_one_per_dropped_token_and_reach_several_targets():
    from vidsift.selectors import ficoco_steps
    from vidsift.selectors.merge_ficoco import FiCoCoV

    tok = make_tokens([(6, 6)], seed=5, d=32)
    x, coords = tok.embeds[0], tok.coords[0]
    m = FiCoCoV(topk=3, rel=0.0)
    keep, drop = ficoco_steps.drop_by_score(m.redundancy(x, coords, None), 20)
    targets, weights = m.correlate(x, keep, drop)
    assert targets.shape == weights.shape == (20, 3)
    torch.testing.assert_close(weights.sum(1), torch.ones(20))
    assert bool((weights > 0).all()) and int(targets.max()) < keep.numel()
    # one-to-many: the dropped tokens really spread over several kept tokens
    assert all(len(set(row.tolist())) == 3 for row in targets)
    # the weights are the reduction's shares: each dropped row of ``share`` is that scatter
    red = m.reduce(x, torch.ones(36), 16, coords=coords)
    assert torch.equal(red.keep, keep)
    for i, d in enumerate(drop.tolist()):
        want = torch.zeros(16).index_put_((targets[i],), weights[i], accumulate=True)
        torch.testing.assert_close(red.share[d], want)
    # the weighted scatter, written out: target = (x_t + sum_d w_dt x_d) / (1 + sum_d w_dt)
    acc = x[keep].clone()
    mass = torch.ones(16)
    for i, d in enumerate(drop.tolist()):
        for tgt, w in zip(targets[i].tolist(), weights[i].tolist()):
            acc[tgt] += w * x[d]
            mass[tgt] += w
    torch.testing.assert_close(red.embeds, acc / mass[:, None], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(red.size, mass)


@pytest.mark.parametrize("copies", [2, 3, 5])
def test_ficoco_a_token_duplicated_k_times_becomes_one_token_of_size_k(copies):
    g = torch.Generator().manual_seed(copies)
    distinct = torch.randn(12, 64, generator=g)
    x = torch.cat([distinct, distinct[4:5].expand(copies - 1, 64)])  # token 4 appears ``copies`` times
    t = x.shape[0]
    hh, ww = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    coords = torch.stack([torch.zeros(16, dtype=torch.long), hh.flatten(), ww.flatten()], 1)[:t]
    red = MERGERS.build("ficoco_v").reduce(x, torch.ones(t), 12, coords=coords)
    # exactly one of the copies survives (the local penalty decides which), standing for all of them
    survivor = [i for i in red.keep.tolist() if i == 4 or i >= 12]
    assert len(survivor) == 1 and set(red.keep.tolist()) - set(survivor) == set(range(12)) - {4}
    row = red.keep.tolist().index(survivor[0])
    assert red.size[row] == copies and red.size.sum() == t and sorted(red.size.tolist())[:-1] == [1.0] * 11
    torch.testing.assert_close(red.embeds[row], distinct[4])
    others = [i for i in range(12) if i != row]
    torch.testing.assert_close(red.embeds[others], x[red.keep[others]])  # the rest untouched
    # with saliency and sizes the copies still collapse (sizes add up)
    size = torch.arange(1.0, t + 1)
    red = MERGERS.build("ficoco_v").reduce(x, size, 12, coords=coords, saliency=torch.full((t,), 0.1))
    assert sorted(red.size.tolist())[-1] == pytest.approx(float(size[4] + size[12:].sum()))


def test_ficoco_budget_is_never_exceeded_and_keep_all_is_identity():
    tok = make_tokens([(5, 7)], seed=2, saliency=True)
    x, size, coords, sal = tok.embeds[0], tok.size[0], tok.coords[0], tok.saliency[0]
    merger = MERGERS.build("ficoco_v:topk=4")
    for target in (1, 2, 9, 34):
        red = merger.reduce(x, size, target, coords=coords, saliency=sal)
        assert red.embeds.shape[0] == red.keep.numel() == target
    for target in (35, 100):
        red = merger.reduce(x, size, target, coords=coords, saliency=sal)
        assert torch.equal(red.embeds, x) and torch.equal(red.size, size) and red.share is None
    assert reduce_tokens(tok, [35], merger="ficoco_v") is tok


def test_ficoco_filter_drops_redundant_and_keeps_salient_tokens():
    from vidsift.selectors.merge_ficoco import FiCoCoV

    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 32, generator=g)
    x[8:] = x[0] + 0.05 * torch.randn(8, 32, generator=g)  # 9 near-copies of one token
    from vidsift.selectors.merge_ficoco import p2p_redundancy

    copies = [0] + list(range(8, 16))
    star = copies[int(p2p_redundancy(x)[copies].argmax())]  # the most redundant copy ...
    sal = torch.zeros(16)
    sal[star] = 1.0  # ... is the one the tower attends to
    red = FiCoCoV(lam=0.9, window=1).reduce(x, torch.ones(16), 8, saliency=sal)
    assert red.keep.tolist() == sorted(list(range(1, 8)) + [star])  # the distinct tokens and the salient copy
    assert float(red.size[red.keep.tolist().index(star)]) == pytest.approx(9.0, abs=1e-4)  # the copies went into it
    red = FiCoCoV(lam=0.0, window=1).reduce(x, torch.ones(16), 8, saliency=sal)
    kept_copies = [i for i in red.keep.tolist() if i in copies]
    assert len(kept_copies) == 1 and kept_copies != [star]  # saliency ignored: another copy represents them
    assert set(red.keep.tolist()) - set(kept_copies) == set(range(1, 8))


def test_ficoco_local_penalty_spreads_the_first_drops_over_the_grid():
    from vidsift.selectors.ficoco_steps import local_penalty

    coords = torch.tensor([[0, h, w] for h in range(4) for w in range(4)])
    score = torch.zeros(16)
    score[[0, 1, 4, 5]] = torch.tensor([0.50, 0.45, 0.44, 0.43])  # one 2x2 window holds the top four
    score[[2, 10]] = torch.tensor([0.3, 0.25])
    out = local_penalty(score, coords)
    top = torch.argsort(-out, stable=True)[:3].tolist()
    assert top == [0, 2, 10]  # one per window first
    assert torch.equal(local_penalty(score, None), score)


def test_reduction_checks_its_map_and_merges_any_per_token_tensor():
    from vidsift.selectors import Reduction, merge_groups

    x, size = torch.arange(8.0).reshape(4, 2), torch.tensor([1.0, 3.0, 1.0, 1.0])
    red = Reduction.of(x, size, keep=[0, 2], source=[0, 0, 1, -1])  # 1 folds into 0, 3 is dropped
    torch.testing.assert_close(red.embeds, torch.tensor([[1.5, 2.5], [4.0, 5.0]]))  # (1*[0,1] + 3*[2,3]) / 4
    assert red.size.tolist() == [4.0, 1.0] and red.merge(torch.tensor([2, 6, 1, 9])).tolist() == [5, 1]
    assert red.unmerge(torch.tensor([7.0, 8.0])).tolist() == [7.0, 7.0, 8.0, 0.0]
    with pytest.raises(ValueError, match="stand for itself"):
        Reduction(keep=[0, 2], source=[0, 0, 0, 1], size_in=size)  # output 1's representative went elsewhere
    with pytest.raises(ValueError, match="stand for itself"):
        Reduction(keep=[0, 2], source=[0, 2, 1, 1], size_in=size)  # no output 2
    with pytest.raises(ValueError, match="rows for 4 inputs"):
        red.merge(torch.zeros(3))
    tok = make_tokens([(2, 2), (2, 2)])
    with pytest.raises(ValueError, match="reductions for 2 groups"):
        merge_groups(tok, [red])
