"""ToMe-shaped merges (Bolya et al., arXiv:2210.09461) on a tiny random Qwen3-VL: a merged token's
DeepStack rows and saliency are merged with the very weights of its embedding, and it keeps its
representative's coords.

The oracle is written out by brute force from which inputs went into each output: W[o, i] =
share(i -> o) * size_i / sum of what reached o. It is checked against the embeddings alone (per
frame, W is the one matrix with embeds_out = W @ embeds_in, found by least squares: D >= T) and then
used on every DeepStack level and the saliency.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsift.types import FrameBatch, VisualTokens
from vidsift.selectors import MERGERS, Reduction, reduce_tokens

from models import load_tiny_adapter

QUESTION = "What moves?"
SPATIAL = [n for n in MERGERS.names() if MERGERS.get(n).kind == "spatial"]


@pytest.fixture(scope="module")
def qwen3(tiny_checkpoint):
    return load_tiny_adapter(tiny_checkpoint("tiny-qwen3-vl"))


@pytest.fixture(scope="module")
def tokens(qwen3) -> VisualTokens:
    rng = np.random.default_rng(0)
    frames = FrameBatch(rng.integers(0, 256, (8, 128, 160, 3), dtype=np.uint8), np.arange(8) * 0.5, np.arange(8))
    tok = qwen3.encode(frames)  # 4 groups of 20 tokens, D = 64, 2 DeepStack levels, saliency
    assert tok.deepstack is not None and tok.saliency is not None and tok.tokens_per_group == [20] * 4
    return tok


def brute_force_mass(red: Reduction) -> torch.Tensor:
    """(T', T): the size each input hands to each output (all of it to the output it went into, or
    its fractions for one-to-many merges), written out one entry at a time."""
    m = torch.zeros(red.n_out, red.n_in, dtype=torch.float64)
    for i in range(red.n_in):
        for o in range(red.n_out):
            part = red.share[i, o] if red.share is not None else float(red.source[i] == o)
            m[o, i] = float(part) * float(red.size_in[i])
    return m


def flat(per_group: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(per_group).double()


def check_merged_alike(before: VisualTokens, after: VisualTokens, mass: torch.Tensor, keep: torch.Tensor) -> None:
    """Every per-token field of ``after`` is W = ``mass`` normalised by rows applied to ``before``
    (sizes: the masses summed; coords: the representative's)."""
    assert mass.shape == (after.n_tokens, before.n_tokens)
    torch.testing.assert_close(flat(after.size), mass.sum(1))
    w = mass / mass.sum(1, keepdim=True)  # output o = size-weighted mean of what reached it
    x_in, x_out = flat(before.embeds), flat(after.embeds)
    torch.testing.assert_close(x_out, w @ x_in, rtol=1e-5, atol=1e-5)
    for level in range(len(before.deepstack[0])):
        d_in = flat([d[level] for d in before.deepstack])
        d_out = flat([d[level] for d in after.deepstack])
        torch.testing.assert_close(d_out, w @ d_in, rtol=1e-5, atol=1e-5, msg=f"DeepStack level {level}")
    torch.testing.assert_close(flat(after.saliency), w @ flat(before.saliency), rtol=1e-5, atol=1e-6)
    assert torch.equal(torch.cat(after.coords), torch.cat(before.coords)[keep])


@pytest.mark.parametrize("merger", SPATIAL)
def test_deepstack_levels_are_merged_with_the_weights_of_the_embeds(tokens, merger, qwen3):
    targets = [7, 20, 11, 4]  # group 1 stays as it is
    out = reduce_tokens(tokens, targets, merger=merger)
    reductions = []
    for g, target in enumerate(targets):
        if target >= tokens.tokens_per_group[g]:
            reductions.append(Reduction.identity(tokens.embeds[g], tokens.size[g]))
        else:
            reductions.append(MERGERS.build(merger).reduce(tokens.embeds[g], tokens.size[g], target,
                                                           coords=tokens.coords[g], saliency=tokens.saliency[g]))
    mass = torch.block_diag(*[brute_force_mass(r) for r in reductions])
    assert int((mass > 0).sum(1).max()) > 1  # some outputs really merged several inputs
    offsets = np.cumsum([0] + tokens.tokens_per_group)
    keep = torch.cat([r.keep + int(o) for r, o in zip(reductions, offsets)])
    check_merged_alike(tokens, out, mass, keep)
    for g, red in enumerate(reductions):  # the embeddings alone determine W (T <= D, full rank): the oracle is their merge
        w = brute_force_mass(red)
        got = out.embeds[g].double() @ torch.linalg.pinv(tokens.embeds[g].double())
        torch.testing.assert_close(got, w / w.sum(1, keepdim=True), rtol=1e-4, atol=1e-4)
    # the adapter hands exactly these merged DeepStack rows to the LLM
    deep = qwen3.build_inputs(out, QUESTION).kwargs["mm_encoder_outputs"]["video"].deepstack_features
    for level, d in enumerate(deep):
        assert torch.equal(d[0], torch.cat([g[level] for g in out.deepstack]))


def test_temporal_merge_folds_deepstack_rows_across_groups(tokens):
    static = VisualTokens(  # groups 1..3 repeat group 0 (scaled: cosine 1): the temporal merger folds them back
        embeds=[tokens.embeds[0] * (1.0 + 0.5 * g) for g in range(4)],
        coords=tokens.coords, size=tokens.size, grid_thw=tokens.grid_thw, pts_seconds=tokens.pts_seconds,
        index=tokens.index, saliency=tokens.saliency, deepstack=tokens.deepstack)
    merger = MERGERS.build("temporal:threshold=0.99")
    red = merger.reduction(static)
    out = merger.apply(static)
    assert out.tokens_per_group[0] == 20 and sum(out.tokens_per_group[1:]) == 3  # min_keep per later group
    mass = brute_force_mass(red)
    assert int((mass > 0).sum(1).max()) == 4  # a group-0 token absorbed its three repeats
    check_merged_alike(static, out, mass, red.keep)


def test_merge_and_unmerge_as_in_tome(tokens):
    x, size = tokens.embeds[0], torch.arange(1.0, 21.0)
    for merger in SPATIAL:
        red = MERGERS.build(merger).reduce(x, size, 6, coords=tokens.coords[0], saliency=tokens.saliency[0])
        y = torch.randn(red.n_out, 5, dtype=torch.float64)
        assert red.merge(y.new_zeros(20, 5)).shape == (6, 5) and red.unmerge(y).shape == (20, 5)
        if red.share is None:
            torch.testing.assert_close(red.merge(red.unmerge(y)), y)  # every output averages copies of itself
        torch.testing.assert_close(red.merge(x), red.embeds)
        assert torch.equal(red.unmerge(y)[red.keep], y)  # representatives get their own output back
