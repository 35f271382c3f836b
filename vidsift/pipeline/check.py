"""`check_ask`: everything cheap that can be wrong with a question, checked before a model loads.

The CLI calls it before ``Pipeline.from_pretrained`` so that a missing video, a bad spec or an
offline Hub id fails in about a second with one line, instead of after the weights are read;
so does a video whose frames the model's family cannot encode (`check_frame_size`: Qwen-VL and
an aspect ratio of 200 or more), read from the checkpoint's config.json alone.
Imports are ordered by cost: the video is probed first (PyAV only, no torch), then the method
names (the registries know them without importing a member: `check_names`), then the options and
specs (building members imports torch), then the checkpoints (transformers' Hub helpers).
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
    size = None
    if isinstance(video, (str, os.PathLike)):
        from ..frames import open_for_planning

        with open_for_planning(video) as reader:  # as the Pipeline opens it: a >8K video decodes downscaled
            if not reader.info.n_frames:
                raise ConfigError(str(video), "the video has no frames")
            size = reader.frame_size  # (H, W) of the frames the Pipeline encodes
    check_names(**{k: overrides.get(k) for k in ("scorer", "selector", "allocator", "merger", "temporal", "prune", "kv")})
    from ..selectors import check_specs
    from .loader import check_model
    from .pipeline import DEFAULTS, build_members, resolve_options
    from .presets import Preset

    opts = resolve_options(DEFAULTS, Preset(), {**overrides, "budget": budget})
    build_members(opts["compression"])
    checkpoints = check_specs(**{k: opts.get(k) for k in ("scorer", "selector", "allocator", "merger", "temporal")})
    for name in ([model] if model else []) + checkpoints:
        check_model(name)
    if model and size is not None:
        check_frame_size(model, str(video), width=size[1], height=size[0])


def check_frame_size(model: str, label: str, *, width: int, height: int) -> None:
    """Raise the `FrameSizeError` that encoding ``label``'s frames (this size) with ``model`` would
    raise, naming ``label`` as `Pipeline.ask` does, without loading the model (its config.json
    says the family; nothing is checked when that file is not at hand)."""
    from .loader import adapter_class_of
    from .pipeline import naming_video

    family = adapter_class_of(model)
    if family is not None:
        with naming_video(label, family.family):
            family.check_frame_size(width, height)


def check_names(*, scorer: Any = None, selector: Any = None, allocator: Any = None, merger: Any = None,
                temporal: Any = None, prune: Any = None, kv: Any = None) -> None:
    """Raise the registry's `ConfigError` for an unknown method name or a malformed spec, without
    importing any member (so without torch). Built members (not strings) pass; options are checked
    when the members are built."""
    from ..selectors.base import ALLOCATORS, MERGERS, SCORERS, SELECTORS
    from .press import PRESSES
    from .prune import PRUNERS

    for registry, spec in ((SELECTORS, selector), (ALLOCATORS, allocator), (MERGERS, merger), (MERGERS, temporal)):
        if isinstance(spec, str):
            registry.check(spec)
    if isinstance(scorer, str):
        SCORERS.check(scorer.partition(":")[0] or scorer)  # "clip:/path" is shorthand for clip:model=/path
    for registry, spec in ((PRUNERS, prune), (PRESSES, kv)):
        if isinstance(spec, str) and spec:
            parts = spec.split("+")
            if any(not part.strip() for part in parts):
                raise ConfigError(spec, "empty method in a '+' list; join methods as a+b")
            for part in parts:
                registry.check(part)
