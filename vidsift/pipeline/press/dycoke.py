"""``dycoke``: DyCoke's dynamic KV-cache reduction while decoding.

Tao et al., "DyCoke: Dynamic Compression of Tokens for Fast Video Large Language Models",
CVPR 2025, arXiv:2411.15024. Stage 1 (temporal token merging before the LLM) is the ``temporal``
merger. Stage 2, here: at every decoding step the current token's attention over the cache at
layer ``layer - 1`` (heads averaged) picks the ``ratio`` share of the prompt's visual entries it
attends to most, and layers ``layer`` and deeper attend only to those visual entries in this step.
Nothing is evicted: the other visual entries stay in the cache and may be picked again at a later
step (the paper keeps them in a pruned-token cache for exactly that), so the saving is attention
compute, not memory. Text entries are always seen. Stats: the visual entries seen per step.

Simplified, and said so: the selection is recomputed from this step's query at layer ``layer - 1``
(recomputed q/k against the cached keys, so SDPA works) rather than read from the attention maps;
the prefill is not pruned (``fastv`` or ``todre`` do that); heads share one selection; a cache that
another press has already cut per head is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...errors import ConfigError
from ..hooks import HookSet
from .base import CachePress, PressCall, check_count


@dataclass
class DyCoke(CachePress):
    """ratio: share of the prompt's visual entries each decoding step attends to, in (0, 1]
    layer: first decoder layer that sees only the chosen visual entries (>= 1; layer - 1 chooses)
    """

    layer: int = 2
    name: ClassVar[str] = "dycoke"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("layer", self.layer, 1)
        if self.every:
            raise ValueError("dycoke re-selects at every decoding step by itself; every must be 0")

    def _install(self, call: PressCall, hooks: HookSet) -> None:
        layout = call.layout
        if self.is_identity:
            return
        if self.layer >= layout.n_layers:
            raise ConfigError(f"{self.name}:layer={self.layer}", f"the model has layers 0..{layout.n_layers - 1}")
        seen: dict[str, torch.Tensor] = {}  # "by_pos": bool (B, positions) visual entries this step may see

        def choose(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            seen.clear()
            cache = kwargs.get("past_key_values")
            if layout.is_prefill or layout.qpos is None or cache is None:
                return
            idx = self.layer - 1
            lay = cache.layers[idx]
            pos = layout.positions(idx, lay.keys.shape[-2])  # (B, h, n)
            if pos.shape[1] > 1:
                raise ConfigError(self.name, "its selection layer holds a per-head cache (put dycoke before per-head presses, or drop them)")
            hidden = args[0] if args else kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"]
            att = call.window_attention(module, hidden, cos, sin, lay.keys, pos, 1).mean(dim=(1, 2))  # (B, n)
            visual = layout.entry_visual(pos[:, 0]) & layout.entry_valid(pos[:, 0])  # (B, n)
            by_pos = torch.zeros(pos.shape[0], layout.seen + layout.qpos.shape[1], dtype=torch.bool, device=pos.device)
            kept = []
            for row in range(pos.shape[0]):
                vis = torch.nonzero(visual[row]).flatten()
                count = min(vis.numel(), math.ceil(self.ratio * vis.numel()))
                top = vis[torch.argsort(att[row, vis], descending=True, stable=True)[:count]]
                by_pos[row, pos[row, 0, top]] = True
                kept.append(count)
            seen["by_pos"] = by_pos
            call.stats.setdefault("visual_seen_per_step", []).append(kept[0])

        def hide(idx: int, pos: torch.Tensor) -> torch.Tensor | None:
            """Layers >= ``layer`` in a decoding step: the prompt's visual entries not chosen this step."""
            if idx < self.layer or "by_pos" not in seen:
                return None
            b = pos.shape[0]
            by_pos = seen["by_pos"]
            chosen = by_pos.gather(1, pos.reshape(b, -1).clamp(max=by_pos.shape[1] - 1)).view_as(pos)
            return layout.entry_visual(pos) & ~chosen

        hooks.post(layout.layers[self.layer - 1].self_attn, choose)
        layout.decode_filters.append(hide)
        hooks.on_remove(lambda: layout.decode_filters.remove(hide))
        call.stats["layer"] = self.layer
