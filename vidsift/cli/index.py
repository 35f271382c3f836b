"""``vidsift index VIDEO``: build the per-video index the temporal search plans with (one cheap
1-fps pass at the scan size, with features), so later questions about a long video do not decode
it again. ``ask``, ``plan``, ``eval``, ``serve`` and `Pipeline` reuse it; it is keyed by the file's
content and the sampling settings, and a stale or damaged entry is rebuilt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads


def register(app: typer.Typer) -> None:
    @app.command("index")
    def index_cmd(
        video: str = typer.Argument(..., metavar="VIDEO", help="Video file."),
        fps: Optional[float] = typer.Option(None, "--fps", help="Candidate frames per second (default 1, as ask)."),
        start: Optional[float] = typer.Option(None, "--start", help="Start time in seconds."),
        end: Optional[float] = typer.Option(None, "--end", help="End time in seconds."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Where indexes live (default $VIDSIFT_CACHE/index, ~/.cache/vidsift/index)."),
        as_json: bool = typer.Option(False, "--json", help="Print the entry's summary as JSON."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Build (or find) the per-video index of VIDEO for the temporal search."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        from ..errors import ConfigError
        from ..selectors.video_index import SCAN_FPS, default_index_dir, load_index
        from .output import console as make_console

        if fps is not None and not fps > 0:
            raise ConfigError(f"--fps {fps:g}", "must be > 0")
        log = make_console(stderr=True)
        if log.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("indexing"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                          TimeRemainingColumn(), console=log, transient=True) as bar:
                task = bar.add_task("index", total=None)
                entry = load_index(video, fps=fps or SCAN_FPS, start_s=start, end_s=end, cache_dir=cache_dir,
                                   progress=lambda done, total: bar.update(task, completed=done, total=total))
        else:
            entry = load_index(video, fps=fps or SCAN_FPS, start_s=start, end_s=end, cache_dir=cache_dir)
        folder = Path(cache_dir) if cache_dir is not None else default_index_dir()
        summary = {"video": video, "entry": str(folder / entry.meta["key"]), "cached": bool(entry.meta.get("cached")),
                   "frames": len(entry), "scan_size": list(entry.frames.shape[1:3]), "fps": entry.meta.get("fps"),
                   "build_s": entry.meta.get("build_s"), "decode": entry.decode}
        if as_json:
            typer.echo(json.dumps(summary))
            return
        state = "found" if summary["cached"] else f"built in {summary['build_s']:.1f} s"
        typer.echo(f"{video}: {len(entry)} candidates at {summary['scan_size'][1]}x{summary['scan_size'][0]}, {state}: {summary['entry']}")
