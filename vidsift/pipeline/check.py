"""`check_ask`: everything cheap that can be wrong with a question, checked before a model loads.

The CLI calls it before ``Pipeline.from_pretrained`` so that a missing video, a bad spec or an
offline Hub id fails in about a second with one line, instead of after the weights are read.
Imports are ordered by cost: the video is probed first (PyAV only, no torch), then the method
names (read from the members' source, no torch: `names.check_names`), then the options and specs
(their registries import torch), then the checkpoints (transformers' Hub helpers).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError


def check_ask(video: str | os.PathLike | Any, question: str, *, model: str | None = None,
              budget: Any = None, **overrides: Any) -> None:
    """Raise `VidsiftError` unless ``Pipeline.ask(video, question, budget=budget, **overrides)`` on
    ``model`` can start: the question is non-empty; the video opens, is a video and has frames (a
    `FrameBatch` passes); the budget and options parse; every spec builds (scorer, selector,
    allocator, mergers, pruners, presses); the model's and the scorer's checkpoints exist locally
    or are reachable on the Hub. Nothing loads weights."""
    if not isinstance(question, str) or not question.strip():
        raise ConfigError(repr(question), "the question must be a non-empty string")
    if isinstance(video, (str, os.PathLike)):
        from ..frames import open_for_planning

        with open_for_planning(video) as reader:  # as the Pipeline opens it: a >8K video decodes downscaled
            if not reader.info.n_frames:
                raise ConfigError(str(video), "the video has no frames")
    from .names import check_names

    check_names(**{k: overrides.get(k) for k in ("scorer", "selector", "allocator", "merger", "temporal", "prune", "kv")})
    from ..selectors import check_specs
    from ..selectors.types import Budget
    from .loader import check_model
    from .pipeline import DEFAULTS, build_members, resolve_options
    from .scorers import mllm  # noqa: F401  registers the "mllm" scorer

    opts = resolve_options(DEFAULTS, Budget.parse(budget), overrides)
    build_members(opts["budget"])
    checkpoints = check_specs(**{k: opts.get(k) for k in ("scorer", "selector", "allocator", "merger", "temporal")})
    for name in ([model] if model else []) + checkpoints:
        check_model(name)
