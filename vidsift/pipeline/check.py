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
from .options import check_names  # noqa: F401  (the early name check lives with the options it checks)


def check_ask(video: str | os.PathLike | Any, question: str, *, model: str | None = None,
              ask_options: Any = None, budget: Any = None, **overrides: Any) -> Any:
    """Raise `VidsiftError` unless ``Pipeline.ask(video, question, ask_options)`` on ``model`` can
    start, and return the question's `AskRun` (its options resolved and its members built, once:
    hand it to ``Pipeline.ask``, which builds nothing again). ``ask_options`` is an `AskOptions`
    (else ``budget`` and keywords make one). Checked: the question is non-empty; the video opens, is a
    video and has frames (a `FrameBatch` passes); the budget and options parse; every spec builds
    (scorer, selector, allocator, mergers, pruners, presses); the model's and the scorer's
    checkpoints exist locally or are reachable on the Hub. Nothing loads weights."""
    if not isinstance(question, str) or not question.strip():
        raise ConfigError(repr(question), "the question must be a non-empty string")
    size = None
    if isinstance(video, (str, os.PathLike)):
        from ..frames import open_for_planning

        with open_for_planning(video) as reader:  # as the Pipeline opens it: a >8K video decodes downscaled
            if not reader.info.n_frames:
                raise ConfigError(str(video), "the video has no frames")
            size = reader.frame_size  # (H, W) of the frames the Pipeline encodes
    from .options import AskOptions, AskRun, resolve

    if ask_options is None:  # names are checked as the object is made, before any member is imported
        ask_options = AskOptions.from_kwargs(**{"budget": budget, **overrides})
    elif budget is not None or overrides:
        raise ConfigError(", ".join(sorted({*overrides, *(["budget"] if budget is not None else [])})),
                          "give these in ask_options, or give keywords alone")
    elif not isinstance(ask_options, AskOptions):
        raise ConfigError(repr(ask_options), "ask_options must be an AskOptions")
    from .loader import check_model

    run = AskRun.build(resolve(ask_options))
    for name in ([model] if model else []) + run.checkpoints():
        check_model(name)
    if model and size is not None:
        check_frame_size(model, str(video), width=size[1], height=size[0])
    return run


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
