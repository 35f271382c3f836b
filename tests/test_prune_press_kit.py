"""Shared helpers for the pruner/press tests (no tests here): a tiny random Qwen2.5-VL checkpoint
loaded through the real adapter, synthetic frames, single and left-padded batched prompts."""

from __future__ import annotations

import functools
import tempfile

import numpy as np
import pytest
import torch

from vidsift.frames.types import FrameBatch
from vidsift.pipeline.hooks import count_hooks
from vidsift.pipeline.types import ModelInputs

_DIR = tempfile.TemporaryDirectory(prefix="vidsift-prune-press-")


@functools.lru_cache(maxsize=None)
def checkpoint(arch: str = "tiny-qwen2.5-vl") -> str:
    from vidsift.pipeline.archs import build_checkpoint

    return str(build_checkpoint(arch, f"{_DIR.name}/{arch}", seed=0))


@functools.lru_cache(maxsize=None)
def adapter(attn: str = "sdpa", arch: str = "tiny-qwen2.5-vl"):
    from vidsift.pipeline.loader import load_adapter

    return load_adapter(checkpoint(arch), device="cpu", dtype="float32", attn_implementation=attn)


def frames(n: int = 8, size: int = 112, seed: int = 0) -> FrameBatch:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    return FrameBatch(data, np.arange(n) / 2.0, np.arange(n))


@functools.lru_cache(maxsize=None)
def _tokens(attn: str, arch: str, n: int, seed: int):
    return adapter(attn, arch).encode(frames(n, seed=seed))


def inputs(question: str = "What happens in the video?", *, attn: str = "sdpa", arch: str = "tiny-qwen2.5-vl",
           n: int = 8, seed: int = 0) -> ModelInputs:
    ad = adapter(attn, arch)
    return ad.build_inputs(_tokens(attn, arch, n, seed), question)


def left_pad(items: list[ModelInputs], pad_id: int) -> ModelInputs:
    """Batch single-prompt inputs with left padding (ids, mask, positions, visual mask, features)."""
    L = max(x.prompt_len for x in items)
    ids, mask, pos, vis, feats = [], [], [], [], []
    for x in items:
        p = L - x.prompt_len
        ids.append(torch.nn.functional.pad(x.input_ids, (p, 0), value=pad_id))
        mask.append(torch.nn.functional.pad(x.kwargs["attention_mask"], (p, 0), value=0))
        vis.append(torch.nn.functional.pad(x.visual_mask, (p, 0), value=False))
        if "position_ids" in x.kwargs:
            pos.append(torch.nn.functional.pad(x.kwargs["position_ids"], (p, 0), value=0))
        feats.append(x.kwargs["mm_encoder_outputs"]["video"].pooler_output[0])
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    kwargs = dict(items[0].kwargs)
    kwargs.update(input_ids=torch.cat(ids), attention_mask=torch.cat(mask),
                  mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=(torch.cat(feats),))})
    if pos:
        kwargs["position_ids"] = torch.cat(pos, dim=1)
    return ModelInputs(kwargs=kwargs, visual_mask=torch.cat(vis))


def fresh(x: ModelInputs) -> ModelInputs:
    """A copy whose kwargs dict can take a cache without touching the original."""
    return ModelInputs(kwargs=dict(x.kwargs), visual_mask=x.visual_mask)


def run(ad, x: ModelInputs, members=(), *, max_new_tokens: int = 8):
    """Greedy generation under the members' sessions -> (new ids, stats dicts, cache)."""
    from contextlib import ExitStack

    from transformers import DynamicCache

    x = fresh(x)
    x.kwargs["past_key_values"] = cache = DynamicCache(config=ad.model.config.get_text_config())
    before = count_hooks(ad.model)
    with ExitStack() as st:
        stats = [st.enter_context(m.session(ad, x)) for m in members]
        ids = ad.generate(x, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
    assert count_hooks(ad.model) == before, "hooks left behind"
    return ids, stats, cache


@pytest.fixture
def qwen():
    return adapter("sdpa")
