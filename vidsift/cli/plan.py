"""``vidsift plan VIDEO``: which frames a video LLM should see under a token budget, and how many
tokens each gets, without loading the LLM. Prints a table (or ``--json``); ``--out DIR`` writes
``plan.json`` and ``contact_sheet.png`` (the chosen keyframes, labelled with time, score, tokens).

Candidates are sampled and decoded as ``vidsift ask`` samples them (1 fps, at most 64, up to
1080p), so the plan is a faithful preview; ``--model M`` plans with that model's own tokens per
frame (and Qwen's frame pairing): exactly the plan ``vidsift ask --model M`` would use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads


def _model_plan(model: str, video: str, query: Optional[str], options: dict):
    """The plan `Pipeline.ask` would make with ``model`` (checked before the model loads; the
    options are validated and the members built once, by `check_ask`, and handed on)."""
    from ..pipeline.check import check_ask
    from ..pipeline.options import AskOptions

    run = check_ask(video, query or "(plan preview)", model=model, ask_options=AskOptions.from_cli(**options))
    from ..pipeline.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(model)
    plan = pipe.plan(video, query, run)
    if "scorer_calls" not in plan.stats:
        return plan, pipe.candidates(video, run)
    return plan, pipe.kept_frames(video, pipe.index(video, run), plan)  # a search plan: the index is in memory


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_cmd(
        video: str = typer.Argument(..., metavar="VIDEO", help="Video file."),
        query: Optional[str] = typer.Option(None, "--query", "-q", help="Question the frames should be relevant to."),
        budget: Optional[str] = typer.Option(None, "--budget", "-b", help="Visual tokens: a count (2048), a share (0.25, 1.0 = all) or a percentage (25%), or a preset (fast, balanced, faithful, mustdrop). Default: all."),
        fps: Optional[float] = typer.Option(None, "--fps", help="Candidate frames per second (default 1, as ask)."),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Cap on candidate frames (default 64, as ask)."),
        frames: Optional[int] = typer.Option(None, "--frames", "-k", help="Keyframes to keep (default: from the budget)."),
        scorer: Optional[str] = typer.Option(None, "--scorer", help="uniform, clip:MODEL, text:MODEL, mllm (with --model) (or NAME:key=value,...). Default: uniform; with --model as ask (mllm when the search runs)."),
        search: str = typer.Option("auto", "--search", help="With --model: the temporal search over the whole video, as ask (auto, on, off)."),
        selector: str = typer.Option("kcenter", "--selector", help="uniform, topk, kcenter, maxmin, kmeans, mmr[:weight=W]."),
        allocator: str = typer.Option("proportional", "--allocator", help="proportional[:alpha=A] or uniform."),
        tokens_per_frame: Optional[float] = typer.Option(None, "--tokens-per-frame", help="Visual tokens of one full frame (default 196; with --model: the model's)."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="Plan with this model's tokens per frame (loads it): the exact plan of ask --model."),
        out: Optional[Path] = typer.Option(None, "--out", help="Write plan.json and contact_sheet.png here."),
        as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Plan keyframes and visual tokens per frame under a budget (no LLM needed)."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from ..errors import ConfigError
        from ..selectors import plan_video

        if frames is not None and frames < 1:
            raise ConfigError(f"--frames {frames}", "must be >= 1")
        if tokens_per_frame is not None and tokens_per_frame <= 0:
            raise ConfigError(f"--tokens-per-frame {tokens_per_frame:g}", "must be > 0")
        if out is not None:
            from .output import writable_out

            writable_out(out, folder=True)
        if model is None:
            plan, candidates = plan_video(video, query, budget=budget, fps=fps, max_frames=max_frames, frames=frames, scorer=scorer or "uniform",
                                          selector=selector, allocator=allocator, tokens_per_frame=tokens_per_frame or 196)
        else:
            if tokens_per_frame is not None:
                raise ConfigError("--tokens-per-frame", "not with --model (the model decides its tokens per frame)")
            plan, candidates = _model_plan(model, video, query, dict(budget=budget, fps=fps, max_frames=max_frames, frames=frames,
                                                                      scorer=scorer, selector=selector, allocator=allocator,
                                                                      search=search))
        if query:  # once, after the plan (a bad video or spec fails first)
            from .output import note_unused_query

            note_unused_query(plan.settings.get("scorer") or scorer)
        if out is not None:
            from ..selectors.contact_sheet import save_contact_sheet

            (out / "plan.json").write_text(plan.to_json(indent=2))
            save_contact_sheet(plan, candidates, out / "contact_sheet.png")
        if as_json:
            typer.echo(json.dumps(plan.to_dict(), indent=2))
            return
        from rich.table import Table

        from .output import console as make_console

        full = plan.stats["tokens_full"]
        table = Table(title=f"{Path(video).name}  ·  {len(plan.frames)} of {plan.stats['n_candidates']} frames  ·  "
                            f"{plan.total_tokens}/{plan.budget} tokens (full video {full})")
        for col, kw in (("#", {"justify": "right"}), ("frame", {"justify": "right"}), ("time", {"justify": "right"}),
                        ("score", {"justify": "right"}), ("tokens", {"justify": "right"}), ("", {})):
            table.add_column(col, **kw)
        per_frame = max(1, int(round(plan.settings["tokens_per_frame"] + 0.4999)))
        for i, f in enumerate(plan.frames):
            bar = "█" * max(1, round(12 * f.tokens / per_frame))
            table.add_row(str(i), str(f.index), f"{f.pts_seconds:.2f}s", f"{f.score:.3f}", str(f.tokens), bar)
        console = make_console()
        console.print(table)
        t = plan.stats["time_s"]
        if "scorer_calls" in plan.stats:  # a search plan: what was decoded, scored, and why frames were kept
            rounds = ", ".join(f"{r['kind']} {r['scored']}" for r in plan.stats["search_rounds"])
            console.print(f"search: {plan.stats['frames_decoded_scan']} frames in the index "
                          f"({'from disk' if plan.stats['index_cached'] else 'built now'})  ·  scorer {plan.settings['scorer']} "
                          f"on {plan.stats['scorer_calls']} of {plan.stats['scorer_calls_dense']} ({rounds})  ·  "
                          f"allocation {plan.settings['allocation']}")
            kept = [k for k in plan.stats["kept"] if k["why"] != "coverage"]
            for k in kept:
                console.print(f"  kept {k['pts_seconds']:.1f}s: {k['why']}")
        else:
            console.print(f"scenes {plan.stats['n_segments']} (covered {plan.stats.get('segments_covered', '-')})  ·  "
                          f"scorer {plan.settings['scorer']}  ·  selector {plan.settings.get('selector', '-')}  ·  "
                          f"allocator {plan.settings.get('allocator', plan.settings.get('allocation'))}")
        console.print("time " + "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in t.items()))
        if out is not None:
            console.print(f"wrote {out / 'plan.json'} and {out / 'contact_sheet.png'}")
