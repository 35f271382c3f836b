"""`StreamOptions`: every setting of a `StreamSession`, one frozen, validated dataclass.

Built once (from ``vidsift stream``'s flags, the live page's hello, `open_session`'s keywords)
and handed to the session, which gives each of its parts the fields it reads:

| part | fields |
|---|---|
| source (when named by text) | ``realtime``, ``max_side``, ``open_timeout_s``, ``read_timeout_s`` |
| capture | ``stall_s``, ``reconnect``, ``give_up_s`` |
| ingest | ``fps``, ``duration_s`` |
| memory | ``budget``, ``dedup``, ``policy``, ``incremental``, ``chunk_tokens`` |
| answering | ``max_new_tokens``, ``first_frame_timeout_s`` |
| trigger | ``query``, ``every_s``, ``respond``, ``trigger``, ``cooldown_s`` |
| events | ``max_events`` |

A bad value is a one-line `ConfigError` naming the field (``fps: must be > 0 frames per second``).
``budget`` is parsed as every budget is (`Budget.parse`: tokens, a share, ``P%`` or a preset).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..types import Budget
from .evict import EvictionPolicy

RESPOND = ("every", "auto")


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """The settings of one stream (see the module docstring for which part reads which)."""

    # memory
    budget: Budget | int | float | str = 1024  # a `Budget` once built (tokens, a share, P%, a preset)
    dedup: float = 0.95
    policy: EvictionPolicy | None = None
    incremental: bool | None = None  # the incremental KV cache (None: when the family has one)
    chunk_tokens: int = 512
    # ingest
    fps: float = 1.0
    duration_s: float | None = None
    # answering
    max_new_tokens: int = 32
    first_frame_timeout_s: float = 10.0
    # trigger
    query: str | None = None
    every_s: float | None = None
    respond: str = "every"
    trigger: float = 0.5
    cooldown_s: float = 5.0
    # source (a source named by text) and capture
    realtime: bool | None = None
    max_side: int | None = 448
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    stall_s: float = 3.0
    reconnect: bool = True
    give_up_s: float | None = None
    # events
    max_events: int = 10_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", Budget.parse(self.budget))
        if not self.fps > 0:
            raise ConfigError("fps", f"must be > 0 frames per second, got {self.fps}")
        if self.every_s is not None and (not self.every_s > 0 or not self.query):
            raise ConfigError("every", "needs a --query and a period > 0 seconds")
        if self.respond not in RESPOND:
            raise ConfigError("respond", f"must be every or auto, got {self.respond!r}")
        if self.respond == "auto" and (not self.query or self.every_s is not None):
            raise ConfigError("respond", "auto needs a --query and no --every (it decides when to answer)")
        if not 0.0 <= self.trigger <= 1.0:
            raise ConfigError("trigger", f"must be a probability in [0, 1], got {self.trigger}")
        if not self.cooldown_s >= 0:
            raise ConfigError("cooldown", f"must be >= 0 seconds, got {self.cooldown_s}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError("duration", f"must be > 0 seconds, got {self.duration_s}")
        if self.max_new_tokens < 1:
            raise ConfigError("max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        if not self.first_frame_timeout_s >= 0:
            raise ConfigError("first_frame_timeout_s", f"must be >= 0 seconds, got {self.first_frame_timeout_s}")
        if not self.stall_s > 0:
            raise ConfigError("stall", f"must be > 0 seconds, got {self.stall_s}")
        if not (self.open_timeout_s > 0 and self.read_timeout_s > 0):
            raise ConfigError("timeout", f"must be > 0 seconds, got {min(self.open_timeout_s, self.read_timeout_s)}")
        if self.max_side is not None and self.max_side < 16:
            raise ConfigError("max_side", f"must be >= 16 pixels, got {self.max_side}")
        if self.max_events < 1 or self.chunk_tokens < 1:
            raise ConfigError("max_events" if self.max_events < 1 else "chunk_tokens",
                              f"must be >= 1, got {min(self.max_events, self.chunk_tokens)}")

    @classmethod
    def of(cls, options: "StreamOptions | None" = None, **settings: Any) -> "StreamOptions":
        """``options`` (default: the defaults) with ``settings`` replaced; an unknown name is a
        `ConfigError` listing the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(", ".join(unknown), f"unknown stream option; options: {', '.join(sorted(known))}")
        return dataclasses.replace(options or cls(), **settings)

    def source_settings(self) -> dict[str, Any]:
        """What `open_source` takes from these options, for a source named by text."""
        return {"realtime": self.realtime, "max_side": self.max_side, "open_timeout_s": self.open_timeout_s,
                "read_timeout_s": self.read_timeout_s}
