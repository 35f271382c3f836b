"""Named model architectures with random weights, written as real checkpoint folders.

No machine here can download weights, so tests and benchmarks build checkpoints of the real
architectures from configs: ``build_checkpoint("tiny-qwen2.5-vl", path)`` writes config,
safetensors weights, tokenizer (offline byte-level BPE with the family's special tokens and
chat template) and ``preprocessor_config.json`` into ``path``; the user's ``from_pretrained``
path then loads it like any Hub checkpoint. ``tiny-*`` names are 0.2-0.5 M-parameter models
for tests; the others (``qwen2.5-vl-3b``, ``llava-onevision-0.5b``, ``smolvlm2-500m``, ...)
use the published configs at full size for benchmarks.

``ARCHS`` names each builder (``"module:function"``, imported when used): a callable ``(path, *, seed) -> None``.
"""

from __future__ import annotations

from pathlib import Path

from ...registry import Registry

ARCHS: Registry = Registry("architecture", {
    "llava-onevision-0.5b": "vidsift.pipeline.archs.llava_onevision:llava_onevision_05b",
    "llava-video-7b": "vidsift.pipeline.archs.llava_onevision:llava_video_7b",
    "qwen2.5-vl-3b": "vidsift.pipeline.archs.qwen:qwen2_5_vl_3b",
    "qwen2.5-vl-7b": "vidsift.pipeline.archs.qwen:qwen2_5_vl_7b",
    "qwen3-vl-2b": "vidsift.pipeline.archs.qwen:qwen3_vl_2b",
    "smolvlm2-2.2b": "vidsift.pipeline.archs.smolvlm:smolvlm2_22b",
    "smolvlm2-500m": "vidsift.pipeline.archs.smolvlm:smolvlm2_500m",
    "tiny-llava-onevision": "vidsift.pipeline.archs.llava_onevision:tiny_llava_onevision",
    "tiny-qwen2-vl": "vidsift.pipeline.archs.qwen:tiny_qwen2_vl",
    "tiny-qwen2.5-vl": "vidsift.pipeline.archs.qwen:tiny_qwen2_5_vl",
    "tiny-qwen3-vl": "vidsift.pipeline.archs.qwen:tiny_qwen3_vl",
    "tiny-qwen3-vl-moe": "vidsift.pipeline.archs.qwen:tiny_qwen3_vl_moe",
    "tiny-smolvlm2": "vidsift.pipeline.archs.smolvlm:tiny_smolvlm2",
})


def names() -> list[str]:
    return ARCHS.names()


def build_checkpoint(name: str, path: str | Path, *, seed: int = 0) -> Path:
    """Write a random-weight checkpoint of architecture ``name`` into ``path`` and return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ARCHS.get(name)(path, seed=seed)
    return path
