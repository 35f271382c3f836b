"""vidsift bench on a tiny random Qwen2.5-VL: settings parsing, the measured report (medians,
ratios to full, FLOPs), table/JSON/PNG outputs, the CLI end to end, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidsift.bench import (BenchReport, FlopModel, PeakMemory, bench_table, parse_bench_settings, run_bench,
                           synthesize_video, write_json, write_plot)
from vidsift.cli.app import run as cli
from vidsift.errors import ConfigError

MODEL = "random:tiny-qwen2.5-vl"


@pytest.fixture(scope="module")
def pipe():
    from vidsift.pipeline.pipeline import Pipeline

    return Pipeline.from_pretrained(MODEL, device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    return str(synthesize_video(tmp_path_factory.mktemp("bench") / "clip.mp4", seconds=6, fps=4, width=112, height=84))


def test_synthesized_video_has_the_asked_length(tmp_path: Path) -> None:
    import av

    path = synthesize_video(tmp_path / "s.mp4", seconds=3, fps=5, width=65, height=49)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert len(frames) == 15 and frames[0].shape == (48, 64, 3)
    assert (frames[0] != frames[-1]).any()
    with pytest.raises(ConfigError, match="--synthetic: length must be > 0"):
        synthesize_video(tmp_path / "x.mp4", seconds=0)


def test_settings_put_full_first_and_validate() -> None:
    settings = parse_bench_settings("100%,50%,10%,512", "fast")
    assert [s.name for s in settings] == ["full", "50%", "10%", "512", "preset:fast"]
    assert settings[0].overrides == {"budget": "all"} and settings[-1].overrides == {"preset": "fast"}
    with pytest.raises(ConfigError, match="not a budget; give a token count"):
        parse_bench_settings("half")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_bench_settings("50%,50%")


def test_peak_memory_sees_an_allocation() -> None:
    import numpy as np

    with PeakMemory("cpu", interval_s=0.001) as mem:
        block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
        block.sum()
        del block
    assert mem.rss_bytes > 32 * 1024 * 1024 and mem.cuda_bytes is None


def test_run_bench_measures_every_setting_against_full(pipe, clip: str, tmp_path: Path) -> None:
    report = run_bench(pipe, clip, settings=parse_bench_settings("50%,10%"), repeat=2, warmup=0, frames=8, max_new_tokens=4)
    assert isinstance(report, BenchReport) and report.frames == 8
    full, half, tenth = report.rows
    assert [r["setting"] for r in report.rows] == ["full", "50%", "10%"] and all(r["runs"] == 2 for r in report.rows)
    assert full["tokens_in_prompt"] == full["tokens_full"] > half["tokens_in_prompt"] > tenth["tokens_in_prompt"]
    assert tenth["tokens_in_prompt"] <= round(0.1 * full["tokens_full"]) + 1
    # the KV cache and the FLOPs estimate shrink with the tokens; ratios are relative to full
    assert full["kv_bytes"] > half["kv_bytes"] > tenth["kv_bytes"] > 0
    assert full["vs_full"]["kv_ratio"] == 1.0 and 0 < tenth["vs_full"]["kv_ratio"] < half["vs_full"]["kv_ratio"] < 1
    assert full["flops"]["total"] > half["flops"]["total"] > tenth["flops"]["total"] > 0
    assert tenth["flops"]["vision"] < full["flops"]["vision"]
    for row in report.rows:
        assert set(row["time_s"]) >= {"decode", "score", "select", "encode", "reduce", "prefill", "generate"}
        assert row["ttft_s"] > 0 and row["total_s"] >= row["ttft_s"] and 0 <= row["overhead_share"] < 1
        assert row["vs_full"]["ttft_speedup"] > 0 and row["cpu_s"] > 0 and row["vs_full"]["cpu_speedup"] > 0
    # the FLOPs bound beside every speed-up (issue 24), and each run's load average in the report
    assert tenth["vs_full"]["flops_bound"] == pytest.approx(full["flops"]["total"] / tenth["flops"]["total"])
    assert tenth["vs_full"]["flops_bound"] > half["vs_full"]["flops_bound"] > 1 == full["vs_full"]["flops_bound"]
    assert all(len(r["each"]) == 2 and len(r["each"][0]["load_before"]) == 3 for r in report.rows)
    assert report.environment["machine"]["load"] and "cores" in report.environment["machine"]
    # every run paid the vision tower: the encode cache was cleared between runs
    assert pipe.encode_calls >= 6
    data = json.loads(write_json(report, tmp_path / "b.json").read_text())
    assert data["rows"][2]["vs_full"]["tokens_ratio"] == pytest.approx(tenth["tokens_in_prompt"] / full["tokens_in_prompt"])
    png = write_plot(report, tmp_path / "b.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert bench_table(report).row_count == 3


def test_allocation_goes_with_every_budget(pipe, clip: str) -> None:
    """``--allocation lean`` reaches the plan of each reduced setting (issue 24: at most 1.2x the
    prompt's tokens encoded), where the default plan, spreading the budget, encodes more; the full
    run is untouched."""
    settings = parse_bench_settings("10%", "fast", allocation="lean")
    assert [s.overrides.get("allocation") for s in settings] == [None, "lean", "lean"]
    spread, lean = (run_bench(pipe, clip, settings=parse_bench_settings("10%", allocation=a), repeat=1, warmup=0,
                              frames=16, max_new_tokens=2).rows for a in (None, "lean"))
    assert lean[1]["allocation"] == "lean" and lean[0]["allocation"] is None
    assert lean[0]["tokens_encoded"] == spread[0]["tokens_encoded"] == spread[0]["tokens_full"]
    assert lean[1]["tokens_encoded"] <= 1.2 * lean[1]["tokens_in_prompt"]
    assert spread[1]["tokens_encoded"] > 1.2 * spread[1]["tokens_in_prompt"]
    with pytest.raises(ConfigError, match="choose from: relevance, lean, spread"):
        parse_bench_settings("10%", allocation="thin")


def test_flop_model_reads_the_configs(pipe) -> None:
    fm = FlopModel.from_model(pipe.adapter.model)
    assert fm.n_layers == pipe.adapter.model.config.get_text_config().num_hidden_layers
    assert fm.llm_layer_params > 0 and fm.vision_params > 0 and fm.patches_per_token == 4.0
    small, big = (fm.estimate(prompt_len=n, new_tokens=4, tokens_encoded=n, frames_encoded=4) for n in (50, 100))
    assert 2 * small["prefill"] < big["prefill"] < 4 * small["prefill"]  # linear + quadratic attention
    assert 2 * small["vision"] <= big["vision"] < 4 * small["vision"]


def test_cli_bench_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    code = cli(["bench", "--model", MODEL, "--synthetic", "4", "--frames", "4", "--budgets", "100%,25%",
                "--repeat", "1", "--warmup", "1", "--max-new-tokens", "2", "--device", "cpu", "--json", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert [r["setting"] for r in data["rows"]] == ["full", "25%"] and data["warmup"] == 1
    assert (out / "bench.json").is_file() and (out / "bench.png").is_file() and (out / "synthetic-4s.mp4").is_file()
    assert "vidsift bench" in captured.err  # the table goes to stderr with --json


@pytest.mark.parametrize("args, message", [
    (["--video", "/no/such.mp4"], "/no/such.mp4: no such video file"),
    ([], "--video/--synthetic: give exactly one"),
    (["--synthetic", "2", "--budgets", "lots"], "lots: not a budget"),
])
def test_cli_bench_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli(["bench", "--model", MODEL, "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"error: {message}") and err.count("\n") == 1, (code, err)


# `Pipeline.clear_cache`, which bench calls before every run, makes the next question decode and
# encode again; without it the cached frames/tokens are reused.
def test_clear_cache_makes_the_next_question_encode_again(pipe, clip: str) -> None:
    first = pipe.ask(clip, "What moves?", frames=4, max_new_tokens=1)
    calls = pipe.encode_calls
    again = pipe.ask(clip, "What moves?", frames=4, max_new_tokens=1)
    assert pipe.encode_calls == calls  # cached: the vision tower did not run
    assert again.text == first.text
    pipe.clear_cache()
    fresh = pipe.ask(clip, "What moves?", frames=4, max_new_tokens=1)
    assert pipe.encode_calls == calls + 1  # cleared: decoded and encoded again
    assert fresh.text == first.text and fresh.stats["tokens_in_prompt"] == first.stats["tokens_in_prompt"]
    pipe.clear_cache()
    pipe.clear_cache()  # idempotent on empty caches
