"""Hostile inputs (tests/hostile.py): headers that lie cost bounded memory and time, every decodable
frame survives broken timestamps, every short result is reported with its exact count, and a
deterministic mutation fuzz never ends in a traceback, a hang or a silently short result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from hostile import (
    MEASURED_CLI, drop_ts_frames, make_bad_brand, make_flv, make_lying_avi, make_negative_start, make_repeated_ts,
    make_resolution_change, make_shuffled_ts, make_wrapped_ts, straight_count,
)
from videos import corrupt_file, corrupt_frames, make_video, read_frame_code, truncate_file
from vidsift.frames import open_video, sample, scan_keyframes

pytestmark = pytest.mark.timeout(60)
TESTS = Path(__file__).parent


def _all_frames(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_video(path, **kw) as video:
            got = video.read(range(len(video.frame_times)))
            summary = video.report.summary()
    return got, summary, [str(w.message) for w in caught]


@pytest.mark.parametrize("case", ["neg_mkv", "neg_flv", "wrapped_ts", "repeated_ts", "shuffled_ts"])
def test_broken_timestamps_keep_every_frame(tmp_path, case):
    make = {"neg_mkv": lambda p: make_negative_start(p / "neg.mkv"),
            "neg_flv": lambda p: make_negative_start(p / "neg.flv"),
            "wrapped_ts": lambda p: make_wrapped_ts(p / "wrap.ts"),
            "repeated_ts": lambda p: make_repeated_ts(p / "rep.ts"),
            "shuffled_ts": lambda p: make_shuffled_ts(p / "shuf.ts")}[case]
    path = make(tmp_path)
    expected = straight_count(path)
    assert expected in (24, 48)
    got, summary, _ = _all_frames(path)
    assert len(got) == expected and summary["missing"] == 0
    assert [read_frame_code(img) for img in got.data] == list(range(expected))  # each in its place
    assert (got.pts_seconds >= 0).all() and (got.pts_seconds[1:] > got.pts_seconds[:-1]).all()
    with open_video(path) as video:  # sampling by time and random access agree
        assert [read_frame_code(img) for img in sample(video, fps=6).data] == list(range(0, expected, 4))
        assert [read_frame_code(img) for img in video.read([expected - 1, 3, 10]).data] == [expected - 1, 3, 10]
        assert len(scan_keyframes(video)) >= 1 and video.report.ok


def test_lying_header_costs_nothing(tmp_path):
    """An AVI whose headers claim 2e9 frames: the claim is ignored, the 48 real frames are used."""
    path = make_lying_avi(tmp_path / "liar.avi")
    t0 = time.perf_counter()
    with open_video(path) as video:
        assert video.info.n_frames == 48 and video.info.duration_s < 3
        assert any("claims 2000000000 frames" in w for w in video.report.warnings)
        assert len(sample(video, fps=1)) == 2 and len(sample(video, max_frames=64)) == 48
        assert len(sample(video)) == 48 and video.report.ok
    assert time.perf_counter() - t0 < 20  # ~0.1 s idle; slack for a loaded CI machine


@pytest.mark.parametrize("command", [["info", "--scan", "--json"], ["plan", "--json"]])
def test_lying_header_cli_bounded(tmp_path, command):
    path = make_lying_avi(tmp_path / "liar.avi")
    rss = tmp_path / "peak_rss_mb"
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", MEASURED_CLI, str(rss), command[0], path, *command[1:]], capture_output=True,
                         text=True, timeout=60, cwd=str(TESTS), env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    # the child's own peak (VmHWM; ru_maxrss would include this pytest process's size at the spawn,
    # which is where the 1.1 GB readings came from). The bug grew to 22.8 GB; measured: info 96 MB, plan 384 MB
    assert float(rss.read_text()) < 500
    assert seconds < 45  # measured 3-6 s idle (the issue asks < 10 s); slack for a loaded 2-core CI machine
    out = json.loads(run.stdout)
    if command[0] == "info":
        assert out["scan"]["decoded_frames"] == 48 and out["decode"]["missing"] == 0
    else:
        assert len(out["frames"]) > 0 and out["stats"]["decode"]["frames_expected"] == 48


def test_truncated_flv_reports_exact_count(tmp_path):
    """FLV has only a container duration: a cut-off tail is still counted, frame for frame."""
    cut = truncate_file(make_flv(tmp_path / "full.flv"), tmp_path / "cut.flv", keep=0.75)
    held = straight_count(cut)
    got, summary, messages = _all_frames(cut)
    assert len(got) == held < 96
    assert summary == {"frames_expected": 96, "frames_decoded": held, "missing": 96 - held,
                       "reason": summary["reason"]} and f"({96 - held} missing" in summary["reason"]
    assert any(f"({96 - held} missing" in m for m in messages)


@pytest.mark.parametrize("codec,drop", [("libx264", {40}), ("mpeg2video", {40, 41})])
def test_hole_in_the_middle_is_counted(tmp_path, codec, drop):
    src = make_video(tmp_path / "full.ts", n_frames=96, codec=codec)
    holed = drop_ts_frames(src, tmp_path / "holed.ts", drop)
    got, summary, messages = _all_frames(holed)
    assert len(got) == straight_count(holed) == 96 - len(drop)
    assert summary["missing"] == len(drop) and summary["frames_expected"] == 96
    assert any(f"timestamps skip {len(drop)} frame(s)" in m for m in messages)


def test_clean_files_report_nothing_missing(tmp_path):
    for ext in ("mp4", "mkv", "webm", "ts", "avi"):
        got, summary, messages = _all_frames(make_video(tmp_path / f"c.{ext}", n_frames=96))
        assert len(got) == 96 and summary == {"frames_expected": 96, "frames_decoded": 96, "missing": 0,
                                              "reason": None} and not messages, ext
    got, summary, messages = _all_frames(make_flv(tmp_path / "c.flv"))
    assert len(got) == 96 and summary["missing"] == 0 and not messages


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mutation_fuzz(tmp_path):
    """200 deterministic mutations of five clean clips, checked in one subprocess (its peak RSS is the
    bound): a one-line typed error, or every frame PyAV decodes straight through either delivered or
    counted missing in the report. Never a traceback, never 30 s on one file."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); from hostile import run_fuzz; run_fuzz({str(tmp_path)!r}, 200)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=280,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    *rows, peak = [json.loads(line) for line in run.stdout.splitlines()]
    # the fuzz process's own peak (VmHWM: 118 MB here); the lying-header bug grew to 22 GB. The 1.1 GB once
    # read here was ru_maxrss, which counts the pytest process's size when it spawned the fuzz process
    assert len(rows) == 200 and peak["peak_rss_mb"] < 1024
    assert [r["path"] for r in rows if "traceback" in r] == []
    assert max(r["seconds"] for r in rows) < 30
    errors = [r["error"] for r in rows if "error" in r]
    assert all("\n" not in e and e.startswith(str(tmp_path)) for e in errors)
    short = [r for r in rows if "frames" in r and r["frames"] + r["missing"] < r["straight"]]
    assert short == []  # silently short: fewer frames than PyAV decodes, and the report does not say so
    assert len(errors) < 40  # most mutations stay readable: the fuzz exercises decoding, not only opening


