"""Engine selection (``--engine local|ray``) and `run_batch`: jobs in, resumable JSONL out.

An engine is anything with ``map(spec, jobs) -> Iterator[record]`` yielding one record per job
as it finishes (`LocalEngine`, `RayEngine`). `run_batch` skips jobs already answered in the
output file under the same resume key (model, options, video content, question: `keys`), streams
the rest through the engine, appends each record the moment it arrives and shows a progress bar.
`vidsift eval` runs on the same function.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from ..errors import ConfigError
from .keys import ContentHashes, job_key, model_identity
from .manifest import Job
from .results import ResultsFile
from .worker import WorkerSpec, resolve_model

ENGINES = ("local", "ray")


class Engine(Protocol):
    def map(self, spec: WorkerSpec, jobs: Iterable[Job]) -> Iterable[dict[str, Any]]: ...


def build_engine(name: str, *, workers: int | None = None, address: str | None = None, cpus_per_worker: int = 1) -> Engine:
    if name == "local":
        if address:
            raise ConfigError("--address", "only the ray engine joins a cluster")
        from .local import LocalEngine

        return LocalEngine(workers=workers or 1)
    if name == "ray":
        from .ray_engine import RayEngine

        return RayEngine(workers=workers, address=address, cpus_per_worker=cpus_per_worker)
    raise ConfigError(name, f"unknown engine; choose one of: {', '.join(ENGINES)}")


@dataclass
class BatchSummary:
    """What one `run_batch` call did."""

    total: int
    skipped: int
    ok: int
    failed: int
    wall_s: float
    out: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resume_keys(jobs: list[Job], spec: WorkerSpec) -> dict[str, str]:
    """Job id -> its resume key (`keys.job_key`); each video file is hashed once."""
    hashes, model = ContentHashes(), model_identity(spec.model)
    return {job.id: job_key(job, spec, video_digest=hashes(job.video), model=model) for job in jobs}


def run_batch(jobs: list[Job], spec: WorkerSpec, *, engine: Engine, out: str | Path | None = None,
              resume: bool = True, progress: bool = True,
              on_record: Callable[[dict[str, Any]], None] | None = None,
              transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> BatchSummary:
    """Answer ``jobs`` with ``engine``; append records to ``out`` (JSONL), skipping finished ones.

    A finished record is kept (its job skipped) when ``resume`` and its resume key equals the
    job's now: the same model, options, video content and question (`keys`); any change answers
    the job again. ``transform`` edits each record before it is written (eval adds the extracted
    choice); ``on_record`` sees it after."""
    results = ResultsFile(out) if out is not None else None
    keys = resume_keys(jobs, spec) if results is not None else {}
    if results is not None:
        results.repair()  # a torn last line from an interrupted run: cut, so the file is valid JSONL again
    latest = results.latest() if (results is not None and resume) else {}
    todo = [job for job in jobs if latest.get(job.id, {}).get("error", True) is not None
            or latest[job.id].get("key") != keys[job.id]]
    if todo and not spec.answerer:
        spec = WorkerSpec(**{**spec.to_dict(), "model": resolve_model(spec.model)})
    ok = failed = 0
    start = time.perf_counter()
    bar = _progress(progress, len(todo))
    try:
        with Interrupts() as interrupts:
            records = engine.map(spec, todo) if todo else iter(())
            try:
                for record in records:
                    if record.get("id") in keys:
                        record["key"] = keys[record["id"]]
                    ok, failed = _take(record, results, transform, on_record, ok, failed)
                    bar.advance()
                    interrupts.check()  # an interrupt swallowed inside a job (a __del__) stops here
            finally:
                close = getattr(records, "close", None)
                if close is not None:
                    close()  # an engine's workers stop now, not when the generator is collected
    finally:
        bar.close()
    return BatchSummary(total=len(jobs), skipped=len(jobs) - len(todo), ok=ok, failed=failed,
                        wall_s=round(time.perf_counter() - start, 3), out=None if out is None else str(out))


def _take(record: dict[str, Any], results: ResultsFile | None, transform, on_record, ok: int,
          failed: int) -> tuple[int, int]:
    """Write one finished record (with the file's decode report on top) and count it."""
    plan = record.get("plan") if isinstance(record.get("plan"), dict) else {}
    record.setdefault("decode", (plan.get("stats") or {}).get("decode"))
    if transform is not None:
        record = transform(record)
    if results is not None:
        results.append(record)
    if record.get("error"):
        failed += 1
    else:
        ok += 1
    if on_record is not None:
        on_record(record)
    return ok, failed


class Interrupts:
    """Ctrl-C always stops a batch. The SIGINT handler raises KeyboardInterrupt and remembers that it
    did, so an interrupt that Python swallows where it lands (an object's ``__del__``, e.g. decord's
    reader) still stops the batch after the record in flight is written whole."""

    def __init__(self) -> None:
        self.hit = False
        self._old = None

    def _handle(self, signum, frame) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _progress:
    """A rich progress bar on stderr (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._bar = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("answering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task("jobs", total=total)
            self._bar.start()

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
