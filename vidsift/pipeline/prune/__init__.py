"""Prefill pruners: drop visual tokens inside the LLM during prefill (``--prune fastv:k=2,keep=0.5``).

``PRUNERS.build_many("fastv:k=2,keep=0.5")`` -> members; each has
``session(adapter, inputs) -> ContextManager[stats dict]`` that installs reversible hooks for one
generate call.
"""

from __future__ import annotations

from ...registry import Registry

PRUNERS: Registry = Registry("prefill pruner")

from . import drop_after, fastv, ficoco, pdrop, schedule, zipvl  # noqa: E402,F401  (register members)
from .base import PrefillPruner, keep_top_visual, last_query_scores  # noqa: E402

__all__ = ["PRUNERS", "PrefillPruner", "keep_top_visual", "last_query_scores"]
