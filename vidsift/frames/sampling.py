"""Sampling frames by presentation time: `sample`, `iter_chunks` (bounded memory) and
`scan_keyframes` (cheap keyframe-only pass).

Target times map to the frame *on screen* at that time (the last frame whose pts <= t), using
the real pts of every frame, never ``index = t * fps``, so variable-frame-rate files sample
correctly. Targets past the last frame that exists in the file, but inside the duration the
header promises (a truncated file), count as missing in the reader's report: never a silently
short result.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from ..errors import ConfigError
from .reader import VideoReader
from .types import FrameBatch

DEFAULT_MAX_FRAMES = 256  # sample() with neither fps nor max_frames: every frame, capped here (uniform)


def _check(fps, max_frames, start_s, end_s) -> None:
    if fps is not None and not fps > 0:
        raise ConfigError(f"fps={fps!r}", "must be > 0")
    if max_frames is not None and (not isinstance(max_frames, (int, np.integer)) or max_frames < 1):
        raise ConfigError(f"max_frames={max_frames!r}", "must be an int >= 1")
    if start_s is not None and start_s < 0:
        raise ConfigError(f"start_s={start_s!r}", "must be >= 0")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ConfigError(f"end_s={end_s!r}", f"must be > start_s={start_s!r}")


def plan_indices(reader: VideoReader, *, fps: float | None = None, max_frames: int | None = None,
                 start_s: float | None = None, end_s: float | None = None) -> np.ndarray:
    """Frame indices (sorted, unique) that a time-based sample picks; indices >= the readable frame
    count stand for frames the header promises but the file does not hold (reported missing).

    fps:        targets every 1/fps seconds from start_s.
    max_frames: at most this many; alone (or when fps gives more) targets are the centres of
                ``max_frames`` equal slices of [start_s, end_s).
    neither:    every frame in the range.
    """
    _check(fps, max_frames, start_s, end_s)
    times = reader._times  # (N,) seconds
    n_read, info = len(times), reader.info
    frame_dur = 1.0 / info.fps if info.fps else (float(np.median(np.diff(times))) if n_read > 1 else 0.04)
    end_all = max(info.duration_s, float(times[-1]) + frame_dur if n_read else 0.0)
    t0 = 0.0 if start_s is None else float(start_s)
    t1 = end_all if end_s is None else min(float(end_s), end_all)
    if t0 >= end_all:
        raise ConfigError(f"start_s={start_s!r}", f"past the end of the video ({end_all:.2f} s)")
    if t1 <= t0:
        return np.zeros(0, np.int64)
    if fps is None and max_frames is None:
        lo, hi = np.searchsorted(times, t0 - 1e-6), np.searchsorted(times, t1 - 1e-6)
        idx = np.arange(lo, hi, dtype=np.int64)
        tail_end = info.n_frames - n_read
        if tail_end > 0 and t1 > times[-1] + frame_dur * 1.5:  # promised frames past the readable end
            extra = int(min(tail_end, round((t1 - max(t0, times[-1] + frame_dur)) / frame_dur)))
            idx = np.concatenate([idx, n_read + np.arange(max(extra, 0), dtype=np.int64)])
        return idx
    if fps is not None:
        count = int(np.ceil((t1 - t0) * fps - 1e-9))
        if max_frames is None or count <= max_frames:
            return _grid_to_indices(reader, t0, 1.0 / fps, count, frame_dur)
    return _times_to_indices(reader, t0 + (np.arange(max_frames) + 0.5) * (t1 - t0) / max_frames, frame_dur)


def _screen_intervals(reader: VideoReader, frame_dur: float) -> tuple[np.ndarray, np.ndarray, float]:
    """[lo, hi) of the target times that pick each frame (readable ones, then promised ones past the
    file's end, on the header's uniform grid ``j = round(t * n / duration)``), and the time tolerance."""
    times, n_read, n = reader._times, len(reader._times), reader.info.n_frames
    # pts rounding (mkv: 1 ms), never a quarter frame or more (AVI: the time base is one frame)
    tol = min(max(1.01 * float(reader._index.time_base), 0.02 * frame_dur, 1e-6), 0.25 * frame_dur)
    lo = np.concatenate([[-np.inf], times[1:] - tol])  # frame on screen at t: the last whose pts <= t
    hi = np.concatenate([times[1:] - tol, [np.inf]])
    if n_read and n > n_read:  # promised-but-absent frames j >= n_read
        tail_start = times[-1] + frame_dur * (1 - 1e-3)
        dur = reader.info.duration_s or (n * frame_dur)
        j = np.arange(n_read, n)  # bounded: the header's count is capped by what the file holds
        hi[-1] = tail_start
        lo = np.concatenate([lo, np.maximum(tail_start, (j - 0.5) * dur / n)])
        hi = np.concatenate([hi, np.where(j == n - 1, np.inf, (j + 0.5) * dur / n)])
        lo[n_read] = tail_start  # round() below n_read clips up to the first promised frame
    return lo, hi, tol


def _grid_to_indices(reader: VideoReader, t0: float, step: float, count: int, frame_dur: float) -> np.ndarray:
    """The frames on screen at ``t0 + k * step`` for ``k < count``, without materialising the grid: work
    and memory scale with the frames, never with the (header-claimed or pts-jumped) duration."""
    lo, hi, _ = _screen_intervals(reader, frame_dur)
    k = np.maximum(0.0, np.ceil((lo - t0) / step - 1e-9))  # first grid point at or after lo
    hit = (k < count) & (t0 + k * step < hi)
    return np.flatnonzero(hit).astype(np.int64)


def _times_to_indices(reader: VideoReader, targets: np.ndarray, frame_dur: float) -> np.ndarray:
    lo, _, _ = _screen_intervals(reader, frame_dur)
    return np.unique(np.searchsorted(lo, targets, side="right") - 1)


def sample(reader: VideoReader, *, fps: float | None = None, max_frames: int | None = None,
           start_s: float | None = None, end_s: float | None = None, exact_count: bool = False) -> FrameBatch:
    """Frames sampled by presentation time over [start_s, end_s) (default: the whole video).

    ``fps``: one frame every 1/fps s; ``max_frames``: cap, uniform over the range when it bites;
    neither: every frame, capped uniformly at ``DEFAULT_MAX_FRAMES`` (256). Duplicates (a low-fps
    stretch of a VFR file sampled faster) are returned once. Result sorted by time.
    ``exact_count``: when the file or the reads showed damage, decode the frames the sampling
    skipped too (:meth:`VideoReader.count_damage`), so that ``decode`` counts the file's missing
    frames as ``vidsift info --scan`` does (`plan` and `ask`; a clean file costs nothing more).
    """
    if fps is None and max_frames is None:
        idx = plan_indices(reader, start_s=start_s, end_s=end_s)
        if idx.size > DEFAULT_MAX_FRAMES:
            idx = plan_indices(reader, max_frames=DEFAULT_MAX_FRAMES, start_s=start_s, end_s=end_s)
    else:
        idx = plan_indices(reader, fps=fps, max_frames=max_frames, start_s=start_s, end_s=end_s)
    frames = reader.read(idx)
    if exact_count and reader.saw_damage:
        reader.count_damage()
        frames = dataclasses.replace(frames, decode=reader.report.summary())
    return frames


def iter_chunks(reader: VideoReader, *, chunk_frames: int = 64, fps: float | None = None,
                max_frames: int | None = None, start_s: float | None = None,
                end_s: float | None = None) -> Iterator[FrameBatch]:
    """Like :func:`sample` (without a default cap) but yields batches of at most ``chunk_frames``,
    decoding sequentially, so memory stays bounded for long videos. Empty chunks are skipped."""
    if not isinstance(chunk_frames, (int, np.integer)) or chunk_frames < 1:
        raise ConfigError(f"chunk_frames={chunk_frames!r}", "must be an int >= 1")
    idx = plan_indices(reader, fps=fps, max_frames=max_frames, start_s=start_s, end_s=end_s)
    for lo in range(0, idx.size, int(chunk_frames)):
        batch = reader.read(idx[lo : lo + int(chunk_frames)])
        if len(batch):
            yield batch


def scan_keyframes(reader: VideoReader, *, max_frames: int | None = None) -> FrameBatch:
    """Every keyframe, decoded in one cheap pass (only key packets are decoded,
    ``skip_frame="NONKEY"``): a first look at a long video for scoring. ``max_frames`` keeps
    that many, uniformly spread. Always decoded with PyAV."""
    if max_frames is not None and (not isinstance(max_frames, (int, np.integer)) or max_frames < 1):
        raise ConfigError(f"max_frames={max_frames!r}", "must be an int >= 1")
    if reader._decoder is None:
        raise ValueError(f"{reader.path}: reader is closed")
    keys = np.flatnonzero(reader._index.keyframe)
    if max_frames is not None and keys.size > max_frames:
        keep = set(int(keys[int(i)]) for i in np.linspace(0, keys.size - 1, max_frames).round())
    else:
        keep = set(int(k) for k in keys)
    frames: dict[int, np.ndarray] = {}
    for i, img in reader._decoder.keyframes(reader.path):
        if i in keep and i not in frames:
            frames[i] = img
    order = sorted(frames)
    missing = sorted(keep - set(frames))
    reader.report.expected_frames += len(keep)
    reader.report.decoded_frames += len(order)
    reader.report.missing_indices.extend(missing)
    if missing:
        reader._complain(missing, len(keep), [])
    if not order:
        h, w = reader.frame_size
        return FrameBatch(np.zeros((0, h, w, 3), np.uint8), np.zeros(0), np.zeros(0, np.int64),
                          decode=reader.report.summary())
    return FrameBatch(np.stack([frames[i] for i in order]), reader._times[order], np.asarray(order, np.int64),
                      decode=reader.report.summary())
