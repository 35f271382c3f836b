"""ZipVL (He et al., arXiv:2410.08584) adaptive keep ratio as the ``zipvl`` prefill pruner."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch

from test_prune_press_kit import adapter, cache_lengths, inputs, match_positions, prefill_cache, run
from vidsift.errors import ConfigError
from vidsift.pipeline.hooks import count_hooks
from vidsift.pipeline.prune import PRUNERS
from vidsift.pipeline.prune.zipvl import minimal_mass_count

K = 2


@contextlib.contextmanager
def _sharpened(s: float, *attns: str):
    """Scale layer K's queries by s in the given adapters (a softmax temperature 1/s; qwen2.5 has no
    q-norm to undo it); restored on exit."""
    projs = [adapter(a, "tiny-qwen2.5-vl").decoder_layers[K].self_attn.q_proj for a in attns]
    saved = [(p.weight.detach().clone(), p.bias.detach().clone()) for p in projs]
    try:
        with torch.no_grad():
            for p, (w, b) in zip(projs, saved):
                p.weight.copy_(w * s)
                p.bias.copy_(b * s)
        yield
    finally:
        with torch.no_grad():
            for p, (w, b) in zip(projs, saved):
                p.weight.copy_(w)
                p.bias.copy_(b)


def _oracle(x, tau: float, *, min_keep: float = 0.0, max_keep: float = 1.0):
    """Independent reference from the unpruned model's eager attention map of layer K: the text rows
    after the video, heads and rows averaged; brute force over sizes for the smallest top set whose
    share of the visual mass reaches tau. -> (kept original positions (L - V + c,), c, margin)."""
    ref_ad = adapter("eager", "tiny-qwen2.5-vl")
    with torch.no_grad():
        out = ref_ad.model(**inputs(attn="eager").kwargs, output_attentions=True)
    a = out.attentions[K][0].double().mean(0)  # (L, L)
    is_vis = x.visual_mask[0]
    vis = torch.nonzero(is_vis).flatten().tolist()
    text = [i for i in range(a.shape[0]) if i > max(vis) and not is_vis[i]]
    s = {j: float(a[text, j].mean()) for j in vis}
    total = sum(s.values())
    order = sorted(vis, key=lambda j: -s[j])
    c = next(n for n in range(len(vis) + 1) if sum(s[j] for j in order[:n]) >= tau * total)
    V = len(vis)
    c = max(round(min_keep * V), min(c, round(max_keep * V)))
    share = [sum(s[j] for j in order[:n]) / total for n in range(V + 1)]
    margin = min(abs(share[n] - tau) for n in range(V + 1))  # no share sits on the threshold
    kept = sorted([i for i in range(a.shape[0]) if not is_vis[i]] + order[:c])
    return torch.tensor(kept), c, margin


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("spec, sharpen", [({"tau": 0.6}, 1.0), ({"tau": 0.9}, 1.0), ({"tau": 0.9}, 100.0),
                                           ({"tau": 0.9, "max_keep": 0.5}, 1.0), ({"tau": 0.3, "min_keep": 0.5}, 1.0)])
def test_zipvl_keeps_the_minimal_set_reaching_tau_of_the_text_attention_mass(attn, spec, sharpen):
    """The tiny random model's attention is nearly flat, so a sharpened case (queries x100) makes
    the minimal count differ from the fixed ratio ceil(tau * V)."""
    with _sharpened(sharpen, "sdpa", "eager"):
        _check_against_oracle(attn, spec, sharpen)


def _check_against_oracle(attn, spec, sharpen):
    ad, x = adapter(attn, "tiny-qwen2.5-vl"), inputs(attn=attn)
    want, c, margin = _oracle(x, **spec)
    if sharpen != 1.0:
        assert c < math.ceil(spec["tau"] * int(x.visual_mask.sum())) - 1
    assert margin > 1e-5  # recomputed vs eager attention cannot flip the count
    V = int(x.visual_mask.sum())
    assert 0 < c < V
    opts = ",".join(f"{k}={v}" for k, v in spec.items())
    member = PRUNERS.build(f"zipvl:k={K},{opts}")
    full = prefill_cache(ad, x)
    pruned = prefill_cache(ad, x, [member])
    got = match_positions(pruned.layers[K].keys, full.layers[K].keys)  # (B, Hk, m)
    assert torch.equal(got[0, 0], want) and torch.equal(got[0, 1], want)
    assert member.last[K]["count"] == c
    assert torch.equal(pruned.layers[K - 1].keys, full.layers[K - 1].keys)  # layers before k untouched
    assert pruned.layers[3].keys.shape == pruned.layers[K].keys.shape
    r = run(ad, x, [PRUNERS.build(f"zipvl:k={K},{opts}")], max_new_tokens=2)
    L = x.prompt_len
    assert r.stats[0]["kept_visual_per_stage"] == {K: c}
    assert r.stats[0]["prefill_rows_per_layer"] == [L, L, L - V + c, L - V + c]


def test_zipvl_tau_one_keeps_everything_and_is_the_unpruned_model():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x)
    for spec in ("zipvl:k=2,tau=1.0", "zipvl:k=1,tau=1"):
        got = run(ad, x, PRUNERS.build_many(spec))
        assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits), spec
        assert cache_lengths(got.cache) == cache_lengths(ref.cache)
        assert got.stats[0]["kept_visual_per_stage"] == {int(spec[8]): int(x.visual_mask.sum())}
        assert count_hooks(ad.model) == 0


def test_zipvl_keeps_fewer_tokens_when_the_attention_is_peaked():
    """Adaptivity: the same tau keeps fewer tokens under sharper attention. Layer K's queries are
    scaled by s: s=0 is uniform attention, so exactly ceil(tau * V) tokens are needed; larger s
    concentrates the mass (the tiny random model's own attention is nearly flat, hence the large
    factors)."""
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    V, tau = int(x.visual_mask.sum()), 0.9
    counts = {}
    for s in (0.0, 100.0, 1000.0):
        with _sharpened(s, "sdpa"):
            member = PRUNERS.build(f"zipvl:k={K},tau={tau}")
            prefill_cache(ad, x, [member])
        counts[s] = member.last[K]["count"]
        assert counts[s] == minimal_mass_count(member.last[K]["scores"], tau)
    assert counts[0.0] == math.ceil(tau * V)
    assert counts[0.0] > counts[100.0] > counts[1000.0], counts


def test_minimal_mass_count():
    s = torch.tensor([0.125, 0.5, 0.125, 0.25])  # exact in binary: shares 1/2, 3/4, 7/8, 1
    assert [minimal_mass_count(s, tau) for tau in (0.5, 0.51, 0.75, 0.8, 0.875, 0.9)] == [1, 2, 2, 3, 3, 4]
    assert minimal_mass_count(torch.full((10,), 0.1), 0.85) == 9
    assert minimal_mass_count(torch.tensor([0.5, 0.5]), 1.0) == 2
    assert minimal_mass_count(torch.tensor([0.5, 0.5]), 0.0) == 0
    assert minimal_mass_count(torch.zeros(3), 0.5) == 3


@pytest.mark.parametrize("spec, message", [
    ("zipvl:tau=1.5", "tau must be a number in [0, 1]"),
    ("zipvl:min_keep=0.6,max_keep=0.5", "must not exceed max_keep"),
    ("zipvl:k=-1", "k must be a layer index"),
])
def test_zipvl_bad_specs_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        PRUNERS.build_many(spec)
    assert message in str(err.value) and "\n" not in str(err.value)
