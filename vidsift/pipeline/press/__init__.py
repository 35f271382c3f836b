"""KV-cache presses: compress the decoding cache after prefill (``--kv snapkv:ratio=0.25+quantize:bits=8``).

``PRESSES.build_many(spec)`` -> members; each has ``install(layout) -> stats`` (one call's `CacheLayout`).
A new method subclasses `WindowPress` and writes ``score(module, hidden, keys, positions, attention, *,
visual) -> (B, Hk or 1, n)`` (see `vidsift.pipeline.press.base`).
"""

from __future__ import annotations

from ...lazy import lazy_attributes
from ...registry import Registry

PRESSES: Registry = Registry("cache press", {
    "composed": "vidsift.pipeline.press.composed:Composed",
    "dycoke": "vidsift.pipeline.press.dycoke:DyCoke",
    "h2o": "vidsift.pipeline.press.h2o:H2O",
    "mustdrop": "vidsift.pipeline.press.mustdrop:MustDropPress",
    "prefixkv": "vidsift.pipeline.press.prefixkv:PrefixKV",
    "quantize": "vidsift.pipeline.press.quantize:Quantize",
    "snapkv": "vidsift.pipeline.press.snapkv:SnapKV",
    "visual_first": "vidsift.pipeline.press.visual_first:VisualFirst",
    "zipvl": "vidsift.pipeline.press.zipvl:ZipVLCache",
})

_LAZY = {**dict.fromkeys(("CachePress", "DecodeFilterPress", "PressCall", "WindowPress"), ".base"),
         "Composed": ".composed", "compose": ".composed", "prefix_lengths": ".prefixkv"}

__all__ = ["PRESSES", "CachePress", "Composed", "DecodeFilterPress", "PressCall", "WindowPress", "compose",
           "prefix_lengths"]
__getattr__ = lazy_attributes(__name__, _LAZY)
