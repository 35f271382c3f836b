"""MustDrop's vision stage (Liu et al., arXiv:2411.10803) as the ``mustdrop`` merger: the key-token
set is never merged, the similarity threshold merges by content, and the budget is never exceeded."""

from __future__ import annotations

import math
from collections import deque

import pytest
import torch

from vidsift.errors import ConfigError
from vidsift.selectors import MERGERS


def _grid(h: int, w: int) -> torch.Tensor:
    hh, ww = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([torch.zeros_like(hh), hh, ww], -1).reshape(-1, 3)  # (T, 3)


def _components(labels: list[int], coords: torch.Tensor, skip: set[int]) -> list[set[int]]:
    """Brute force: connected groups of equal-label 4-neighbours, ``skip`` tokens left out."""
    where = {(int(h), int(w)): i for i, (_, h, w) in enumerate(coords.tolist())}
    seen, out = set(skip), []
    for start in range(len(labels)):
        if start in seen:
            continue
        comp, todo = set(), deque([start])
        seen.add(start)
        while todo:
            i = todo.popleft()
            comp.add(i)
            _, h, w = coords[i].tolist()
            for dh, dw in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                j = where.get((h + dh, w + dw))
                if j is not None and j not in seen and labels[j] == labels[i]:
                    seen.add(j)
                    todo.append(j)
        out.append(comp)
    return out


def _assert_untouched(red, x: torch.Tensor, size: torch.Tensor, keys: list[int]) -> None:
    """Each key token is a representative that absorbed nothing: its own embedding and size."""
    for i in keys:
        assert i in red.keep.tolist(), f"key token {i} was merged away"
        row = red.keep.tolist().index(i)
        assert (red.source == row).nonzero().flatten().tolist() == [i], f"key token {i} absorbed others"
        torch.testing.assert_close(red.embeds[row], x[i])
        torch.testing.assert_close(red.size[row], size[i])


@pytest.mark.parametrize("threshold", [None, 0.8])
def test_key_tokens_survive_unmerged_even_when_everything_is_alike(threshold):
    """Near-identical tokens: any of them would merge first, so only the key set's protection keeps
    the ceil(key * T) most salient ones (the oracle: argsort of the saliency) intact."""
    h, w, key, target = 6, 6, 0.2, 10
    g = torch.Generator().manual_seed(0)
    x = torch.ones(h * w, 8) + 0.01 * torch.randn(h * w, 8, generator=g)
    size = torch.ones(h * w)
    sal = torch.rand(h * w, generator=g)
    keys = sorted(sal.argsort(descending=True)[:math.ceil(key * h * w)].tolist())  # 8 tokens
    red = MERGERS.build(f"mustdrop:key={key},threshold={threshold}").reduce(x, size, target, coords=_grid(h, w), saliency=sal)
    _assert_untouched(red, x, size, keys)
    assert red.keep.numel() == target if threshold is None else red.keep.numel() <= target
    torch.testing.assert_close(red.size.sum(), size.sum())
    plain = MERGERS.build("adjacent").reduce(x, size, target, coords=_grid(h, w))  # no key set: they merge
    assert any(int((plain.source == plain.source[i]).sum()) > 1 for i in keys)


def test_key_set_follows_the_saliency_and_without_it_distinctiveness():
    h, w = 5, 5
    g = torch.Generator().manual_seed(1)
    x = torch.randn(h * w, 8, generator=g)
    size = torch.ones(h * w)
    merger = MERGERS.build("mustdrop:key=0.2")
    sal = -torch.arange(h * w, dtype=torch.float32)  # token 0 most salient, then 1, ...
    _assert_untouched(merger.reduce(x, size, 8, coords=_grid(h, w), saliency=sal), x, size, [0, 1, 2, 3, 4])
    xn = torch.nn.functional.normalize(x, dim=-1)
    distinct = 1 - (xn @ xn.T - torch.eye(h * w)).sum(1) / (h * w - 1)
    keys = distinct.argsort(descending=True)[:5].tolist()
    _assert_untouched(merger.reduce(x, size, 8, coords=_grid(h, w)), x, size, keys)


def test_threshold_merges_each_flat_region_into_one_token_below_the_target():
    """Piecewise-constant frame, orthogonal values per label: with the threshold, every connected
    same-label region (brute-force flood fill) becomes exactly one token, fewer than the target;
    key tokens stay out. Without it, exactly the target."""
    h, w = 8, 8
    coords = _grid(h, w)
    labels = [(0 if c < 3 else 1 if r < 4 else 2) if (r, c) not in ((6, 1), (1, 6)) else 3
              for r in range(h) for c in range(w)]  # three blocks and two isolated specks of label 3
    x = torch.eye(8)[labels]
    size = torch.ones(h * w)
    sal = torch.zeros(h * w)
    keys = [9, 50]
    sal[keys] = 1.0
    key = len(keys) / (h * w)
    red = MERGERS.build(f"mustdrop:key={key},threshold=0.9").reduce(x, size, 40, coords=coords, saliency=sal)
    comps = _components(labels, coords, set(keys))
    assert len(comps) == 5
    assert red.keep.numel() == len(comps) + len(keys) < 40
    _assert_untouched(red, x, size, keys)
    for comp in comps:  # one output token per region: its members all map to it, and nothing else does
        rows = {int(red.source[i]) for i in comp}
        assert len(rows) == 1 and int((red.source == rows.pop()).sum()) == len(comp)
    exact = MERGERS.build(f"mustdrop:key={key}").reduce(x, size, 40, coords=coords, saliency=sal)
    assert exact.keep.numel() == 40


def test_budget_is_honoured_when_the_threshold_would_keep_more():
    """Random tokens: no pair reaches 0.99, so the threshold alone would merge nothing; the frame still
    leaves with exactly its target, key set intact. A key share larger than the target is capped."""
    h, w = 6, 7
    g = torch.Generator().manual_seed(2)
    x = torch.randn(h * w, 16, generator=g)
    size = torch.rand(h * w, generator=g) + 0.5
    sal = torch.rand(h * w, generator=g)
    red = MERGERS.build("mustdrop:key=0.1,threshold=0.99").reduce(x, size, 9, coords=_grid(h, w), saliency=sal)
    assert red.keep.numel() == 9
    _assert_untouched(red, x, size, sal.argsort(descending=True)[:math.ceil(0.1 * h * w)].tolist())
    for target in (1, 3):
        red = MERGERS.build("mustdrop:key=1.0,threshold=0.5").reduce(x, size, target, coords=_grid(h, w), saliency=sal)
        assert red.keep.numel() == target
        _assert_untouched(red, x, size, sal.argsort(descending=True)[:target - 1].tolist())
        torch.testing.assert_close(red.size.sum(), size.sum())


def test_keep_all_is_the_identity():
    x, size = torch.randn(12, 4), torch.ones(12)
    for target in (12, 50):
        red = MERGERS.build("mustdrop:key=0.5,threshold=0.0").reduce(x, size, target, coords=_grid(3, 4))
        assert torch.equal(red.keep, torch.arange(12)) and red.embeds is x and red.size is size


@pytest.mark.parametrize("spec, message", [
    ("mustdrop:key=1.5", "key must be a number in [0, 1]"),
    ("mustdrop:threshold=2", "threshold must be a number in [-1, 1]"),
])
def test_bad_specs_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        MERGERS.build(spec)
    assert message in str(err.value) and "\n" not in str(err.value)
