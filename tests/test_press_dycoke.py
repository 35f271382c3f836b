"""DyCoke's decode-time dynamic KV reduction (Tao et al., arXiv:2411.15024) as the ``dycoke`` press:
at every decoding step, layers >= L attend only to the ratio share of visual entries the current
token attends to most at layer L - 1, nothing is evicted, and the choice is remade every step.
Oracle: the eager attention maps of the same decoding forward."""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from transformers import DynamicCache

from test_prune_press_kit import adapter, cache_lengths, fresh, hooked, inputs, run
from vidsift.errors import ConfigError
from vidsift.pipeline.press import PRESSES, DecodeFilterPress

L = 2  # layers 0..3 of the tiny model: layer 1 chooses, 2 and 3 see the chosen visual entries only


def _decode_steps(members, steps: int = 3):
    """Prefill, then ``steps`` greedy decoding forwards with eager attention maps -> (maps per step, stats)."""
    ad, x = adapter("eager"), fresh(inputs(attn="eager"))
    cache = DynamicCache(config=ad.model.config.get_text_config())
    maps = []
    with ExitStack() as st, torch.no_grad():
        stats = hooked(st, ad, x, members)
        out = ad.model(**x.kwargs, past_key_values=cache, use_cache=True)
        mask = x.kwargs["attention_mask"]
        for _ in range(steps):
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
            out = ad.model(input_ids=nxt, attention_mask=mask, past_key_values=cache, use_cache=True,
                           output_attentions=True)
            maps.append([a[0].double() for a in out.attentions])  # per layer (H, 1, n)
    return maps, stats, cache, x.visual_mask[0]


def test_deep_layers_see_only_the_visual_entries_the_current_token_attends_to_most():
    maps, stats, cache, visual = _decode_steps([PRESSES.build(f"dycoke:ratio=0.25,layer={L}")])
    V = int(visual.sum())
    count = math.ceil(0.25 * V)
    vis_idx = torch.nonzero(visual).flatten()
    chosen_sets = []
    for step, layers in enumerate(maps):
        prev = layers[L - 1][:, -1].mean(0)  # (n,) layer L-1, heads averaged: the oracle ranking
        want = set(vis_idx[torch.argsort(-prev[vis_idx])[:count]].tolist())
        for layer in range(len(layers)):
            seen = set(vis_idx[(layers[layer][:, -1, vis_idx] > 0).any(0)].tolist())
            assert seen == (want if layer >= L else set(vis_idx.tolist())), (step, layer)
            text = torch.nonzero(~visual).flatten()
            assert bool((layers[layer][:, -1, text] > 0).all())  # text is always seen
        chosen_sets.append(frozenset(want))
    assert stats[0]["visual_seen_per_step"] == [count] * len(maps)
    assert len(set(chosen_sets)) > 1  # remade per step: the choice moved on this input
    assert cache_lengths(cache) == [visual.numel() + len(maps)] * 4  # nothing evicted


def test_prefill_is_untouched_and_ratio_one_is_the_unpruned_model():
    ad, x = adapter("sdpa"), inputs()
    ref = run(ad, x, max_new_tokens=3)
    cut = run(ad, x, [PRESSES.build("dycoke:ratio=0.25,layer=2")], max_new_tokens=3)
    torch.testing.assert_close(cut.logits[:, 0], ref.logits[:, 0], rtol=0, atol=0)  # the first token is prefill's
    assert not torch.equal(cut.logits[:, 1:], ref.logits[:, 1:])  # decoding changed
    full = run(ad, x, [PRESSES.build("dycoke:ratio=1,layer=2")], max_new_tokens=3)
    assert torch.equal(full.ids, ref.ids) and torch.equal(full.logits, ref.logits)


def test_sdpa_matches_eager_decoding():
    x = inputs()
    a = run(adapter("sdpa"), x, [PRESSES.build("dycoke:ratio=0.25,layer=2")], max_new_tokens=3)
    b = run(adapter("eager"), inputs(attn="eager"), [PRESSES.build("dycoke:ratio=0.25,layer=2")], max_new_tokens=3)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spec, message", [
    ("dycoke:layer=0", "layer must be an int >= 1"),
    ("dycoke:every=2", "every must be 0"),
    ("dycoke:ratio=0", "ratio must be a number in (0, 1]"),
])
def test_bad_specs_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        PRESSES.build_many(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


@dataclass
class Oldest(DecodeFilterPress):
    """Tests-only decode filter: every decoding step, layers >= ``layer`` see the first ``ratio`` share of
    the visual entries (by position), whatever the attention. Writes ``decode_filter`` only."""

    name: ClassVar[str] = "oldest"

    def decode_filter(self, attention: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        order = visual.long().cumsum(dim=1)  # 1.. along each row's visual entries
        return visual & (order <= math.ceil(self.ratio * int(visual[0].sum())))


def test_a_decode_filter_that_writes_one_method_hides_what_it_leaves_out():
    """The `DecodeFilterPress` template: a method writing only ``decode_filter`` gets the choice made at
    layer L - 1 and applied by the layout at layers >= L of every decoding step (eager maps as oracle)."""
    maps, stats, cache, visual = _decode_steps([Oldest(ratio=0.25, layer=L)])
    vis_idx = torch.nonzero(visual).flatten()
    want = set(vis_idx[:math.ceil(0.25 * vis_idx.numel())].tolist())
    for step, layers in enumerate(maps):
        for layer in range(len(layers)):
            seen = set(vis_idx[(layers[layer][:, -1, vis_idx] > 0).any(0)].tolist())
            assert seen == (want if layer >= L else set(vis_idx.tolist())), (step, layer)
    assert stats[0]["visual_seen_per_step"] == [len(want)] * len(maps) and stats[0]["layer"] == L
    assert cache_lengths(cache) == [visual.numel() + len(maps)] * 4  # nothing evicted
