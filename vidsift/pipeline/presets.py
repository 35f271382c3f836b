"""One knob: named budgets that set every stage at once (``--preset fast`` or ``--budget fast``).

The `PRESETS` table lives beside `Budget` (``vidsift.types``), whose one parser reads
preset names; this module re-exports it and documents the presets.

Each preset is a dict of `Budget` fields: how many visual tokens the LLM is fed (``fraction`` of
the full video's tokens, chosen by the selectors), how hard to prune inside the LLM during
prefill (``prune``, a `PRUNERS` spec), how to compress the decoding cache (``kv``, a
`PRESSES` spec) and, optionally, which spatial merger brings the frames to their share
(``merger``, a `MERGERS` spec; an explicit ``--merger`` wins). Explicit options win over the preset: ``Budget`` fields given next to a preset
name (``--budget fast --kv snapkv:ratio=0.5``) replace the preset's value (`preset_budget`).

fast:     a quarter of the visual tokens, FastV halves them again after layer 2 (the paper's
          setting), SnapKV keeps a quarter of the cache and stores it in fp8.
balanced: half the visual tokens, a gentle FastV (3/4 after layer 3), SnapKV keeps half.
faithful: three quarters of the visual tokens, no in-LLM pruning, full cache.
mustdrop: MustDrop's three stages (Liu et al., arXiv:2411.10803): a quarter of the visual tokens
          reached by the ``mustdrop`` merger (key-token set never merged, adjacent tokens merged
          from cosine similarity 0.8), the ``mustdrop`` dual-attention filter at layer 2, and the
          ``mustdrop`` output-aware press keeping half of each layer's visual cache entries.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError
from ..types import PRESETS, Budget

__all__ = ["PRESETS", "preset_budget"]


def preset_budget(name: str, **overrides: Any) -> Budget:
    """The preset's `Budget`, with every non-None override replacing the preset's field.

    ``tokens`` and ``fraction`` are one choice: giving either replaces both.
    """
    try:
        fields = dict(PRESETS[name])
    except KeyError:
        raise ConfigError(name, f"unknown preset; choose one of: {', '.join(sorted(PRESETS))}") from None
    allowed = {f.name for f in dataclasses.fields(Budget)}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(", ".join(unknown), f"not a budget field; choose from: {', '.join(sorted(allowed))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "tokens" in given or "fraction" in given:
        fields.pop("tokens", None)
        fields.pop("fraction", None)
    return Budget(**{**fields, **given})
