"""``vidsift stream``: ask questions about a live source (camera, URL, file, lavfi) as it runs.

Interactive by default: type a question on stdin at any time; each answer prints with the
stream time it refers to. ``--query`` + ``--every`` asks a standing question periodically;
``--query`` + ``--respond auto`` answers it only when a sampled frame is relevant to it (the answer
says why it fired); ``--json`` prints one JSON event per line. A rich status line runs on stderr (a terminal only).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, Optional

import typer

from ..errors import ConfigError, VidsiftError
from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads


def _print_event(event: dict[str, Any], *, as_json: bool, out: Any) -> None:
    kind = event.get("event")
    if kind == "warning":  # on stderr in every mode, like every command's warnings
        out(f"warning: {event.get('warning')}", err=True)
    if as_json:
        if kind == "answer":
            row = {k: event[k] for k in ("t", "question", "answer", "memory_tokens", "latency_s")}
            if "trigger" in event:
                row["trigger"] = event["trigger"]
            out(json.dumps({**row, "event": "answer"}))
        else:
            out(json.dumps(event))
        return
    t = f"[t={event.get('t', 0):.1f}s]"
    if kind == "answer":
        why = event.get("trigger")
        fired = f"; fired: relevance {why['score']:.2f} >= {why['threshold']:g} at t={why['frame_t']:.1f}s" if why else ""
        out(f"{t} Q: {event['question']}\n{' ' * len(t)} A: {event['answer']}  "
            f"({event['memory_tokens']} memory tokens, {event['latency_s']:.3f} s{fired})")
    elif kind == "stalled":
        out(f"{t} source stalled: no frame for {event.get('idle_s', 0):.1f} s", err=True)
    elif kind == "resumed":
        out(f"{t} source resumed", err=True)
    elif kind == "disconnected":
        out(f"{t} source dropped ({event.get('reason')}); reconnecting", err=True)
    elif kind == "reconnected":
        out(f"{t} source reconnected after {event.get('after_s', 0):.1f} s", err=True)
    elif kind == "error":
        out(f"{t} error: {event.get('error')}", err=True)
    elif kind == "no_frames":
        out(f"{t} Q: {event['question']}\n{' ' * len(t)} A: (no frames yet: nothing to answer from after "
            f"{event.get('waited_s', 0):.1f} s)")


# the StreamOptions fields (and the names their errors use) typed as these flags
_FLAGS = {"fps": ("fps", "--fps"), "duration": ("duration_s", "--duration"), "trigger": ("trigger", "--trigger"),
          "cooldown": ("cooldown_s", "--cooldown"), "max_new_tokens": ("max_new_tokens", "--max-new-tokens"),
          "stall": ("stall_s", "--stall"), "timeout": ("open_timeout_s", "--timeout"), "max_side": ("max_side", "--max-side")}


def _options(**fields: Any) -> Any:
    """The stream's `StreamOptions`, built once before any source or model is opened; a bad value
    is reported as the flag typed (``--trigger 1.5: must be a probability in [0, 1]``)."""
    from ..stream.options import StreamOptions

    try:
        return StreamOptions(**fields)
    except ConfigError as err:
        if err.subject not in _FLAGS:
            raise
        field, flag = _FLAGS[err.subject]
        raise ConfigError(f"{flag} {fields[field]:g}", err.reason.split(", got ")[0]) from None


def register(app: typer.Typer) -> None:
    @app.command("stream")
    def stream(
        source: str = typer.Option(..., "--source", "-s", help="0 or /dev/video0 (camera), rtsp/rtmp/udp/tcp/http(s) URL, a file, or lavfi:GRAPH."),
        model: str = typer.Option(..., "--model", "-m", help="Checkpoint folder, Hub id, or random:<arch> (random weights, offline)."),
        query: Optional[str] = typer.Option(None, "--query", "-q", help="Standing question (steers memory by relevance; asked every --every s, or once at the end)."),
        every: Optional[float] = typer.Option(None, "--every", help="Ask --query every this many stream seconds."),
        respond: str = typer.Option("every", "--respond", help="every: ask --query on the --every schedule (or once at the end); auto: answer --query only when a sampled frame is relevant to it (LION-FS-style trigger)."),
        trigger: float = typer.Option(0.5, "--trigger", help="--respond auto: relevance (the model's P(yes) for --query on a frame) that fires an answer."),
        cooldown: float = typer.Option(5.0, "--cooldown", help="--respond auto: least stream seconds between two automatic answers."),
        budget: str = typer.Option("1024", "--budget", "-b", help="The rolling memory's size: visual tokens (1024), or a share (0.25, 25%) or preset (fast, ...) of the stream's tokens over its length (--duration, a file's length, else its last 10 minutes)."),
        fps: float = typer.Option(1.0, "--fps", help="Frames sampled per second of stream."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many stream seconds."),
        as_json: bool = typer.Option(False, "--json", help="One JSON event per line on stdout."),
        realtime: Optional[bool] = typer.Option(None, "--realtime/--no-realtime", help="Pace a file (default off) or lavfi graph (default on) in real time."),
        max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Tokens to generate per answer."),
        max_side: int = typer.Option(448, "--max-side", help="Downscale frames to this many pixels on the longer side."),
        stall: float = typer.Option(3.0, "--stall", help="Report a stall after this many seconds without a frame."),
        timeout: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the source to open or send."),
        reprefill: bool = typer.Option(False, "--reprefill", help="Re-prefill the memory per question instead of the incremental KV cache."),
        status: Optional[bool] = typer.Option(None, "--status/--no-status", help="Live status line on stderr (default: when stderr is a terminal)."),
        interactive: Optional[bool] = typer.Option(None, "--interactive/--no-interactive", help="Read questions from stdin (default: unless --every is given)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
        dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Answer questions about a live stream while it runs, with a bounded visual-token memory."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from transformers.utils import logging as hf_logging

        from ..pipeline.check import check_frame_size
        from ..pipeline.loader import load_adapter
        from ..stream.session import StreamSession
        from ..stream.sources import open_source
        from ..stream.status import StatusLine
        from ..types import Budget

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        if every is not None and not query:
            raise ConfigError("--every", "needs a --query to ask")
        if respond not in ("every", "auto"):
            raise ConfigError(f"--respond {respond}", "must be every or auto")
        if respond == "auto" and (not query or every is not None):
            raise ConfigError("--respond auto", "needs a --query and no --every (it decides when to answer)")
        try:
            memory_budget = Budget.parse(budget)  # as ask, plan and serve parse it
        except ConfigError as err:
            raise ConfigError(f"--budget {budget}", err.reason) from None
        options = _options(budget=memory_budget, fps=fps, query=query, every_s=every, duration_s=duration,
                           max_new_tokens=max_new_tokens, incremental=False if reprefill else None, stall_s=stall,
                           respond=respond, trigger=trigger, cooldown_s=cooldown, realtime=realtime, max_side=max_side,
                           open_timeout_s=timeout, read_timeout_s=timeout)
        src = open_source(source, **options.source_settings())
        src.open()  # fail fast (missing device, unreachable URL) before loading a model
        try:  # a file's frames keep one size: one the model cannot encode fails before it loads too
            first = src.read() if src.kind == "file" and os.path.isfile(src.target) else None
            src.take_warnings()  # the stream itself warns about what it meets
        finally:
            src.close()
        if first is not None:
            check_frame_size(model, src.name, width=first.rgb.shape[1], height=first.rgb.shape[0])
        adapter = load_adapter(model, device=device, dtype=dtype)
        session = StreamSession(adapter, src, options)
        show_status = sys.stderr.isatty() if status is None else status
        read_stdin = (every is None and respond == "every") if interactive is None else interactive
        lock = threading.Lock()
        status_line: StatusLine | None = None

        def out(text: str, err: bool = False) -> None:
            with lock:
                if status_line is not None and err:
                    status_line.print(text, markup=False, highlight=False)
                else:
                    typer.echo(text, err=err)

        def questions() -> None:
            for line in sys.stdin:
                if not session.running:
                    return
                if line.strip():
                    try:
                        session.ask(line)
                    except VidsiftError as err:
                        out(f"error: {err}", err=True)

        with session:
            if read_stdin:
                threading.Thread(target=questions, name="vidsift-stdin", daemon=True).start()
            if show_status:
                status_line = StatusLine(session).__enter__()
            try:
                for event in session.events():
                    _print_event(event, as_json=as_json, out=out)
                if query and every is None and respond == "every":
                    _print_event(session.ask(query).to_event(), as_json=as_json, out=out)
            finally:
                if status_line is not None:
                    status_line.__exit__(None, None, None)
        failure = session.error or session.capture.stats.error
        if failure:  # already "<source>: <reason>"
            typer.echo(f"error: {failure}", err=True)
            raise typer.Exit(1)
