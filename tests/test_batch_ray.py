"""vidsift batch --engine ray on a local Ray cluster with a real tiny model: the same answers as
the local engine, both actors used, a broken video recorded without stopping the batch.
Skipped with a reason when ray is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'vidsift[ray]')")

import os  # noqa: E402
import sys  # noqa: E402

from vidsift.batch import Job, ResultsFile, WorkerSpec, build_engine, run_batch  # noqa: E402
from vidsift.bench import synthesize_video  # noqa: E402
from vidsift.cli.app import run as cli  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for this module (the engine joins it instead of starting its own)."""
    import ray

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


def crashing_answerer(spec: WorkerSpec):
    """Kills its own process on videos named 'crash*' (a native crash / OOM kill stand-in)."""

    def answer(video: str, question: str, **overrides):
        if Path(video).name.startswith("crash"):
            os._exit(1)
        return f"ok:{Path(video).name}"

    return answer


def test_dead_actor_fails_only_its_job(ray_cluster, tmp_path: Path) -> None:
    jobs = [Job(id=name, video=str(tmp_path / name), question="q") for name in ("a.mp4", "crash.mp4", "b.mp4", "c.mp4")]
    out = tmp_path / "r.jsonl"
    summary = run_batch(jobs, WorkerSpec(model="", answerer="test_batch_ray:crashing_answerer"),
                        engine=build_engine("ray", workers=2), out=out, progress=False)
    assert (summary.ok, summary.failed) == (3, 1)
    records = ResultsFile(out).latest()
    assert records["crash.mp4"]["error"].startswith("worker died") and records["b.mp4"]["answer"] == "ok:b.mp4"
    assert ray_cluster.is_initialized()  # a joined cluster is left running


def test_cli_batch_ray_matches_local(ray_cluster, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "clips"
    for i in range(4):
        synthesize_video(folder / f"v{i}.mp4", seconds=2, fps=4, width=64, height=48, seed=i)
    (folder / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    common = ["batch", str(folder), "--question", "What moves?", "--model", "random:tiny-qwen2.5-vl", "--budget", "50%",
              "--device", "cpu", "--max-new-tokens", "4", "--no-progress"]
    assert cli([*common, "--out", str(tmp_path / "local.jsonl")]) == 0
    assert cli([*common, "--engine", "ray", "--workers", "2", "--out", str(tmp_path / "ray.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "1 job(s) failed" in err
    local = ResultsFile(tmp_path / "local.jsonl").latest()
    ray = ResultsFile(tmp_path / "ray.jsonl").latest()
    assert set(ray) == set(local) == {"v0.mp4", "v1.mp4", "v2.mp4", "v3.mp4", "broken.mp4"}
    assert {k: r["answer"] for k, r in ray.items()} == {k: r["answer"] for k, r in local.items()}
    assert ray["broken.mp4"]["error"] and local["broken.mp4"]["error"] and ray["broken.mp4"]["answer"] is None
    assert all(r["plan"]["frames"] and r["stats"]["tokens_in_prompt"] > 0 for k, r in ray.items() if k != "broken.mp4")
    assert len({r["worker"] for r in ray.values()}) == 2  # both actors answered
