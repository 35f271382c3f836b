"""Budget presets: valid specs for every stage, explicit options override them."""

from __future__ import annotations

import pytest

from vidsift.errors import ConfigError
from vidsift.pipeline.presets import PRESETS
from vidsift.pipeline.press import PRESSES
from vidsift.pipeline.prune import PRUNERS
from vidsift.selectors import MERGERS
from vidsift.types import Budget

from test_prune_press_kit import adapter, inputs, run


def test_every_preset_is_a_budget_with_buildable_specs():
    assert set(PRESETS) == {"fast", "balanced", "faithful", "mustdrop"}
    for name, fields in PRESETS.items():
        budget = Budget(**fields)
        if budget.merger:
            MERGERS.build(budget.merger)
        if budget.prune:
            PRUNERS.build_many(budget.prune)
        if budget.kv:
            PRESSES.build_many(budget.kv)
    # the knob is monotone: fast feeds fewer tokens than balanced, balanced fewer than faithful
    assert PRESETS["fast"]["fraction"] < PRESETS["balanced"]["fraction"] < PRESETS["faithful"]["fraction"]


def test_explicit_options_override_the_preset():
    b = Budget.parse("fast").apply(kv="h2o:ratio=0.5", budget=512)
    assert b.kv == "h2o:ratio=0.5" and b.tokens == 512 and b.fraction is None and b.prune == PRESETS["fast"]["prune"]
    assert Budget.parse("balanced").apply(prune=None).prune == PRESETS["balanced"]["prune"]  # None = not given
    assert Budget.parse("balanced").apply(prune="off").prune is None
    with pytest.raises(ConfigError, match="unknown preset; choose one of: fast, balanced, faithful"):
        Budget.preset("turbo")


def test_fast_preset_runs_on_a_tiny_model():
    ad, x = adapter("sdpa", "tiny-qwen2.5-vl"), inputs()
    fast = Budget(**PRESETS["fast"])
    got = run(ad, x, PRUNERS.build_many(fast.prune) + PRESSES.build_many(fast.kv))
    full = run(ad, x)
    assert got.stats[-1]["kv_bytes"] < 0.25 * sum(
        t.numel() * t.element_size() for lay in full.cache.layers for t in (lay.keys, lay.values))
