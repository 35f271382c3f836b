"""G-Search (arXiv:2412.00556): the greedy schedule search, the spec it writes, the P-Sigmoid fit."""

from __future__ import annotations

import json

import pytest

from vidsift.pipeline import Pipeline
from vidsift.pipeline.prune import PRUNERS
from vidsift.pipeline.prune.base import sigmoid_keep
from vidsift.probe import checkpoint_path
from vidsift.probe.gsearch import (
    OptionLikelihood,
    average_keep,
    fit_sigmoid,
    g_search,
    main,
    pdrop_spec,
    probe_items,
)
from vidsift.pipeline.presets import Preset


def layer_costs(*costs: float):
    """An objective where lowering layer l costs ``costs[l]`` per unit of keep (0: free)."""
    return lambda keep: -sum(c * (1.0 - k) for c, k in zip(costs, keep))


def test_greedy_search_prunes_the_free_deep_layers_first_and_reaches_the_target():
    # layer 0 is costly, layer 1 cheaper, layers 2 and 3 free: the answer is known
    found = g_search(layer_costs(100.0, 10.0, 0.0, 0.0), n_layers=4, target_ratio=0.5)
    assert found.keep == (1.0, 1.0, 0.0, 0.0)
    assert {s["layer"] for s in found.steps[1:]} == {2, 3}
    found = g_search(layer_costs(100.0, 10.0, 0.0, 0.0), n_layers=4, target_ratio=0.25)
    assert found.keep == (1.0, 0.0, 0.0, 0.0)
    assert average_keep(found.keep) == pytest.approx(0.25)
    for step in found.steps:  # every schedule tried on the way never grows with depth
        assert all(b <= a for a, b in zip(step["keep"], step["keep"][1:]))
    assert [s["objective"] for s in found.steps] == sorted((s["objective"] for s in found.steps), reverse=True)


def test_a_free_shallow_layer_drags_the_deeper_ones_down_with_it():
    # lowering layer 0 alone would make the schedule grow with depth: deeper layers are clipped to it
    found = g_search(layer_costs(0.0, 1.0, 1.0, 1.0), n_layers=4, target_ratio=0.5)
    for step in found.steps:
        assert all(b <= a for a, b in zip(step["keep"], step["keep"][1:])), step
    assert PRUNERS.build(found.spec).per_layer(4) == list(found.keep)


def test_ties_go_to_the_deepest_layer_and_the_last_step_lands_on_the_target():
    found = g_search(lambda keep: 0.0, n_layers=4, target_ratio=0.9)
    assert found.steps[1]["layer"] == 3
    assert average_keep(found.keep) == pytest.approx(0.9, abs=1e-4)
    assert average_keep(found.keep) <= 0.9


def test_the_written_spec_loads_to_exactly_the_searched_fractions():
    # target 0.2917: layers 2, 3 free go to 0, then layer 1 lands between grid values at 0.1668
    found = g_search(layer_costs(100.0, 10.0, 0.0, 0.0), n_layers=4, target_ratio=0.2917)
    assert found.keep == (1.0, 0.1668, 0.0, 0.0)
    assert PRUNERS.build(found.spec).per_layer(4) == list(found.keep)
    options = Preset().apply(budget="100%", prune=found.spec)  # the --prune parser
    (pruner,) = PRUNERS.build_many(options.compression.prune)
    assert pruner.schedule(4) == {1: 0.1668, 2: 0.0}


@pytest.mark.parametrize("mid,slope,floor", [(0.4, 7.0, 0.1), (0.65, 3.0, 0.3)])
def test_the_sigmoid_fit_recovers_known_parameters(mid, slope, floor):
    fit = fit_sigmoid(sigmoid_keep(24, mid=mid, slope=slope, floor=floor))
    assert fit["mid"] == pytest.approx(mid, abs=0.01)
    assert fit["slope"] == pytest.approx(slope, rel=0.03)
    assert fit["floor"] == pytest.approx(floor, abs=0.01)
    assert PRUNERS.build(fit["spec"]).per_layer(24) == pytest.approx(fit["keep"], abs=1e-6)


def test_pdrop_comparison_has_the_same_average_keep():
    spec = pdrop_spec(4, 0.25)
    sched = PRUNERS.build(spec).schedule(4)
    assert sorted(sched) == [0, 1, 2, 3]
    assert average_keep(tuple(sched.values())) == pytest.approx(0.25, abs=1e-3)


def test_cli_searches_the_probe_model_on_a_held_out_clip(tmp_path):
    out = tmp_path / "g.json"
    summary = main(["--root", str(tmp_path / "split"), "--seed", "7", "--limit", "1", "--target", "0.75",
                    "--grid", "1/0", "--out", str(out)])
    assert json.loads(out.read_text()) == summary
    assert summary["split"] == {"root": str(tmp_path / "split"), "seed": 7, "limit": 1, "questions": 6}
    assert summary["average_keep"] == pytest.approx(0.75, abs=1e-4)  # keep fractions have DECIMALS = 4
    assert PRUNERS.build(summary["spec"]).per_layer(4) == summary["keep"]
    assert summary["search_split"]["full"]["objective"] == summary["steps"][0]["objective"]
    assert len(summary["steps"]) == 2 and summary["objective_calls"] >= len(summary["steps"])
    # the objective sees the visual tokens: the trained model loses likelihood without them
    pipe = Pipeline.from_pretrained(str(checkpoint_path()), device="cpu", dtype="float32")
    objective = OptionLikelihood(pipe, probe_items(tmp_path / "split", seed=7, limit=1), tmp_path / "split")
    full, blind = objective((1.0,) * 4), objective((0.0,) * 4)
    assert full.objective == summary["steps"][0]["objective"]
    assert full.objective > blind.objective + 0.5
