"""One knob: named budgets that set every stage at once (``--preset fast`` or ``--budget fast``).

The `PRESETS` table lives beside `Budget` (``vidsift.types``), whose one parser reads
preset names; this module re-exports it and documents the presets.

Each preset is a dict of `Budget` fields: how many visual tokens the LLM is fed (``fraction`` of
the full video's tokens, chosen by the selectors), how hard to prune inside the LLM during
prefill (``prune``, a `PRUNERS` spec), how to compress the decoding cache (``kv``, a
`PRESSES` spec) and, optionally, which spatial merger brings the frames to their share
(``merger``, a `MERGERS` spec; an explicit ``--merger`` wins). Explicit options win over the
preset: ``Budget`` fields given next to a preset name (``--budget fast --kv snapkv:ratio=0.5``)
replace the preset's value (`Budget.apply`).

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

from ..types import PRESETS

__all__ = ["PRESETS"]
