"""``vidsift eval``: accuracy of budgets/presets on Video-MME, MVBench, MLVU or NExT-QA
(layouts in vidsift/eval/README.md), resumable, on the local or Ray engine; ``--dataset probe``
runs the grounded probe (generated clips, the shipped trained model, every method x budget)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        dataset: str = typer.Option(..., "--dataset", "-d", help="videomme, mvbench, mlvu, nextqa or probe."),
        root: str = typer.Option(..., "--root", help="The dataset folder as its official release unpacks (probe: a folder the items are generated into)."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint folder, Hub id, or random:ARCH (probe: the shipped probe model by default)."),
        budget: Optional[str] = typer.Option(None, "--budget", "-b", help="Budgets to compare, comma-separated: 100%,25%,2048."),
        preset: Optional[str] = typer.Option(None, "--preset", help="Budget presets to compare, comma-separated."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Only the first N questions (probe: the first N clips; 24 by default)."),
        out: str = typer.Option("results.jsonl", "--out", "-o", help="JSONL results (resumable); a .summary.json is written beside it."),
        engine: str = typer.Option("local", "--engine", help="local or ray."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Model replicas."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
        dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
        max_new_tokens: int = typer.Option(8, "--max-new-tokens", help="Tokens to generate per answer."),
        split: Optional[str] = typer.Option(None, "--split", help="NExT-QA split (val, test)."),
        seed: int = typer.Option(0, "--seed", help="probe: generation seed of the items written into an empty --root."),
        methods: Optional[str] = typer.Option(None, "--methods", help="probe: method configurations, comma-separated (default: all)."),
        streams: int = typer.Option(4, "--streams", help="probe: stream clips for the now/recall families (0: none)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        allow_outside: bool = typer.Option(False, "--allow-outside", help="Let annotations name videos outside --root."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Evaluate multiple-choice accuracy per task and per budget/preset."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from ..batch import WorkerSpec, build_engine
        from ..errors import ConfigError
        from ..eval import load_dataset, parse_settings, run_eval

        if limit is not None and limit < 1:
            raise ConfigError(f"--limit {limit}", "must be >= 1")
        if dataset == "probe":
            _probe(root, model=model, seed=seed, methods=methods, budget=budget, preset=preset, videos=limit or 24,
                   streams=streams, out=out, as_json=as_json, progress=progress)
            return
        if model is None:
            raise ConfigError("--model", "required for this dataset")
        options = {"split": split} if split else {}
        if split and dataset != "nextqa":
            raise ConfigError("--split", "only NExT-QA has splits")
        items = load_dataset(dataset, root, limit=limit, allow_outside=allow_outside, **options)
        settings = parse_settings(budget.split(",") if budget else None, preset.split(",") if preset else None)
        spec = WorkerSpec(model=model, device=device, dtype=dtype, max_new_tokens=max_new_tokens)
        report = run_eval(items, spec, engine=build_engine(engine, workers=workers, address=address), out=out,
                          settings=settings, progress=progress)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
            return
        from rich.console import Console

        console = Console()
        for table in report.table():
            console.print(table)


def _probe(root: str, *, model: Optional[str], seed: int, methods: Optional[str], budget: Optional[str],
           preset: Optional[str], videos: int, streams: int, out: str, as_json: bool, progress: bool) -> None:
    from ..errors import ConfigError
    from ..probe.evaluate import BUDGETS, PRESET_NAMES, evaluate
    from ..types import Budget

    budgets = BUDGETS
    if budget:
        parsed = [Budget.parse(b.strip()) for b in budget.split(",") if b.strip()]
        if any(b.fraction is None for b in parsed):
            raise ConfigError(f"--budget {budget}", "the probe compares shares of the full tokens (100%,50%,25%,10%)")
        budgets = tuple(sorted({b.fraction for b in parsed} | {1.0}, reverse=True))
    presets = PRESET_NAMES if preset is None else tuple(p.strip() for p in preset.split(",") if p.strip() not in ("", "none"))
    if streams < 0:
        raise ConfigError(f"--streams {streams}", "must be >= 0")
    summary = evaluate(root, model=model, seed=seed, methods=methods.split(",") if methods else None, budgets=budgets,
                       presets=presets, out=out, videos=videos, stream_videos=streams, progress=progress)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console

    from ..probe.report import tables

    console = Console(highlight=False)
    for table in tables(summary):
        console.print(table)
