"""The grounded probe: procedural video QA, a small Qwen2.5-VL trained on it, and the
accuracy-vs-budget evaluation of every method.

    from vidsift.probe import checkpoint_path, generate, evaluate
    generate("probe_data", seed=0)                 # H.264 clips + items.jsonl (evidence intervals)
    Pipeline.from_pretrained(checkpoint_path())    # the shipped, trained checkpoint
    evaluate("probe_data", out="probe.jsonl")      # `vidsift eval --dataset probe`

The domain is synthetic: the numbers say whether reduced paths keep the evidence and keep a
trained model working, not how a real model scores on a real benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .generate import FAMILIES, LONG_FAMILIES, STREAM_FAMILIES, ProbeItem, generate, generate_long, load_items, make_long_scene

__all__ = ["FAMILIES", "LONG_FAMILIES", "STREAM_FAMILIES", "ProbeItem", "checkpoint_path", "evaluate", "generate",
           "generate_long", "load_items", "make_long_scene"]

CHECKPOINT = Path(__file__).parent / "checkpoint"


def checkpoint_path() -> Path:
    """The shipped probe checkpoint folder (config, weights, tokenizer, preprocessor, manifest)."""
    if not (CHECKPOINT / "config.json").exists():
        from ..errors import ModelError

        raise ModelError(str(CHECKPOINT), "the probe checkpoint is missing from this install")
    return CHECKPOINT


def evaluate(root: str | Path, **options: Any) -> dict[str, Any]:
    """`vidsift.probe.evaluate.evaluate` (imported lazily: it pulls in the pipeline)."""
    from .evaluate import evaluate as run

    return run(root, **options)
