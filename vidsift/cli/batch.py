"""``vidsift batch MANIFEST``: answer a folder of videos (+ --question) or a JSONL/CSV manifest of
video + question, locally or on Ray, into resumable JSONL (answer, plan, stats per job)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch(
        manifest: str = typer.Argument(..., metavar="MANIFEST", help="A folder of videos, or a .jsonl/.csv file with video and question columns."),
        model: str = typer.Option(..., "--model", "-m", help="Checkpoint folder, Hub id, or random:ARCH."),
        question: Optional[str] = typer.Option(None, "--question", "-q", help="The question for a folder (or rows without one)."),
        out: str = typer.Option("answers.jsonl", "--out", "-o", help="JSONL output; finished jobs in it are skipped."),
        engine: str = typer.Option("local", "--engine", help="local or ray."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Model replicas (ray default: one per GPU, else 1)."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (auto, ray://host:10001)."),
        budget: Optional[str] = typer.Option(None, "--budget", "-b", help="Visual-token budget: 2048, 0.25, 25% or a preset."),
        preset: Optional[str] = typer.Option(None, "--preset", help="Budget preset: fast, balanced, faithful or mustdrop (--budget overrides its size)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
        dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
        max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="Tokens to generate per answer."),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip jobs already answered in --out."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        allow_outside: bool = typer.Option(False, "--allow-outside", help="Let the manifest name videos outside its own folder. Without it, symlinks are resolved: a link in the folder must lead inside it too."),
        allow_urls: bool = typer.Option(False, "--allow-urls", help="Let the manifest name URLs (http://, rtsp://, file:, ...)."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Answer many questions about many videos; a failing video is recorded and skipped."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from ..batch import WorkerSpec, build_engine, read_manifest, run_batch
        from .output import writable_out

        writable_out(out)
        runner = build_engine(engine, workers=workers, address=address)
        jobs = read_manifest(manifest, question=question, allow_outside=allow_outside, allow_urls=allow_urls)
        spec = WorkerSpec(model=model, device=device, dtype=dtype, budget=budget, max_new_tokens=max_new_tokens,
                          options={"preset": preset} if preset else {})
        summary = run_batch(jobs, spec, engine=runner, out=out, resume=resume, progress=progress)
        typer.echo(json.dumps(summary.to_dict()))
        if summary.failed:
            typer.echo(f"{summary.failed} job(s) failed; see 'error' in {out}", err=True)
