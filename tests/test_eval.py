"""vidsift eval: loaders for the four public layouts, prompt, answer extraction, scoring and
resumable runs, with a fixed-reply answerer standing in for a model (the real model runs in
test_eval_pipeline.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_eval_data import MAKERS, make_videomme
from vidsift.batch import ResultsFile, WorkerSpec, build_engine
from vidsift.errors import ConfigError
from vidsift.eval import EvalSetting, MCPrompt, extract_choice, load_dataset, parse_settings, run_eval


def fixed_answerer(spec: WorkerSpec):
    """Always replies with ``spec.options['reply']``; fails when the video is missing or an option is unknown."""

    def answer(video: str, question: str, **overrides):
        if not Path(video).is_file():
            raise FileNotFoundError(video)
        if set(overrides) - {"budget", "preset"}:
            raise ConfigError(", ".join(overrides), "unknown option")
        return {"answer": spec.options["reply"], "plan": None, "stats": {"budget": overrides.get("budget")}}

    return answer


EXPECTED = {  # dataset -> (n questions, tasks, targets)
    "videomme": (6, {"Counting Problem", "OCR Problems"}, [0, 1, 2, 0, 1, 2]),
    "mvbench": (4, {"action_sequence", "counterfactual_inference"}, [1, 0, 2, 0]),
    "mlvu": (2, {"plotQA", "ego"}, [1, 2]),
    "nextqa": (3, {"CW", "TN", "DC"}, [2, 0, 4]),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_loaders_read_the_public_layouts(name: str, tmp_path: Path) -> None:
    root = MAKERS[name](tmp_path / name)
    items = load_dataset(name, root)
    n, tasks, targets = EXPECTED[name]
    assert len(items) == n and {i.task for i in items} == tasks
    assert [i.answer for i in items] == targets
    present = [Path(i.video).is_file() for i in items]
    assert present == [not i.video.endswith("missing_clip.mp4") for i in items]
    assert all(not o[:2].endswith(".") for i in items for o in i.options)  # letters stripped
    assert len(load_dataset(name, root, limit=1)) == 1


def test_videomme_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'vidsift[eval]')")
    items = load_dataset("videomme", make_videomme(tmp_path, fmt="parquet"))
    assert [i.qid for i in items][:2] == ["000-1", "000-2"] and items[0].options[2] == "three"
    assert items[0].duration == "short" and Path(items[0].video).name == "fFjv93ACGo8.mp4"


def test_bad_dataset_input_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dataset; choose one of: mlvu, mvbench, nextqa, videomme"):
        load_dataset("kinetics", tmp_path)
    with pytest.raises(ConfigError, match="no such dataset folder"):
        load_dataset("mvbench", tmp_path / "nope")
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "t.json").write_text(json.dumps([{"video": "v.mp4", "question": "q", "candidates": ["x", "y"], "answer": "z"}]))
    with pytest.raises(ConfigError, match="item 0: answer is not one of the candidates"):
        load_dataset("mvbench", tmp_path)


def test_prompt_lists_lettered_options(tmp_path: Path) -> None:
    item = load_dataset("nextqa", MAKERS["nextqa"](tmp_path))[0]
    text = MCPrompt()(item)
    assert "why did the boy pick up the ball?\nA. to throw\nB. to eat\nC. to play\nD. to sleep\nE. to hide\n" in text
    assert text.endswith("Answer with the option's letter from the given choices directly.")


@pytest.mark.parametrize("reply, expected", [
    ("B", 1), ("(C)", 2), ("D. dog", 3), ("The answer is C.", 2), ("Answer: (B)", 1), ("The best answer is: A", 0),
    ("I think it is a red car.", 0), ("A car", 1), ("A dog runs", 3), ("blue sky", 2), ("E", None), ("", None),
    ("nothing here", None), ("C) blue", 2),
])
def test_extract_choice(reply: str, expected: int | None) -> None:
    assert extract_choice(reply, ["a red car", "a car", "blue sky", "dog"]) == expected


def test_run_eval_scores_per_setting_and_task_and_resumes(tmp_path: Path) -> None:
    items = load_dataset("mvbench", MAKERS["mvbench"](tmp_path / "mvb"))
    spec = WorkerSpec(model="", answerer="test_eval:fixed_answerer", options={"reply": "The answer is A."})
    settings = parse_settings(["100%", "25%"])
    out = tmp_path / "res.jsonl"
    report = run_eval(items, spec, engine=build_engine("local"), out=out, settings=settings, progress=False)
    rows = {r["setting"]: r for r in report.rows}
    assert set(rows) == {"budget=100%", "budget=25%"}
    for row in rows.values():  # targets [1, 0, 2, 0]; the 4th video is missing -> failed, not scored
        assert row["n"] == 4 and row["failed"] == 1 and row["accuracy"] == pytest.approx(1 / 3)
        assert row["per_task"]["action_sequence"] == {"n": 2, "failed": 0, "accuracy": 0.5}
        assert row["per_task"]["counterfactual_inference"] == {"n": 2, "failed": 1, "accuracy": 0.0}
    recs = ResultsFile(out).latest()
    assert len(recs) == 8 and recs["mvbench/action_sequence/1@budget=25%"]["stats"] == {"budget": "25%"}
    assert recs["mvbench/action_sequence/1@budget=25%"]["pred"] == "A" and recs["mvbench/action_sequence/1@budget=25%"]["correct"]
    assert json.loads(out.with_suffix(".summary.json").read_text())["dataset"] == "mvbench"
    # resume: the same spec answers only the failed jobs again; finished ones are kept
    again = run_eval(items, spec, engine=build_engine("local"), out=out, settings=settings, progress=False)
    assert [r["accuracy"] for r in again.rows] == [pytest.approx(1 / 3)] * 2
    assert sum(1 for _ in ResultsFile(out).records()) == 10
    # other options change the answers: every job is answered again (its resume key changed)
    spec2 = WorkerSpec(model="", answerer="test_eval:fixed_answerer", options={"reply": "C"})
    again = run_eval(items, spec2, engine=build_engine("local"), out=out, settings=settings, progress=False)
    assert [r["accuracy"] for r in again.rows] == [pytest.approx(1 / 3)] * 2  # targets 1, 0, 2: C is right once
    assert sum(1 for _ in ResultsFile(out).records()) == 18
    assert ResultsFile(out).latest()["mvbench/action_sequence/1@budget=25%"]["pred"] == "C"


def test_failed_jobs_show_as_failures_not_as_zero_accuracy(tmp_path: Path) -> None:
    """A setting whose every job failed reads "failed" (accuracy None), never 0.0%."""
    items = load_dataset("mvbench", MAKERS["mvbench"](tmp_path / "mvb"))
    spec = WorkerSpec(model="", answerer="test_eval:fixed_answerer", options={"reply": "A"})
    bad = [EvalSetting("broken", {"fsp": 2})]  # an unknown option: every job fails
    report = run_eval(items, spec, engine=build_engine("local"), out=tmp_path / "r.jsonl", settings=bad, progress=False)
    row = report.rows[0]
    assert row["failed"] == row["n"] == 4 and row["accuracy"] is None
    assert all(t["accuracy"] is None for t in row["per_task"].values())
    from rich.console import Console

    console = Console(record=True, width=200)
    for table in report.table():
        console.print(table)
    text = console.export_text()
    assert "failed" in text and "0.0%" not in text
