"""Budget presets: a name yields the budget share and the in-model options, every spec builds,
and explicit options override the preset's."""

from __future__ import annotations

import dataclasses

import pytest

from vidsift.errors import ConfigError
from vidsift.pipeline.options import AskOptions, resolve
from vidsift.pipeline.presets import PRESETS, Compression, Preset
from vidsift.pipeline.press import PRESSES
from vidsift.pipeline.prune import PRUNERS
from vidsift.selectors import MERGERS
from vidsift.types import PRESET_SHARES, Budget

from test_prune_press_kit import adapter, inputs, run


def test_every_preset_is_a_budget_and_buildable_specs():
    assert set(PRESETS) == set(PRESET_SHARES) == {"fast", "balanced", "faithful", "mustdrop"}
    for name, preset in PRESETS.items():
        assert preset.budget == Budget.parse(name) == Budget(fraction=PRESET_SHARES[name])
        if preset.compression.merger:
            MERGERS.build(preset.compression.merger)
        if preset.compression.prune:
            PRUNERS.build_many(preset.compression.prune)
        if preset.compression.kv:
            PRESSES.build_many(preset.compression.kv)
    # the knob is monotone: fast feeds fewer tokens than balanced, balanced fewer than faithful
    assert PRESET_SHARES["fast"] < PRESET_SHARES["balanced"] < PRESET_SHARES["faithful"]


def test_budget_is_the_visual_token_budget_only_and_a_preset_yields_both_parts():
    assert [f.name for f in dataclasses.fields(Budget)] == ["tokens", "fraction", "max_frames"]
    assert Preset.named("mustdrop") == Preset(
        budget=Budget(fraction=0.25),
        compression=Compression(merger="mustdrop:threshold=0.8", prune="mustdrop:k=2", kv="mustdrop:ratio=0.5"))
    with pytest.raises(ConfigError, match="unknown preset; choose one of: fast, balanced, faithful"):
        Preset.named("turbo")
    for bad in ("off", "", 3):
        with pytest.raises(ConfigError, match="method spec"):
            Compression(kv=bad)
    with pytest.raises(ConfigError, match="expected a Budget"):
        Preset(budget="25%")


def test_explicit_options_override_the_preset():
    p = Preset.named("fast").apply(kv="h2o:ratio=0.5", budget=512)
    assert p.budget == Budget(tokens=512)
    assert p.compression == Compression(prune=PRESETS["fast"].compression.prune, kv="h2o:ratio=0.5")
    assert Preset.named("balanced").apply(prune=None) == PRESETS["balanced"]  # None = not given
    assert Preset.named("balanced").apply(prune="off").compression.prune is None
    # order: the preset, then the size on top of it, then the members
    assert Preset().apply(preset="fast", budget="150", kv="none") == Preset(
        budget=Budget(tokens=150), compression=Compression(prune=PRESETS["fast"].compression.prune))
    assert Preset(budget=Budget(tokens=5)).apply(budget="balanced") == PRESETS["balanced"]  # a preset name: both parts
    with pytest.raises(ConfigError, match="unknown preset"):
        Preset().apply(preset="25%")


@pytest.mark.parametrize("given", [{"preset": "mustdrop"}, {"budget": "mustdrop"}])
def test_ask_options_explicit_prune_kv_and_merger_win_over_the_preset(given):
    """``--preset mustdrop`` and ``--budget mustdrop`` set all of it; each explicit option wins."""
    opts = resolve(AskOptions(**given))
    assert (opts.budget, opts.compression) == (Budget(fraction=0.25), PRESETS["mustdrop"].compression)
    assert opts.merger_spec == "mustdrop:threshold=0.8"
    mine = {"prune": "fastv:k=2,keep=0.5", "kv": "snapkv:ratio=0.5", "merger": "tome"}
    for key, spec in mine.items():
        opts = resolve(AskOptions(**given, **{key: spec}))
        got = opts.merger_spec if key == "merger" else getattr(opts.compression, key)
        assert got == spec, key
    opts = resolve(AskOptions(merger="adjacent"), AskOptions(**given))  # a pipeline's default merger is explicit too
    assert opts.merger_spec == "adjacent" and opts.compression.prune == "mustdrop:k=2"


def test_fast_preset_runs_on_a_tiny_model():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    fast = PRESETS["fast"].compression
    got = run(ad, x, PRUNERS.build_many(fast.prune) + PRESSES.build_many(fast.kv))
    full = run(ad, x)
    assert got.stats[-1]["kv_bytes"] < 0.25 * sum(
        t.numel() * t.element_size() for lay in full.cache.layers for t in (lay.keys, lay.values))
