"""vidsift eval end to end with a real (tiny, random-weight) model: every dataset format through
the CLI, records carry plans and stats, budgets are compared, and reruns resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_eval_data import MAKERS
from vidsift.batch import ResultsFile
from vidsift.cli.app import run as cli

MODEL = "random:tiny-qwen2.5-vl"


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_cli_eval_each_format_with_a_tiny_model(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = MAKERS[name](tmp_path / name)
    out = tmp_path / "res.jsonl"
    args = ["eval", "--dataset", name, "--root", str(root), "--model", MODEL, "--budget", "100%,25%", "--limit", "1",
            "--device", "cpu", "--max-new-tokens", "3", "--out", str(out), "--json", "--no-progress"]
    code = cli(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert [r["setting"] for r in summary["settings"]] == ["budget=100%", "budget=25%"]
    assert all(r["n"] == 1 and r["failed"] == 0 and 0 <= r["accuracy"] <= 1 for r in summary["settings"])
    records = list(ResultsFile(out).records())
    assert len(records) == 2
    for rec in records:
        assert rec["error"] is None and isinstance(rec["answer"], str) and "correct" in rec
        assert rec["plan"]["frames"] and rec["stats"]["tokens_in_prompt"] > 0
    full = {r["meta"]["qid"]: r for r in records if r["meta"]["setting"] == "budget=100%"}
    small = {r["meta"]["qid"]: r for r in records if r["meta"]["setting"] == "budget=25%"}
    for qid in full:
        assert small[qid]["stats"]["tokens_in_prompt"] < full[qid]["stats"]["tokens_in_prompt"]
    assert json.loads(out.with_suffix(".summary.json").read_text())["dataset"] == name
    # a rerun finds everything done and answers nothing new
    assert cli(args) == 0
    capsys.readouterr()
    assert len(list(ResultsFile(out).records())) == 2


def test_cli_eval_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli(["eval", "--dataset", "kinetics", "--root", str(tmp_path), "--model", MODEL])
    assert code == 1 and "error: --dataset kinetics: unknown dataset; choose one of: mlvu, mvbench, nextqa, probe, videomme" in capsys.readouterr().err
    code = cli(["eval", "--dataset", "nextqa", "--root", str(tmp_path / "none"), "--model", MODEL])
    assert code == 1 and "no such dataset folder" in capsys.readouterr().err


def test_cli_eval_preset_jobs_succeed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--preset fast`` reaches the Pipeline as a preset (it once failed every job as an unknown option)."""
    root = MAKERS["mvbench"](tmp_path / "mvb")
    out = tmp_path / "res.jsonl"
    code = cli(["eval", "--dataset", "mvbench", "--root", str(root), "--model", MODEL, "--preset", "fast", "--limit", "1",
                "--device", "cpu", "--max-new-tokens", "2", "--out", str(out), "--json", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    row = json.loads(captured.out)["settings"][0]
    assert row["setting"] == "preset=fast" and row["n"] == 1 and row["failed"] == 0 and row["accuracy"] is not None
    (rec,) = ResultsFile(out).records()
    assert rec["error"] is None and [p["method"] for p in rec["stats"]["prune"]] == ["fastv"]
    assert rec["stats"]["tokens_budget"] < rec["stats"]["tokens_full"]
