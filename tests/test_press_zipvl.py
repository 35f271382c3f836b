"""The ``zipvl`` press (ZipVL's KV-cache mode): per layer, the fewest entries holding ``tau`` of the
window queries' attention mass stay at full precision, the rest are quantized. Oracle: the real
eager attention maps of an unpressed prefill, counted by brute force."""

from __future__ import annotations

import torch

from test_prune_press_kit import adapter, cache_lengths, fresh, inputs, match_positions, prefill_cache, run
from vidsift.pipeline.press import PRESSES


def _mass_count(scores: torch.Tensor, tau: float) -> int:
    """Brute force: the smallest k whose k highest scores sum to >= tau of the total."""
    s = sorted(scores.tolist(), reverse=True)
    total = sum(s)
    for k in range(1, len(s) + 1):
        if sum(s[:k]) >= tau * total:
            return k
    return len(s)


def test_full_precision_entries_are_the_fewest_holding_tau_of_the_attention_mass():
    ad, x = adapter("eager", "tiny-qwen2.5-vl"), inputs(attn="eager")
    with torch.no_grad():
        out = ad.model(**fresh(x).kwargs, output_attentions=True)
    full = prefill_cache(ad, x)
    L, w = x.prompt_len, 2  # a short window: heads differ at tau=0.8 (93 vs 94 entries in layer 2)
    counts = {}
    for tau in (0.5, 0.8):
        pressed = prefill_cache(ad, inputs(attn="eager"), [PRESSES.build(f"zipvl:tau={tau},window={w},bits=4")])
        for layer in range(4):
            hk = full.layers[layer].keys.shape[1]
            att = out.attentions[layer]  # (B, Hq, L, L)
            probs = att.view(att.shape[0], hk, -1, L, L).mean(dim=2)[:, :, -w:].mean(dim=2)  # (B, Hk, L)
            need = max(_mass_count(row, tau) for row in probs.flatten(0, 1))
            n_full = max(need, w)
            assert cache_lengths(pressed)[layer] == n_full, (tau, layer, cache_lengths(pressed), n_full)
            ranked = probs.clone()
            ranked[..., L - w:] = ranked.max() + 1  # the last window entries always stay
            want = ranked.topk(n_full, dim=-1).indices.sort(dim=-1).values
            assert torch.equal(match_positions(pressed.layers[layer].keys, full.layers[layer].keys), want), (tau, layer)
            counts[tau, layer] = n_full
    assert all(counts[0.5, i] <= counts[0.8, i] for i in range(4))
    assert any(counts[0.5, i] < counts[0.8, i] for i in range(4))  # the share adapts to tau
    assert all(n < L for n in counts.values())


def test_tau_one_is_the_uncompressed_model_and_low_tau_changes_it():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    ref = run(ad, x)
    got = run(ad, x, PRESSES.build_many("zipvl:tau=1.0"))
    assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits)
    low = run(ad, x, PRESSES.build_many("zipvl:tau=0.3,bits=2"))
    assert not torch.equal(low.logits, ref.logits)


def test_zipvl_like_quantize_must_be_the_last_press():
    import pytest

    from vidsift.errors import ConfigError

    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    with pytest.raises(ConfigError, match="zipvl must be the last"):
        run(ad, x, PRESSES.build_many("zipvl+snapkv"))
    with pytest.raises(ConfigError, match="zipvl must be the last"):
        PRESSES.build("composed", presses="zipvl+snapkv")
    run(ad, x, PRESSES.build_many("snapkv:ratio=0.5+zipvl:tau=0.8"))  # the other order works
