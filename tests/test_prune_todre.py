"""ToDRE stage 2 (Li et al., arXiv:2505.18757) as the ``todre`` prefill pruner: task relevance at
layer k, then every visual token out at the first later layer whose text gives them less than
``migrated`` of its attention. Oracles: the stock model's eager attention maps."""

from __future__ import annotations

import pytest
import torch
from contextlib import ExitStack

from transformers import DynamicCache

from test_prune_press_kit import adapter, fresh, hooked, inputs, match_positions, prefill_cache, run
from vidsift.errors import ConfigError
from vidsift.pipeline.prune import PRUNERS

K = 1  # the tiny model has layers 0..3: stages at 1, 2, 3


def _text_rows(visual: torch.Tensor) -> list[int]:
    last = int(torch.nonzero(visual).max())
    return [i for i in range(visual.numel()) if i > last and not visual[i]]


def _relevance_oracle(x, keep: float) -> torch.Tensor:
    """Kept original positions at layer K, from the unpruned eager model's layer-K map: the text rows
    after the video, heads and rows averaged, the top round(keep * V) visual tokens + every text row."""
    with torch.no_grad():
        out = adapter("eager").model(**fresh(x).kwargs, output_attentions=True)
    a = out.attentions[K][0].double().mean(0)  # (L, L)
    vis = x.visual_mask[0]
    text = _text_rows(vis)
    rel = a[text].mean(0)
    ids = torch.nonzero(vis).flatten()
    top = ids[torch.argsort(-rel[ids])[:round(keep * ids.numel())]]
    return torch.sort(torch.cat([torch.nonzero(~vis).flatten(), top])).values


def _share_after_cut(x, keep: float) -> float:
    """The text's attention share on the visual rows left at layer K + 1, read from the eager map of
    that layer in a forward pruned at K only (migrated=0): the oracle for the migration test."""
    member = PRUNERS.build(f"todre:k={K},keep={keep},migrated=0")
    y = fresh(x)
    with ExitStack() as st, torch.no_grad():
        hooked(st, adapter("eager"), y, [member])
        out = adapter("eager").model(**y.kwargs, past_key_values=DynamicCache(config=adapter("eager").model.config.get_text_config()),
                                     use_cache=True, output_attentions=True)
    kept = _relevance_oracle(x, keep)
    vis = x.visual_mask[0][kept]  # visual flags of the rows layer K + 1 holds
    a = out.attentions[K + 1][0].double().mean(0)  # (m, m)
    assert a.shape[0] == kept.numel()
    return float(a[_text_rows(vis)][:, vis].sum(1).mean())


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_layer_k_keeps_the_visual_tokens_the_text_attends_to_most(attn):
    ad, x = adapter(attn), inputs(attn=attn)
    want = _relevance_oracle(inputs(attn="eager"), 0.5)
    full = prefill_cache(ad, x)
    pruned = prefill_cache(ad, x, [PRUNERS.build(f"todre:k={K},keep=0.5,migrated=0")])
    got = match_positions(pruned.layers[K].keys, full.layers[K].keys)  # (B, Hk, m)
    assert torch.equal(got[0, 0], want) and torch.equal(got[0, 1], want)
    assert torch.equal(pruned.layers[K - 1].keys, full.layers[K - 1].keys)  # layers before k untouched


def test_every_visual_token_leaves_at_the_first_layer_under_the_migration_threshold():
    ad, x = adapter("eager"), inputs(attn="eager")
    V, L = int(x.visual_mask.sum()), x.prompt_len
    c = round(0.5 * V)
    share = _share_after_cut(x, 0.5)
    assert 0.02 < share < 0.98  # a real share, so both sides of it are testable
    above = run(ad, x, [PRUNERS.build(f"todre:k={K},keep=0.5,migrated={share + 1e-3}")], max_new_tokens=2)
    st = above.stats[0]
    assert st["visual_dropped_at"] == K + 1
    assert st["visual_attention_share"][K + 1][0] == pytest.approx(share, abs=1e-4)
    assert st["prefill_rows_per_layer"] == [L, L - V + c, L - V, L - V]
    below = run(ad, x, [PRUNERS.build(f"todre:k={K},keep=0.5,migrated={share - 1e-3}")], max_new_tokens=2)
    st = below.stats[0]
    assert st["visual_attention_share"][K + 1][0] == pytest.approx(share, abs=1e-4)
    assert st["prefill_rows_per_layer"][K + 1] == L - V + c  # still there at K + 1
    assert st.get("visual_dropped_at") != K + 1


def test_keep_all_and_never_migrate_is_the_unpruned_model():
    ad, x = adapter("sdpa"), inputs()
    ref = run(ad, x)
    got = run(ad, x, PRUNERS.build_many(f"todre:k={K},keep=1,migrated=0"))
    assert torch.equal(got.ids, ref.ids) and torch.equal(got.logits, ref.logits)


def test_a_layer_past_the_model_is_refused():
    with pytest.raises(ConfigError, match="the model has layers 0..3"):
        run(adapter("sdpa"), inputs(), [PRUNERS.build("todre:k=9")], max_new_tokens=1)


@pytest.mark.parametrize("spec, message", [
    ("todre:keep=1.5", "keep must be a number in [0, 1]"),
    ("todre:migrated=-0.1", "migrated must be a number in [0, 1]"),
    ("todre:k=-1", "k must be a layer index"),
])
def test_bad_specs_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        PRUNERS.build_many(spec)
    assert message in str(err.value) and "\n" not in str(err.value)
