"""Tests-only members, added to their registries by name from a test (no list in vidsift names them):
a scorer, a selector, a spatial merger, a prefill pruner and a cache press, each the smallest of its kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from vidsift.pipeline.press import WindowPress
from vidsift.pipeline.prune.schedule import Schedule
from vidsift.selectors.merging import Reduction
from vidsift.types import FrameBatch, FrameScores


@dataclass
class Brightness:
    """Scorer: a frame is as relevant as it is bright (its mean pixel value over 255)."""

    name: ClassVar[str] = "brightness"

    def score(self, frames: FrameBatch, query: str | None = None) -> FrameScores:
        pixels = frames.data.reshape(len(frames), -1).astype(np.float32) / 255
        return FrameScores(pixels.mean(1), pixels, scorer=self.name)


@dataclass
class EveryOther:
    """Frames 0, 2, 4, ... (the first ``k`` of them), whatever their scores."""

    name: ClassVar[str] = "every_other"

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        return np.arange(0, len(scores), 2, dtype=np.int64)[:k]


@dataclass
class FirstTokens:
    """Spatial merger: each frame group keeps its first ``target`` tokens (raster order), drops the rest."""

    name: ClassVar[str] = "first_tokens"
    kind: ClassVar[str] = "spatial"

    def reduce(self, embeds: torch.Tensor, size: torch.Tensor, target: int, *,
               coords: torch.Tensor | None = None, saliency: torch.Tensor | None = None) -> Reduction:
        order = torch.arange(embeds.shape[0])
        return Reduction.of(embeds, size, keep=order[:target], source=torch.where(order < target, order, -1))


@dataclass
class Loudest(Schedule):
    """Prefill pruner: at each stage of a `schedule` (``loudest:keep=1/1/0.5``), keep the visual tokens
    whose normed hidden state at that layer has the largest L2 norm."""

    name: ClassVar[str] = "loudest"

    def score(self, view) -> torch.Tensor:
        return view.hidden.float().norm(dim=-1)  # (B, n)


@dataclass
class KeyNorm(WindowPress):
    """Cache press: keep the entries whose keys have the *smallest* L2 norm, per layer and head (after
    Devoto et al., "A Simple and Effective L2 Norm-Based Strategy for KV Cache Compression",
    arXiv:2406.11430)."""

    name: ClassVar[str] = "knorm"

    def score(self, module, hidden, keys, positions, attention, *, visual) -> torch.Tensor:
        return -keys.float().norm(dim=-1)  # (B, Hk, n)
