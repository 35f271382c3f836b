"""Answer many questions about many videos: manifests in, resumable JSONL answers out, on a
local process pool or Ray actors (`vidsift batch`, also the engine under `vidsift eval`)."""

from .engine import ENGINES, BatchSummary, build_engine, run_batch
from .manifest import Job, read_manifest
from .results import ResultsFile
from .worker import Worker, WorkerSpec, resolve_model

__all__ = ["ENGINES", "BatchSummary", "Job", "ResultsFile", "Worker", "WorkerSpec",
           "build_engine", "read_manifest", "resolve_model", "run_batch"]
