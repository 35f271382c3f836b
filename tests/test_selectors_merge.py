"""Token mergers and ``reduce_tokens``: exact counts, preserved size and size-weighted sums,
order and coords of representatives, identity when nothing needs reducing, temporal redundancy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from vidsift.errors import ConfigError
from vidsift.pipeline.types import VisualTokens
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
    # each output's size is the size of the inputs it absorbed
    torch.testing.assert_close(torch.zeros(target).index_add_(0, red.source, size), red.size)
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
