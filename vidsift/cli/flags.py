"""The one table from the library's option names to the flags a user types, used where an error
leaves the CLI: ``fps=0.0: must be > 0`` raised inside `frames` prints as ``--fps 0: must be > 0``
(the library keeps naming its own keyword arguments; the CLI speaks in flags)."""

from __future__ import annotations

import re

from ..errors import VidsiftError

FLAGS = {
    "fps": "--fps",
    "max_frames": "--max-frames",
    "frames": "--frames",
    "start_s": "--start",
    "end_s": "--end",
    "max_new_tokens": "--max-new-tokens",
    "budget": "--budget",
    "preset": "--preset",
    "scorer": "--scorer",
    "selector": "--selector",
    "allocator": "--allocator",
    "merger": "--merger",
    "temporal": "--temporal",
    "prune": "--prune",
    "kv": "--kv",
    "options": "--options",
    "search": "--search",
    "timeline": "--timeline",
    "allocation": "--allocation",
    "live_budget": "--live-budget",
    "live_fps": "--live-fps",
}
_FIELD = re.compile(r"\b(" + "|".join(sorted(FLAGS, key=len, reverse=True)) + r")=('[^']*'|\"[^\"]*\"|[^\s,;:)]+)")


def _value(text: str) -> str:
    text = text.strip("'\"")
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _flagged(text: str) -> str:
    return _FIELD.sub(lambda m: f"{FLAGS[m.group(1)]} {_value(m.group(2))}", text)


def user_message(err: VidsiftError) -> str:
    """``str(err)`` with every ``field=value`` of a known option written as the user's flag."""
    return f"{_flagged(err.subject)}: {_flagged(err.reason)}"
