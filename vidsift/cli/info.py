"""``vidsift info VIDEO``: what a video is (duration, fps, true frame count, display size, rotation,
codec, decoder backend) as a table or JSON; ``--scan`` decodes every frame and adds the decode
report (frames expected vs decoded, errors, suspect frames)."""

from __future__ import annotations

import json
import time
import warnings

import typer

PROGRESS_AFTER_S = 1.0  # show a progress bar (stderr) once a scan has taken this long


def scan_all(video, *, on_progress=None) -> dict:
    """Decode every frame of an open video (bounded memory); returns the scan summary."""
    from ..frames import iter_chunks

    t0 = time.perf_counter()
    done = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for batch in iter_chunks(video, chunk_frames=32):
            done += len(batch)
            if on_progress is not None:
                on_progress(done, time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    return {"decoded_frames": done, "seconds": round(seconds, 3),
            "decode_fps": round(done / seconds, 1) if seconds > 0 else None,
            "warnings": [str(w.message) for w in caught]}


def register(app: typer.Typer) -> None:
    @app.command("info")
    def info(
        video: str = typer.Argument(..., metavar="VIDEO", help="Video file."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        scan: bool = typer.Option(False, "--scan", help="Decode every frame and report what decoded."),
        backend: str = typer.Option("auto", "--backend", help="Decoder: auto, pyav, decord or torchcodec (opt-in, installed apart)."),
    ) -> None:
        """Show what a video is: duration, fps, frames, size, rotation, codec, backend."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Table

        from ..frames import open_video
        from .output import console as make_console

        err_console = make_console(stderr=True)
        with warnings.catch_warnings(record=True) as open_warnings:
            warnings.simplefilter("always")
            reader = open_video(video, backend=backend)
        with reader:
            data = reader.info.to_dict()
            data["keyframes"] = int(reader._index.keyframe.sum())
            data["open_warnings"] = [str(w.message) for w in open_warnings]
            if scan:
                total = reader.info.n_frames
                bar: dict = {}

                def on_progress(done: int, elapsed: float) -> None:
                    if "p" not in bar and err_console.is_terminal and elapsed > PROGRESS_AFTER_S and done < total:
                        bar["p"] = Progress(TextColumn("scanning"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                            TimeRemainingColumn(), console=err_console, transient=True)
                        bar["p"].start()
                        bar["task"] = bar["p"].add_task("scan", total=total)
                    if "p" in bar:
                        bar["p"].update(bar["task"], completed=done)

                try:
                    summary = scan_all(reader, on_progress=on_progress)
                finally:
                    if "p" in bar:
                        bar["p"].stop()
                summary["missing_frames"] = max(0, reader.info.n_frames - summary["decoded_frames"])
                data["scan"] = summary
                data["decode_report"] = reader.report.to_dict()
            data["decode"] = reader.report.summary()  # the file's count: expected, decoded, missing, reason
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        table = Table(show_header=False)
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_row("path", data["path"])
        fps = f"{data['fps']:g}" + (f" (measured {data['measured_fps']:g})" if data["measured_fps"] else "")
        frames = f"{data['n_frames']}" + (" (counted)" if data["n_frames_scanned"] else "")
        table.add_row("duration", f"{data['duration_s']:.3f} s")
        table.add_row("fps", fps)
        table.add_row("frames", frames)
        table.add_row("keyframes", str(data["keyframes"]))
        table.add_row("size", f"{data['width']}x{data['height']} (display)")
        table.add_row("rotation", f"{data['rotation']}°")
        table.add_row("codec", data["codec"])
        table.add_row("backend", data["backend"])
        for w in data["open_warnings"]:
            table.add_row("warning", w)
        if scan:
            rep, summary = data["decode_report"], data["scan"]
            table.add_row("decoded", f"{summary['decoded_frames']} of {data['n_frames']} frames "
                                     f"in {summary['seconds']:.2f} s ({summary['decode_fps']} fps)")
            table.add_row("missing", str(summary["missing_frames"]))
            table.add_row("errors", str(len(rep["errors"])) + (f" (first: {rep['errors'][0]})" if rep["errors"] else ""))
            table.add_row("suspect frames", str(len(rep["suspect_frames"])))
            if rep["resized_frames"]:  # the resolution changes mid-file
                table.add_row("resized", f"{len(rep['resized_frames'])} frames of another size, scaled to "
                                         f"{data['width']}x{data['height']} (first: frame {rep['resized_frames'][0]})")
            table.add_row("status", "ok" if rep["ok"] and not summary["missing_frames"] else "damaged")
        make_console().print(table)
