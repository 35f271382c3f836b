"""Resume is keyed by everything that changes an answer (issue 26, item 3): the model, the
options, the video's content and the question. A changed key answers the job again, an unchanged
one is skipped, ``--no-resume`` answers everything; each video is hashed once per run however
many questions it has. Through `run_batch` (the deterministic test answerer of test_batch stands in
for a model) and through ``vidsift eval --dataset probe`` with the shipped probe model and then
a random one into the same folder: the second run's rows are the random model's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidsift.batch import Job, ResultsFile, WorkerSpec, build_engine, run_batch
from vidsift.batch.keys import ContentHashes
from vidsift.cli.app import run

ANSWERER = "test_batch:echo_answerer"


@pytest.fixture()
def jobs(tmp_path: Path) -> list[Job]:
    (tmp_path / "a.mp4").write_bytes(b"a" * 3000)
    (tmp_path / "b.mp4").write_bytes(b"b" * 3000)
    return [Job(id=f"{v}{q}", video=str(tmp_path / v), question=f"question {q}") for v in ("a.mp4", "b.mp4") for q in (1, 2)]


def _run(jobs, tmp_path, **spec):
    spec = WorkerSpec(**{"model": "m1", "answerer": ANSWERER, **spec})
    return run_batch(jobs, spec, engine=build_engine("local"), out=tmp_path / "out.jsonl", progress=False)


def test_an_unchanged_key_is_skipped_and_every_changed_part_reruns(jobs, tmp_path):
    assert _run(jobs, tmp_path).ok == 4
    assert _run(jobs, tmp_path).skipped == 4
    assert _run(jobs, tmp_path, model="m2").ok == 4  # another model
    assert _run(jobs, tmp_path, model="m2", budget="25%").ok == 4  # another option
    assert _run(jobs, tmp_path, model="m2", budget="25%", max_new_tokens=7).ok == 4
    assert _run(jobs, tmp_path, model="m2", budget="25%", max_new_tokens=7).skipped == 4
    (tmp_path / "a.mp4").write_bytes(b"A" * 3000)  # same name and size, other content
    again = _run(jobs, tmp_path, model="m2", budget="25%", max_new_tokens=7)
    assert (again.ok, again.skipped) == (2, 2)  # a.mp4's two questions only
    changed = [Job(id=j.id, video=j.video, question=j.question + "?" if j.id == "b.mp41" else j.question,
                   overrides={"frames": 3} if j.id == "b.mp42" else {}) for j in jobs]
    again = _run(changed, tmp_path, model="m2", budget="25%", max_new_tokens=7)
    assert (again.ok, again.skipped) == (2, 2)  # the changed question and the changed override
    keys = {r["id"]: r["key"] for r in ResultsFile(tmp_path / "out.jsonl").latest().values()}
    assert len(set(keys.values())) == 4


def test_no_resume_answers_everything_again(jobs, tmp_path):
    _run(jobs, tmp_path)
    spec = WorkerSpec(model="m1", answerer=ANSWERER)
    again = run_batch(jobs, spec, engine=build_engine("local"), out=tmp_path / "out.jsonl", progress=False, resume=False)
    assert (again.ok, again.skipped) == (4, 0)


def test_each_video_is_hashed_once_per_run(jobs):
    hashes = ContentHashes()
    digests = {j.id: hashes(j.video) for j in jobs}
    assert hashes.hashed == 2 and digests["a.mp41"] == digests["a.mp42"] != digests["b.mp41"]


def test_eval_after_another_model_in_the_same_folder_answers_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIDSIFT_DEBUG", "0")
    out = tmp_path / "r.jsonl"
    base = ["eval", "--dataset", "probe", "--root", str(tmp_path / "items"), "--limit", "1", "--methods", "uniform",
            "--budget", "100%", "--streams", "0", "--out", str(out), "--no-progress", "--json"]
    assert run(base) == 0
    probe = json.loads(out.with_suffix(".summary.json").read_text())
    assert run([*base, "--model", "random:tiny-qwen2.5-vl"]) == 0
    rows = ResultsFile(out).latest()
    assert rows and all(r["stats"]["model"].startswith(str(Path.home())) or "tiny-qwen2.5-vl" in r["stats"]["model"]
                        for r in rows.values()), {r["stats"].get("model") for r in rows.values()}
    again = json.loads(out.with_suffix(".summary.json").read_text())
    assert again["model"] == "random:tiny-qwen2.5-vl" and probe["model"] != again["model"]
    n = len(rows)
    assert len(out.read_text().splitlines()) == 2 * n  # every row answered twice: once per model
    assert run([*base, "--model", "random:tiny-qwen2.5-vl"]) == 0  # unchanged: nothing answered again
    assert len(out.read_text().splitlines()) == 2 * n
    assert run([*base, "--model", "random:tiny-qwen2.5-vl", "--no-resume"]) == 0  # everything again
    assert len(out.read_text().splitlines()) == 3 * n
    capsys.readouterr()