def test_messages_name_what_is_wrong(tmp_path):
    from vidsift.frames import VideoError, VideoNotFoundError

    loop = tmp_path / "loop.mp4"
    os.symlink(loop, loop)
    with pytest.raises(VideoNotFoundError, match="symlink that leads nowhere"):
        open_video(loop)
    src = make_video(tmp_path / "ok.mp4", n_frames=24, faststart=True)
    data = bytearray(Path(src).read_bytes())
    stsz = data.find(b"stsz")
    data[stsz + 4 : stsz + 40] = b"\xff" * 36  # a sample table that cannot be true
    (tmp_path / "bad_table.mp4").write_bytes(bytes(data))
    try:
        open_video(tmp_path / "bad_table.mp4").close()
    except VideoError as err:  # whatever fails, the index is there: never "moov atom is missing"
        assert "moov atom) is missing" not in str(err) and "\n" not in str(err)


def test_resolution_change_mid_file(tmp_path):
    """Two H.264 TS segments of 96x64 and 128x96 joined with ``cat``: every frame decodes, the second
    segment's are scaled to the first's size, and the report counts them (was: ValueError from
    stacking frames of two shapes)."""
    path = make_resolution_change(tmp_path / "joined.ts")
    assert straight_count(path) == 96
    got, summary, messages = _all_frames(path)
    assert got.data.shape == (96, 64, 96, 3) and summary["missing"] == 0 and summary["resized_frames"] == 48
    assert [read_frame_code(img) for img in got.data[:48]] == list(range(48))  # the first segment untouched
    assert any("resolution changes mid-file: frame 48" in m and "scaled to 96x64" in m for m in messages)
    with open_video(path) as video:  # random access into the second segment, and the keyframe pass
        assert video.read([90, 10]).data.shape == (2, 64, 96, 3) and len(scan_keyframes(video)) >= 2


