"""The ``local`` engine: answer jobs on this machine, in this process (``workers=1``) or in
``workers`` spawned processes each holding its own model replica."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ..errors import ConfigError
from .manifest import Job
from .worker import Worker, WorkerSpec

_PROCESS_WORKER: Worker | None = None


def _init_process(spec: WorkerSpec) -> None:
    global _PROCESS_WORKER
    _PROCESS_WORKER = Worker(spec)


def _run_in_process(job: dict[str, Any]) -> dict[str, Any]:
    assert _PROCESS_WORKER is not None  # set by the pool initializer, not user input
    return _PROCESS_WORKER.run(job)


@dataclass
class LocalEngine:
    """Answer jobs locally.

    workers: 1 runs in this process (no start-up cost); N > 1 starts N spawned processes,
             each loading the model once, and keeps at most 2N jobs in flight.
    """

    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError("--workers", f"must be >= 1, got {self.workers}")

    def map(self, spec: WorkerSpec, jobs: Iterable[Job]) -> Iterator[dict[str, Any]]:
        """Yield one record per job, in completion order."""
        jobs = list(jobs)
        if not jobs:
            return
        if self.workers == 1:
            worker = Worker(spec)
            for job in jobs:
                yield worker.run(job)
            return
        ctx = mp.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_process, initargs=(spec,))
        finished = False
        try:
            pending = iter(jobs)
            running = set()
            with _sigint_ignored():  # the worker processes start here and keep ignoring Ctrl-C: the driver stops them
                for job in pending:
                    running.add(pool.submit(_run_in_process, job.to_dict()))
                    if len(running) >= 2 * self.workers:
                        break
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    nxt = next(pending, None)
                    if nxt is not None:
                        running.add(pool.submit(_run_in_process, nxt.to_dict()))
            finished = True
        finally:
            if not finished:  # Ctrl-C, an error, or the caller stopped early: the jobs in flight are dropped
                _stop_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while worker processes are spawned: they inherit it (Python keeps an ignored
    SIGINT ignored), so a terminal's Ctrl-C, sent to the whole process group, reaches only the
    driver, which stops them; it used to interrupt each worker's initializer with a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes now (queued futures are cancelled by the shutdown that follows),
    instead of letting them finish every job already handed to them (22 s for one Ctrl-C)."""
    # concurrent.futures has no public way to end its workers before Python 3.14 (terminate_workers)
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
