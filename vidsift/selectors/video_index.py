"""The per-video index: one cheap pass over a whole video, kept on disk for the next question.

`build_index` decodes a candidate every ``1/fps`` seconds in bounded chunks, at a low resolution
(``max_pixels``, the *scan* size: what a scorer looks at while searching), and keeps per candidate
its time, frame index, the downscaled frame and model-free features (`frame_features`). Nothing of
decode size is held: the few frames a plan keeps are decoded again at full size afterwards.

`load_index` returns the entry for a video from ``cache_dir`` when its key matches, else builds and
stores it. The key is the file's content hash (blake2b of every byte) and everything that changes
the entry (fps, range, scan size, backend-independent ``INDEX_VERSION``); an entry whose files are
missing, damaged or of the wrong shape is rebuilt, never trusted. The folder keeps at most
``VIDSIFT_INDEX_MAX_GB`` (10 GB): the oldest entries go first. Frames live in ``frames.npy``,
read through a memory map, so an hour's entry does not sit in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..frames.types import FrameBatch
from .features import file_hash, frame_features

INDEX_VERSION = 1
INDEX_MAX_BYTES = int(float(os.environ.get("VIDSIFT_INDEX_MAX_GB", "10")) * 2**30)  # older entries go past this
SCAN_MAX_PIXELS = 128 * 128  # frames the search scores are decoded at most this large (aspect kept)
SCAN_FPS = 1.0


def default_index_dir() -> Path:
    return Path(os.environ.get("VIDSIFT_CACHE", Path.home() / ".cache" / "vidsift")) / "index"


@dataclass
class VideoIndex:
    """A video's candidates: ``pts`` (N,) seconds, ``index`` (N,) frame indices, ``frames``
    (N, h, w, 3) uint8 at the scan size (a memory map when loaded), ``features`` (N, F) float32,
    ``decode`` the decode report, ``meta`` how it was built (key, settings, seconds, cached)."""

    pts: np.ndarray
    index: np.ndarray
    frames: np.ndarray
    features: np.ndarray
    decode: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # the entry on disk, when it is kept there
    _derived: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.pts)

    def derived(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """An (N, ...) array computed from this entry (a model's features of every candidate), kept
        in memory and beside the entry on disk as ``name.npy``; ``name`` must say everything it
        depends on (the model and its weights). A file of the wrong length is computed again."""
        if name in self._derived:
            return self._derived[name]
        path = self.folder / f"{name}.npy" if self.folder is not None else None
        arr = None
        if path is not None and path.is_file():
            try:
                arr = np.load(path)
            except (OSError, ValueError, EOFError):
                arr = None
            if arr is not None and (arr.shape[0] != len(self) or not np.isfinite(arr).all()):
                arr = None
        if arr is None:
            arr = np.ascontiguousarray(compute())
            if path is not None:
                tmp = path.with_name(f".{name}.{os.getpid()}.npy")
                np.save(tmp, arr)
                os.replace(tmp, path)
        self._derived[name] = arr
        return arr

    def batch(self, rows: np.ndarray | None = None) -> FrameBatch:
        """Candidates ``rows`` (all by default) as a `FrameBatch` of scan-size frames."""
        if rows is None:  # no copy: the frames stay a memory map until read
            return FrameBatch(self.frames, self.pts.astype(np.float64), self.index.astype(np.int64), decode=self.decode)
        rows = np.asarray(rows, dtype=np.int64)
        return FrameBatch(np.ascontiguousarray(self.frames[rows]), self.pts[rows].astype(np.float64),
                          self.index[rows].astype(np.int64), decode=self.decode)


def index_key(video: str | os.PathLike, *, fps: float, start_s: float | None, end_s: float | None,
              max_pixels: int | None) -> str:
    """What an entry is keyed by: the file's bytes and every setting that changes the entry."""
    import hashlib

    settings = json.dumps({"v": INDEX_VERSION, "fps": float(fps), "start": start_s, "end": end_s, "px": max_pixels},
                          sort_keys=True)
    return hashlib.blake2b(f"{file_hash(video)}|{settings}".encode(), digest_size=16).hexdigest()


def build_index(video: str | os.PathLike, *, fps: float = SCAN_FPS, start_s: float | None = None,
                end_s: float | None = None, max_pixels: int | None = SCAN_MAX_PIXELS, out_dir: Path | None = None,
                chunk_frames: int = 128, progress: Callable[[int, int], None] | None = None) -> VideoIndex:
    """The cheap pass. With ``out_dir`` the frames are written there as they decode (a memory map)
    and the other arrays beside them; ``progress(done, total)`` after every chunk."""
    from ..errors import ConfigError
    from ..frames import open_for_planning
    from ..frames.sampling import plan_indices

    t0 = time.perf_counter()
    with open_for_planning(video, max_pixels=max_pixels) as reader:
        wanted = plan_indices(reader, fps=fps, start_s=start_s, end_s=end_s)
        if wanted.size == 0:
            raise ConfigError(str(video), "no frames were sampled (check fps, start and end)")
        h, w = reader.frame_size
        shape = (int(wanted.size), int(h), int(w), 3)
        frames = (np.lib.format.open_memmap(out_dir / "frames.npy", mode="w+", dtype=np.uint8, shape=shape)
                  if out_dir is not None else np.empty(shape, np.uint8))
        pts, idx, feats, filled = [], [], [], 0
        for lo in range(0, wanted.size, chunk_frames):
            part = reader.read(wanted[lo:lo + chunk_frames])
            if len(part):
                frames[filled:filled + len(part)] = part.data
                filled += len(part)
                pts.append(part.pts_seconds)
                idx.append(part.index)
                feats.append(frame_features(part))
            if progress is not None:
                progress(min(lo + chunk_frames, wanted.size), int(wanted.size))
        decode = reader.report.summary()
    if filled == 0:
        raise ConfigError(str(video), "no frame of the video could be decoded")
    if out_dir is not None:
        frames.flush()
        del frames
        frames = np.load(out_dir / "frames.npy", mmap_mode="r")
    out = VideoIndex(np.concatenate(pts), np.concatenate(idx), frames[:filled], np.concatenate(feats), decode,
                     {"fps": fps, "start_s": start_s, "end_s": end_s, "max_pixels": max_pixels,
                      "build_s": round(time.perf_counter() - t0, 4), "frames": filled})
    return out


_ARRAYS = ("pts", "index", "features")


def _save(entry: VideoIndex, folder: Path) -> None:
    for name in _ARRAYS:
        np.save(folder / f"{name}.npy", getattr(entry, name))
    (folder / "meta.json").write_text(json.dumps({**entry.meta, "decode": entry.decode}))


def _load(folder: Path, key: str) -> VideoIndex | None:
    """The entry in ``folder`` when it is whole and keyed ``key``; None otherwise (rebuilt)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("key") != key:
            return None
        arrays = {name: np.load(folder / f"{name}.npy") for name in _ARRAYS}
        frames = np.load(folder / "frames.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    n = len(arrays["pts"])
    if not (n == meta.get("frames") and len(arrays["index"]) == n and arrays["features"].shape[0] == n
            and frames.shape[0] >= n and frames.ndim == 4 and np.isfinite(arrays["features"]).all()):
        return None
    decode = meta.pop("decode", None)
    return VideoIndex(arrays["pts"], arrays["index"], frames[:n], arrays["features"], decode, {**meta, "cached": True},
                      folder=folder)


def prune(root: Path, *, keep: Path | None = None, max_bytes: int | None = None) -> list[Path]:
    """Remove the least recently built entries of ``root`` until it holds at most ``max_bytes``
    (default ``VIDSIFT_INDEX_MAX_GB``, 10 GB), never ``keep``; returns what was removed. A server
    indexing every upload stays within bounds."""
    limit = INDEX_MAX_BYTES if max_bytes is None else max_bytes
    entries = []
    for folder in root.iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and folder != keep:
            files = [f for f in folder.iterdir() if f.is_file()]
            entries.append((max((f.stat().st_mtime for f in files), default=0.0), sum(f.stat().st_size for f in files), folder))
    total = sum(size for _, size, _ in entries) + (sum(f.stat().st_size for f in keep.iterdir()) if keep else 0)
    removed = []
    for _, size, folder in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
        removed.append(folder)
    return removed


def load_index(video: str | os.PathLike, *, fps: float = SCAN_FPS, start_s: float | None = None,
               end_s: float | None = None, max_pixels: int | None = SCAN_MAX_PIXELS,
               cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
               progress: Callable[[int, int], None] | None = None) -> VideoIndex:
    """The index of ``video``: from ``cache_dir`` (default ``$VIDSIFT_CACHE/index``) when a whole
    entry with the same key is there, else built (and stored, unless ``use_cache`` is False)."""
    t0 = time.perf_counter()
    try:
        key = index_key(video, fps=fps, start_s=start_s, end_s=end_s, max_pixels=max_pixels)
    except OSError:  # missing, a folder, unreadable: the reader's own one-line error names it
        from ..frames import open_for_planning

        open_for_planning(video).close()
        raise
    hash_s = time.perf_counter() - t0
    if not use_cache:
        entry = build_index(video, fps=fps, start_s=start_s, end_s=end_s, max_pixels=max_pixels, progress=progress)
        entry.meta.update(key=key, cached=False, hash_s=round(hash_s, 4))
        return entry
    root = Path(cache_dir) if cache_dir is not None else default_index_dir()
    folder = root / key
    entry = _load(folder, key) if folder.is_dir() else None
    if entry is not None:
        entry.meta["hash_s"] = round(hash_s, 4)
        return entry
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}.{time.monotonic_ns()}"
    tmp.mkdir()
    try:
        entry = build_index(video, fps=fps, start_s=start_s, end_s=end_s, max_pixels=max_pixels, out_dir=tmp,
                            progress=progress)
        entry.meta.update(key=key, cached=False)
        _save(entry, tmp)
        shutil.rmtree(folder, ignore_errors=True)  # a stale or damaged entry of the same key
        os.replace(tmp, folder)
        prune(root, keep=folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry.meta["hash_s"] = round(hash_s, 4)
    stored = _load(folder, key)  # the frames as a map of the stored file (the build's map was in tmp)
    if stored is None:
        return entry
    stored.meta.update(cached=False, hash_s=entry.meta["hash_s"])
    return stored
