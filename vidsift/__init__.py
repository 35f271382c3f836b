"""vidsift: answer questions about long videos and live streams with a video MLLM under a
fixed visual-token budget.

Curated public API; heavy submodules (models, FAISS, decoders) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Pipeline": "vidsift.pipeline.pipeline",
    "load_adapter": "vidsift.pipeline.loader",
    "open_video": "vidsift.frames",
    "sample": "vidsift.frames",
    "plan": "vidsift.selectors",
    "plan_frames": "vidsift.selectors",
    "reduce_tokens": "vidsift.selectors",
    "VidsiftError": "vidsift.errors",
    "ConfigError": "vidsift.errors",
    "ModelError": "vidsift.errors",
    "ModelInputs": "vidsift.pipeline.types",
    "VideoInfo": "vidsift.frames.types",
    "FrameBatch": "vidsift.types",
    "DecodeReport": "vidsift.frames.types",
    "Budget": "vidsift.types",
    "FrameScores": "vidsift.types",
    "TokenPlan": "vidsift.types",
    "VisualTokens": "vidsift.types",
    "Answer": "vidsift.types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidsift' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["__version__", *_LAZY]
