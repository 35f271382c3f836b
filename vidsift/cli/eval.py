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
        preset: Optional[str] = typer.Option(None, "--preset", "--presets", help="Budget presets to compare, comma-separated (probe: none unless given)."),
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
        relevance: bool = typer.Option(True, "--relevance/--no-relevance", help="probe: also measure the mllm scorer's per-frame relevance (AUC) over every sampled frame; a method table does not need it."),
        counterfactual: bool = typer.Option(False, "--counterfactual", help="probe: instead of the method table, ask each family of the clips and of re-rendered edits of them (recoloured star, moved star, main background not first, a triangle held longer, ...) at full tokens and report the share of pairs whose answer follows the edit."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Keep answers in --out whose model, options, video content and question are unchanged (--no-resume: answer every question again)."),
        allow_outside: bool = typer.Option(False, "--allow-outside", help="Let annotations name videos outside --root."),
        long: bool = typer.Option(False, "--long", help="probe: the long-video split instead (needle, when, order, count in videos of --durations, at one --budget, default 52 tokens): uniform vs the temporal search vs the search without relevance-true allocation vs a dense pass."),
        durations: str = typer.Option("120,600,1800,3600", "--durations", help="probe --long: video lengths in seconds, comma-separated."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Evaluate multiple-choice accuracy per task and per budget/preset."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from ..batch import WorkerSpec, build_engine
        from ..errors import ConfigError
        from ..eval import DATASETS, load_dataset, parse_settings, run_eval
        from .output import writable_out

        known = sorted([*DATASETS.names(), "probe"])
        if dataset.strip().lower() not in known:
            raise ConfigError(f"--dataset {dataset}", f"unknown dataset; choose one of: {', '.join(known)}")
        dataset = dataset.strip().lower()
        if limit is not None and limit < 1:
            raise ConfigError(f"--limit {limit}", "must be >= 1")
        if long and dataset != "probe":
            raise ConfigError("--long", "only for --dataset probe")
        writable_out(out)
        if dataset == "probe":
            if long:
                _long(root, model=model, seed=seed, durations=durations, videos=limit or 6, budget=budget, methods=methods,
                      out=out, as_json=as_json, progress=progress)
                return
            if counterfactual:
                _counterfactual(root, model=model, seed=seed, videos=limit or 24, out=out, as_json=as_json, progress=progress)
                return
            _probe(root, model=model, seed=seed, methods=methods, budget=budget, preset=preset, videos=limit or 24,
                   streams=streams, relevance=relevance, out=out, as_json=as_json, progress=progress, resume=resume)
            return
        if counterfactual or not relevance:
            raise ConfigError("--counterfactual" if counterfactual else "--no-relevance", "only for --dataset probe")
        if model is None:
            raise ConfigError("--model", f"required for --dataset {dataset} (only probe has a default model)")
        options = {"split": split} if split else {}
        if split and dataset != "nextqa":
            raise ConfigError("--split", "only NExT-QA has splits")
        items = load_dataset(dataset, root, limit=limit, allow_outside=allow_outside, **options)
        settings = parse_settings(budget.split(",") if budget else None, preset.split(",") if preset else None)
        spec = WorkerSpec(model=model, device=device, dtype=dtype, max_new_tokens=max_new_tokens)
        report = run_eval(items, spec, engine=build_engine(engine, workers=workers, address=address), out=out,
                          settings=settings, progress=progress, resume=resume)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
        else:
            from rich.console import Console

            console = Console()
            for table in report.table():
                console.print(table)
        _wrote(out, ".summary.json")


def _wrote(out: str, *suffixes: str) -> None:
    """Name the files this run wrote (stderr: --json keeps stdout for the summary)."""
    from pathlib import Path

    paths = [str(out), *(str(Path(out).with_suffix(s)) for s in suffixes)]
    typer.echo(f"wrote {', '.join(p for p in paths if Path(p).exists())}", err=True)


def _probe(root: str, *, model: Optional[str], seed: int, methods: Optional[str], budget: Optional[str],
           preset: Optional[str], videos: int, streams: int, relevance: bool, out: str, as_json: bool, progress: bool,
           resume: bool = True) -> None:
    from ..errors import ConfigError
    from ..probe.evaluate import BUDGETS, PRESET_NAMES, evaluate
    from ..types import Budget

    budgets = BUDGETS
    if budget:
        parsed = [Budget.parse(b.strip()) for b in budget.split(",") if b.strip()]
        if any(b.fraction is None for b in parsed):
            raise ConfigError(f"--budget {budget}", "the probe compares shares of the full tokens (100%,50%,25%,10%)")
        budgets = tuple(sorted({b.fraction for b in parsed} | {1.0}, reverse=True))
    presets = () if preset is None else tuple(p.strip() for p in preset.split(",") if p.strip() not in ("", "none"))
    unknown = [p for p in presets if p not in PRESET_NAMES]
    if unknown:
        raise ConfigError(f"--preset {', '.join(unknown)}", f"unknown preset; choose from: {', '.join(PRESET_NAMES)}")
    if streams < 0:
        raise ConfigError(f"--streams {streams}", "must be >= 0")
    summary = evaluate(root, model=model, seed=seed, methods=methods.split(",") if methods else None, budgets=budgets,
                       presets=presets, out=out, videos=videos, stream_videos=streams, relevance_eval=relevance,
                       progress=progress, resume=resume)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        from rich.console import Console

        from ..probe.report import tables

        console = Console(highlight=False)
        for table in tables(summary):
            console.print(table)
    _wrote(out, ".summary.json", ".png")


def _counterfactual(root: str, *, model: Optional[str], seed: int, videos: int, out: str, as_json: bool,
                    progress: bool) -> None:
    from ..probe.counterfactual import counterfactual

    summary = counterfactual(root, model=model, seed=seed, videos=videos, out=out, progress=progress)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"probe counterfactual pairs (seed {seed}, {summary['pairs']} pairs, full tokens)")
    for col in ("edit", "family", "pairs", "follows the edit %", "original right %", "edited answers"):
        table.add_column(col)
    for name, row in summary["per_edit"].items():
        pct = lambda x: "-" if x is None else f"{100 * x:.0f}"  # noqa: E731
        table.add_row(name, row["family"], str(row["pairs"]), pct(row["follows"]), pct(row["original_right"]),
                      ", ".join(f"{k}:{v}" for k, v in row["answers"].items()))
    Console(highlight=False).print(table)
    typer.echo("follows, per family: " + ", ".join(f"{f} {100 * v:.0f}%" for f, v in summary["per_family"].items()))


def _long(root: str, *, model: Optional[str], seed: int, durations: str, videos: int, budget: Optional[str],
          methods: Optional[str], out: str, as_json: bool, progress: bool) -> None:
    """The long-video split (`vidsift.probe.long_split`): a table per method, lengths as columns."""
    from ..errors import ConfigError
    from ..probe.long_split import BUDGET, evaluate_long

    try:
        lengths = tuple(float(d) for d in durations.split(","))
    except ValueError:
        raise ConfigError(f"--durations {durations}", "must be seconds, comma-separated (120,600)") from None
    if not lengths or min(lengths) < 30:
        raise ConfigError(f"--durations {durations}", "each must be >= 30 s")
    if budget is not None and "," in budget:
        raise ConfigError(f"--budget {budget}", "--long runs one budget")
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("long split", total=None)
    try:
        summary = evaluate_long(root, model=model, seed=seed, durations=lengths, videos=videos,
                                budget=budget or BUDGET, methods=methods.split(",") if methods else None, out=out,
                                progress=(lambda d, t: bar.update(task, completed=d, total=t)) if bar else None)
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cols = list(summary["videos"])
    for method, cells in summary["methods"].items():
        table = Table(title=f"long split · {method} · budget {summary['budget']}")
        table.add_column("")
        for c in cols:
            table.add_column(f"{float(c) / 60:g} min", justify="right")
        rows = [("accuracy %", lambda c: f"{100 * c['accuracy']:.0f}")]
        rows += [(f"  {f}", lambda c, f=f: f"{100 * c['families'].get(f, 0):.0f}") for f in ("needle", "when", "order", "count")]
        rows += [("evidence recall %", lambda c: f"{100 * c['evidence_recall']:.0f}"),
                 ("scorer calls", lambda c: f"{c['scorer_calls']:g} / {c['candidates']:g}"),
                 ("s / question", lambda c: f"{c['seconds']:.2f}")]
        for label, cell in rows:
            table.add_row(label, *[cell(cells[c]) if c in cells else "-" for c in cols])
        console.print(table)
    console.print("first question / cheap-pass decode alone (worst video): "
                  + ", ".join(f"{float(c) / 60:g} min {v['first_over_decode_max']:.1f}x" for c, v in summary["videos"].items()))
    for f in summary.get("files", []):
        console.print(f"wrote {f}")
