"""`record_inputs`: what enters a module while it runs, through a reversible forward pre-hook
(removed when the ``with`` block ends; no class is patched). The adapters' encoder saliency reads
a tower layer's own inputs this way, so the tower runs once and its outputs are untouched."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch


@contextmanager
def record_inputs(module: torch.nn.Module) -> Iterator[list[dict[str, Any]]]:
    """One dict per call of ``module``: ``hidden_states`` (its first input), ``args`` (the other
    positional inputs) and its keyword inputs."""
    calls: list[dict[str, Any]] = []

    def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        first = {"hidden_states": args[0], "args": args[1:]} if args else {"args": ()}
        calls.append({**kwargs, **first})

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()
