"""Model-free frame descriptors, content hashes and the per-video feature cache.

``frame_features`` is a downsampled frame (colour thumbnail) joined with a coarse joint RGB
histogram, L2-normalised: cheap, deterministic, and good enough to tell scenes apart and to
measure diversity without a model. ``FeatureCache`` keys encoded features by (content hash,
model, preprocessing) in memory (thread-safe) and optionally on disk under ``~/.cache/vidsift``,
so a second question about the same video does not re-encode its frames.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..types import FrameBatch


def frame_features(frames: FrameBatch | np.ndarray, *, thumb: int = 8, bins: int = 4,
                   hist_weight: float = 0.5, chunk: int = 64) -> np.ndarray:
    """float32 (N, 3*thumb*thumb + bins**3): thumbnail + joint colour histogram, unit L2 norm."""
    data = frames.data if isinstance(frames, FrameBatch) else np.asarray(frames)
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[-1] != 3:
        raise ValueError(f"frame_features needs uint8 (N, H, W, 3), got {data.dtype} {data.shape}")
    n = data.shape[0]
    out = np.empty((n, 3 * thumb * thumb + bins**3), np.float32)
    h, w = data.shape[1:3]
    step = max(1, min(h, w) // 96)  # subsample large frames first: ~96 px is plenty for the histogram
    tstep = max(1, min(h, w) // (4 * thumb))  # and ~4 px per thumbnail cell for the thumbnail
    for lo in range(0, n, chunk):
        part = data[lo : lo + chunk]
        b = part.shape[0]
        small = torch.from_numpy(np.ascontiguousarray(part[:, ::tstep, ::tstep]))  # (B, h', w', 3) uint8
        img = small.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, h', w')
        th = F.adaptive_avg_pool2d(img, thumb).reshape(b, -1)  # (B, 3*t*t)
        th = th - th.mean(dim=1, keepdim=True)
        th = th / th.norm(dim=1, keepdim=True).clamp_min(1e-6)
        q = (np.ascontiguousarray(part[:, ::step, ::step]).astype(np.uint16) * bins) >> 8  # (B, H', W', 3) in [0, bins)
        code = ((q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]).reshape(b, -1).astype(np.int64)  # (B, P)
        code += np.arange(b)[:, None] * bins**3
        hist = torch.from_numpy(np.bincount(code.ravel(), minlength=b * bins**3).reshape(b, bins**3).astype(np.float32))
        hist = hist.sqrt()  # Hellinger: unit norm after normalising
        hist = hist / hist.norm(dim=1, keepdim=True).clamp_min(1e-6)
        feat = torch.cat([th * (1 - hist_weight) ** 0.5, hist * hist_weight**0.5], dim=1)  # (B, F)
        out[lo : lo + b] = feat.numpy()
    return out


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def frames_hash(frames: FrameBatch) -> str:
    """Content hash of decoded frames (pixels, pts and indices)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(frames.data.shape).encode())
    h.update(np.ascontiguousarray(frames.data).data)
    h.update(frames.pts_seconds.tobytes())
    h.update(frames.index.tobytes())
    return h.hexdigest()


def file_hash(path: str | os.PathLike) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("VIDSIFT_CACHE", Path.home() / ".cache" / "vidsift")) / "features"


class FeatureCache:
    """(key -> float32 array) LRU in memory, optionally mirrored as ``.npy`` files in ``disk_dir``."""

    def __init__(self, max_items: int = 256) -> None:
        self.max_items = max_items
        self._mem: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(*parts: object) -> str:
        return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()

    def get(self, key: str, disk_dir: str | os.PathLike | None = None) -> np.ndarray | None:
        with self._lock:
            hit = self._mem.get(key)
            if hit is not None:
                self._mem.move_to_end(key)
        if hit is not None:
            if disk_dir is not None and not (Path(disk_dir) / f"{key}.npy").is_file():
                self.put(key, hit, disk_dir)  # persist what was computed before disk caching was asked for
            return hit
        if disk_dir is not None:
            path = Path(disk_dir) / f"{key}.npy"
            if path.is_file():
                try:
                    arr = np.load(path)
                except (OSError, ValueError):
                    return None  # a damaged cache entry is recomputed
                self._put_mem(key, arr)
                return arr
        return None

    def put(self, key: str, value: np.ndarray, disk_dir: str | os.PathLike | None = None) -> None:
        value = np.ascontiguousarray(value, dtype=np.float32)
        self._put_mem(key, value)
        if disk_dir is not None:
            path = Path(disk_dir)
            path.mkdir(parents=True, exist_ok=True)
            tmp = path / f".{key}.{os.getpid()}.{threading.get_ident()}.npy"
            np.save(tmp, value)
            os.replace(tmp, path / f"{key}.npy")

    def _put_mem(self, key: str, value: np.ndarray) -> None:
        with self._lock:
            self._mem[key] = value
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_items:
                self._mem.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._mem.clear()


FEATURE_CACHE = FeatureCache()
