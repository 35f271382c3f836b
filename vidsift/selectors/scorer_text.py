"""``text``: query relevance from subtitles or a transcript, via a sentence-embedding model.

Text-side keyframe retrieval as in Video-RAG (Luo et al. 2024, https://arxiv.org/abs/2411.13093)
and subtitle-aware long-video QA: each subtitle cue is embedded (``AutoModel`` + attention-masked
mean pooling), compared with the query by cosine similarity, and every frame takes the best score
of the cues shown at its time (widened by ``pad_s``); frames no cue covers score 0. Cue
embeddings are cached per (subtitle content, checkpoint). Subtitles come from ``subtitles=PATH`` or
``<video>.srt|vtt`` beside the video. Diversity features are the model-free frame descriptors.
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
from .features import FEATURE_CACHE, default_cache_dir, file_hash, frame_features
from .subtitles import Segment, find_subtitles, load_subtitles


@dataclass
class TextScorer:
    """model: sentence-embedding checkpoint; subtitles: .srt/.vtt path (default: beside the video)."""

    model: str = ""
    subtitles: str | None = None
    pad_s: float = 0.0
    batch_size: int = 64
    device: str = "cpu"
    disk_cache: bool = False
    texts_encoded: int = field(default=0, init=False)  # subtitle cues + queries run through the model
    name: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("--scorer text", "needs a sentence-embedding checkpoint: text:MODEL (a folder or Hub id)")
        if not isinstance(self.pad_s, (int, float)) or self.pad_s < 0:
            raise ValueError(f"pad_s must be a number >= 0, got {self.pad_s!r}")

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 (len(texts), E) unit-norm mean-pooled embeddings."""
        net, tok = _hf.load(self.model, device=self.device)
        if hasattr(net, "get_image_features"):
            raise ModelError(self.model, f"not a sentence-embedding text encoder ({type(net).__name__}); use a BERT-like checkpoint")
        max_len = int(getattr(net.config, "max_position_embeddings", 512))
        out = []
        with torch.inference_mode():
            for lo in range(0, len(texts), self.batch_size):
                enc = tok(texts[lo : lo + self.batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
                mask = enc["attention_mask"].to(self.device).unsqueeze(-1).float()  # (B, L, 1)
                kwargs = {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}
                hidden = net(**kwargs).last_hidden_state.float()  # (B, L, E)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
                out.append(F.normalize(pooled, dim=-1).cpu().numpy())
                self.texts_encoded += len(texts[lo : lo + self.batch_size])
        return np.concatenate(out)

    def _segments(self, video: str | None) -> tuple[list[Segment], np.ndarray]:
        path = self.subtitles or (find_subtitles(video) if video else None)
        if path is None:
            raise ConfigError(video or "text", "no subtitles (.srt/.vtt) beside the video; pass text:subtitles=PATH")
        segments = load_subtitles(path)
        disk = default_cache_dir() if self.disk_cache else None
        key = FEATURE_CACHE.key("text", file_hash(path), _hf.model_key(self.model))
        emb = FEATURE_CACHE.get(key, disk)
        if emb is None:
            emb = self.embed([s.text for s in segments])
            FEATURE_CACHE.put(key, emb, disk)
        return segments, emb

    def score(self, frames: FrameBatch, query: str | None = None, *, video: str | None = None) -> FrameScores:
        feats = frame_features(frames)  # (N, F) for diversity
        if not query:
            return FrameScores(np.ones(len(frames), np.float32), feats, scorer=self.name)
        segments, emb = self._segments(video)
        cos = emb @ self.embed([query])[0]  # (S,)
        span = float(cos.max() - cos.min())
        rel = (cos - cos.min()) / span if span > 1e-6 else np.ones_like(cos)  # (S,) in [0, 1]
        start = np.array([s.start_s for s in segments]) - self.pad_s
        end = np.array([s.end_s for s in segments]) + self.pad_s
        t = frames.pts_seconds[:, None]  # (N, 1)
        covered = (t >= start[None]) & (t <= end[None])  # (N, S)
        scores = np.where(covered, rel[None], 0.0).max(axis=1) if len(segments) else np.zeros(len(frames))
        return FrameScores(scores.astype(np.float32), feats, scorer=self.name)
