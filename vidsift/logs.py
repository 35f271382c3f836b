"""What vidsift prints besides its results: one-line warnings, and quiet third-party libraries.

- `warn(subject, reason)` prints ``warning: <subject>: <reason>`` to stderr (the CLI's format);
  `show_warning` prints Python warnings (``warnings.showwarning``) as the same single line.
- `quiet_libraries()` silences third-party progress bars and info logs (transformers' "Loading
  weights" bar, Hub download bars, advisory warnings) unless debugging (``VIDSIFT_DEBUG=1``,
  which the CLI's ``--debug`` sets). Model loading calls it, so the Python API is quiet too.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def debugging() -> bool:
    return os.environ.get("VIDSIFT_DEBUG") == "1"


def warn(subject: object, reason: str) -> None:
    """One line on stderr: ``warning: <subject>: <reason>`` (newlines in the reason are folded)."""
    text = " ".join(str(reason).split())
    print(f"warning: {subject}: {text}" if subject not in (None, "") else f"warning: {text}", file=sys.stderr, flush=True)


def show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """``warnings.showwarning`` replacement: one `warn` line (vidsift's warnings already read
    ``<input>: <reason>``), no source path, no source line."""
    warn(None, str(message))


def quiet_libraries() -> None:
    """Third-party progress bars and info logs off, unless debugging. Cheap: environment
    variables for libraries not imported yet, their switches for those already imported."""
    if debugging():
        return
    for key, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                       ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")):
        os.environ.setdefault(key, value)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
