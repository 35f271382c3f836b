"""``zipvl`` press: ZipVL's mixed-precision KV cache with an adaptive share of important entries.

ZipVL (He et al., "ZipVL: Efficient Large Vision-Language Models with Dynamic Token Sparsification
and KV Cache Compression", arXiv:2410.08584) decides per layer how many tokens are important: the
fewest whose attention reaches ``tau`` of the total mass. The prefill pruner `zipvl` uses that
rule to drop visual tokens; this press uses it for the decoding cache, as the paper does: the
important entries stay at full precision and the rest are quantized (the `quantize` machinery:
fp8 or 2/4/8-bit ints, one scale per key/value vector). The count is decided per layer and input
from the attention of the last ``window`` prompt queries; every head of a layer keeps the same
count (the largest any head or row needs, so each reaches ``tau``), and the last ``window``
entries always stay at full precision.

Simplified: the attention comes from the last prompt queries, not the paper's probe tokens (recent
plus random); quantization is per token vector, not the paper's channel-wise keys / token-wise
values with its own bit widths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..prune.zipvl import minimal_mass_count
from .base import protect_recent
from .quantize import Quantize


@dataclass
class ZipVLCache(Quantize):
    """tau: share of each head's window attention mass whose entries stay at full precision, in
    [0, 1] (1: nothing is quantized); ratio: a floor on the full-precision share (default 0);
    bits / format / window as `quantize`. Must be the last press."""

    ratio: float = 0.0
    tau: float = 0.9
    name: ClassVar[str] = "zipvl"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.tau, (int, float)) or isinstance(self.tau, bool) or not 0.0 <= float(self.tau) <= 1.0:
            raise ValueError(f"tau must be a number in [0, 1], got {self.tau!r}")

    @property
    def is_identity(self) -> bool:
        return float(self.tau) >= 1.0 or float(self.ratio) >= 1.0

    def score(self, module, hidden, keys, positions, attention, *, visual):
        """The window queries' mean attention per entry and key head (no recency bonus: it is the mass)."""
        return attention.mean(dim=2)

    def apply_prefill(self, call, cache, pending) -> None:
        for idx, stored in sorted(pending.items()):
            lay = cache.layers[idx]
            n = lay.keys.shape[-2]
            pos = call.layout.positions(idx, n)
            scores = call.lookup(stored, pos)  # (B, h, n)
            valid = call.layout.entry_valid(pos.expand(-1, scores.shape[1], -1))
            mass = scores.clamp(min=0).masked_fill(~valid, 0.0).flatten(0, 1)
            need = max(minimal_mass_count(row, self.tau) for row in mass)
            n_full = min(n, max(need, math.ceil(self.ratio * n), min(self.window, n)))
            ranked = protect_recent(scores, pos, self.window)
            self.split(call, idx, lay, ranked, pos, n_quant=n - n_full)
