"""What the CLI prints: file names and model text literally (no rich markup), warnings as one
line ``warning: <input>: <reason>`` without source paths, and a closed pipe is not an error."""

from __future__ import annotations

import io
import json
import shutil
import sys

import pytest

from vidsift.cli.app import run
from vidsift.pipeline.adapters.base import ModelAdapter

from videos import corrupt_file, make_video

ODD_NAME = "a [b]x[i].mp4"
ANSWER = "It says [/a] and [bold]not bold[/bold]."


@pytest.fixture(scope="module")
def odd_video(tmp_path_factory, tmp_video):
    path = tmp_path_factory.mktemp("odd") / ODD_NAME
    shutil.copy(tmp_video, path)
    return str(path)


def test_info_and_plan_print_the_file_name_literally(odd_video, capsys):
    assert run(["info", odd_video]) == 0
    assert ODD_NAME in capsys.readouterr().out
    assert run(["plan", odd_video, "--max-frames", "4"]) == 0
    assert ODD_NAME in capsys.readouterr().out


def test_ask_prints_model_text_literally(odd_video, monkeypatch, capsys):
    """The model's text (made to contain markup-like brackets) is printed as it is, no MarkupError."""
    monkeypatch.setattr(ModelAdapter, "decode", lambda self, ids: [ANSWER] * len(ids))
    assert run(["ask", odd_video, "Q?", "--model", "random:tiny-smolvlm2", "--max-frames", "2", "--max-new-tokens", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ANSWER
    assert run(["ask", odd_video, "Q?", "--model", "random:tiny-smolvlm2", "--max-frames", "2", "--max-new-tokens", "1",
                "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["answer"] == ANSWER and data["plan"]["video"].endswith(ODD_NAME)


def test_decode_warnings_are_one_line_without_source_paths(tmp_path, capsys):
    damaged = corrupt_file(make_video(tmp_path / "full.mp4", n_frames=96), tmp_path / "damaged.mp4", at=0.5, n_bytes=3000)
    assert run(["plan", damaged, "--max-frames", "8", "--json"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[")]  # decoder's own log lines
    assert err and all(line.startswith(f"warning: {damaged}: ") for line in err), err
    assert not any(".py:" in line or "warnings.warn" in line for line in err)


class _ClosingPipe(io.StringIO):
    """stdout whose reader leaves after the first write: later writes raise BrokenPipeError."""

    def write(self, text: str) -> int:
        if self.getvalue():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


@pytest.mark.parametrize("argv", [["plan", "{video}", "--max-frames", "8"]])
def test_a_closed_pipe_is_not_an_error(argv, tmp_video, monkeypatch, capsys):
    """``vidsift plan VIDEO | head -1``: the reader leaves after one line; vidsift exits 0, silently."""
    pipe = _ClosingPipe()
    monkeypatch.setattr(sys, "stdout", pipe)
    assert run([a.format(video=tmp_video) for a in argv]) == 0
    assert pipe.getvalue()
    assert capsys.readouterr().err == ""


def test_ask_reports_its_stages_as_they_start(tiny_checkpoint, tmp_video):
    """What the CLI's status line shows on a terminal: each stage, in order, as it starts."""
    from models import load_tiny_adapter
    from vidsift.cli.ask import STAGE_LABELS
    from vidsift.pipeline.pipeline import Pipeline

    pipe = Pipeline(load_tiny_adapter(tiny_checkpoint("tiny-smolvlm2")))
    seen: list[str] = []
    pipe.on_stage = seen.append
    pipe.ask(tmp_video, "Q?", max_frames=4, max_new_tokens=1, budget="50%")
    assert seen == ["decode", "score", "select", "encode", "reduce", "build", "generate"]
    assert set(seen) <= set(STAGE_LABELS)


def test_info_scan_writes_nothing_to_stderr_off_a_terminal(tmp_video, monkeypatch, capsys):
    """The scan's progress bar is for terminals; piped or logged, stderr stays empty."""
    monkeypatch.setattr("vidsift.cli.info.PROGRESS_AFTER_S", 0.0)
    assert run(["info", tmp_video, "--scan"]) == 0
    assert capsys.readouterr().err == ""
