"""Qwen3-VL adapter: text timestamps per temporal patch, interleaved M-RoPE, DeepStack features.

Qwen3-VL (Qwen Team, 2025, https://arxiv.org/abs/2511.21631) writes each temporal patch's time
as text and wraps its tokens in vision markers; the M-RoPE temporal id of every group is just its
start position (``get_rope_index`` splits ``video_grid_thw`` into one t=1 grid per group)::

    <|im_start|>user\\n<0.2 seconds><|vision_start|><|video_pad|> x T_0<|vision_end|>
    <1.2 seconds><|vision_start|>...<|vision_end|>{question}<|im_end|>\\n<|im_start|>assistant\\n

The time of a group is the mean of its two frames' times (``Qwen3VLProcessor._calculate_timestamps``),
printed with one decimal; we use the frames' real pts, so irregular keyframes get their true times.
A group that keeps no token loses its timestamp and markers too; the other tokens keep their
full-layout positions. DeepStack: the vision tower also returns one merged feature map per
``deepstack_visual_indexes`` level; the LLM adds level i to the visual positions after decoder
layer i. The kept tokens' deepstack rows travel in ``VisualTokens.deepstack`` and are injected
with ``BaseModelOutputWithDeepstackFeatures(pooler_output=(feats,), deepstack_features=[(lvl,)...])``
(transformers 5.23 ``Qwen3VLModel.forward`` concatenates each level's tuple). In-LLM pruning must
start after the last deepstack layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...types import VisualTokens
from .qwen_common import Piece, QwenAdapterBase


class Qwen3VLAdapter(QwenAdapterBase):
    """Qwen3-VL: one group per temporal patch (two frames) labelled ``<t seconds>``, with DeepStack."""

    family = "qwen3_vl"
    model_types = ("qwen3_vl", "qwen3_vl_moe")  # the MoE variant shares layout, rope and deepstack
    system_prompt = None  # the Qwen3-VL chat template adds no default system prompt

    @classmethod
    def model_class(cls, config: Any) -> type:
        import transformers

        if config.model_type == "qwen3_vl_moe":
            return transformers.Qwen3VLMoeForConditionalGeneration
        return transformers.Qwen3VLForConditionalGeneration

    @property
    def deepstack_layers(self) -> int:
        """Decoder layers that receive DeepStack features (in-LLM pruning must start at or after this)."""
        return len(self.model.config.vision_config.deepstack_visual_indexes)

    def _group_pts(self, pts: np.ndarray) -> np.ndarray:
        return pts.reshape(-1, self.pre.temporal_patch_size).mean(axis=1)

    def _pieces(self, grids: torch.Tensor, pts_seconds: np.ndarray, question: str) -> list[Piece]:
        parts = self.prompt_parts(question)
        pieces = [Piece(text=parts.head)]
        for g, t in enumerate(pts_seconds):
            pieces += [Piece(text=f"<{float(t):.1f} seconds><|vision_start|>", owners=(g,)), Piece(group=g),
                       Piece(text="<|vision_end|>", owners=(g,))]
        return pieces + [Piece(text=parts.tail)]

    def _rope_kwargs(self, grids: torch.Tensor, pts_seconds: np.ndarray) -> dict[str, Any]:
        m = self.merge
        return {"video_grid_thw": torch.tensor([[1, int(h) * m, int(w) * m] for h, w in grids.tolist()])}

    def _encoder_output(self, feats: torch.Tensor, tokens: VisualTokens, vis_order: torch.Tensor):
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        if tokens.deepstack is None:
            raise ValueError("VisualTokens.deepstack: Qwen3-VL needs the DeepStack features of every kept token")
        levels = [torch.cat(lv) for lv in zip(*tokens.deepstack)]  # each (T, D) in group order
        deep = [(lv[vis_order.to(lv.device)],) for lv in levels]
        return BaseModelOutputWithDeepstackFeatures(pooler_output=(feats,), deepstack_features=deep)
