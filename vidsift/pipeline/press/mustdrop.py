"""``mustdrop``: MustDrop's output-aware cache policy: evict the visual cache entries the output
does not attend to.

Liu et al., "Multi-Stage Vision Token Dropping: Towards Efficient Multimodal Large Language Model",
arXiv:2411.10803 (https://arxiv.org/abs/2411.10803), stage 3 ("output-aware cache policy"). Stage 1
is the ``mustdrop`` merger (`vidsift.selectors.merge_mustdrop`), stage 2 the ``mustdrop`` prefill
pruner (`vidsift.pipeline.prune.mustdrop`); the ``mustdrop`` budget preset runs all three.

Every layer scores each cache entry by the attention the *output* queries give it: the last prompt
token (whose query produces the first output token) and then every generated token, heads
averaged, summed over those queries. After ``warmup`` generated tokens (0: right at the end of
prefill, from the last prompt token alone) each layer keeps ``ceil(ratio * V)`` of its V visual
entries, the most attended, and evicts the rest for the remainder of decoding; text entries (the
prompt's text and the generated tokens) are never evicted. ``ratio=1`` is the uncompressed cache.

Simplified against the paper: one eviction at a fixed step (``warmup``) with a fixed ratio, rather
than a policy re-evaluated as decoding goes on; the scores are recomputed from q/k (the reference
reads eager attention maps); in a batch with left padding, padding slots count towards a row's
budget, so a padded row may keep a few more visual entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import CachePress, PressCall, check_count


@dataclass
class MustDropPress(CachePress):
    """ratio:  fraction of each layer's visual entries kept, in (0, 1]; text entries are never evicted
    warmup: generated tokens whose attention is summed before the one eviction (0: at the end of prefill)"""

    warmup: int = 0
    name: ClassVar[str] = "mustdrop"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("warmup", self.warmup)
        if self.every:
            raise ValueError("mustdrop evicts once; set warmup (the decode step of the eviction), not every")

    def _accumulate(self, call: PressCall, idx, attn, hidden, cos, sin, keys, pos) -> None:
        """Add the newest query's attention (heads averaged) to layer ``idx``'s per-position sums
        (``call.acc[idx]``: (B, 1, positions seen), kept until the layer's eviction)."""
        probs = call.window_attention(attn, hidden, cos, sin, keys, pos, 1)  # (B, Hk, 1, n)
        call.accumulate(idx, probs.mean(dim=(1, 2)).unsqueeze(1), pos)  # (B, 1, n)

    def entry_scores(self, call: PressCall, idx, attn, hidden, cos, sin, keys, pos) -> torch.Tensor:
        self._accumulate(call, idx, attn, hidden, cos, sin, keys, pos)
        return call.acc[idx].gather(2, pos)  # (B, 1, n)

    def apply_prefill(self, call: PressCall, cache, pending) -> None:
        if self.warmup == 0:
            for idx in sorted(pending):
                lay = cache.layers[idx]
                self._evict(call, idx, lay, call.layout.positions(idx, lay.keys.shape[-2]))

    def on_decode(self, call: PressCall, idx, attn, hidden, cos, sin, lay, pos) -> None:
        if idx not in call.acc:  # evicted already (or never scored: not a plain prefill)
            return
        self._accumulate(call, idx, attn, hidden, cos, sin, lay.keys, pos)
        if call.layout.step + 1 >= self.warmup:
            self._evict(call, idx, lay, pos)

    def _evict(self, call: PressCall, idx: int, lay, pos: torch.Tensor) -> None:
        """Keep every text entry and the ``ceil(ratio * V)`` visual entries with the most output attention."""
        visual = call.layout.entry_visual(pos)  # (B, 1, n)
        n_vis = int(visual[0].sum())
        keep_vis = min(n_vis, math.ceil(self.ratio * n_vis))
        scores = torch.where(visual, call.acc[idx].gather(2, pos), torch.tensor(float("inf"), device=pos.device))
        self.compress(call, idx, lay, scores, pos, lay.keys.shape[-2] - n_vis + keep_vis)
        call.stats.setdefault("kept_visual_per_layer", {})[idx] = keep_vis
        call.acc.pop(idx)