def test_metadata_that_is_not_utf8_opens(tmp_path):
    """An mp4 brand of non-UTF-8 bytes (PyAV's open raised UnicodeDecodeError; the CLI printed
    ``error: UnicodeDecodeError: ...``): the file opens and decodes."""
    got, summary, _ = _all_frames(make_bad_brand(tmp_path / "brand.mp4"))
    assert len(got) == 24 and summary["missing"] == 0


def test_pyav_wrapper_errors_are_one_line(tmp_path):
    """Whatever PyAV raises while opening (here IndexError from its wrapper, as fuzzed files gave)
    is a one-line typed error naming the file."""
    import av

    from vidsift.frames import VideoError

    path = make_video(tmp_path / "ok.mp4", n_frames=6)
    real_open = av.open

    def broken_open(*args, **kwargs):  # PyAV's own open raising from its Python wrapper
        raise IndexError("list index out of range")

    av.open = broken_open
    try:
        with pytest.raises(VideoError) as caught:
            open_video(path)
    finally:
        av.open = real_open
    assert str(caught.value).startswith(f"{path}: ") and "IndexError" in str(caught.value) and "\n" not in str(caught.value)


def _cli_json(args, capsys) -> dict:
    from vidsift.cli.app import run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = run(args)
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.mark.timeout(120)
def test_plan_ask_and_scan_agree(tmp_path, tiny_checkpoint, capsys):
    """info --scan, plan and ask show the same file count for a file damaged in the middle, a
    truncated faststart mp4 and the resolution change (plan/ask said 96 decoded where the scan
    found 17 undecodable, and were one off on the truncated mp4). The damage sits on frames 60 and
    72: plan (1 fps: 0, 24, 48, 72) and ask (2 frames: 24, 72) both read 72, neither reads 60, which
    they count only by decoding the frames they skipped once they saw damage; damage only in frames
    a command never decodes stays unseen by it (the README says so, under "Errors")."""
    ckpt = str(tiny_checkpoint("tiny-llava-onevision"))
    files = {"mid_corrupt": corrupt_frames(make_video(tmp_path / "full.mp4", n_frames=96, gop=12), tmp_path / "mid.mp4",
                                           frames=[60, 72]),
             "cut_faststart": truncate_file(make_video(tmp_path / "fs.mp4", n_frames=96, faststart=True),
                                            tmp_path / "cut.mp4", keep=0.5),
             "joined": make_resolution_change(tmp_path / "joined.ts")}
    for name, path in files.items():
        scan = _cli_json(["info", path, "--scan", "--json"], capsys)["decode"]
        plan = _cli_json(["plan", path, "--json"], capsys)["stats"]["decode"]
        ask = _cli_json(["ask", path, "What?", "--model", ckpt, "--max-frames", "2", "--max-new-tokens", "1",
                         "--device", "cpu", "--json"], capsys)["plan"]["stats"]["decode"]
        count = lambda d: (d["frames_expected"], d["frames_decoded"], d["missing"])  # noqa: E731
        assert count(plan) == count(ask) == count(scan), (name, scan, plan, ask)
        assert (scan["missing"] > 0) == (name != "joined") and scan["frames_decoded"] + scan["missing"] == 96, name
