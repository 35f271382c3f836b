"""Named model architectures with random weights, written as real checkpoint folders.

No machine here can download weights, so tests and benchmarks build checkpoints of the real
architectures from configs: ``build_checkpoint("tiny-qwen2.5-vl", path)`` writes config,
safetensors weights, tokenizer (offline byte-level BPE with the family's special tokens and
chat template) and ``preprocessor_config.json`` into ``path``; the user's ``from_pretrained``
path then loads it like any Hub checkpoint. ``tiny-*`` names are 0.2-0.5 M-parameter models
for tests; the others (``qwen2.5-vl-3b``, ``llava-onevision-0.5b``, ``smolvlm2-500m``, ...)
use the published configs at full size for benchmarks.

Each family module registers its builders in ``ARCHS``: a callable ``(path, *, seed) -> None``.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from ...registry import Registry

ARCHS: Registry = Registry("architecture")

_FAMILY_MODULES = ("qwen", "llava_onevision", "smolvlm")


def _load_families() -> None:
    for name in _FAMILY_MODULES:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            importlib.import_module(f"{__name__}.{name}")


def names() -> list[str]:
    _load_families()
    return ARCHS.names()


def build_checkpoint(name: str, path: str | Path, *, seed: int = 0) -> Path:
    """Write a random-weight checkpoint of architecture ``name`` into ``path`` and return it."""
    _load_families()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ARCHS.get(name)(path, seed=seed)
    return path
