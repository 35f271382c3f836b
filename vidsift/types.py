"""The data every stage shares, at the bottom of the package: it imports nothing from vidsift
but `errors`, so selectors, pipeline and stream each depend on it and only downward.

`FrameBatch` (decoded frames), `FrameScores` (relevance per frame), `Budget` (the visual-token
budget), `TokenPlan` (which frames, how many tokens each), `VisualTokens` (tokens in LLM space)
and `Answer` (text, plan and stats of one question); `whole_tokens` (a frame's token count at
full budget).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    import torch


@dataclass
class FrameBatch:
    """Decoded frames in display orientation.

    data:        uint8 (N, H, W, 3) RGB
    pts_seconds: float64 (N,) presentation time of each frame
    index:       int64 (N,) frame number in decode order of the whole video
    decode:      the file's decode report (:meth:`DecodeReport.summary`) when read from a file, else None
    """

    data: np.ndarray
    pts_seconds: np.ndarray
    index: np.ndarray
    decode: dict | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.pts_seconds = np.asarray(self.pts_seconds, dtype=np.float64)
        self.index = np.asarray(self.index, dtype=np.int64)
        if self.data.dtype != np.uint8 or self.data.ndim != 4 or self.data.shape[-1] != 3:
            raise ValueError(f"FrameBatch.data must be uint8 (N,H,W,3), got {self.data.dtype} {self.data.shape}")
        n = self.data.shape[0]
        if self.pts_seconds.shape != (n,) or self.index.shape != (n,):
            raise ValueError(
                f"FrameBatch: {n} frames but pts_seconds {self.pts_seconds.shape} and index {self.index.shape}"
            )

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, key) -> "FrameBatch":
        """Select frames by slice, index array or boolean mask; always returns a FrameBatch."""
        if isinstance(key, (int, np.integer)):
            key = [int(key)]
        return FrameBatch(self.data[key], self.pts_seconds[key], self.index[key], decode=self.decode)

    def __repr__(self) -> str:
        span = f"{self.pts_seconds[0]:.2f}-{self.pts_seconds[-1]:.2f}s" if len(self) else "empty"
        return f"FrameBatch(n={len(self)}, shape={tuple(self.data.shape[1:])}, {span})"

    @staticmethod
    def concat(batches: list["FrameBatch"]) -> "FrameBatch":
        if not batches:
            raise ValueError("FrameBatch.concat needs at least one batch")
        return FrameBatch(
            np.concatenate([b.data for b in batches]),
            np.concatenate([b.pts_seconds for b in batches]),
            np.concatenate([b.index for b in batches]),
            decode=batches[-1].decode,  # the latest count of the same file
        )



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



# The visual-token share of each named preset (``--budget fast``, ``--preset fast``): the part of a
# preset this layer understands, so that `Budget.parse` (and the planner) read preset names. The
# pipeline adds each preset's in-model options (prefill pruner, cache press, merger) and joins the
# two parts (`vidsift.pipeline.presets.PRESETS`).
PRESET_SHARES: dict[str, float] = {"fast": 0.25, "balanced": 0.5, "faithful": 0.75, "mustdrop": 0.25}

_BUDGET_RULES = ("give a token count (an integer: 2048), a share (a number in (0, 1]: 0.25, or a percentage up to 100%: 25%) "
                 f"or a preset ({', '.join(PRESET_SHARES)})")



@dataclass(frozen=True)
class Budget:
    """The visual-token budget: how many visual tokens the LLM may see.

    tokens:   total visual tokens fed to the LLM (after selection and merging), or
    fraction: the same as a share of the full video's visual tokens (0, 1].
    max_frames: cap on frames encoded (None: the planner decides).
    Unlimited (the default) keeps every token: the vanilla model's output, exactly. What happens
    inside the LLM (prefill pruning, cache presses) is the pipeline's ``Compression``.
    """

    tokens: int | None = None
    fraction: float | None = None
    max_frames: int | None = None

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
        - a preset name (`PRESET_SHARES`): the preset's share of the video's tokens;
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
        if s in PRESET_SHARES:
            return cls(fraction=PRESET_SHARES[s])
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

    def apply(self, *, budget: "Budget | str | int | float | None") -> "Budget":
        """This budget with a ``budget`` option applied: None leaves it as it is; a `Budget` or a
        preset name replaces it whole; any other value (`parse`) replaces the size (tokens or
        fraction) and keeps ``max_frames``."""
        if budget is None:
            return self
        size = Budget.parse(budget)
        if isinstance(budget, Budget) or (isinstance(budget, str) and budget.strip() in PRESET_SHARES):
            return size
        return replace(self, tokens=size.tokens, fraction=size.fraction)



def whole_tokens(tokens_per_frame: float) -> int:
    """The whole LLM tokens a frame takes at full budget: the ceiling of ``tokens_per_frame`` (a float,
    as families that pair frames count half a temporal patch per frame), forgiving float noise
    (``196.0000000001`` -> 196)."""
    return math.ceil(float(tokens_per_frame) - 1e-9)



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



@dataclass
class VisualTokens:
    """Visual tokens of a clip in LLM embedding space, one group per temporal slot.

    A group is one frame (LLaVA-OneVision, SmolVLM2, Qwen3-VL per timestamp) or one temporal
    patch (two frames for Qwen2-VL / Qwen2.5-VL). Per group g with T_g tokens:

    embeds[g]:    (T_g, D) in the LLM's hidden size, ready to inject
    coords[g]:    long (T_g, 3): (t, h, w) of each token in the *full* (unpruned) LLM-token grid
    size[g]:      float (T_g,): how many original tokens each token stands for (1 if unmerged)
    saliency[g]:  float (T_g,) encoder importance, or None
    deepstack[g]: list of (T_g, D) per deepstack level (Qwen3-VL), or None
    grid_thw:     long (G, 3): each group's full grid in LLM tokens before any reduction
    pts_seconds:  (G,) time of each group; index: (G,) frame index of the group's first frame
    """

    embeds: list[torch.Tensor]
    coords: list[torch.Tensor]
    size: list[torch.Tensor]
    grid_thw: torch.Tensor
    pts_seconds: np.ndarray
    index: np.ndarray
    saliency: list[torch.Tensor] | None = None
    deepstack: list[list[torch.Tensor]] | None = None

    def __post_init__(self) -> None:
        g = len(self.embeds)
        if not (len(self.coords) == len(self.size) == g == len(self.pts_seconds) == len(self.index) == self.grid_thw.shape[0]):
            raise ValueError("VisualTokens: every per-group field needs one entry per group")
        for e, c, s in zip(self.embeds, self.coords, self.size):
            if e.ndim != 2 or c.shape != (e.shape[0], 3) or s.shape != (e.shape[0],):
                raise ValueError(f"VisualTokens: embeds {tuple(e.shape)}, coords {tuple(c.shape)}, size {tuple(s.shape)} disagree")

    @property
    def n_groups(self) -> int:
        return len(self.embeds)

    @property
    def n_tokens(self) -> int:
        return int(sum(e.shape[0] for e in self.embeds))

    @property
    def tokens_per_group(self) -> list[int]:
        return [int(e.shape[0]) for e in self.embeds]

    def select(self, groups: list[int] | np.ndarray) -> "VisualTokens":
        """Keep whole groups (sorted, unique indices)."""
        groups = [int(i) for i in groups]
        pick = lambda xs: None if xs is None else [xs[i] for i in groups]  # noqa: E731
        return VisualTokens(
            embeds=pick(self.embeds), coords=pick(self.coords), size=pick(self.size),
            grid_thw=self.grid_thw[groups], pts_seconds=self.pts_seconds[groups], index=self.index[groups],
            saliency=pick(self.saliency), deepstack=pick(self.deepstack),
        )

    def keep(self, keep_idx: list[torch.Tensor]) -> "VisualTokens":
        """Keep tokens ``keep_idx[g]`` (sorted) of each group, every per-token field alike (a selection;
        merges go through `vidsift.selectors.merging`, which merges every field with the same weights)."""
        return VisualTokens(
            embeds=[e[k] for e, k in zip(self.embeds, keep_idx)],
            coords=[c[k] for c, k in zip(self.coords, keep_idx)],
            size=[s[k] for s, k in zip(self.size, keep_idx)],
            grid_thw=self.grid_thw, pts_seconds=self.pts_seconds, index=self.index,
            saliency=None if self.saliency is None else [s[k] for s, k in zip(self.saliency, keep_idx)],
            deepstack=None if self.deepstack is None else [[lvl[k] for lvl in d] for d, k in zip(self.deepstack, keep_idx)],
        )



@dataclass
class Answer:
    """The answer to one question: text, the plan that produced it, and measured stats.

    stats keys (when measured): tokens_full, tokens_planned, tokens_in_prompt, prompt_len,
    time_s {decode, score, select, encode, prefill, generate}, ttft_s, kv_bytes, peak_rss_bytes,
    peak_cuda_bytes, new_tokens.
    """

    text: str
    plan: TokenPlan | None
    stats: dict[str, Any] = field(default_factory=dict)
    choice: Any = None  # a multiple-choice question's `vidsift.pipeline.choice.Choice` (ask --options)

    def to_dict(self) -> dict[str, Any]:
        out = {"answer": self.text, "plan": None if self.plan is None else self.plan.to_dict(), "stats": self.stats}
        if self.choice is not None:
            out["choice"] = self.choice.to_dict()
        return out
