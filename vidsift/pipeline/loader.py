"""Loading a video MLLM checkpoint into the right `ModelAdapter`.

``load_adapter`` accepts a local folder, a Hub id (the local Hub cache is tried first, so it
works offline once downloaded) or ``random:<arch>`` (a random-weight checkpoint of a named
architecture, built once under ``~/.cache/vidsift/random/<arch>`` so everything runs with no
network). It never runs remote code and only loads safetensors weights. Every failure is one
`ModelError` line naming the model and the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, ModelError
from ..hub import looks_like_path, resolve_checkpoint
from ..logs import quiet_libraries
from ..threads import apply_here
from .adapters import ADAPTERS, ModelAdapter

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}
_PREPROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else must be a valid torch device."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(device, "unknown device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(device, "CUDA is not available on this machine; use --device cpu")
    return dev


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | None = None) -> torch.dtype:
    """``"auto"`` -> bfloat16 on CUDA (float16 without bf16 support), float32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device is not None and device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ConfigError(dtype, f"unknown dtype; choose one of: auto, {', '.join(_DTYPES)}") from None


def _random_root(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vidsift" / "random"


def random_checkpoint(arch: str, *, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Path of a random-weight checkpoint of ``arch`` (weights from ``seed``), built (atomically) on
    first use and cached as ``ARCH`` (seed 0) or ``ARCH-seedN``."""
    from .archs import build_checkpoint, names

    if arch not in names():
        raise ModelError(f"random:{arch}", f"unknown architecture; choose one of: {', '.join(names())}")
    root = _random_root(cache_dir)
    target = root / (arch if seed == 0 else f"{arch}-seed{seed}")
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{arch}-", dir=root))
    try:
        build_checkpoint(arch, tmp, seed=seed)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _resolve_source(model: str) -> tuple[str, bool]:
    """-> (path or Hub id, local_files_only). Raises ModelError for missing paths and offline ids."""
    if model.startswith("random:"):
        return str(random_checkpoint(model.split(":", 1)[1])), True
    source, local_only = resolve_checkpoint(model)
    if looks_like_path(model):
        path = Path(source)
        if not path.is_dir():
            raise ModelError(model, "not a model folder (expected a directory with config.json)")
        if not (path / "config.json").is_file():
            raise ModelError(model, "not a model folder (no config.json)")
    return source, local_only


def check_model(model: str) -> None:
    """Fail fast (no weights read, nothing built) when ``model`` cannot be loaded: an unknown
    ``random:`` architecture, a missing folder, or a Hub id that is neither cached nor reachable."""
    if model.startswith("random:"):
        from .archs import names

        if model.split(":", 1)[1] not in names():
            raise ModelError(model, f"unknown architecture; choose one of: {', '.join(names())}")
        return
    _resolve_source(model)


def adapter_class_of(model: str) -> type[ModelAdapter] | None:
    """The family adapter ``model`` would load into, from its config.json alone (no weights, no
    download); None when that file is not at hand (a ``random:`` arch not built yet, a Hub id not
    cached) or names no supported family (loading says why). `ModelError` as loading raises it for a
    missing folder or an id neither cached nor reachable."""
    from types import SimpleNamespace

    from transformers.utils import cached_file

    if model.startswith("random:"):
        found = _random_root() / model.split(":", 1)[1] / "config.json"
        found = str(found) if found.is_file() else None
    else:
        source, _ = _resolve_source(model)
        try:
            found = cached_file(source, "config.json", local_files_only=True, _raise_exceptions_for_missing_entries=False)
        except Exception:  # noqa: BLE001 - not cached: nothing to check before loading
            found = None
    if not found:
        return None
    try:
        with open(found, encoding="utf-8") as fh:
            config = SimpleNamespace(**json.load(fh))
    except (OSError, ValueError, TypeError):
        return None
    return next((ADAPTERS.get(n) for n in ADAPTERS.names() if ADAPTERS.get(n).matches(config)), None)


def read_preprocessor(source: str, *, local_files_only: bool = True) -> dict[str, Any]:
    """The checkpoint's video (else image) preprocessor settings as a dict ({} when absent)."""
    from transformers.utils import cached_file

    def load(name: str) -> dict[str, Any] | None:
        try:
            found = cached_file(source, name, local_files_only=local_files_only, _raise_exceptions_for_missing_entries=False)
        except Exception:  # noqa: BLE001
            return None
        if not found:
            return None
        with open(found, encoding="utf-8") as fh:
            return json.load(fh)

    for name in _PREPROCESSOR_FILES:
        data = load(name)
        if data is not None:
            return data
    processor = load("processor_config.json") or {}
    return dict(processor.get("video_processor") or processor.get("image_processor") or {})


def _adapter_class(model: str, config: Any) -> type[ModelAdapter]:
    for name in ADAPTERS.names():
        cls = ADAPTERS.get(name)
        if cls.matches(config):
            return cls
    model_type = getattr(config, "model_type", "?")
    if not any(hasattr(config, key) for key in ("vision_config", "vision_tower", "visual")):
        raise ModelError(model, f"not a vision-language model (model_type {model_type!r}); vidsift needs a video MLLM")
    families = ", ".join(sorted(t for n in ADAPTERS.names() for t in ADAPTERS.get(n).model_types)) or "none installed"
    raise ModelError(model, f"unsupported model family {model_type!r}; supported model types: {families}")


def load_adapter(model_id_or_path: str | os.PathLike, *, device: str | torch.device = "auto",
                 dtype: str | torch.dtype = "auto", attn_implementation: str | None = None) -> ModelAdapter:
    """Load a checkpoint (folder, Hub id or ``random:<arch>``) and wrap it in its family's adapter."""
    from transformers import AutoConfig, AutoTokenizer

    quiet_libraries()  # no "Loading weights" bar unless debugging

    model = str(model_id_or_path)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    source, local_only = _resolve_source(model)
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
    except ValueError as err:  # unknown model_type, or a config that needs remote code
        raise ModelError(model, f"unsupported or unknown model type ({str(err).splitlines()[0]})") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(model, f"cannot read config.json ({str(err).splitlines()[0]})") from None
    adapter_cls = _adapter_class(model, config)
    model_cls = adapter_cls.model_class(config)
    kwargs: dict[str, Any] = dict(config=config, dtype=torch_dtype, local_files_only=local_only)
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        net = model_cls.from_pretrained(source, use_safetensors=True, trust_remote_code=False, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise ModelError(model, f"cannot load weights or tokenizer ({str(err).splitlines()[0]})") from None
    net = net.to(dev).eval()
    apply_here()  # the thread count chosen before torch and the libraries loading a model pulls in (vidsift.threads)
    return adapter_cls(net, tokenizer, read_preprocessor(source, local_files_only=local_only))
