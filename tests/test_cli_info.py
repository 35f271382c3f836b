"""`vidsift info`: table and JSON output, --scan decode report, --backend, one-line errors + exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from videos import make_rotated_video, make_video, sample_clip, truncate_file, write_garbage
from vidsift.cli.app import run


def _json(capsys, *argv) -> dict:
    assert run(["info", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_bikes_json(capsys):
    data = _json(capsys, sample_clip("bikes.mp4"))
    assert (data["n_frames"], data["fps"], data["width"], data["height"]) == (250, 25.0, 640, 272)
    for key in ("path", "duration_s", "fps", "n_frames", "width", "height", "rotation", "codec", "backend",
                "measured_fps"):
        assert key in data
    assert data["duration_s"] == pytest.approx(10.0) and data["codec"] == "h264" and data["rotation"] == 0
    assert data["backend"] in ("decord", "pyav") and "scan" not in data


def test_info_table(capsys):
    assert run(["info", sample_clip("bikes.mp4")]) == 0
    out = capsys.readouterr().out
    for text in ("250", "640x272", "25", "h264", "10.000 s"):
        assert text in out


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_info_scan_and_backend(capsys, tmp_video, backend):
    data = _json(capsys, tmp_video, "--scan", "--backend", backend)
    assert data["backend"] == backend
    assert data["scan"]["decoded_frames"] == 48 and data["scan"]["missing_frames"] == 0
    assert data["decode_report"]["ok"] and data["decode_report"]["expected_frames"] == 48


def test_info_rotated_reports_display_size(capsys, tmp_path):
    path = make_rotated_video(tmp_path / "phone.mp4", rotation=90, n_frames=4)
    data = _json(capsys, path)
    assert (data["width"], data["height"], data["rotation"]) == (64, 96, 90)


def test_info_scan_truncated_reports_missing(capsys, tmp_path):
    src = make_video(tmp_path / "full.mkv", n_frames=96)
    cut = truncate_file(src, tmp_path / "cut.mkv", keep=0.5)
    data = _json(capsys, cut, "--scan")
    report = data["decode"]  # the file-level count: the header's 96 frames against what decodes
    assert report["frames_expected"] == 96 and 0 < report["missing"] < 96
    assert report["frames_decoded"] + report["missing"] == 96 and 0 < data["scan"]["missing_frames"] < 96
    assert data["open_warnings"] and "missing" in data["open_warnings"][0]
    assert run(["info", cut, "--scan"]) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and "missing" in out


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", ["missing", "dir", "empty", "random", "text", "backend"])
def test_info_errors_one_line_exit_1(capsys, tmp_path, case):
    target = {
        "missing": str(tmp_path / "nope.mp4"),
        "dir": str(tmp_path),
        "empty": write_garbage(tmp_path / "e.mp4", "empty"),
        "random": write_garbage(tmp_path / "r.mp4", "random"),
        "text": write_garbage(tmp_path / "t.txt", "text"),
        "backend": sample_clip("bikes.mp4"),
    }[case]
    extra = ["--backend", "ffmpeg"] if case == "backend" else []
    t0 = time.perf_counter()
    assert run(["info", target, *extra]) == 1
    assert time.perf_counter() - t0 < 5
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and captured.out == ""
    if case != "backend":
        assert lines[0].startswith(f"error: {target}: ")


@pytest.mark.timeout(60)
def test_info_real_subprocess(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "vidsift")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "vidsift"]
    ok = subprocess.run([*cmd, "info", "--json", sample_clip("bikes.mp4")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["n_frames"] == 250
    bad = subprocess.run([*cmd, "info", str(tmp_path / "nope.mp4")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"error: {tmp_path / 'nope.mp4'}: no such file"


def test_info_scan_progress_bar_stays_off_stdout(capsys, monkeypatch, tmp_path):
    import vidsift.cli.info as info_cmd

    monkeypatch.setattr(info_cmd, "PROGRESS_AFTER_S", -1.0)  # show the bar at once
    path = make_video(tmp_path / "clip.mp4", n_frames=80, size=(32, 32))
    data = _json(capsys, path, "--scan")  # stdout must stay pure JSON
    assert data["scan"]["decoded_frames"] == 80
