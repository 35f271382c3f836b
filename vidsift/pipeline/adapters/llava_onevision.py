"""LLaVA-OneVision adapter (also serves LLaVA-Video checkpoints: same ``llava_onevision`` class).

LLaVA-OneVision (Li et al., 2024, https://arxiv.org/abs/2408.03326) treats a video as frames at
the SigLIP size (384), projects every patch feature into the LLM, then 2x2 bilinear-pools each
frame (27x27 -> 14x14 = 196 tokens) and appends ONE learned ``image_newline`` after the last
frame. The LLM (Qwen2) uses plain 1D positions, so dropping tokens just shortens the prompt.

Verified on transformers 5.23 (``modeling_llava_onevision.py``):

- ``get_video_features(pixel_values_videos (B, F, 3, S, S))`` -> ``pooler_output`` a tensor
  (B, F*P + 1, D): projector -> ``apply_pooling`` (bilinear to ceil(n/2)) -> newline appended.
- ``forward(mm_encoder_outputs={"video": out})`` consumes ``out.pooler_output.flatten(0, 1)``
  and scatters it into the ``<video>`` placeholders (count checked), skipping the tower. So we
  pass ``BaseModelOutputWithPooling(pooler_output=feats[None])`` with feats (T + 1, D): the kept
  tokens then the newline. ``generate`` keeps ``mm_encoder_outputs`` for prefill only.
  Chosen over hand-built ``inputs_embeds``: after the tower it is the stock code path (so
  full budget is bit-identical), ``input_ids`` stay available to pruners, and ``generate``
  forwards ``mm_encoder_outputs`` to prefill only.
- The processor's video prompt is ``<|im_start|>user <video>\\n{q}<|im_end|><|im_start|>assistant\\n``
  (checkpoint chat template) with ``<video>`` repeated F*P + 1 times.

The newline is a structural token: it keeps its placeholder but is False in ``visual_mask`` so
pruners never drop it. Encoder saliency = attention each patch receives in the tower layer that
produces the used features, bilinear-pooled like the features.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ...errors import ConfigError
from ...types import FrameBatch, VisualTokens
from ..types import ModelInputs
from .base import ModelAdapter, PromptParts, one_frame_clips
from .recording import record_inputs
from .llava_onevision_siglip import attention_received, feature_layer_index, frames_to_pixels

_FALLBACK_TEMPLATE = "<|im_start|>user <video>\n{question}<|im_end|><|im_start|>assistant\n"


class LlavaOnevisionAdapter(ModelAdapter):
    """LLaVA-OneVision / LLaVA-Video: one group per frame of ceil(n/2)^2 pooled tokens.

    Options (keyword-only): ``saliency`` computes encoder attention saliency per token;
    ``chunk_frames`` frames go through the vision tower per call; ``time_instruction`` prefixes
    the question with LLaVA-Video's frame-time line (real pts of the frames shown, as in the
    LLaVA-NeXT repo's ``add_time_instruction``; the HF processor does not write it).
    """

    family = "llava_onevision"
    model_types = ("llava_onevision",)
    incremental_cache = "llava_onevision"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, preprocessor: dict[str, Any], *,
                 saliency: bool = True, chunk_frames: int = 32, time_instruction: bool = False) -> None:
        super().__init__(model, tokenizer, preprocessor)
        if chunk_frames < 1:
            raise ConfigError(f"chunk_frames={chunk_frames}", "must be >= 1")
        self.saliency, self.chunk_frames, self.time_instruction = saliency, chunk_frames, time_instruction
        cfg = model.config
        self.video_token_id = int(cfg.video_token_id)
        vc = cfg.vision_config
        self.image_size, self.patch = int(vc.image_size), int(vc.patch_size)
        self.patches_per_side = self.image_size // self.patch
        self.pooled = math.ceil(self.patches_per_side / 2)
        size = preprocessor.get("size") or {}
        side = size.get("height") or size.get("shortest_edge") or self.image_size
        if int(side) != self.image_size or int(size.get("width", side)) != self.image_size:
            raise ConfigError(f"size={size}", f"LLaVA-OneVision video frames must be {self.image_size}x{self.image_size} (vision_config.image_size)")

    @classmethod
    def model_class(cls, config: Any) -> type:
        from transformers import LlavaOnevisionForConditionalGeneration

        return LlavaOnevisionForConditionalGeneration

    def tokens_per_frame(self, height: int, width: int) -> float:
        return float(self.pooled * self.pooled)

    # -- vision ---------------------------------------------------------------------------------
    def _pixels(self, frames: FrameBatch) -> torch.Tensor:
        vision_dtype = self.model.model.vision_tower.dtype
        return frames_to_pixels(frames.data, height=self.image_size, width=self.image_size, preprocessor=self.preprocessor,
                                default_resample=3, dtype=vision_dtype, device=self.device)  # (N, 3, S, S)

    @torch.no_grad()
    def encode(self, frames: FrameBatch) -> VisualTokens:
        if len(frames) == 0:
            raise ConfigError("frames", "no frames to encode")
        inner = self.model.model
        pixels = self._pixels(frames)
        tower = inner.vision_tower
        layers = getattr(tower, "vision_model", tower).encoder.layers  # 5.x SiglipVisionModel is flat
        idx = feature_layer_index(self.model.config.vision_feature_layer, len(layers)) if self.saliency else None
        feats, sal = [], []
        for start in range(0, len(frames), self.chunk_frames):
            chunk = pixels[start : start + self.chunk_frames]
            if idx is None:
                out = inner.get_video_features(chunk[None])
            else:
                with record_inputs(layers[idx]) as seen:
                    out = inner.get_video_features(chunk[None])
                sal.append(self._pool_saliency(attention_received(layers[idx], seen[-1]["hidden_states"])))
            feats.append(out.pooler_output[0, :-1].reshape(len(chunk), self.pooled * self.pooled, -1))  # (n, P, D)
        embeds = torch.cat(feats)  # (N, P, D)
        hh, ww = torch.meshgrid(torch.arange(self.pooled), torch.arange(self.pooled), indexing="ij")
        n = len(frames)
        return VisualTokens(
            embeds=list(embeds.unbind(0)),
            coords=[torch.stack([torch.full_like(hh, t), hh, ww], -1).reshape(-1, 3) for t in range(n)],
            size=[torch.ones(self.pooled * self.pooled) for _ in range(n)],
            grid_thw=torch.tensor([[1, self.pooled, self.pooled]] * n, dtype=torch.long),
            pts_seconds=frames.pts_seconds.copy(), index=frames.index.copy(),
            saliency=list(torch.cat(sal).unbind(0)) if sal else None,
        )

    def encode_each(self, frames: FrameBatch) -> list[VisualTokens]:
        """One `encode` of all the frames, split per frame: the tower sees each frame alone."""
        return one_frame_clips(self.encode(frames))

    def _pool_saliency(self, received: torch.Tensor) -> torch.Tensor:
        """(N, n*n) patch saliency -> (N, P) on the pooled grid, the way apply_pooling pools features."""
        if self.model.config.vision_feature_select_strategy == "default":
            received = received[:, 1:]
        n = self.patches_per_side
        grid = received.view(-1, 1, n, n)
        pooled = torch.nn.functional.interpolate(grid, size=[self.pooled, self.pooled], mode="bilinear")
        return pooled.flatten(1).cpu()

    # -- prompt -------------------------------------------------------------------------------
    def _question(self, question: str, pts_seconds: np.ndarray, duration_s: float | None) -> str:
        if not self.time_instruction or len(pts_seconds) == 0:
            return question
        duration = duration_s if duration_s is not None else float(max(pts_seconds))
        times = ",".join(f"{t:.2f}s" for t in pts_seconds)
        return (f"The video lasts for {duration:.2f} seconds, and {len(pts_seconds)} frames are uniformly sampled from it. "
                f"These frames are located at {times}.Please answer the following questions related to this video.\n{question}")

    def prompt_parts(self, question: str) -> PromptParts:
        """The checkpoint's chat template (a fallback when it has none) around its one ``<video>``."""
        video = self.tokenizer.convert_ids_to_tokens(self.video_token_id)
        conv = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        else:
            text = _FALLBACK_TEMPLATE.format(question=question)
        if text.count(video) != 1:
            raise ConfigError("chat_template", f"expected one {video} in the rendered prompt, found {text.count(video)}")
        head, _, tail = text.partition(video)
        return PromptParts(head=head, tail=tail)

    def _prompt(self, question: str, n_placeholders: int) -> dict[str, torch.Tensor]:
        parts = self.prompt_parts(question)
        video = self.tokenizer.convert_ids_to_tokens(self.video_token_id)
        enc = self.tokenizer(parts.head + video * n_placeholders + parts.tail, return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def build_inputs(self, tokens: VisualTokens, question: str, *, duration_s: float | None = None) -> ModelInputs:
        """``duration_s`` (only with ``time_instruction``): the video's length, default the last pts."""
        newline = self.model.model.image_newline
        feats = torch.cat([*[e.to(newline.device, newline.dtype) for e in tokens.embeds], newline[None]])  # (T + 1, D)
        shown = tokens.pts_seconds[[n > 0 for n in tokens.tokens_per_group]] if tokens.n_groups else tokens.pts_seconds
        kwargs = self._prompt(self._question(question, shown, duration_s), tokens.n_tokens + 1)
        kwargs["mm_encoder_outputs"] = {"video": BaseModelOutputWithPooling(pooler_output=feats[None])}
        visual = kwargs["input_ids"] == self.video_token_id  # (1, L)
        last = int(visual[0].nonzero()[-1])
        visual[0, last] = False  # the newline is structural
        return ModelInputs(kwargs=kwargs, visual_mask=visual)

    def pixel_inputs(self, frames: FrameBatch, question: str, *, duration_s: float | None = None) -> dict[str, Any]:
        question = self._question(question, frames.pts_seconds, duration_s)
        kwargs = self._prompt(question, len(frames) * self.pooled * self.pooled + 1)
        kwargs["pixel_values_videos"] = self._pixels(frames)[None]  # (1, N, 3, S, S)
        return kwargs
