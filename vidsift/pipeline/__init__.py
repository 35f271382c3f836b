"""Feeding only the chosen visual tokens to a video MLLM, pruning inside it, compressing its cache.

``Pipeline`` (pipeline.py) is the entry point; ``load_adapter`` (loader.py) loads a checkpoint
into its family's ``ModelAdapter``; stats.py measures each question. Heavy modules load lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {  # lazy, so that `vidsift.pipeline.check` runs before torch is imported
    "Answer": "..types",
    "ModelInputs": ".types",
    "VisualTokens": "..types",
    "Pipeline": ".pipeline",
    "check_ask": ".check",
    "load_adapter": ".loader",
    "ADAPTERS": ".adapters",
    "ModelAdapter": ".adapters",
    "StatsRecorder": ".stats",
    "kv_cache_bytes": ".stats",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)


__all__ = [*_LAZY]
