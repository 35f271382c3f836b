"""The call-scoped `CacheLayout` (issue 13 item 3): no module-global layout, one layout per call
whose hooks go with its ``with`` block, a clear error for a second layout on a busy model, one
stats observer whose counts the bench shares, and attention maths with no layout state."""

from __future__ import annotations

import ast
import inspect
from contextlib import ExitStack

import pytest
import torch
from transformers import DynamicCache

from test_prune_press_kit import adapter, fresh, inputs, run
from vidsift.errors import ConfigError
from vidsift.pipeline import attn, hooks, stats
from vidsift.pipeline.hooks import CacheLayout, count_hooks
from vidsift.pipeline.press import PRESSES
from vidsift.pipeline.prune import PRUNERS


def test_no_module_global_state_in_hooks():
    """Nothing kept per model in a module global (the old ``_LAYOUTS`` WeakKeyDictionary), and no
    test-only ``measure`` helper or FLOP count left in hooks."""
    import weakref

    containers = (dict, list, set, weakref.WeakKeyDictionary, weakref.WeakValueDictionary, weakref.WeakSet)
    globals_ = {name: type(v).__name__ for name, v in vars(hooks).items()
                if not name.startswith("__") and isinstance(v, containers)}
    assert globals_ == {}
    assert not hasattr(hooks, "measure") and not hasattr(hooks, "decoder_prefill_flops")
    assert not hasattr(CacheLayout, "acquire")


def test_hooks_exist_only_inside_the_with_block():
    ad, x = adapter("sdpa"), fresh(inputs())
    layout = CacheLayout(ad, x)
    assert count_hooks(ad.model) == 0  # making a layout installs nothing
    with pytest.raises(ConfigError, match="inside the layout's with block"):
        layout.add(PRESSES.build("snapkv"))
    with layout:
        assert hooks.active_layout(ad.model) is layout
        layout.add(PRUNERS.build("fastv"))
        layout.add(PRESSES.build("snapkv"))
        assert count_hooks(ad.model) == 2 + len(ad.decoder_layers) * 2  # model pre/post, layer pre, attention post
        ad.generate(x, max_new_tokens=2, min_new_tokens=2)
    assert count_hooks(ad.model) == 0 and hooks.active_layout(ad.model) is None
    with pytest.raises(ConfigError, match="serves one call"):
        layout.__enter__()
    assert count_hooks(ad.model) == 0


