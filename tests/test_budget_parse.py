"""One budget parser (`Budget.parse`) with one meaning everywhere: an int or integer string is
tokens, a float in (0, 1] or ``P%`` is a share (so ``1.0`` and ``"1.0"`` are 100%), a preset name
is a preset, anything else is an error naming the broken rule. Also: the CLI commands, the API
and the batch/eval/bench settings reject a bad budget before any model work."""

from __future__ import annotations

import numpy as np
import pytest

from vidsift.batch import WorkerSpec
from vidsift.bench import parse_bench_settings
from vidsift.cli.app import run
from vidsift.errors import ConfigError
from vidsift.eval import parse_settings
from vidsift.types import PRESET_SHARES, Budget


@pytest.mark.parametrize("value, expect", [
    (150, Budget(tokens=150)), ("150", Budget(tokens=150)), (" 2048 ", Budget(tokens=2048)), (np.int64(7), Budget(tokens=7)),
    (1, Budget(tokens=1)), ("1", Budget(tokens=1)),
    (1.0, Budget(fraction=1.0)), ("1.0", Budget(fraction=1.0)), (0.25, Budget(fraction=0.25)), ("0.25", Budget(fraction=0.25)),
    ("25%", Budget(fraction=0.25)), ("100%", Budget(fraction=1.0)), ("0.5%", Budget(fraction=0.005)),
    (None, Budget()), ("all", Budget()), ("", Budget()),
    ("fast", Budget(fraction=0.25)), ("faithful", Budget(fraction=0.75)),  # a preset's share only
])
def test_parse_rules(value, expect):
    assert Budget.parse(value) == expect


@pytest.mark.parametrize("value, rule", [
    (1.5, r"share in \(0, 1\]"), ("1.5", r"share in \(0, 1\]"), (0.0, r"share in \(0, 1\]"), (-0.5, r"share in \(0, 1\]"),
    ("200%", "at most 100%"), ("0%", "over 0%"), ("x%", "not a percentage"),
    (0, ">= 1"), ("0", ">= 1"), ("-3", ">= 1"), (True, "boolean"),
    ("lots", "not a budget; give a token count"), ("turbo", "fast, balanced, faithful"), ([3], "not a budget"),
])
def test_parse_errors_name_the_rule(value, rule):
    with pytest.raises(ConfigError, match=rule):
        Budget.parse(value)


def test_apply_a_size_keeps_max_frames_and_a_budget_or_preset_replaces_it():
    capped = Budget(tokens=5, max_frames=3)
    assert capped.apply(budget="25%") == Budget(fraction=0.25, max_frames=3)
    assert capped.apply(budget=None) is capped
    assert capped.apply(budget="balanced") == Budget(fraction=PRESET_SHARES["balanced"])
    assert capped.apply(budget=Budget(tokens=9)) == Budget(tokens=9)


@pytest.mark.parametrize("argv", [
    ["plan", "{video}", "--budget", "1.5"],
    ["ask", "{video}", "Q?", "--model", "random:tiny-smolvlm2", "--budget", "200%"],
])
def test_cli_rejects_bad_budgets_in_one_line(argv, tmp_video, capsys):
    assert run([a.format(video=tmp_video) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and ("(0, 1]" in err or "100%" in err)


def test_cli_plan_reads_1_0_as_the_whole_video(tmp_video, capsys):
    import json

    assert run(["plan", tmp_video, "--budget", "1.0", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["budget"] == plan["stats"]["tokens_full"] > 1


def test_batch_eval_bench_validate_budgets_before_model_work():
    for bad in ("1.5", "200%", "lots"):
        with pytest.raises(ConfigError):
            WorkerSpec(model="m", budget=bad)
        with pytest.raises(ConfigError):
            parse_settings([bad])
        with pytest.raises(ConfigError):
            parse_bench_settings(bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        parse_settings(None, ["turbo"])
    with pytest.raises(ConfigError, match="unknown preset"):
        WorkerSpec(model="m", options={"preset": "turbo"})
    assert [s.name for s in parse_bench_settings("100%,1.0,25%", "fast")] == ["full", "25%", "preset:fast"]
