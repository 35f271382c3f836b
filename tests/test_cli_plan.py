"""``vidsift plan``: table, --json keys, --out writes plan.json and a contact sheet, one-line errors."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from videos import make_scene_video, sample_clip
from vidsift.cli.app import run
from vidsift.selectors import TokenPlan


def test_plan_json_and_out(tmp_path, capsys):
    path = sample_clip("bigbuckbunny.mp4")
    out = tmp_path / "out"
    code = run(["plan", path, "--budget", "1500", "--fps", "10", "--max-frames", "48", "--json", "--out", str(out)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"video", "budget", "total_tokens", "frames", "stats"}
    assert data["budget"] == 1500 and data["total_tokens"] <= 1500
    assert set(data["frames"][0]) == {"index", "pts_seconds", "score", "tokens"}
    assert data["stats"]["n_candidates"] == 48 and "select" in data["stats"]["time_s"]
    saved = TokenPlan.from_dict(json.loads((out / "plan.json").read_text()))
    assert saved.to_dict()["frames"] == data["frames"]
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.mode == "RGB" and sheet.width >= 240 and sheet.height >= 135
    # not a blank canvas: thumbnails were pasted
    assert np.asarray(sheet).std() > 20


def test_plan_table_with_scenes(tmp_path, capsys):
    video, _ = make_scene_video(tmp_path / "s.mp4", scenes=[(0, 12), (1, 3), (2, 12)], fps=12)
    code = run(["plan", video, "--budget", "25%", "--frames", "3", "--selector", "maxmin", "--allocator", "uniform",
                "--tokens-per-frame", "64"])
    text = capsys.readouterr().out
    assert code == 0
    assert "s.mp4" in text and "tokens" in text and "scenes 3 (covered 3)" in text


def test_plan_errors_are_one_line(tmp_path, capsys):
    assert run(["plan", str(tmp_path / "nope.mp4")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope.mp4" in err and "\n" not in err
    path = sample_clip("bikes.mp4")
    for args, needle in ((["--selector", "best"], "unknown selector"), (["--budget", "many"], "budget"),
                         (["--frames", "0"], "--frames"), (["--scorer", "clip"], "clip:MODEL")):
        assert run(["plan", path, "--max-frames", "8", *args]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and needle in err and "\n" not in err


def test_plan_is_a_faithful_preview_of_ask(capsys):
    """plan samples and decodes as ask does; with --model it is ask's plan, frame for frame."""
    path = sample_clip("bikes.mp4")
    common = ["--budget", "25%", "--model", "random:tiny-qwen2.5-vl", "--json"]
    assert run(["plan", path, *common]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert run(["ask", path, "Q?", *common, "--max-new-tokens", "1"]) == 0
    asked = json.loads(capsys.readouterr().out)["plan"]
    assert planned["frames"] == asked["frames"] and planned["budget"] == asked["budget"]
    assert run(["plan", path, "--budget", "25%", "--json"]) == 0  # no model: same candidates (1 fps, up to 64)
    assert json.loads(capsys.readouterr().out)["stats"]["n_candidates"] == asked["stats"]["n_candidates"] == 10