def test_a_second_layout_on_a_busy_model_is_a_clear_error_and_leaves_the_first_intact():
    ad, x = adapter("sdpa"), inputs()
    want = run(ad, x, PRESSES.build_many("snapkv:ratio=0.5"))
    y = fresh(x)
    y.kwargs["past_key_values"] = DynamicCache(config=ad.model.config.get_text_config())
    with CacheLayout(ad, y) as outer:
        got_stats = outer.add(PRESSES.build("snapkv", ratio=0.5))
        n = count_hooks(ad.model)
        with pytest.raises(ConfigError, match="already runs a call under another layout"):
            with CacheLayout(ad, y):
                pass
        assert count_hooks(ad.model) == n  # the refused layout installed nothing and removed nothing
        out = ad.model.generate(**y.kwargs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert torch.equal(out[:, y.prompt_len:], want.ids)
    assert got_stats["kept_per_layer"] == want.stats[0]["kept_per_layer"]


def test_sequential_layouts_on_one_model_share_no_state():
    """A pruned and pressed call, then a plain one on the same model: the second sees none of the
    first's stages, presses, positions or stats dicts, and answers like the model without hooks."""
    ad, x = adapter("sdpa"), inputs()
    first = run(ad, x, PRUNERS.build_many("fastv:k=1,keep=0.25") + PRESSES.build_many("snapkv:ratio=0.5"))
    kept_first = {k: v for k, v in first.stats[0].items() if k not in ("prefill_forward_s", "decode_steps_per_s")}
    plain = run(ad, x)
    y = fresh(x)
    y.kwargs["past_key_values"] = cache = DynamicCache(config=ad.model.config.get_text_config())
    with CacheLayout(ad, y) as layout:
        seen = layout.observe()
        assert (layout.stages, layout.presses, layout.decode_filters, layout.end_callbacks) == ({}, [], [], [])
        out = ad.model.generate(**y.kwargs, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                                output_logits=True, return_dict_in_generate=True)
    assert torch.equal(out.sequences[:, y.prompt_len:], plain.ids)
    assert torch.equal(torch.stack(out.logits, dim=1), plain.logits)
    assert seen["prefill_rows_per_layer"] == [x.prompt_len] * len(ad.decoder_layers)
    assert seen["kv_bytes"] == stats.kv_cache_bytes(cache)
    assert {k: v for k, v in first.stats[0].items() if k not in ("prefill_forward_s", "decode_steps_per_s")} == kept_first


def test_one_observer_counts_what_the_cache_and_the_bench_count():
    """The layout's KV bytes are `kv_bytes_per_layer` of the cache (the count ``Pipeline.ask`` reports
    without members), its FLOPs are `decoder_prefill_flops` per layer, the bench's estimate uses that
    same function."""
    from vidsift.bench import flops as bench_flops

    ad, x = adapter("sdpa"), inputs()
    got = run(ad, x, PRUNERS.build_many("fastv:k=1,keep=0.5"), max_new_tokens=2)
    s = got.stats[0]
    assert s["kv_bytes_per_layer"] == stats.kv_bytes_per_layer(got.cache)
    assert s["kv_bytes"] == stats.kv_cache_bytes(got.cache)
    layers = ad.decoder_layers
    want = sum(stats.decoder_prefill_flops(sum(p.numel() for p in layer.parameters()),
                                           layer.self_attn.q_proj.out_features, rows)
               for layer, rows in zip(layers, s["prefill_rows_per_layer"]))
    assert s["prefill_flops"] == want and s["prefill_rows_per_layer"][0] > s["prefill_rows_per_layer"][-1]
    assert bench_flops.decoder_prefill_flops is stats.decoder_prefill_flops


def test_attention_maths_hold_no_layout_state():
    tree = ast.parse(inspect.getsource(attn))
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"torch", "__future__"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    assert not hasattr(hooks, "project_queries") and not hasattr(hooks, "apply_rope")


def test_one_member_object_in_two_layouts_on_two_models_at_once():
    """Members get their layout explicitly: the same press object added to the layouts of two models
    that are open together keeps each call's state with that call."""
    ad_a, ad_b = adapter("sdpa"), adapter("eager")
    x_a, x_b = inputs(), inputs("Describe it.", attn="eager", n=2, seed=1)
    press = PRESSES.build("snapkv", ratio=0.5)
    want_a = run(ad_a, x_a, [PRESSES.build("snapkv", ratio=0.5)])
    want_b = run(ad_b, x_b, [PRESSES.build("snapkv", ratio=0.5)])
    ys = [fresh(x_a), fresh(x_b)]
    with ExitStack() as st:
        got = []
        for ad, y in zip((ad_a, ad_b), ys):
            y.kwargs["past_key_values"] = DynamicCache(config=ad.model.config.get_text_config())
            got.append(st.enter_context(CacheLayout(ad, y)).add(press))
        assert hooks.active_layout(ad_a.model) is not hooks.active_layout(ad_b.model)
        outs = [ad.model.generate(**y.kwargs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
                for ad, y in zip((ad_a, ad_b), ys)]
    for out, y, want, s in zip(outs, ys, (want_a, want_b), got):
        assert torch.equal(out[:, y.prompt_len:], want.ids)
        assert s["kept_per_layer"] == want.stats[0]["kept_per_layer"] and s["kv_bytes"] == want.stats[0]["kv_bytes"]
