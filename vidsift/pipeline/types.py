"""Data inside the pipeline: visual tokens in LLM space (`VisualTokens`), prepared model
inputs (`ModelInputs`) and the result of a question (`Answer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..selectors.types import TokenPlan


@dataclass
class VisualTokens:
    """Visual tokens of a clip in LLM embedding space, one group per temporal slot.

    A group is one frame (LLaVA-OneVision, SmolVLM2, Qwen3-VL per timestamp) or one temporal
    patch (two frames for Qwen2-VL / Qwen2.5-VL). Per group g with T_g tokens:

    embeds[g]:    (T_g, D) in the LLM's hidden size, ready to inject
    coords[g]:    long (T_g, 3): (t, h, w) of each token in the *full* (unpruned) LLM-token grid
    size[g]:      float (T_g,): how many original tokens each token stands for (1 if unmerged)
    saliency[g]:  float (T_g,) encoder importance, or None
    deepstack[g]: list of (T_g, D) per deepstack level (Qwen3-VL), or None
    grid_thw:     long (G, 3): each group's full grid in LLM tokens before any reduction
    pts_seconds:  (G,) time of each group; index: (G,) frame index of the group's first frame
    """

    embeds: list[torch.Tensor]
    coords: list[torch.Tensor]
    size: list[torch.Tensor]
    grid_thw: torch.Tensor
    pts_seconds: np.ndarray
    index: np.ndarray
    saliency: list[torch.Tensor] | None = None
    deepstack: list[list[torch.Tensor]] | None = None

    def __post_init__(self) -> None:
        g = len(self.embeds)
        if not (len(self.coords) == len(self.size) == g == len(self.pts_seconds) == len(self.index) == self.grid_thw.shape[0]):
            raise ValueError("VisualTokens: every per-group field needs one entry per group")
        for e, c, s in zip(self.embeds, self.coords, self.size):
            if e.ndim != 2 or c.shape != (e.shape[0], 3) or s.shape != (e.shape[0],):
                raise ValueError(f"VisualTokens: embeds {tuple(e.shape)}, coords {tuple(c.shape)}, size {tuple(s.shape)} disagree")

    @property
    def n_groups(self) -> int:
        return len(self.embeds)

    @property
    def n_tokens(self) -> int:
        return int(sum(e.shape[0] for e in self.embeds))

    @property
    def tokens_per_group(self) -> list[int]:
        return [int(e.shape[0]) for e in self.embeds]

    def select(self, groups: list[int] | np.ndarray) -> "VisualTokens":
        """Keep whole groups (sorted, unique indices)."""
        groups = [int(i) for i in groups]
        pick = lambda xs: None if xs is None else [xs[i] for i in groups]  # noqa: E731
        return VisualTokens(
            embeds=pick(self.embeds), coords=pick(self.coords), size=pick(self.size),
            grid_thw=self.grid_thw[groups], pts_seconds=self.pts_seconds[groups], index=self.index[groups],
            saliency=pick(self.saliency), deepstack=pick(self.deepstack),
        )

    def keep(self, keep_idx: list[torch.Tensor], size: list[torch.Tensor] | None = None,
             embeds: list[torch.Tensor] | None = None) -> "VisualTokens":
        """Keep tokens ``keep_idx[g]`` (sorted) of each group; merged tokens pass their new
        ``embeds`` and ``size`` and keep the coords of their representative token."""
        out_embeds = embeds if embeds is not None else [e[k] for e, k in zip(self.embeds, keep_idx)]
        out_size = size if size is not None else [s[k] for s, k in zip(self.size, keep_idx)]
        return VisualTokens(
            embeds=out_embeds,
            coords=[c[k] for c, k in zip(self.coords, keep_idx)],
            size=out_size,
            grid_thw=self.grid_thw, pts_seconds=self.pts_seconds, index=self.index,
            saliency=None if self.saliency is None else [s[k] for s, k in zip(self.saliency, keep_idx)],
            deepstack=None if self.deepstack is None else [[lvl[k] for lvl in d] for d, k in zip(self.deepstack, keep_idx)],
        )


@dataclass
class ModelInputs:
    """Everything one forward/generate call needs.

    kwargs:      passed as ``model(**kwargs)`` / ``model.generate(**kwargs)``
                 (input_ids, attention_mask, position_ids, mm_encoder_outputs, ...)
    visual_mask: bool (B, L): True where the prompt holds a visual token (for in-LLM pruners
                 and cache presses, which must never guess offsets)
    """

    kwargs: dict[str, Any]
    visual_mask: torch.Tensor

    @property
    def input_ids(self) -> torch.Tensor:
        return self.kwargs["input_ids"]

    @property
    def prompt_len(self) -> int:
        return int(self.kwargs["input_ids"].shape[1])


@dataclass
class Answer:
    """The answer to one question: text, the plan that produced it, and measured stats.

    stats keys (when measured): tokens_full, tokens_planned, tokens_in_prompt, prompt_len,
    time_s {decode, score, select, encode, prefill, generate}, ttft_s, kv_bytes, peak_rss_bytes,
    peak_cuda_bytes, new_tokens.
    """

    text: str
    plan: TokenPlan | None
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "plan": None if self.plan is None else self.plan.to_dict(), "stats": self.stats}
