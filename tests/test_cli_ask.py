"""``vidsift ask`` end to end on a tiny random checkpoint, plus its one-line errors."""

from __future__ import annotations

import json

import pytest

from vidsift.cli.app import run
from vidsift.pipeline.archs import build_checkpoint

from videos import make_video


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return str(build_checkpoint("tiny-llava-onevision", tmp_path_factory.mktemp("llava")))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("vid") / "clip.mp4", n_frames=48, fps=24, size=(96, 64))


def test_ask_json(ckpt, video, capsys):
    code = run(["ask", video, "What moves?", "--model", ckpt, "--budget", "50%", "--fps", "2",
                "--max-new-tokens", "3", "--device", "cpu", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(out)
    assert set(data) == {"answer", "plan", "stats"} and isinstance(data["answer"], str)
    assert data["plan"]["total_tokens"] == data["stats"]["tokens_in_prompt"] <= data["stats"]["tokens_budget"]
    assert data["stats"]["tokens_budget"] == round(0.5 * data["stats"]["tokens_full"])
    assert data["stats"]["new_tokens"] <= 3 and data["stats"]["ttft_s"] > 0


def test_ask_summary(ckpt, video, capsys):
    code = run(["ask", video, "What moves?", "--model", ckpt, "--budget", "8", "--fps", "2", "--selector", "uniform",
                "--max-new-tokens", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "visual tokens" in out and "TTFT" in out and "in prompt 8" in out


def test_random_model_builds_once_offline(video, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    args = ["ask", video, "Hi?", "--model", "random:tiny-llava-onevision", "--max-frames", "2", "--max-new-tokens", "1", "--json"]
    assert run(args) == 0
    assert (tmp_path / "vidsift" / "random" / "tiny-llava-onevision" / "config.json").is_file()
    assert json.loads(capsys.readouterr().out)["stats"]["frames_planned"] == 2


@pytest.mark.parametrize("model, reason", [
    ("{tmp}/missing", "no such file or directory"),
    ("{text}", "not a vision-language model (model_type 'qwen2')"),
    ("{tmp}", "not a model folder (no config.json)"),
    ("random:nope", "unknown architecture"),
])
def test_bad_model_is_one_line(model, reason, video, tmp_path, capsys):
    from transformers import Qwen2Config

    text = tmp_path / "text-only"
    Qwen2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                intermediate_size=32, vocab_size=300).save_pretrained(text)
    model = model.format(tmp=tmp_path / "empty", text=text)
    (tmp_path / "empty").mkdir()
    code = run(["ask", video, "q", "--model", model])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(f"error: {model}: ") and reason in err


def test_bad_flags(ckpt, video, capsys):
    assert run(["ask", video, "q", "--model", ckpt, "--budget", "lots"]) == 1
    assert "not a budget" in capsys.readouterr().err
    assert run(["ask", video, "q", "--model", ckpt, "--preset", "no-such-preset"]) == 1
    assert "unknown preset" in capsys.readouterr().err
    assert run(["ask", video, "q", "--model", ckpt, "--dtype", "int3"]) == 1
    assert "int3: unknown dtype" in capsys.readouterr().err
    assert run(["ask", str(video) + ".missing", "q", "--model", ckpt]) == 1
    assert capsys.readouterr().err.count("\n") == 1
