"""KV-cache presses: compress the decoding cache after prefill (``--kv snapkv:ratio=0.25+quantize:bits=8``).

``PRESSES.build_many(spec)`` -> members; each has ``session(adapter, inputs) -> ContextManager[stats]``.
"""

from __future__ import annotations

from ...registry import Registry

PRESSES: Registry = Registry("cache press")

from . import composed, h2o, prefixkv, quantize, snapkv, visual_first  # noqa: E402,F401  (register members)
from .base import CachePress  # noqa: E402
from .composed import Composed, compose  # noqa: E402
from .prefixkv import prefix_lengths  # noqa: E402

__all__ = ["PRESSES", "CachePress", "Composed", "compose", "prefix_lengths"]
