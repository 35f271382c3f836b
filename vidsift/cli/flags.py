"""The table from the library's option names to the flags a user types (the question options'
flags come from `AskOptions`, whose fields carry them), used where an error
leaves the CLI: ``fps=0.0: must be > 0`` raised inside `frames` prints as ``--fps 0: must be > 0``
(the library keeps naming its own keyword arguments; the CLI speaks in flags)."""

from __future__ import annotations

import re

from ..errors import VidsiftError
from ..pipeline.options import FLAGS as ASK_FLAGS

FLAGS = {
    **ASK_FLAGS,  # every question option's flag, from `AskOptions` (pipeline/options.py)
    "options": "--options",  # multiple choice: part of the question, not an option of how it is answered
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
