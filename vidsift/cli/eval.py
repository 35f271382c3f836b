"""``vidsift eval``: accuracy of budgets/presets on Video-MME, MVBench, MLVU or NExT-QA
(layouts in vidsift/eval/README.md), resumable, on the local or Ray engine."""

from __future__ import annotations

import json
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        dataset: str = typer.Option(..., "--dataset", "-d", help="videomme, mvbench, mlvu or nextqa."),
        root: str = typer.Option(..., "--root", help="The dataset folder (see vidsift/eval/README.md)."),
        model: str = typer.Option(..., "--model", "-m", help="Checkpoint folder, Hub id, or random:ARCH."),
        budget: Optional[str] = typer.Option(None, "--budget", "-b", help="Budgets to compare, comma-separated: 100%,25%,2048."),
        preset: Optional[str] = typer.Option(None, "--preset", help="Budget presets to compare, comma-separated."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Only the first N questions."),
        out: str = typer.Option("results.jsonl", "--out", "-o", help="JSONL results (resumable); a .summary.json is written beside it."),
        engine: str = typer.Option("local", "--engine", help="local or ray."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Model replicas."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
        dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16, float16."),
        max_new_tokens: int = typer.Option(8, "--max-new-tokens", help="Tokens to generate per answer."),
        split: Optional[str] = typer.Option(None, "--split", help="NExT-QA split (val, test)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Evaluate multiple-choice accuracy per task and per budget/preset."""
        from ..batch import WorkerSpec, build_engine
        from ..errors import ConfigError
        from ..eval import load_dataset, parse_settings, run_eval

        if limit is not None and limit < 1:
            raise ConfigError(f"--limit {limit}", "must be >= 1")
        options = {"split": split} if split else {}
        if split and dataset != "nextqa":
            raise ConfigError("--split", "only NExT-QA has splits")
        items = load_dataset(dataset, root, limit=limit, **options)
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
