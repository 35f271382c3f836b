"""One model replica answering jobs: `WorkerSpec` (what to load, picklable, sent to every
worker process or Ray actor) and `Worker` (loads it once, answers jobs, never raises).

The default answerer is a `vidsift.pipeline.Pipeline`; ``answerer="module:factory"`` plugs in
any other ``factory(spec) -> answer(video, question, **overrides)`` (used by tests and by
callers wrapping their own model). An answer is an `Answer`, a dict with ``answer``/``plan``/
``stats``, or a plain string.

``random:ARCH`` model names are resolved once by the driver (`resolve_model`) into a cached
checkpoint folder, so every worker loads identical weights from disk.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, VidsiftError
from ..threads import apply as apply_threads

AnswerFn = Callable[..., Any]


@dataclass
class WorkerSpec:
    """Everything a worker needs to build its answerer.

    model:          checkpoint folder, Hub id, or ``random:ARCH``
    device/dtype:   ``auto`` or a torch device / dtype name
    budget:         default budget spec (``"25%"``, ``"2048"``, a preset name, None = unlimited)
    max_new_tokens: generation length
    options:        extra keyword options for ``Pipeline.from_pretrained``
    answerer:       ``"module:factory"`` replacing the Pipeline (factory(spec) -> answer fn)
    threads:        CPU threads per worker for torch, BLAS/OpenMP and FAISS (None: ``VIDSIFT_THREADS`` or
                    `vidsift.threads.default_threads`)
    """

    model: str
    device: str = "auto"
    dtype: str = "auto"
    budget: str | None = None
    max_new_tokens: int = 32
    options: dict[str, Any] = field(default_factory=dict)
    answerer: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.model and not self.answerer:
            raise ConfigError("--model", "no model given")
        if self.max_new_tokens < 1:
            raise ConfigError("max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("threads", f"must be >= 1, got {self.threads}")
        from ..pipeline.presets import Preset

        Preset().apply(preset=self.options.get("preset"), budget=self.budget)  # one-line error before any model work

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cache_dir() -> Path:
    return Path(os.environ.get("VIDSIFT_CACHE", Path.home() / ".cache" / "vidsift"))


def resolve_model(model: str, *, seed: int = 0) -> str:
    """``random:ARCH`` -> a cached random-weight checkpoint folder (built once); else unchanged."""
    if not model.startswith("random:"):
        return model
    from ..pipeline.loader import random_checkpoint  # the pipeline's loader owns the cache

    return str(random_checkpoint(model.split(":", 1)[1], seed=seed))


def _load_factory(path: str) -> Callable[[WorkerSpec], AnswerFn]:
    module, _, name = path.partition(":")
    if not module or not name:
        raise ConfigError(path, "answerer must be 'module:factory'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(path, f"cannot import answerer ({err})") from None


def pipeline_answerer(spec: WorkerSpec) -> AnswerFn:
    """The default answerer: a `Pipeline` loaded once, asked once per job. Budgets (the spec's
    and per-job ``budget`` overrides) are token counts, fractions, ``"25%"`` or preset names."""
    from ..pipeline.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(resolve_model(spec.model), device=spec.device, dtype=spec.dtype,
                                    budget=spec.budget, **spec.options)

    def answer(video: str, question: str, **overrides: Any) -> Any:
        overrides.setdefault("max_new_tokens", spec.max_new_tokens)
        return pipe.ask(video, question, **overrides)

    return answer


def build_answerer(spec: WorkerSpec) -> AnswerFn:
    apply_threads(spec.threads)  # torch, BLAS/OpenMP and FAISS alike; None: VIDSIFT_THREADS or the default
    factory = _load_factory(spec.answerer) if spec.answerer else pipeline_answerer
    return factory(spec)


def _normalise(result: Any) -> dict[str, Any]:
    if isinstance(result, str):
        return {"answer": result, "plan": None, "stats": {}}
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    if not isinstance(result, dict) or "answer" not in result:
        raise TypeError(f"answerer returned {type(result).__name__}; expected Answer, dict with 'answer', or str")
    return {"answer": result["answer"], "plan": result.get("plan"), "stats": result.get("stats") or {}}


class Worker:
    """Holds one answerer; `run` turns a job into a result record and never raises."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._answer = build_answerer(spec)

    def run(self, job: Any) -> dict[str, Any]:
        from .manifest import Job

        if isinstance(job, dict):
            job = Job.from_dict(job)
        record: dict[str, Any] = {"id": job.id, "video": job.video, "question": job.question,
                                  "overrides": dict(job.overrides), "meta": dict(job.meta)}
        start = time.perf_counter()
        try:
            record.update(_normalise(self._answer(job.video, job.question, **dict(job.overrides))))
            record["error"] = None
            choices = job.meta.get("options")
            if isinstance(choices, list) and choices:  # a multiple-choice job (manifest options, eval)
                from ..pipeline.choice import Choice

                record["choice"] = Choice.of(record["answer"], choices).to_dict()
        except Exception as err:  # one failing video must not stop the batch
            reason = str(err) if isinstance(err, VidsiftError) else f"{type(err).__name__}: {err}"
            record.update(answer=None, plan=None, stats={}, error=reason.splitlines()[0] if reason else type(err).__name__)
            if os.environ.get("VIDSIFT_DEBUG") == "1":
                record["traceback"] = traceback.format_exc()
        record["elapsed_s"] = round(time.perf_counter() - start, 6)
        record["worker"] = self.name
        return record
