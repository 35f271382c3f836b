"""Data the selectors produce: frame relevance (`FrameScores`), the user's budget (`Budget`)
and the plan handed to the pipeline (`TokenPlan`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError


@dataclass
class FrameScores:
    """Relevance of each candidate frame to the query.

    scores:   float32 (N,) in [0, 1]
    features: float32 (N, F) or None: the descriptors used, reused for diversity selection
    """

    scores: np.ndarray
    features: np.ndarray | None = None
    scorer: str = "uniform"

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float32)
        if self.scores.ndim != 1:
            raise ValueError(f"FrameScores.scores must be (N,), got {self.scores.shape}")
        if self.scores.size and (self.scores.min() < 0 or self.scores.max() > 1 or not np.isfinite(self.scores).all()):
            raise ValueError("FrameScores.scores must be finite and in [0, 1]")
        if self.features is not None:
            self.features = np.ascontiguousarray(self.features, dtype=np.float32)
            if self.features.ndim != 2 or self.features.shape[0] != self.scores.shape[0]:
                raise ValueError(f"FrameScores.features must be (N, F) with N={self.scores.shape[0]}, got {self.features.shape}")

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass(frozen=True)
class Budget:
    """One knob for every stage: how many visual tokens the LLM may see, and how hard to prune inside it.

    tokens:   total visual tokens fed to the LLM (after selection and merging), or
    fraction: the same as a share of the full video's visual tokens (0, 1].
    max_frames: cap on frames encoded (None: the planner decides).
    prune:    prefill pruner spec inside the LLM, e.g. ``"fastv:k=2,keep=0.5"`` (None: off)
    kv:       decoding-cache press spec, e.g. ``"snapkv:ratio=0.25+quantize:bits=8"`` (None: off)
    Unlimited (the default) keeps every token: the vanilla model's output, exactly.
    """

    tokens: int | None = None
    fraction: float | None = None
    max_frames: int | None = None
    prune: str | None = None
    kv: str | None = None

    def __post_init__(self) -> None:
        if self.tokens is not None and self.fraction is not None:
            raise ConfigError("budget", "give tokens or fraction, not both")
        if self.tokens is not None and self.tokens < 1:
            raise ConfigError("budget", f"tokens must be >= 1, got {self.tokens}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ConfigError("budget", f"fraction must be in (0, 1], got {self.fraction}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError("budget", f"max_frames must be >= 1, got {self.max_frames}")

    @property
    def unlimited(self) -> bool:
        return self.tokens is None and (self.fraction is None or self.fraction == 1.0)

    def resolve(self, full_tokens: int) -> int:
        """Visual tokens allowed for a video whose full encoding has ``full_tokens``."""
        if self.tokens is not None:
            return min(self.tokens, full_tokens)
        if self.fraction is not None:
            return max(1, int(round(self.fraction * full_tokens)))
        return full_tokens

    @classmethod
    def parse(cls, text: str | int | float | None, **extra: Any) -> "Budget":
        """``"2048"`` -> 2048 tokens; ``"25%"`` or ``"0.25"`` -> fraction; None -> unlimited."""
        if text is None or text == "" or text == "all":
            return cls(**extra)
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return cls(fraction=float(text), **extra) if 0 < text < 1 else cls(tokens=int(text), **extra)
        s = str(text).strip()
        try:
            if s.endswith("%"):
                return cls(fraction=float(s[:-1]) / 100, **extra)
            value = float(s)
        except ValueError:
            raise ConfigError(text, "budget must be a token count (2048), a fraction (0.25) or a percentage (25%)") from None
        return cls(fraction=value, **extra) if 0 < value < 1 else cls(tokens=int(value), **extra)


@dataclass
class PlannedFrame:
    """One chosen frame: where it is, how relevant, and how many visual tokens it gets."""

    index: int
    pts_seconds: float
    score: float
    tokens: int


@dataclass
class TokenPlan:
    """Which frames the LLM sees and how many tokens each gets. JSON-serialisable.

    ``frames`` are sorted by time. ``total_tokens == sum(f.tokens for f in frames) <= budget``.
    ``settings`` records the scorer/selector/allocator/merger specs; ``stats`` the time per
    stage in seconds and token counts before/after each stage.
    """

    video: str
    budget: int
    frames: list[PlannedFrame]
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return int(sum(f.tokens for f in self.frames))

    @property
    def indices(self) -> np.ndarray:
        return np.array([f.index for f in self.frames], dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "video": self.video,
            "budget": self.budget,
            "total_tokens": self.total_tokens,
            "frames": [asdict(f) for f in self.frames],
            "settings": self.settings,
            "stats": self.stats,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TokenPlan":
        return cls(
            video=data["video"],
            budget=int(data["budget"]),
            frames=[PlannedFrame(**f) for f in data["frames"]],
            settings=dict(data.get("settings", {})),
            stats=dict(data.get("stats", {})),
        )
