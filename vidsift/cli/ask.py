"""``vidsift ask VIDEO QUESTION``: answer one question about a video under a visual-token budget.

Prints the answer, then a short plan/stats summary; ``--json`` prints
``{"answer", "plan", "stats"}`` instead. The default model is LLaVA-OneVision 0.5B
(``llava-hf/llava-onevision-qwen2-0.5b-ov-hf``, the smallest supported real checkpoint with a
committed adapter); it must be downloaded first (``hf download ...``). ``--model random:<arch>``
builds a random-weight checkpoint of a named architecture once (under
``~/.cache/vidsift/random/<arch>``) so the command runs fully offline.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from typing import Any, Optional

import typer

from ..pipeline.options import FLAGS, HELP
from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads

DEFAULT_MODEL = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
# ask's flags that are not question options (every other flag is an `AskOptions` field's: FLAGS):
# the question's multiple-choice options, the model and how it loads, the index cache, the output
COMMAND_FLAGS = ("--options", "--model", "--no-cache", "--device", "--dtype", "--attn", "--json", "--threads")
STAGE_LABELS = {"decode": "decoding frames", "keyframes": "decoding keyframes", "score": "scoring frames", "select": "selecting keyframes",
                "encode": "encoding frames", "reduce": "merging tokens", "build": "building the prompt",
                "generate": "prefill and generating"}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _summary(answer: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from .output import console as make_console

    s, plan = answer.stats, answer.plan
    console = make_console()
    console.print(answer.text if answer.text else Text("(empty answer)", style="dim"))
    t = s.get("time_s", {})
    table = Table(show_header=False, box=None, padding=(0, 1))
    if answer.choice is not None:
        c = answer.choice
        table.add_row("choice", f"{c.letter}. {c.option}" if c.index is not None else "none of the options could be read from the answer")
    table.add_row("model", str(s.get("model", "")))
    table.add_row("frames", f"{s.get('frames_planned')} of {s.get('frames_candidates')} candidates"
                  + (f" ({plan.settings.get('selector', '')})" if plan and plan.settings.get("selector") else ""))
    table.add_row("visual tokens", f"full {s.get('tokens_full')} -> budget {s.get('tokens_budget')} -> planned "
                  f"{s.get('tokens_planned')} -> encoded {s.get('tokens_encoded')}{' (resized)' if s.get('resized') else ''} -> in prompt "
                  f"{s.get('tokens_in_prompt')} (prompt {s.get('prompt_len')})")
    table.add_row("time", "  ".join(f"{k} {v:.3f}s" for k, v in t.items() if v) + f"  | TTFT {s.get('ttft_s', 0):.3f}s")
    rate = s.get("decode_tokens_per_s")
    table.add_row("generation", f"{s.get('new_tokens')} new tokens" + (f", {rate:.1f} tok/s" if rate else ""))
    mem = f"KV cache {s.get('kv_bytes', 0) / 2**20:.2f} MiB, peak RSS {s.get('peak_rss_bytes', 0) / 2**20:.0f} MiB"
    if s.get("peak_cuda_bytes"):
        mem += f", peak CUDA {s['peak_cuda_bytes'] / 2**20:.0f} MiB"
    table.add_row("memory", mem)
    for kind in ("prune", "kv"):
        for member in s.get(kind, []):  # scalars only; --json has everything
            shown = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in member.items()
                     if isinstance(v, (int, float, str)) and k not in ("prefill_forward_s", "decode_steps_per_s")]
            table.add_row(kind, ", ".join(shown))
    console.print(table)


def _names(registry: Any) -> str:
    return ", ".join(registry.names())


def register(app: typer.Typer) -> None:
    from ..pipeline.press import PRESSES
    from ..pipeline.prune import PRUNERS
    from ..selectors import MERGERS

    @app.command("ask")
    def ask(
        video: str = typer.Argument(..., metavar="VIDEO", help="Video file path or URL."),
        question: str = typer.Argument(..., metavar="QUESTION", help="The question to answer."),
        options: Optional[str] = typer.Option(None, "--options", help="Multiple choice: the options, comma-separated (red,green,blue); the prompt is the one vidsift eval sends and the answer names the chosen option."),
        model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Checkpoint folder, Hub id, or random:<arch> (random weights, offline)."),
        budget: Optional[str] = typer.Option(None, FLAGS["budget"], "-b", help=HELP["budget"]),
        fps: Optional[float] = typer.Option(None, FLAGS["fps"], help=HELP["fps"]),
        max_frames: Optional[int] = typer.Option(None, FLAGS["max_frames"], help=HELP["max_frames"]),
        frames: Optional[int] = typer.Option(None, FLAGS["frames"], "-k", help=HELP["frames"]),
        start: Optional[float] = typer.Option(None, FLAGS["start_s"], help=HELP["start_s"]),
        end: Optional[float] = typer.Option(None, FLAGS["end_s"], help=HELP["end_s"]),
        scorer: Optional[str] = typer.Option(None, FLAGS["scorer"], help=HELP["scorer"]),
        search: str = typer.Option("auto", FLAGS["search"], help=HELP["search"]),
        allocation: str = typer.Option("relevance", FLAGS["allocation"], help=HELP["allocation"]),
        timeline: str = typer.Option("true", FLAGS["timeline"], help=HELP["timeline"]),
        no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the per-video index on disk ($VIDSIFT_CACHE/index; see vidsift index)."),
        selector: Optional[str] = typer.Option(None, FLAGS["selector"], help=HELP["selector"]),
        allocator: Optional[str] = typer.Option(None, FLAGS["allocator"], help=HELP["allocator"]),
        merger: Optional[str] = typer.Option(None, FLAGS["merger"], help=f"{HELP['merger']} One of: {_names(MERGERS)}."),
        temporal: Optional[str] = typer.Option(None, FLAGS["temporal"], help=HELP["temporal"]),
        prune: Optional[str] = typer.Option(None, FLAGS["prune"], help=f"{HELP['prune']} One of: {_names(PRUNERS)}."),
        kv: Optional[str] = typer.Option(None, FLAGS["kv"], help=f"{HELP['kv']} One of: {_names(PRESSES)}."),
        preset: Optional[str] = typer.Option(None, FLAGS["preset"], help=HELP["preset"]),
        max_new_tokens: int = typer.Option(64, FLAGS["max_new_tokens"], help=HELP["max_new_tokens"]),
        resize: bool = typer.Option(False, FLAGS["resize"], help=HELP["resize"]),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
        dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16."),
        attn: Optional[str] = typer.Option(None, "--attn", help="attn_implementation (sdpa, eager, flash_attention_2)."),
        as_json: bool = typer.Option(False, "--json", help="Print {answer, plan, stats} as JSON."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Answer a question about a video with a video MLLM under a visual-token budget."""
        from ..errors import ConfigError

        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from ..pipeline.check import check_ask

        from ..pipeline.options import AskOptions

        ask_options = AskOptions.from_cli(  # validated once; errors name the flag (--fps 0: must be > 0)
            fps=fps, max_frames=max_frames, frames=frames, start_s=start, end_s=end, scorer=scorer, selector=selector,
            allocator=allocator, merger=merger, temporal=temporal, budget=budget, preset=preset, prune=prune, kv=kv,
            max_new_tokens=max_new_tokens, resize=resize or None, search=search, timeline=timeline, allocation=allocation)
        choices = None
        if options is not None:
            from ..pipeline.choice import mc_prompt, parse_options

            choices = parse_options(options)
            if not question.strip():
                raise ConfigError(repr(question), "the question must be a non-empty string")
            question = mc_prompt(question, choices)
        run = check_ask(video, question, model=model, ask_options=ask_options)  # about a second, before any weights load
        from ..pipeline.pipeline import Pipeline
        from .output import console

        log = console(stderr=True)
        with log.status(f"loading {model}", spinner="dots") if log.is_terminal else nullcontext() as status:
            pipe = Pipeline.from_pretrained(model, device=device, dtype=dtype, attn_implementation=attn)
            pipe.index_cache = not no_cache
            if status is not None:  # a terminal: show each stage as it starts
                pipe.on_stage = lambda stage: status.update(STAGE_LABELS.get(stage, stage))
            answer = pipe.ask(video, question, run)  # the members check_ask built: nothing is built again
        from .output import note_unused_query

        # the scorer that planned (mllm by default with the search), once the question was answered
        note_unused_query(answer.plan.settings.get("scorer") or scorer, what="the question")
        if choices is not None:
            from ..pipeline.choice import Choice

            answer.choice = Choice.of(answer.text, choices)
        if as_json:
            typer.echo(json.dumps(answer.to_dict(), default=_jsonable))
        else:
            _summary(answer)
