"""vidsift: answer questions about long videos and live streams with a video MLLM under a
fixed visual-token budget.

Curated public API; heavy submodules (models, FAISS, decoders) load on first use.
"""

from __future__ import annotations

from .lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "Pipeline": "vidsift.pipeline.pipeline",
    "AskOptions": "vidsift.pipeline.options",  # the options of one question, checked once
    "load_adapter": "vidsift.pipeline.loader",
    "open_video": "vidsift.frames",
    "sample": "vidsift.frames",
    "plan": "vidsift.selectors",
    "plan_frames": "vidsift.selectors",
    "load_index": "vidsift.selectors",  # the long-video index (the CLI's `vidsift index`)
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



__all__ = ["__version__", *_LAZY]
__getattr__ = lazy_attributes(__name__, _LAZY)
