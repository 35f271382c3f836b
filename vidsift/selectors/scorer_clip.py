"""``clip``: query relevance from any CLIP or SigLIP checkpoint (image-text similarity).

CLIP (Radford et al. 2021, https://arxiv.org/abs/2103.00020) / SigLIP (Zhai et al. 2023,
https://arxiv.org/abs/2303.15343) embed frames and the query into one space; a frame's relevance
is its cosine similarity with the query, as in CLIP-guided keyframe selection (e.g. BOLT, AKS).
SigLIP scores are its own sigmoid probabilities; CLIP similarities are min-max scaled per video.
Frames are preprocessed here (torch resize/crop/normalise from ``preprocessor_config.json``),
encoded in batches, and their embeddings cached per (frames content, checkpoint), in memory and,
with ``disk_cache=True``, under ``~/.cache/vidsift/features``: a second question is text-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, ModelError
from ..types import FrameBatch, FrameScores
from . import _hf
from .features import FEATURE_CACHE, default_cache_dir, frames_hash

_NORMS = ("auto", "minmax", "sigmoid", "linear")


def _pooled(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@dataclass
class ClipScorer:
    """model: checkpoint path or id; norm: auto | minmax | sigmoid | linear ((cos+1)/2)."""

    model: str = ""
    batch_size: int = 32
    device: str = "cpu"
    dtype: str = "float32"
    norm: str = "auto"
    disk_cache: bool = False
    frames_encoded: int = field(default=0, init=False)  # frames run through the image tower
    name: ClassVar[str] = "clip"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("--scorer clip", "needs a checkpoint: clip:MODEL (a folder or Hub id, e.g. clip:openai/clip-vit-base-patch32)")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of: {', '.join(_NORMS)}; got {self.norm!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        _hf.torch_dtype(self.dtype)

    def _preprocess(self, data: np.ndarray, net) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> float (B, 3, S, S) normalised pixel values."""
        cfg = _hf.preprocessor_config(self.model)
        vis = getattr(net.config, "vision_config", None)
        side = int(getattr(vis, "image_size", 224))
        size = cfg.get("size") or {}
        crop = cfg.get("crop_size") or {}
        x = torch.from_numpy(np.ascontiguousarray(data)).permute(0, 3, 1, 2).float()  # (B, 3, H, W)
        h, w = x.shape[-2:]
        want = int(size.get("shortest_edge", min(int(size.get("height", side)), int(size.get("width", side)))))
        shrink = min(h, w) // (2 * want)
        if shrink >= 2:  # area pre-shrink to >= 2x the target: nearly the same pixels, far cheaper bicubic
            x = F.interpolate(x, size=(h // shrink, w // shrink), mode="area")
        if "shortest_edge" in size:  # CLIP: resize short side, centre crop
            short = int(size["shortest_edge"])
            h, w = x.shape[-2:]
            scale = short / min(h, w)
            x = F.interpolate(x, size=(max(short, round(h * scale)), max(short, round(w * scale))), mode="bicubic",
                              antialias=True, align_corners=False)
            ch, cw = int(crop.get("height", side)), int(crop.get("width", side))
            top, left = (x.shape[-2] - ch) // 2, (x.shape[-1] - cw) // 2
            x = x[..., top : top + ch, left : left + cw]
        else:  # SigLIP: plain resize
            hh, ww = int(size.get("height", side)), int(size.get("width", side))
            x = F.interpolate(x, size=(hh, ww), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp(0, 255) * float(cfg.get("rescale_factor", 1 / 255))
        mean = torch.tensor(cfg.get("image_mean", [0.5, 0.5, 0.5])).view(1, 3, 1, 1)
        std = torch.tensor(cfg.get("image_std", [0.5, 0.5, 0.5])).view(1, 3, 1, 1)
        return (x - mean) / std

    def image_features(self, frames: FrameBatch) -> np.ndarray:
        """float32 (N, E) unit-norm image embeddings, from the cache when this content was seen."""
        disk = default_cache_dir() if self.disk_cache else None
        key = FEATURE_CACHE.key("clip", frames_hash(frames), _hf.model_key(self.model))
        feats = FEATURE_CACHE.get(key, disk)
        if feats is not None:
            return feats
        net, _ = _hf.load(self.model, device=self.device, dtype=self.dtype)
        if not (hasattr(net, "get_image_features") and hasattr(net, "get_text_features")):
            raise ModelError(self.model, f"not a CLIP/SigLIP checkpoint ({type(net).__name__} has no image and text towers)")
        out = []
        with torch.inference_mode():
            for lo in range(0, len(frames), self.batch_size):
                px = self._preprocess(frames.data[lo : lo + self.batch_size], net)
                emb = _pooled(net.get_image_features(pixel_values=px.to(self.device, net.dtype)))  # (B, E)
                out.append(F.normalize(emb.float(), dim=-1).cpu().numpy())
                self.frames_encoded += px.shape[0]
        feats = np.concatenate(out) if out else np.zeros((0, 1), np.float32)
        FEATURE_CACHE.put(key, feats, disk)
        return feats

    def text_features(self, query: str) -> np.ndarray:
        net, tok = _hf.load(self.model, device=self.device, dtype=self.dtype)
        max_len = int(getattr(net.config.text_config, "max_position_embeddings", 77))
        siglip = "siglip" in net.config.model_type
        enc = tok([query], padding="max_length" if siglip else True, truncation=True, max_length=max_len, return_tensors="pt")
        ids = enc["input_ids"]  # (1, L)
        eos = getattr(net.config.text_config, "eos_token_id", None)
        if not siglip and isinstance(eos, int) and eos != 2 and not bool((ids == eos).any()):
            # CLIP pools the text at its end-of-text token: add it when the tokenizer does not
            ids = torch.cat([ids[:, : max_len - 1], torch.tensor([[eos]])], dim=1)
            enc["attention_mask"] = torch.ones_like(ids)
        kwargs = {"input_ids": ids.to(self.device)}
        if not siglip and "attention_mask" in enc:
            kwargs["attention_mask"] = enc["attention_mask"].to(self.device)
        with torch.inference_mode():
            emb = _pooled(net.get_text_features(**kwargs))  # (1, E)
        return F.normalize(emb.float(), dim=-1).cpu().numpy()[0]

    def score(self, frames: FrameBatch, query: str | None = None) -> FrameScores:
        feats = self.image_features(frames)  # (N, E)
        if not query:
            return FrameScores(np.ones(len(frames), np.float32), feats, scorer=self.name)
        cos = feats @ self.text_features(query)  # (N,)
        net, _ = _hf.load(self.model, device=self.device, dtype=self.dtype)
        norm = self.norm
        if norm == "auto":
            norm = "sigmoid" if "siglip" in net.config.model_type else "minmax"
        if norm == "sigmoid":
            scale = float(net.logit_scale.detach().exp()) if hasattr(net, "logit_scale") else 1.0
            bias = float(net.logit_bias.detach()) if hasattr(net, "logit_bias") else 0.0
            s = 1.0 / (1.0 + np.exp(-(cos * scale + bias)))
        elif norm == "minmax":
            span = float(cos.max() - cos.min()) if len(cos) else 0.0
            s = (cos - cos.min()) / span if span > 1e-6 else np.ones_like(cos)
        else:
            s = (cos + 1.0) / 2.0
        return FrameScores(np.clip(s, 0, 1).astype(np.float32), feats, scorer=self.name)
