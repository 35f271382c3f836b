"""Errors vidsift raises for bad input.

Every user-facing failure is a :class:`VidsiftError` naming the input (a path, URL, model id
or flag) and the reason in one line. The CLI prints ``error: <input>: <reason>`` and exits 1;
with ``--debug`` it shows the traceback instead.
"""

from __future__ import annotations


class VidsiftError(Exception):
    """A failure caused by user input: ``str(err) == f"{subject}: {reason}"``."""

    def __init__(self, subject: object, reason: str) -> None:
        self.subject = str(subject)
        self.reason = reason
        super().__init__(f"{self.subject}: {reason}")


class ConfigError(VidsiftError, ValueError):
    """A bad option, flag or method spec (``--prune fastv:k=x``)."""


class FrameSizeError(ConfigError):
    """Frames of a size the model's preprocessing cannot take (Qwen-VL: an aspect ratio of 200 or
    more). The subject is the frame size; `Pipeline` re-raises it naming the video."""


class ModelError(VidsiftError):
    """A model path or id that is missing, not a supported video MLLM, or not loadable offline."""


class SourceError(VidsiftError):
    """A live source (webcam, URL) that cannot be opened or stopped delivering frames."""
