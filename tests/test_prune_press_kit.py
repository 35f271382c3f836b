"""Shared helpers for the pruner/press tests (no tests here): a tiny random Qwen2.5-VL checkpoint
loaded through the real adapter, synthetic frames, single and left-padded batched prompts."""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from vidsift.types import FrameBatch
from vidsift.pipeline.hooks import CacheLayout, count_hooks
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
           n: int = 4, seed: int = 0) -> ModelInputs:
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


def hooked(stack, ad, x: ModelInputs, members) -> list[dict]:
    """Open one call's `CacheLayout` on ``stack`` and add the members -> their stats dicts."""
    layout = stack.enter_context(CacheLayout(ad, x))
    return [layout.add(m) for m in members]


@dataclass
class Run:
    ids: torch.Tensor  # (B, N) new tokens
    logits: torch.Tensor  # (B, N, V) raw logits of every generated step
    stats: list[dict]
    cache: object


def run(ad, x: ModelInputs, members=(), *, max_new_tokens: int = 4, use_cache: bool = True) -> Run:
    """Greedy generation with the members in one call's layout; checks that no hook is left behind."""
    from contextlib import ExitStack

    from transformers import DynamicCache

    x = fresh(x)
    cache = None
    if use_cache:
        x.kwargs["past_key_values"] = cache = DynamicCache(config=ad.model.config.get_text_config())
    before = count_hooks(ad.model)
    with ExitStack() as st:
        stats = hooked(st, ad, x, members)
        out = ad.model.generate(**x.kwargs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                do_sample=False, use_cache=use_cache, output_logits=True,
                                return_dict_in_generate=True)
    assert count_hooks(ad.model) == before, "hooks left behind"
    return Run(out.sequences[:, x.prompt_len:], torch.stack(out.logits, dim=1), stats, cache)


def cache_lengths(cache) -> list[int]:
    return [int(layer.keys.shape[-2]) for layer in cache.layers]


@pytest.fixture
def qwen():
    return adapter("sdpa")


def prefill_cache(ad, x: ModelInputs, members=()):
    """One prefill forward with the members in one call's layout -> the cache it leaves."""
    from contextlib import ExitStack

    from transformers import DynamicCache

    x = fresh(x)
    cache = DynamicCache(config=ad.model.config.get_text_config())
    with ExitStack() as st, torch.no_grad():
        hooked(st, ad, x, members)
        ad.model(**x.kwargs, past_key_values=cache, use_cache=True)
    return cache


def match_positions(keys: torch.Tensor, full_keys: torch.Tensor) -> torch.Tensor:
    """Original position of every entry of ``keys`` (B, H, m, D) found among ``full_keys`` (B, H, L, D)
    by nearest key -> (B, H, m)."""
    d = torch.cdist(keys.float(), full_keys.float())  # (B, H, m, L)
    return d.argmin(dim=-1)


def batch_pair(*, attn: str = "sdpa", arch: str = "tiny-qwen2.5-vl", n=(4, 4)) -> tuple[ModelInputs, list[ModelInputs]]:
    """Two prompts of different lengths (same or different clips), left-padded into one batch."""
    singles = [inputs("What happens?", attn=attn, arch=arch, n=n[0]),
               inputs("Describe the colours of every object in this video, in order.", attn=attn, arch=arch, n=n[1], seed=1)]
    pad = adapter(attn, arch).tokenizer.pad_token_id
    return left_pad(singles, pad), singles
