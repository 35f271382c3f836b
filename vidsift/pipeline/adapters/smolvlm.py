"""SmolVLM2 adapter (``model_type == "smolvlm"``, class ``SmolVLMForConditionalGeneration``).

SmolVLM2 (Marafioti et al., 2025, https://arxiv.org/abs/2504.05299) reads a video as
separate square frames (no image splitting for video), each written in the prompt as
``\\nFrame from MM:SS:<fake_token_around_image><global-img><image>*K<fake_token_around_image>``
after a one-line intro; the SigLIP tower's patches go through a pixel-shuffle connector
(scale s: an (n x n) patch grid -> (n/s x n/s) tokens, K = image_seq_len) and a linear
projection. The Llama LLM uses 1D positions, so dropped tokens just shorten the prompt, and the
timestamps are text: irregular keyframes simply carry their real pts.

Verified on transformers 5.23 (``modeling_smolvlm.py`` / ``processing_smolvlm.py``):

- ``get_image_features(pixel_values (B, F, 3, S, S))`` -> ``pooler_output`` a list with one
  (F*K, D) tensor per sample; it silently drops all-zero frames (treated as padding), so
  `encode` checks the count.
- ``forward(mm_encoder_outputs={"image": out})`` does ``torch.cat(out.pooler_output)`` and
  scatters into the ``<image>`` placeholders (count checked), skipping the tower. We pass
  ``BaseModelOutputWithPooling(pooler_output=[feats])`` with feats (T, D) of the kept tokens.
  Chosen over hand-built ``inputs_embeds``: after the tower it is the stock code path (so
  full budget is bit-identical), ``input_ids`` stay available to pruners, and ``generate``
  forwards ``mm_encoder_outputs`` to prefill only.
- The processor's video prompt uses ``DEFAULT_CHAT_TEMPLATE`` / ``DEFAULT_VIDEO_INTRO`` /
  ``FRAME_TIMESTAMP_MESSAGE`` / ``DEFAULT_MEDIA_OUTTRO`` of ``processing_smolvlm`` (imported
  here so the layout follows transformers); the frame count is written in words.
- Pixels as HF's video processor makes them: each frame resized to its longest edge
  (``video_sampling.video_size``, else ``size``, capped at the processor's ``MAX_IMAGE_SIZE``;
  the short edge rounded up to even), then to the ``max_image_size`` square. We resize with PIL
  (``resample`` from the config, LANCZOS by default) as the PIL image processor does; the
  torchvision video processor's own resize differs in low bits.

Structural tokens (``<fake_token_around_image>``, ``<global-img>``, timestamps) are text and
False in ``visual_mask``; a frame whose tokens were all dropped is left out of the prompt.
Encoder saliency = attention each patch receives in the last tower layer, averaged over the
s x s patches each token shuffles together.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.smolvlm.processing_smolvlm import (
    DEFAULT_CHAT_TEMPLATE,
    DEFAULT_MEDIA_OUTTRO,
    DEFAULT_VIDEO_INTRO,
    FRAME_TIMESTAMP_MESSAGE,
)

from ...errors import ConfigError
from ...types import FrameBatch, VisualTokens
from ..types import ModelInputs
from .base import ModelAdapter, PromptParts, one_frame_clips
from .recording import record_inputs
from .llava_onevision_siglip import attention_received, frames_to_pixels
from .smolvlm_words import number_words


class SmolVLMAdapter(ModelAdapter):
    """SmolVLM2: one group per frame of image_seq_len tokens, timestamps in the text.

    Options (keyword-only): ``saliency`` computes encoder attention saliency per token;
    ``chunk_frames`` frames go through the vision tower per call.
    """

    family = "smolvlm"
    model_types = ("smolvlm",)

    def __init__(self, model: torch.nn.Module, tokenizer: Any, preprocessor: dict[str, Any], *,
                 saliency: bool = True, chunk_frames: int = 32) -> None:
        super().__init__(model, tokenizer, preprocessor)
        if chunk_frames < 1:
            raise ConfigError(f"chunk_frames={chunk_frames}", "must be >= 1")
        self.saliency, self.chunk_frames = saliency, chunk_frames
        cfg = model.config
        self.image_token_id = int(cfg.image_token_id)
        self.scale = int(cfg.scale_factor)
        self.patch = int(cfg.vision_config.patch_size)
        side = (preprocessor.get("max_image_size") or {}).get("longest_edge", cfg.vision_config.image_size)
        self.side = int(side)
        if self.side % (self.patch * self.scale):
            raise ConfigError(f"max_image_size={self.side}", f"must be a multiple of patch_size*scale_factor = {self.patch * self.scale}")
        self.grid = self.side // (self.patch * self.scale)  # tokens per side after pixel shuffle
        self.fake = getattr(tokenizer, "fake_image_token", None) or "<fake_token_around_image>"
        self.global_img = getattr(tokenizer, "global_image_token", None) or "<global-img>"
        self.image = tokenizer.convert_ids_to_tokens(self.image_token_id)

    @classmethod
    def model_class(cls, config: Any) -> type:
        from transformers import SmolVLMForConditionalGeneration

        return SmolVLMForConditionalGeneration

    @property
    def decoder_layers(self) -> torch.nn.ModuleList:
        return self.model.model.text_model.layers

    def tokens_per_frame(self, height: int, width: int) -> float:
        return float(self.grid * self.grid)

    # -- vision ---------------------------------------------------------------------------------
    def _pixels(self, frames: FrameBatch) -> torch.Tensor:
        return frames_to_pixels(frames.data, height=self.side, width=self.side, preprocessor=self.preprocessor,
                                default_resample=1, dtype=self.model.model.vision_model.dtype, device=self.device,
                                via=self._longest_edge_size)

    def _longest_edge_size(self, height: int, width: int) -> tuple[int, int]:
        """The first resize of HF's SmolVLM video processor: longest edge to the video size."""
        from transformers.models.smolvlm.video_processing_smolvlm import MAX_IMAGE_SIZE

        pre = self.preprocessor
        size = ((pre.get("video_sampling") or {}).get("video_size") or pre.get("size") or {}).get("longest_edge", self.side)
        edge = min(MAX_IMAGE_SIZE, int(size))
        if width >= height:
            short = int(edge / (width / height))
            return max(1, short + short % 2), edge
        short = int(edge * (width / height))
        return edge, max(1, short + short % 2)

    @torch.no_grad()
    def encode(self, frames: FrameBatch) -> VisualTokens:
        if len(frames) == 0:
            raise ConfigError("frames", "no frames to encode")
        inner, k = self.model.model, self.grid * self.grid
        pixels = self._pixels(frames)  # (N, 3, S, S)
        last = inner.vision_model.encoder.layers[-1]
        feats, sal = [], []
        for start in range(0, len(frames), self.chunk_frames):
            chunk = pixels[start : start + self.chunk_frames]
            if self.saliency:
                with record_inputs(last) as seen:
                    out = inner.get_image_features(chunk[None])
                sal.append(self._pool_saliency(attention_received(last, seen[-1]["hidden_states"])))
            else:
                out = inner.get_image_features(chunk[None])
            f = out.pooler_output[0]
            if f.shape[0] != len(chunk) * k:
                raise ValueError(f"frames: the vision tower returned {f.shape[0] // k} of {len(chunk)} frames (all-zero frames are dropped as padding)")
            feats.append(f.view(len(chunk), k, -1))  # (n, K, D)
        embeds = torch.cat(feats)
        hh, ww = torch.meshgrid(torch.arange(self.grid), torch.arange(self.grid), indexing="ij")
        n = len(frames)
        return VisualTokens(
            embeds=list(embeds.unbind(0)),
            coords=[torch.stack([torch.full_like(hh, t), hh, ww], -1).reshape(-1, 3) for t in range(n)],
            size=[torch.ones(k) for _ in range(n)],
            grid_thw=torch.tensor([[1, self.grid, self.grid]] * n, dtype=torch.long),
            pts_seconds=frames.pts_seconds.copy(), index=frames.index.copy(),
            saliency=list(torch.cat(sal).unbind(0)) if sal else None,
        )

    def encode_each(self, frames: FrameBatch) -> list[VisualTokens]:
        """One `encode` of all the frames, split per frame: the tower sees each frame alone."""
        return one_frame_clips(self.encode(frames))

    def _pool_saliency(self, received: torch.Tensor) -> torch.Tensor:
        """(N, P) patch saliency, P = (side // patch)**2 -> (N, K): mean over the s x s patches pixel shuffle groups."""
        s, m = self.scale, self.grid
        return received.view(-1, m, s, m, s).mean(dim=(2, 4)).flatten(1).cpu()

    # -- prompt -------------------------------------------------------------------------------
    def prompt_parts(self, question: str) -> PromptParts:
        """SmolVLM's ``DEFAULT_CHAT_TEMPLATE`` (as its processor renders a video turn) around ``<video>``."""
        conv = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        text = self.tokenizer.apply_chat_template(conv, chat_template=DEFAULT_CHAT_TEMPLATE, tokenize=False, add_generation_prompt=True)
        head, _, tail = text.partition("<video>")
        return PromptParts(head=head, tail=tail)

    def _prompt(self, question: str, counts: list[int], pts_seconds: np.ndarray, duration_s: float | None) -> dict[str, torch.Tensor]:
        shown = [(c, t) for c, t in zip(counts, pts_seconds) if c > 0]
        duration = int(duration_s if duration_s is not None else (max(pts_seconds) if len(pts_seconds) else 0))
        video = DEFAULT_VIDEO_INTRO.format(frame_count=number_words(len(shown)), video_duration=str(timedelta(seconds=duration)))
        for count, second in shown:
            stamp = f"{int(second // 60):02d}:{int(second % 60):02d}"
            video += FRAME_TIMESTAMP_MESSAGE.format(timestamp=stamp)
            video += f"{self.fake}{self.global_img}{self.image * count}{self.fake}"
        video += DEFAULT_MEDIA_OUTTRO
        parts = self.prompt_parts(question)
        enc = self.tokenizer(parts.head + video + parts.tail, return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def build_inputs(self, tokens: VisualTokens, question: str, *, duration_s: float | None = None) -> ModelInputs:
        """``duration_s``: the video's length for the intro line (default: the last frame's pts)."""
        dtype = self.model.model.text_model.dtype
        empty = torch.empty(0, self.model.config.text_config.hidden_size, device=self.device, dtype=dtype)
        feats = torch.cat([empty, *[e.to(self.device, dtype) for e in tokens.embeds]])  # (T, D)
        kwargs = self._prompt(question, tokens.tokens_per_group, tokens.pts_seconds, duration_s)
        kwargs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=[feats])}
        return ModelInputs(kwargs=kwargs, visual_mask=kwargs["input_ids"] == self.image_token_id)

    def pixel_inputs(self, frames: FrameBatch, question: str, *, duration_s: float | None = None) -> dict[str, Any]:
        kwargs = self._prompt(question, [self.grid * self.grid] * len(frames), frames.pts_seconds, duration_s)
        pixels = self._pixels(frames)[None]  # (1, N, 3, S, S)
        kwargs["pixel_values"] = pixels
        kwargs["pixel_attention_mask"] = torch.ones((1, len(frames), self.side, self.side), dtype=torch.bool, device=self.device)
        return kwargs
