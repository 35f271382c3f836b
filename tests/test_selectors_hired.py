"""``hired``: HiRED's defining property — the budget is split over spatial partitions in proportion
to the attention each receives (capped by its size), then each partition keeps its own most
attended tokens. Expected counts are worked out by hand, not with the code's helpers."""

from __future__ import annotations

import torch

from vidsift.selectors import MERGERS


def grid_tokens(h: int, w: int, d: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hh, ww = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coords = torch.stack([torch.zeros_like(hh), hh, ww], -1).reshape(-1, 3)
    embeds = torch.randn(h * w, d, generator=torch.Generator().manual_seed(0))
    return embeds, torch.ones(h * w), coords


def tile_of(coords: torch.Tensor) -> torch.Tensor:  # 4x4 grid cut into 2x2 quadrants, by hand
    return (coords[:, 1] >= 2).long() * 2 + (coords[:, 2] >= 2).long()


def saliency_by_tile(coords: torch.Tensor, level: list[float]) -> torch.Tensor:
    """Each quadrant's tokens share its level, with a small distinct ramp so ranks are strict."""
    ramp = torch.arange(coords.shape[0], dtype=torch.float32) * 1e-3
    return torch.tensor(level)[tile_of(coords)] + ramp


def kept_per_tile(keep: torch.Tensor, coords: torch.Tensor) -> list[int]:
    return torch.bincount(tile_of(coords)[keep], minlength=4).tolist()


def test_budget_follows_partition_attention_not_global_rank():
    x, size, coords = grid_tokens(4, 4)
    sal = saliency_by_tile(coords, [1.0, 0.5, 0.25, 0.25])  # masses 4 : 2 : 1 : 1
    red = MERGERS.build("hired:grid=2,merge=false").reduce(x, size, 8, coords=coords, saliency=sal)
    assert kept_per_tile(red.keep, coords) == [4, 2, 1, 1]
    # one global top-8 would take quadrants 0 and 1 whole and nothing from 2 and 3
    plain = MERGERS.build("saliency:merge=false").reduce(x, size, 8, coords=coords, saliency=sal)
    assert kept_per_tile(plain.keep, coords) == [4, 4, 0, 0]


def test_a_full_partition_passes_its_excess_to_the_others():
    x, size, coords = grid_tokens(4, 4)
    sal = saliency_by_tile(coords, [100.0, 1.0, 1.0, 2.0])  # quadrant 0 capped at its 4 tokens
    red = MERGERS.build("hired:grid=2,merge=false").reduce(x, size, 8, coords=coords, saliency=sal)
    assert kept_per_tile(red.keep, coords) == [4, 1, 1, 2]


def test_each_partition_keeps_its_most_attended_tokens():
    x, size, coords = grid_tokens(4, 4)
    g = torch.Generator().manual_seed(3)
    sal = saliency_by_tile(coords, [1.0, 0.5, 0.25, 0.25]) + torch.rand(16, generator=g) * 0.1
    red = MERGERS.build("hired:grid=2,merge=false").reduce(x, size, 8, coords=coords, saliency=sal)
    tiles = tile_of(coords)
    for t, n in enumerate(kept_per_tile(red.keep, coords)):
        members = torch.nonzero(tiles == t).flatten()
        best = members[torch.argsort(-sal[members])[:n]]
        assert set(red.keep[tiles[red.keep] == t].tolist()) == set(best.tolist())


def test_one_partition_is_plain_attention_top_k():
    x, size, coords = grid_tokens(4, 4)
    sal = torch.rand(16, generator=torch.Generator().manual_seed(5))
    red = MERGERS.build("hired:grid=1").reduce(x, size, 5, coords=coords, saliency=sal)
    assert set(red.keep.tolist()) == set(torch.argsort(-sal)[:5].tolist())


def test_merge_folds_dropped_tokens_and_keeps_the_same_survivors():
    x, size, coords = grid_tokens(4, 4)
    sal = saliency_by_tile(coords, [1.0, 0.5, 0.25, 0.25])
    dropped = MERGERS.build("hired:merge=false").reduce(x, size, 8, coords=coords, saliency=sal)
    folded = MERGERS.build("hired").reduce(x, size, 8, coords=coords, saliency=sal)
    assert torch.equal(dropped.keep, folded.keep)
    assert float(folded.size.sum()) == 16.0 and float(dropped.size.sum()) == 8.0
