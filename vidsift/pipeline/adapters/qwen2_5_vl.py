"""Qwen2.5-VL adapter (also serves Qwen2-VL checkpoints).

Qwen2.5-VL (Bai et al., 2025, https://arxiv.org/abs/2502.13923) pairs frames into temporal
patches (``temporal_patch_size=2``: one group = two frames, an odd count repeats the last frame)
and gives every visual token a 3D M-RoPE position (t, h, w). Its temporal ids follow absolute
time: ``t = floor(group_time * tokens_per_second)`` relative to the clip's first group
(``get_rope_index``: ``arange(T) * tokens_per_second * second_per_grid_ts``). Qwen2-VL
(https://arxiv.org/abs/2409.12191) uses the temporal-patch index instead.

Prompt (Qwen2/2.5-VL chat template, default system prompt)::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    <|vision_start|><|video_pad|> x T<|vision_end|>{question}<|im_end|>\\n<|im_start|>assistant\\n

Irregular keyframes: HF's ``second_per_grid_ts`` is one interval per video, so when the groups
are not evenly spaced in time (or groups of different grids form several video blocks) the
temporal row of each group is rewritten from its real time: block start + floor((pts_g - pts_0) *
tokens_per_second). Evenly spaced groups take ``get_rope_index``'s numbers unchanged, so the
unlimited-budget path is bit-identical to the stock forward. Verified against transformers 5.23
``Qwen2_5_VLModel.get_rope_index`` / ``Qwen2VLModel.get_rope_index``.

Text after a video (verified on 5.23): ``get_rope_index`` starts it at ``start + max(h, w)``, so
when a video's temporal ids run past its spatial extent (longer than ~max(h, w) / tokens_per_second
seconds) the question's positions fall inside the video's; the original Qwen code starts it at the
video's max position + 1. The default ``text_after_video="transformers"`` follows the stock numbers
(equivalence); ``"qwen"`` applies the original rule.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from ...errors import ConfigError
from .qwen_common import Piece, QwenAdapterBase


def seconds_per_group(pts: np.ndarray) -> float:
    """Mean spacing of the groups of one video block (HF's ``second_per_grid_ts``)."""
    return float(pts[-1] - pts[0]) / (len(pts) - 1) if len(pts) > 1 else 1.0


def grid_runs(grids: torch.Tensor) -> list[list[int]]:
    """Consecutive groups with the same (h, w) grid: each run is one video block."""
    runs: list[list[int]] = []
    for g in range(len(grids)):
        if runs and torch.equal(grids[g], grids[runs[-1][0]]):
            runs[-1].append(g)
        else:
            runs.append([g])
    return runs


class Qwen2_5_VLAdapter(QwenAdapterBase):
    """Qwen2.5-VL / Qwen2-VL: one group per temporal patch (two frames), time-aligned M-RoPE."""

    family = "qwen2_5_vl"
    model_types = ("qwen2_5_vl", "qwen2_vl")
    incremental_cache = "qwen_mrope"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, preprocessor: dict[str, Any], *,
                 text_after_video: Literal["transformers", "qwen"] = "transformers", **options: Any) -> None:
        super().__init__(model, tokenizer, preprocessor, **options)
        if text_after_video not in ("transformers", "qwen"):
            raise ConfigError(f"text_after_video={text_after_video}", "choose one of: transformers, qwen")
        self.text_after_video = text_after_video
        # Qwen2-VL has no time alignment: its temporal id is the temporal-patch index
        self.tokens_per_second = getattr(model.config.vision_config, "tokens_per_second", None)

    @classmethod
    def model_class(cls, config: Any) -> type:
        import transformers

        if config.model_type == "qwen2_vl":
            return transformers.Qwen2VLForConditionalGeneration
        return transformers.Qwen2_5_VLForConditionalGeneration

    def _pieces(self, grids: torch.Tensor, pts_seconds: np.ndarray, question: str) -> list[Piece]:
        parts = self.prompt_parts(question)
        pieces = [Piece(text=parts.head)]
        for run in grid_runs(grids):
            owners = tuple(run)  # a block whose groups all keep nothing disappears with its markers
            pieces += [Piece(text="<|vision_start|>", owners=owners), *[Piece(group=g) for g in run],
                       Piece(text="<|vision_end|>", owners=owners)]
        return pieces + [Piece(text=parts.tail)]

    def _pts_key(self, pts: np.ndarray) -> tuple:
        """Positions here depend on the times relative to the first group and on their spacing only
        (no timestamps in the text): every lone frame lays out alike."""
        p = np.asarray(pts, dtype=np.float64)
        return (tuple((p - p[0]).tolist()), tuple(np.diff(p).tolist())) if len(p) else ()

    def _rope_kwargs(self, grids: torch.Tensor, pts_seconds: np.ndarray) -> dict[str, Any]:
        runs = grid_runs(grids)
        thw = torch.tensor([[len(r), int(grids[r[0], 0]) * self.merge, int(grids[r[0], 1]) * self.merge] for r in runs])
        out: dict[str, Any] = {"video_grid_thw": thw}
        if self.tokens_per_second is not None:
            out["second_per_grid_ts"] = torch.tensor([seconds_per_group(pts_seconds[r]) for r in runs])
        return out

    def _regular(self, grids: torch.Tensor, pts: np.ndarray) -> bool:
        runs = grid_runs(grids)
        if len(runs) > 1:
            return False
        steps = np.diff(pts)
        return len(steps) == 0 or bool(np.allclose(steps, seconds_per_group(pts), rtol=1e-3, atol=1e-4))

    def _adjust_positions(self, pos: torch.Tensor, cols: list[torch.Tensor], grids: torch.Tensor,
                          pts_seconds: np.ndarray) -> torch.Tensor:
        if self.tokens_per_second is not None and not self._regular(grids, pts_seconds):
            pos = self._time_positions(pos, cols, grids, pts_seconds)
        if self.text_after_video == "qwen":
            pos = self._text_after_max(pos, cols, grids)
        return pos  # unchanged for evenly spaced groups: get_rope_index's numbers, as the stock path

    @staticmethod
    def _text_after_max(pos: torch.Tensor, cols: list[torch.Tensor], grids: torch.Tensor) -> torch.Tensor:
        """Original Qwen rule: what follows a video block starts at the block's max position + 1."""
        pos = pos.clone()
        for run in grid_runs(grids):
            block = torch.cat([cols[g] for g in run])
            after = int(block.max()) + 1
            if after < pos.shape[1]:
                shift = int(pos[:, block].max()) + 1 - int(pos[0, after])
                if shift > 0:
                    pos[:, after:] += shift
        return pos

    def _time_positions(self, pos: torch.Tensor, cols: list[torch.Tensor], grids: torch.Tensor,
                        pts: np.ndarray) -> torch.Tensor:
        """Temporal row of each group from its real time (irregular keyframes)."""
        pos = pos.clone()
        for run in grid_runs(grids):
            start = int(pos[1, cols[run[0]][0]])  # h row of the block's first token = its start position
            for g in run:
                offset = math.floor((float(pts[g]) - float(pts[0])) * float(self.tokens_per_second) + 1e-6)
                pos[0, cols[g]] = start + offset
        return pos
