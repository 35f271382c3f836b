"""``vidsift bench``: time, TTFT, decode speed, KV bytes, peak memory and FLOPs of budgets and
presets against the full-token run, as a table, JSON and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        model: str = typer.Option(..., "--model", "-m", help="Checkpoint folder, Hub id, or random:ARCH."),
        video: Optional[str] = typer.Option(None, "--video", help="Video to benchmark on."),
        synthetic: Optional[float] = typer.Option(None, "--synthetic", help="Synthesise a video of this many seconds instead."),
        frames: int = typer.Option(32, "--frames", help="Candidate frames sampled evenly from the video."),
        budgets: str = typer.Option("100%,50%,25%,10%", "--budgets", help="Budgets compared with full, comma-separated."),
        presets: Optional[str] = typer.Option(None, "--presets", "--preset", help="Budget presets to add, comma-separated: fast, balanced, faithful, mustdrop."),
        allocation: Optional[str] = typer.Option(None, "--allocation", help="How every budget's plan spends it (relevance, lean, spread); default: the planner's."),
        repeat: int = typer.Option(3, "--repeat", "-r", help="Measured rounds (medians are reported)."),
        warmup: int = typer.Option(1, "--warmup", help="Unmeasured runs per setting first."),
        warmup_mode: str = typer.Option("each", "--warmup-mode", help="each: warm every setting; cheapest: only the last listed (smallest) one."),
        question: str = typer.Option("What happens in this video?", "--question", "-q"),
        max_new_tokens: int = typer.Option(16, "--max-new-tokens", help="Tokens generated per run."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
        dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
        out: str = typer.Option("bench-out", "--out", "-o", help="Folder for bench.json and bench.png."),
        as_json: bool = typer.Option(False, "--json", help="Print the JSON report to stdout (the table goes to stderr)."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Benchmark budgets against the full-token run on one video."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from ..batch.worker import resolve_model
        from ..bench import bench_table, parse_bench_settings, run_bench, synthesize_video, write_json, write_plot
        from ..errors import ConfigError
        from ..pipeline.pipeline import Pipeline
        from .output import console as make_console

        if (video is None) == (synthetic is None):
            raise ConfigError("--video/--synthetic", "give exactly one: a video path or a synthetic length in seconds")
        if video is not None and not Path(video).is_file():
            raise ConfigError(video, "no such video file")
        settings = parse_bench_settings(budgets, presets, allocation=allocation)
        out_dir = Path(out)
        from .output import writable_out

        writable_out(out_dir, folder=True)
        if synthetic is not None:
            video = str(synthesize_video(out_dir / f"synthetic-{synthetic:g}s.mp4", seconds=synthetic))
        console = make_console(stderr=as_json)  # the table (stderr when --json takes stdout)
        log = make_console(stderr=True)  # status and progress lines: always stderr
        with log.status("loading the model"):
            pipe = Pipeline.from_pretrained(resolve_model(model), device=device, dtype=dtype)
        pipe.name = model
        with log.status("benchmarking") as status:
            def on_run(name: str, i: int) -> None:
                status.update(f"benchmarking: {name} (run {i + 1})")
                if not log.is_terminal:  # logs of long runs still show progress
                    log.log(f"benchmarking: {name} (run {i + 1})")

            report = run_bench(pipe, video, question=question, settings=settings, repeat=repeat, warmup=warmup,
                               frames=frames, max_new_tokens=max_new_tokens, warmup_mode=warmup_mode, on_run=on_run)
        json_path = write_json(report, out_dir / "bench.json")
        png_path = write_plot(report, out_dir / "bench.png")
        console.print(bench_table(report))
        log.print(f"wrote {json_path} and {png_path}")
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
