"""Qwen-VL video preprocessing with torch + PIL (HF's video processors need torchvision).

Smart resize to multiples of ``patch_size * merge_size`` within [min_pixels, max_pixels] (aspect
kept), PIL resampling, rescale + normalise, pad an odd frame count by repeating the last frame,
and patchify into the flat layout the vision tower's ``Conv3d`` patch embedding expects
(transformers 5.23 ``Qwen2VLVideoProcessor.patchify``: order (t, h/m, w/m, m, m) x (C, tp, p, p)).
Checked against HF's PIL ``Qwen2VLImageProcessorPil`` (a still image = two identical frames):
same grid, pixels equal to float rounding. After the merger the LLM tokens of a temporal patch
are in raster order over the (h/m, w/m) grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from ...errors import ConfigError, FrameSizeError

VIDEO_FRAME_TOKENS = 768  # per-frame cap in LLM tokens (qwen-vl-utils VIDEO_MAX_PIXELS = 768 * 28 * 28)
_RESAMPLE = {0: Image.NEAREST, 1: Image.LANCZOS, 2: Image.BILINEAR, 3: Image.BICUBIC, 4: Image.BOX, 5: Image.HAMMING}


def check_frame_size(width: int, height: int) -> None:
    """Raise `FrameSizeError` for frames Qwen's resize rule refuses (empty, or aspect ratio 200 or more)."""
    if min(height, width) <= 0:
        raise FrameSizeError(f"{width}x{height}", "frame size must be positive")
    if max(height, width) / min(height, width) > 200:
        raise FrameSizeError(f"{width}x{height}", "aspect ratio must be below 200")


def smart_resize(height: int, width: int, *, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen's resize rule: both sides multiples of ``factor``, area within [min, max], aspect kept."""
    check_frame_size(width, height)
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class QwenPreprocess:
    """Preprocessing settings read from ``preprocessor_config.json`` / ``video_preprocessor_config.json``.

    Accepts both spellings: ``min_pixels``/``max_pixels`` (Qwen2/2.5-VL) and
    ``size: {shortest_edge, longest_edge}`` (pixel areas, Qwen3-VL and 5.x saves). The per-frame
    maximum is capped at ``VIDEO_FRAME_TOKENS`` LLM tokens (Qwen2.5-VL's file holds image limits of
    up to 16384 tokens; Qwen3-VL's video file holds a whole-video total).
    """

    patch_size: int
    temporal_patch_size: int
    merge_size: int
    min_pixels: int
    max_pixels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float
    normalize: bool
    resample: int

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, vision_config: Any) -> "QwenPreprocess":
        size = d.get("size") or {}
        patch = int(d.get("patch_size") or vision_config.patch_size)
        merge = int(d.get("merge_size") or vision_config.spatial_merge_size)
        out = cls(
            patch_size=patch,
            temporal_patch_size=int(d.get("temporal_patch_size") or vision_config.temporal_patch_size),
            merge_size=merge,
            min_pixels=int(d.get("min_pixels") or size.get("shortest_edge") or (patch * merge) ** 2),
            max_pixels=int(d.get("max_pixels") or size.get("longest_edge") or 768 * (patch * merge) ** 2),
            mean=tuple(d.get("image_mean", (0.48145466, 0.4578275, 0.40821073))),
            std=tuple(d.get("image_std", (0.26862954, 0.26130258, 0.27577711))),
            rescale=float(d.get("rescale_factor", 1 / 255)) if d.get("do_rescale", True) else 1.0,
            normalize=bool(d.get("do_normalize", True)),
            resample=int(d.get("resample", 3)),
        )
        if out.resample not in _RESAMPLE:
            raise ConfigError(f"resample={out.resample}", f"unknown PIL resample; choose one of: {sorted(_RESAMPLE)}")
        if out.patch_size != vision_config.patch_size or out.merge_size != vision_config.spatial_merge_size or \
                out.temporal_patch_size != vision_config.temporal_patch_size:
            raise ConfigError("preprocessor_config.json", "patch_size/merge_size/temporal_patch_size disagree with the model's vision_config")
        if not 0 < out.min_pixels <= out.max_pixels:
            raise ConfigError(f"min_pixels={out.min_pixels},max_pixels={out.max_pixels}", "need 0 < min_pixels <= max_pixels")
        # video frames: at most VIDEO_FRAME_TOKENS LLM tokens per frame, as qwen-vl-utils and HF's
        # `cap_pixels_per_frame` do (checkpoint files carry image limits, or Qwen3-VL's whole-video total)
        cap = VIDEO_FRAME_TOKENS * out.factor ** 2
        return replace(out, max_pixels=min(out.max_pixels, cap), min_pixels=min(out.min_pixels, cap))

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def target_size(self, height: int, width: int, *, max_pixels: int | None = None) -> tuple[int, int]:
        """Resized (height, width) for a frame; ``max_pixels`` lowers the cap (the budget's resolution)."""
        cap = self.max_pixels if max_pixels is None else max(min(max_pixels, self.max_pixels), self.factor ** 2)
        return smart_resize(height, width, factor=self.factor, min_pixels=min(self.min_pixels, cap), max_pixels=cap)

    def __call__(self, data: np.ndarray, *, max_pixels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 frames (N, H, W, 3) -> flat patches (G*gh*gw, C*tp*p*p) float32 and grid (1, 3) = (G, gh, gw)."""
        n, h, w, _ = data.shape
        rh, rw = self.target_size(h, w, max_pixels=max_pixels)
        frames = np.stack([f if f.shape[:2] == (rh, rw) else
                           np.asarray(Image.fromarray(f).resize((rw, rh), resample=_RESAMPLE[self.resample])) for f in data])
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() * self.rescale  # (N, C, H, W)
        if self.normalize:
            x = (x - torch.tensor(self.mean)[:, None, None]) / torch.tensor(self.std)[:, None, None]
        tp, p, m = self.temporal_patch_size, self.patch_size, self.merge_size
        if pad := -n % tp:  # odd count: repeat the last frame, as HF does
            x = torch.cat([x, x[-1:].expand(pad, -1, -1, -1)])
        gt, gh, gw = x.shape[0] // tp, rh // p, rw // p
        x = x.view(gt, tp, 3, gh // m, m, p, gw // m, m, p)
        x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # (gt, gh/m, gw/m, m, m, C, tp, p, p)
        return x.reshape(gt * gh * gw, 3 * tp * p * p), torch.tensor([[gt, gh, gw]])
