"""Data the selectors produce: frame relevance (`FrameScores`), the user's budget (`Budget`)
and the plan handed to the pipeline (`TokenPlan`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
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


# Named budgets that set every stage at once (``--preset fast`` or ``--budget fast``): the share
# of the full video's visual tokens fed to the LLM, the prefill pruner inside it (a PRUNERS spec)
# and the decoding-cache press (a PRESSES spec). See `vidsift.pipeline.presets`.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"fraction": 0.25, "prune": "fastv:k=2,keep=0.5", "kv": "snapkv:ratio=0.25+quantize:bits=8"},
    "balanced": {"fraction": 0.5, "prune": "fastv:k=3,keep=0.75", "kv": "snapkv:ratio=0.5"},
    "faithful": {"fraction": 0.75, "prune": None, "kv": None},
}
_BUDGET_RULES = ("give a token count (an integer: 2048), a share (a number in (0, 1]: 0.25, or a percentage up to 100%: 25%) "
                 f"or a preset ({', '.join(PRESETS)})")


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
    def parse(cls, value: "Budget | str | int | float | None") -> "Budget":
        """The one budget parser (CLI, API, plan, eval, bench, batch all call it):

        - None, ``""``, ``"all"``, ``"full"``: unlimited;
        - an int or an integer string (``2048``, ``"2048"``): that many tokens;
        - a float in (0, 1] or a float string (``0.25``, ``"1.0"``): that share of the video's tokens;
        - ``"P%"`` with 0 < P <= 100: P percent;
        - a preset name (`PRESETS`): the preset's whole budget (size, pruning, cache press);
        - anything else: a `ConfigError` saying which rule the value broke.
        """
        if isinstance(value, Budget):
            return value
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "all", "full")):
            return cls()
        if isinstance(value, bool):
            raise ConfigError(repr(value), f"a budget is not a boolean; {_BUDGET_RULES}")
        if isinstance(value, (int, np.integer)):
            return cls._tokens(int(value), value)
        if isinstance(value, (float, np.floating)):
            return cls._share(float(value), value)
        if not isinstance(value, str):
            raise ConfigError(repr(value), f"not a budget; {_BUDGET_RULES}")
        s = value.strip()
        if s in PRESETS:
            return cls.preset(s)
        if s.endswith("%"):
            try:
                pct = float(s[:-1])
            except ValueError:
                raise ConfigError(value, f"not a percentage; {_BUDGET_RULES}") from None
            if not 0 < pct <= 100:
                raise ConfigError(value, "a percentage budget must be over 0% and at most 100%")
            return cls(fraction=pct / 100)
        if s.lstrip("+-").isdigit():
            return cls._tokens(int(s), value)
        try:
            number = float(s)
        except ValueError:
            raise ConfigError(value, f"not a budget; {_BUDGET_RULES}") from None
        return cls._share(number, value)

    @classmethod
    def _tokens(cls, n: int, given: Any) -> "Budget":
        if n < 1:
            raise ConfigError(str(given), "a token-count budget must be >= 1")
        return cls(tokens=n)

    @classmethod
    def _share(cls, x: float, given: Any) -> "Budget":
        if not 0 < x <= 1:  # 1.5 is neither a share nor (silently) one token
            raise ConfigError(str(given), "a fractional budget is a share in (0, 1]; give a token count as an integer (e.g. 2048)")
        return cls(fraction=x)

    @classmethod
    def preset(cls, name: str) -> "Budget":
        """The named preset's budget (`PRESETS`)."""
        if name not in PRESETS:
            raise ConfigError(name, f"unknown preset; choose one of: {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    def apply(self, *, budget: "Budget | str | int | float | None" = None, preset: str | None = None,
              prune: str | None = None, kv: str | None = None) -> "Budget":
        """This budget with options applied, in order: ``preset`` (replaces everything), ``budget``
        (`parse`; replaces the size, or everything when it is a `Budget` or names a preset), ``prune`` and ``kv``
        (``"none"``/``"off"`` switch them off). None leaves a field as it is."""
        out = self if preset is None else Budget.preset(preset)
        if budget is not None:
            size = Budget.parse(budget)
            whole = isinstance(budget, Budget) or (isinstance(budget, str) and budget.strip() in PRESETS)
            out = size if whole else replace(out, tokens=size.tokens, fraction=size.fraction)
        for key, spec in (("prune", prune), ("kv", kv)):
            if spec is not None:
                off = isinstance(spec, str) and spec.strip().lower() in ("none", "off", "")
                out = replace(out, **{key: None if off else spec})
        return out


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
