"""Where a checkpoint comes from: a local folder, the local Hugging Face cache, or the Hub.

`resolve_checkpoint` is the one rule for every checkpoint vidsift loads (the video LLM and the
scorers' CLIP / SigLIP / sentence encoders): a local folder is used as is; a Hub id already in
the local cache loads with ``local_files_only=True`` (no network, no retries); an id that is
not cached is only tried online when the Hub answers a 3-second probe and ``HF_HUB_OFFLINE`` is
unset. Otherwise it fails at once with one line naming the id and how to get it.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from .errors import ModelError


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """A fast reachability probe, so an offline machine fails in seconds, not after 25 s of retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def looks_like_path(name: str) -> bool:
    """A folder path rather than a Hub id (``owner/name``)."""
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") != 1 or os.path.exists(name)


def resolve_checkpoint(name: str) -> tuple[str, bool]:
    """``(folder or Hub id, local_files_only)`` for ``name``; `ModelError` for a missing folder or
    an id that is neither cached nor reachable."""
    if looks_like_path(name):
        path = os.path.expanduser(name)
        if not os.path.exists(path):
            raise ModelError(name, "no such file or directory")
        return path, True
    from transformers.utils import cached_file

    try:
        if cached_file(name, "config.json", local_files_only=True, _raise_exceptions_for_missing_entries=False):
            return name, True
    except Exception:  # noqa: BLE001 - malformed ids etc. fall through to the online attempt
        pass
    if not hub_reachable():
        raise ModelError(name, f"not in the local Hugging Face cache and the Hub is unreachable (offline); "
                               f"download it first with `hf download {name}` or pass a local folder")
    return name, False
