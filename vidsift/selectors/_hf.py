"""Loading transformers checkpoints for the scorers: one shared, lazily loaded copy per
(path, device, dtype), offline-friendly errors, and a cache key that changes with the weights."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, ModelError
from ..hub import resolve_checkpoint
from ..logs import quiet_libraries

_MODELS: dict[tuple, tuple[Any, Any]] = {}
_LOCK = threading.Lock()
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ConfigError(name, f"unknown dtype; choose one of: {', '.join(_DTYPES)}")
    return _DTYPES[name]


def load(model: str, *, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any]:
    """``(model, tokenizer)`` loaded with ``AutoModel`` / ``AutoTokenizer`` (cached, eval mode)."""
    key = (os.path.abspath(model) if os.path.exists(model) else model, device, dtype)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        from transformers import AutoModel, AutoTokenizer

        if not model:
            raise ModelError("model", "empty model path; give model=PATH_OR_ID")
        source, local_only = resolve_checkpoint(model)  # offline: one line at once, no retries
        quiet_libraries()
        try:
            # safetensors only (a pickled .bin can run code when loaded) and never a checkpoint's own code
            net = AutoModel.from_pretrained(source, dtype=torch_dtype(dtype), local_files_only=local_only,
                                            use_safetensors=True, trust_remote_code=False).to(device).eval()
            tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(model, f"cannot load checkpoint: {reason}") from None
        _MODELS[key] = (net, tok)
        return net, tok


def model_key(model: str) -> str:
    """Identifies a checkpoint's weights: the path plus its files' sizes and mtimes, or the hub id."""
    p = Path(model)
    if p.is_dir():
        stats = sorted((f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in p.iterdir() if f.is_file())
        return f"{p.resolve()}|{stats}"
    return model


def preprocessor_config(model: str) -> dict:
    path = Path(model) / "preprocessor_config.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            raise ModelError(path, "unreadable preprocessor_config.json") from None
    try:  # a hub id already in the local cache
        from transformers.utils import cached_file

        found = cached_file(model, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
        if found:
            return json.loads(Path(found).read_text())
    except Exception:  # noqa: BLE001 - no preprocessor config: fall back to model defaults
        pass
    return {}
