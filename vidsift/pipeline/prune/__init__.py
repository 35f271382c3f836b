"""Prefill pruners: drop visual tokens inside the LLM during prefill (``--prune fastv:k=2,keep=0.5``).

``PRUNERS.build_many("fastv:k=2,keep=0.5")`` -> members; each has
``install(layout) -> stats dict`` that adds its stages to one generate call's `CacheLayout`
(``with CacheLayout(adapter, inputs) as layout: layout.add(pruner)``). A new method subclasses
`PrefillPruner` and writes ``schedule`` and/or ``score(view: StageView) -> (B, n)`` (see
`vidsift.pipeline.prune.base`).
"""

from __future__ import annotations

from ...lazy import lazy_attributes
from ...registry import Registry

PRUNERS: Registry = Registry("prefill pruner", {
    "drop_after": "vidsift.pipeline.prune.drop_after:DropAfter",
    "fastv": "vidsift.pipeline.prune.fastv:FastV",
    "ficoco_l": "vidsift.pipeline.prune.ficoco:FiCoCoL",
    "mustdrop": "vidsift.pipeline.prune.mustdrop:MustDropFilter",
    "pdrop": "vidsift.pipeline.prune.pdrop:PDrop",
    "schedule": "vidsift.pipeline.prune.schedule:Schedule",
    "todre": "vidsift.pipeline.prune.todre:ToDRE",
    "zipvl": "vidsift.pipeline.prune.zipvl:ZipVL",
})

_LAZY = dict.fromkeys(("PrefillPruner", "StageView", "keep_top_visual", "last_query_scores"), ".base")

__all__ = ["PRUNERS", "PrefillPruner", "StageView", "keep_top_visual", "last_query_scores"]
__getattr__ = lazy_attributes(__name__, _LAZY)
