"""Streaming memory: temporal dedup (DTD), budgeted eviction (TaR + recency + relevance) and the
invariants an incremental KV cache relies on (exact evicted indices, bounded size)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidsift.errors import ConfigError
from vidsift.pipeline.types import VisualTokens
from vidsift.stream.dtd import TemporalDedup, same_cell_match
from vidsift.stream.evict import EvictionPolicy, temporal_redundancy
from vidsift.stream.memory import StreamMemory


def group(embeds: torch.Tensor, h: int, w: int, t: float = 0.0) -> VisualTokens:
    hh, ww = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coords = torch.stack([torch.zeros(h * w, dtype=torch.long), hh.flatten(), ww.flatten()], 1)
    return VisualTokens(embeds=[embeds], coords=[coords], size=[torch.ones(h * w)], grid_thw=torch.tensor([[1, h, w]]),
                        pts_seconds=np.array([t]), index=np.array([0]))


def test_same_cell_match_pairs_by_grid_cell_not_order():
    a = torch.eye(4)
    coords_a = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]])
    perm = torch.tensor([3, 1, 0])  # b lacks cell (1, 0) and is shuffled
    sim, idx = same_cell_match(a, coords_a, a[perm], coords_a[perm])
    assert idx.tolist() == [2, 1, -1, 0]
    assert torch.allclose(sim, torch.tensor([1.0, 1.0, 0.0, 1.0]))


def test_dedup_drops_repeated_tokens_and_keeps_total_size():
    torch.manual_seed(0)
    mem = StreamMemory(budget=1000, dedup=TemporalDedup(threshold=0.9))
    base = torch.randn(12, 16)
    mem.push(group(base, 3, 4), t_s=0.0)
    changed = base.clone()
    changed[:5] = torch.randn(5, 16)  # 5 cells changed, 7 static
    entry, dropped = mem.push(group(changed, 3, 4), t_s=1.0)
    assert dropped == 7 and entry.n_tokens == 5
    assert entry.coords[:, 1:].tolist() == group(base, 3, 4).coords[0][:5, 1:].tolist()
    assert float(sum(e.size.sum() for e in mem.entries)) == 24.0  # every original token accounted for
    entry, dropped = mem.push(group(base, 3, 4), t_s=2.0)
    assert dropped == 0 or entry is not None


def test_static_scene_costs_almost_nothing():
    mem = StreamMemory(budget=1000)
    frame = torch.randn(16, 8)
    for t in range(50):
        mem.push(group(frame, 4, 4), t_s=float(t))
    assert mem.n_tokens == 16 and len(mem) == 1 and float(mem.entries[0].size.sum()) == 16 * 50


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="^budget: "):
        StreamMemory(budget=0)
    with pytest.raises(ConfigError):
        TemporalDedup(threshold=1.5)
    with pytest.raises(ConfigError):
        EvictionPolicy(recency=-1)


def test_temporal_redundancy_finds_the_repeated_neighbour():
    x = torch.randn(4, 8)
    coords = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]])
    y = torch.randn(4, 8)
    y[2] = x[2]
    red, partner = temporal_redundancy([x, y], [coords, coords])
    assert red[2] == pytest.approx(1.0) and partner[2] == 6 and partner[6] == 2
    assert red[0] < 0.99


def test_eviction_prefers_old_and_redundant_tokens_and_relevance_keeps_query_tokens():
    torch.manual_seed(0)
    policy = EvictionPolicy(novelty=1.0, recency=1.0, relevance=0.0, merge=False)
    mem = StreamMemory(budget=8, dedup=TemporalDedup(threshold=1.0), policy=policy)
    for t in range(4):
        mem.push(group(torch.randn(4, 32), 2, 2), t_s=float(t))
    evicted = mem.evict()
    assert evicted.tolist() == sorted(evicted.tolist()) and len(evicted) == 8 and mem.n_tokens == 8
    assert [e.t_s for e in mem.entries] == [2.0, 3.0]  # random tokens: the oldest go
    # with a standing query, a token that matches it survives although it is the oldest
    target = torch.randn(32)
    mem = StreamMemory(budget=8, dedup=TemporalDedup(threshold=1.0),
                       policy=EvictionPolicy(recency=0.2, relevance=5.0, merge=False))
    mem.query = target
    first = torch.randn(4, 32)
    first[1] = target * 3
    mem.push(group(first, 2, 2), t_s=0.0)
    for t in range(1, 4):
        mem.push(group(torch.randn(4, 32), 2, 2), t_s=float(t))
    mem.evict()
    assert mem.entries[0].t_s == 0.0
    assert any(torch.equal(row, first[1]) for row in mem.entries[0].embeds)


@settings(max_examples=15, deadline=None)
@given(budget=st.integers(1, 40), sizes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=25),
       static=st.floats(0.0, 1.0), merge=st.booleans())
def test_budget_is_never_exceeded_and_evicted_indices_are_exact(budget, sizes, static, merge):
    gen = torch.Generator().manual_seed(len(sizes) * 7 + budget)
    mem = StreamMemory(budget=budget, dedup=TemporalDedup(threshold=0.9), policy=EvictionPolicy(merge=merge))
    prev = None
    for t, (h, w) in enumerate(sizes):
        x = torch.randn(h * w, 8, generator=gen)
        if prev is not None and prev.shape == x.shape:
            keep_static = torch.rand(h * w, generator=gen) < static
            x[keep_static] = prev[keep_static]
        prev = x
        before = [tok for e in mem.entries for tok in e.embeds]
        entry, _ = mem.push(group(x, h, w), t_s=float(t))
        flat = [tok for e in mem.entries for tok in e.embeds]
        assert len(flat) == len(before) + (entry.n_tokens if entry else 0)
        evicted = mem.evict()
        assert mem.n_tokens <= budget
        assert evicted.unique().numel() == evicted.numel()
        survivors = [flat[i] for i in range(len(flat)) if i not in set(evicted.tolist())]
        now = [tok for e in mem.entries for tok in e.embeds]
        assert len(survivors) == len(now) and all(torch.equal(a, b) for a, b in zip(survivors, now))
        assert all(e.n_tokens > 0 for e in mem.entries)
        assert [e.t_s for e in mem.entries] == sorted(e.t_s for e in mem.entries)


def test_admit_is_atomic_and_reports_only_old_rows():
    torch.manual_seed(1)
    mem = StreamMemory(budget=10, dedup=TemporalDedup(threshold=1.0), policy=EvictionPolicy(novelty=0, recency=1))
    old_rows = []
    for t in range(6):
        before = [tok for e in mem.entries for tok in e.embeds]
        entry, evicted = mem.admit(group(torch.randn(4, 8), 2, 2), t_s=float(t))
        assert mem.n_tokens <= 10 and all(i < len(before) for i in evicted.tolist())
        survivors = [before[i] for i in range(len(before)) if i not in set(evicted.tolist())]
        now = [tok for e in mem.entries for tok in e.embeds]
        new = [] if entry is None else list(entry.embeds)
        assert len(now) == len(survivors) + len(new)  # a cache drops `evicted`, then appends the entry
        assert all(torch.equal(a, b) for a, b in zip(now, survivors + new))
        old_rows.append(len(evicted))
    assert sum(old_rows) > 0
