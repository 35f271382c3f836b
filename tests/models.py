"""Tiny-model helpers shared by the adapter tests.

- `real_frames`: a few frames of a real clip with their real pts (PyAV decode, every ``stride``-th).
- `load_tiny_adapter`: a checkpoint written by ``build_checkpoint`` loaded back with the adapter
  class that matches its config, the model class that adapter names and ``from_pretrained`` (the
  user's path), wrapped in the adapter with the checkpoint's (video) preprocessor settings.
- `assert_same_as_pixel_inputs`: our inputs give bit-identical logits and greedy tokens to the
  adapter's ``pixel_inputs`` (the same frames through the model's own vision tower).
- `assert_close_to_stock`: our inputs give the logits (to float rounding: the pixels are computed
  by other code) and the greedy tokens of the stock processor's inputs (``tests/stock.py``).

Asserts are rewritten by pytest (conftest registers this module).

The checkpoints themselves come from the session-scoped ``tiny_checkpoint(arch)`` fixture in
conftest.py (built once per session, read-only).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer

from vidsift.types import FrameBatch
from vidsift.pipeline.adapters import ADAPTERS


def real_frames(path: str, n: int, stride: int) -> FrameBatch:
    """n frames of a real clip (every ``stride``-th), with their real pts."""
    data, pts = [], []
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % stride == 0:
                data.append(frame.to_ndarray(format="rgb24"))
                pts.append(float(frame.time))
            if len(data) == n:
                break
    return FrameBatch(np.stack(data), np.array(pts), np.arange(n) * stride)


def load_tiny_adapter(ckpt: Path):
    """The adapter (model in eval mode) for checkpoint folder ``ckpt``, picked by its config."""
    config = AutoConfig.from_pretrained(ckpt)
    cls = next(ADAPTERS.get(name) for name in ADAPTERS.names() if ADAPTERS.get(name).matches(config))
    model = cls.model_class(config).from_pretrained(ckpt).eval()
    video_pre = ckpt / "video_preprocessor_config.json"
    pre = json.loads((video_pre if video_pre.exists() else ckpt / "preprocessor_config.json").read_text())
    return cls(model, AutoTokenizer.from_pretrained(ckpt), pre)


def _greedy(adapter, ours, ref: dict, max_new_tokens: int) -> torch.Tensor:
    new = adapter.generate(ours, max_new_tokens=max_new_tokens)
    out = adapter.model.generate(**ref, max_new_tokens=max_new_tokens, do_sample=False)[:, ref["input_ids"].shape[1]:]
    assert torch.equal(new, out)
    return new


def assert_same_as_pixel_inputs(adapter, ours, pixel: dict, *, max_new_tokens: int) -> torch.Tensor:
    """Logits of ``ours`` (ModelInputs) equal those of ``pixel`` (``adapter.pixel_inputs``) exactly,
    and so do ``max_new_tokens`` greedy tokens; returns our new tokens (1, n)."""
    with torch.no_grad():
        assert torch.equal(adapter.model(**ours.kwargs).logits, adapter.model(**pixel).logits)
    return _greedy(adapter, ours, pixel, max_new_tokens)


def assert_close_to_stock(adapter, ours, stock: dict, *, max_new_tokens: int, atol: float = 1e-4) -> torch.Tensor:
    """``ours`` and ``stock`` (the stock processor's kwargs, ``tests/stock.py``) hold the same token ids;
    their logits agree to ``atol`` (the pixels come from different code, equal to float rounding) and
    ``max_new_tokens`` greedy tokens are equal; returns our new tokens (1, n)."""
    assert torch.equal(ours.input_ids, stock["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(adapter.model(**ours.kwargs).logits, adapter.model(**stock).logits, atol=atol, rtol=0)
    return _greedy(adapter, ours, stock, max_new_tokens)
