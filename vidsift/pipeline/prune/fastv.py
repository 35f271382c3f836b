"""FastV: after layer K keep only the visual tokens the last text token attends to most.

Chen et al., "An Image is Worth 1/2 Tokens After Layer 2: Plug-and-Play Inference Acceleration
for Large Vision-Language Models", ECCV 2024, https://arxiv.org/abs/2403.06764

As in the paper's implementation, the ranking is layer K-1's attention map (the last prompt
token's row, heads averaged) and layer K onwards sees the pruned sequence (``rank_layer=prev``,
the default); ``rank_layer=same`` ranks with layer K's own attention instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..hooks import CacheLayout
from ..types import ModelInputs
from .base import (
    PrefillPruner,
    check_fraction,
    check_layer,
    keep_top_visual,
    last_query_scores,
)


@dataclass
class FastV(PrefillPruner):
    """Keep the top ``keep`` fraction of visual tokens from layer ``k`` on.

    k:          first decoder layer that sees the pruned sequence (paper: 2)
    keep:       fraction of the prompt's visual tokens kept, in [0, 1] (paper: 0.5)
    rank_layer: ``prev`` (paper): scores from layer k-1's attention; ``same``: from layer k's
    Scores: attention of the last prompt token's query (heads averaged), (B, n).
    """

    k: int = 2
    keep: float = 0.5
    rank_layer: str = "prev"
    name: ClassVar[str] = "fastv"

    def __post_init__(self) -> None:
        check_layer("k", self.k)
        check_fraction("keep", self.keep)
        if self.rank_layer not in ("prev", "same"):
            raise ValueError(f"rank_layer must be one of: prev, same; got {self.rank_layer!r}")
        if self.rank_layer == "prev" and self.k < 1:
            raise ValueError("rank_layer=prev ranks with layer k-1's attention: k must be >= 1 (or rank_layer=same)")

    def schedule(self, n_layers: int) -> dict[int, float]:
        return {self.k: float(self.keep)}

    @contextlib.contextmanager
    def session(self, adapter: Any, inputs: ModelInputs) -> Iterator[dict[str, Any]]:
        if self.rank_layer == "same":
            with super().session(adapter, inputs) as stats:
                yield stats
            return
        self._scores: dict[str, torch.Tensor] = {}
        with CacheLayout.acquire(adapter, inputs) as layout:
            if self.k >= layout.n_layers:  # the schedule check names the layer
                with super().session(adapter, inputs) as stats:
                    yield stats
                return
            remove = layout.add_stage(self.k - 1, self._rank_stage())
            try:
                with super().session(adapter, inputs) as stats:
                    yield stats
            finally:
                remove()

    def _rank_stage(self):
        """At layer k-1: record the last query's attention over every row by original position; keeps all rows."""
        def stage(layout: CacheLayout, idx: int, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  seq_pos: torch.Tensor) -> torch.Tensor:
            b, n = seq_pos.shape
            visual = layout.entry_visual(seq_pos)
            self._scores.clear()
            if int(round(self.keep * int(visual[0].sum()))) < int(visual[0].sum()):
                scores = last_query_scores(layout.layers[idx].self_attn, normed, cos, sin, layout.entry_valid(seq_pos))
                full = torch.zeros(b, int(seq_pos.max()) + 1, dtype=scores.dtype, device=scores.device)
                self._scores["by_pos"] = full.scatter(1, seq_pos, scores)  # (B, L) by original position
            return torch.arange(n, device=seq_pos.device).expand(b, n)

        return stage

    def _stage(self, count: int):
        if self.rank_layer == "same":
            return PrefillPruner._stage(count)

        def stage(layout: CacheLayout, idx: int, normed: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  seq_pos: torch.Tensor) -> torch.Tensor:
            visual = layout.entry_visual(seq_pos)  # (B, n)
            n = seq_pos.shape[1]
            if count >= int(visual[0].sum()):
                return torch.arange(n, device=seq_pos.device).expand(seq_pos.shape[0], n)
            scores = self._scores["by_pos"].gather(1, seq_pos)  # layer k-1's attention of these rows
            return keep_top_visual(scores, visual, count)

        return stage
