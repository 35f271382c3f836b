"""vidsift batch --engine ray on a local Ray cluster: same answers as the local engine,
failures recorded per job. Skipped with a reason when ray is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'vidsift[ray]')")

from vidsift.batch import Job, WorkerSpec, build_engine, read_manifest, run_batch  # noqa: E402
from vidsift.batch import ResultsFile  # noqa: E402


def test_ray_engine_matches_local(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(4):
        (folder / f"v{i}.mp4").write_bytes(bytes([i]) * 100)
    jobs = read_manifest(folder, question="what?")
    jobs.append(Job(id="broken", video=str(folder / "missing.mp4"), question="what?"))
    spec = WorkerSpec(model="", answerer="test_batch:echo_answerer", budget="10%")
    local = {r["id"]: (r["answer"], r["error"] is None) for r in build_engine("local").map(spec, jobs)}
    out = tmp_path / "ray.jsonl"
    summary = run_batch(jobs, spec, engine=build_engine("ray", workers=2), out=out, progress=False)
    assert (summary.ok, summary.failed) == (4, 1)
    records = ResultsFile(out).latest()
    assert {k: (r["answer"], r["error"] is None) for k, r in records.items()} == local
    assert len({r["worker"] for r in records.values()}) == 2  # both actors answered
