"""Feeding only the chosen visual tokens to a video MLLM, pruning inside it, compressing its cache.

``Pipeline`` (pipeline.py) is the entry point; ``load_adapter`` (loader.py) loads a checkpoint
into its family's ``ModelAdapter``; stats.py measures each question. Heavy modules load lazily.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

from . import scorers  # noqa: F401  adds the model-based scorers (mllm) to selectors.SCORERS by name

_LAZY = {  # lazy, so that `vidsift.pipeline.check` runs before torch is imported
    "Answer": "..types",
    "ModelInputs": ".types",
    "VisualTokens": "..types",
    "Pipeline": ".pipeline",
    "AskOptions": ".options",
    "AskRun": ".options",
    "check_ask": ".check",
    "load_adapter": ".loader",
    "ADAPTERS": ".adapters",
    "ModelAdapter": ".adapters",
    "CacheLayout": ".hooks",
    "StatsRecorder": ".stats",
    "kv_cache_bytes": ".stats",
}



__all__ = [*_LAZY]
__getattr__ = lazy_attributes(__name__, _LAZY)
