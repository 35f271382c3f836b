"""vidsift batch --engine ray on a local Ray cluster with a real tiny model: the same answers as
the local engine, both actors used, a broken video recorded without stopping the batch.
Skipped with a reason when ray is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'vidsift[ray]')")

from vidsift.batch import ResultsFile  # noqa: E402
from vidsift.bench import synthesize_video  # noqa: E402
from vidsift.cli.app import run as cli  # noqa: E402


def test_cli_batch_ray_matches_local(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
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
