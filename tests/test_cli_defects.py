"""Small CLI defects a new user met (issue 26, item 7), each checked through `vidsift.cli.app.run`:
``--debug`` anywhere on the line, errors naming the flag typed, unknown datasets listing every
dataset (``probe`` too), an unwritable ``--out`` as one typed line, and ``vidsift eval --dataset
probe`` naming its files, running presets only when asked, building its per-family table from the
budgets it ran, without warnings."""

from __future__ import annotations

import pytest

from vidsift.cli.app import debug_first, run
from vidsift.errors import VidsiftError


@pytest.fixture
def no_debug(monkeypatch):
    monkeypatch.setenv("VIDSIFT_DEBUG", "0")  # restored after: the root command sets it under --debug


@pytest.mark.parametrize("argv", [["info", "nope.mp4", "--debug"], ["--debug", "info", "nope.mp4"],
                                  ["plan", "--debug", "nope.mp4", "--json"]])
def test_debug_is_accepted_anywhere_on_the_line(argv, no_debug, capsys):
    with pytest.raises(VidsiftError, match="nope.mp4: no such file"):  # --debug: the traceback, not a usage error
        run(argv)
    assert "No such option" not in capsys.readouterr().err


def test_debug_after_a_double_dash_is_an_argument():
    assert debug_first(["ask", "--", "--debug"]) == ["ask", "--", "--debug"]
    assert debug_first(["ask", "x", "--debug", "q"]) == ["--debug", "ask", "x", "q"]


@pytest.mark.parametrize("flags, line", [
    (["--fps", "0"], "error: --fps 0: must be > 0"),
    (["--start", "20"], "error: --start 20: past the end of the video"),
    (["--start", "1", "--end", "0.5"], "error: --end 0.5: must be > --start 1"),
    (["--max-new-tokens", "0"], "error: --max-new-tokens 0: must be >= 1"),
    (["--max-frames", "0"], "error: --max-frames 0: must be an int >= 1"),
])
def test_errors_name_the_flag_the_user_typed(flags, line, tmp_video, no_debug, capsys):
    assert run(["ask", tmp_video, "What?", "--model", "random:tiny-qwen2.5-vl", *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(line), err
    assert "_s=" not in err and "max_new_tokens" not in err and "fps=" not in err


@pytest.mark.parametrize("extra", [[], ["--model", "random:tiny-qwen2.5-vl"]])
def test_an_unknown_dataset_names_every_dataset_probe_included(extra, tmp_path, no_debug, capsys):
    assert run(["eval", "--dataset", "Probx", "--root", str(tmp_path), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: --dataset Probx: unknown dataset; choose one of: mlvu, mvbench, nextqa, probe, videomme", err


def test_dataset_names_ignore_case(tmp_path, no_debug, capsys):
    assert run(["eval", "--dataset", "VideoMME", "--root", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.strip() == ("error: --model: required for --dataset videomme "
                                               "(only probe has a default model)")


@pytest.mark.parametrize("argv", [
    ["eval", "--dataset", "probe", "--root", "{root}", "--out", "/proc/vidsift/r.jsonl"],
    ["batch", "{root}", "--model", "random:tiny-qwen2.5-vl", "--question", "q", "--out", "/proc/vidsift/a.jsonl"],
    ["plan", "{video}", "--out", "/proc/vidsift/plan"],
])
def test_an_unwritable_out_is_one_typed_line(argv, tmp_video, tmp_path, no_debug, capsys):
    root = tmp_path / "root"
    root.mkdir()
    (root / "clip.mp4").write_bytes(open(tmp_video, "rb").read())
    assert run([a.format(root=root, video=tmp_video) for a in argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out /proc/vidsift/") and "cannot write here" in err[0], err
    assert not any(root.iterdir()) or [p.name for p in root.iterdir()] == ["clip.mp4"]


def test_probe_eval_names_its_files_runs_no_unasked_preset_and_tables_the_budgets_it_ran(tmp_path, no_debug, capsys):
    out = tmp_path / "r.jsonl"
    code = run(["eval", "--dataset", "probe", "--root", str(tmp_path / "items"), "--limit", "1", "--methods", "uniform",
                "--budget", "100%,25%", "--streams", "0", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "preset" not in captured.out  # no --preset: no preset settings, no preset column
    assert "uniform@25%" in captured.out and "10%" not in captured.out  # the per-family table: the budget that ran
    assert "warning" not in captured.err.lower(), captured.err
    assert captured.err.strip().splitlines()[-1] == f"wrote {out}, {out.with_suffix('.summary.json')}, {out.with_suffix('.png')}"
    settings = [line.split('"setting": "')[1].split('"')[0] for line in out.read_text().splitlines()
                if '"setting": "' in line]
    assert set(settings) == {"full@100%", "uniform@25%"}


def test_serve_on_a_busy_port_says_so_before_serving(no_debug, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = run(["serve", "--model", "random:tiny-qwen2.5-vl", "--port", str(port)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err == f"error: 127.0.0.1:{port}: address already in use", err


@pytest.mark.parametrize("command", [["info"], ["plan"], ["ask", "{url}", "q", "--model", "random:tiny-qwen2.5-vl"]])
def test_an_unreachable_url_cannot_connect(command, no_debug, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/clip.mp4"
    argv = [a.format(url=url) for a in command] if len(command) > 1 else [*command, url]
    assert run(argv) == 1
    assert capsys.readouterr().err.strip() == f"error: {url}: cannot connect (connection refused)"
