"""A stream's memory budget, parsed as every entry point parses a budget (`Budget.parse`):
a token count (``1024``), a share (``0.25``, ``25%``) or a preset name (``fast``).

A token count is the memory's size. A share is a share of the stream's full visual tokens, as
for a video: the tokens of every frame the session samples (``fps``) over the stream's length,
at the size the frames arrive in. The length is ``duration_s`` when the session has one, else
the source's own (a file's duration), else `LIVE_HORIZON_S` (a camera or network stream: the
share is of its last ten minutes). ``all`` / ``100%`` keeps every sampled frame of that length.
A share never leaves less than one frame group (the memory always holds the latest frames).
"""

from __future__ import annotations

import math
from typing import Any

from ..types import Budget

LIVE_HORIZON_S = 600.0  # the length a share refers to when a stream has none (camera, URL)


def memory_tokens(budget: Budget | int | float | str | None, *, tokens_per_frame: float, fps: float,
                  length_s: float | None = None, group_frames: int = 1) -> int:
    """The memory's size in visual tokens for ``budget`` (see the module docstring)."""
    parsed = Budget.parse(budget)
    if parsed.tokens is not None:
        return parsed.tokens
    frames = max(1, math.ceil((length_s or LIVE_HORIZON_S) * fps))
    full = math.ceil(frames * tokens_per_frame)
    floor = math.ceil(group_frames * tokens_per_frame)
    return max(floor, parsed.resolve(full))


def describe(budget: Any) -> str:
    """How a budget reads in messages: ``1024 tokens`` or ``25% of the stream's tokens``."""
    parsed = Budget.parse(budget)
    if parsed.tokens is not None:
        return f"{parsed.tokens} tokens"
    return f"{100 * (parsed.fraction or 1.0):g}% of the stream's tokens"
