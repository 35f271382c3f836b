"""`open_video` and `VideoReader`: one open video, its `VideoInfo`, frames by index, and a running
`DecodeReport`.

Opening does everything that can fail fast, before any bulk decoding: path checks, container
probe, video-stream and decoder checks, the pixel budget, one decoded frame (rotation, true size)
and a demux-only index scan (true frame count and pts). Then ``read`` decodes only what is asked.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from typing import Literal, Sequence

import numpy as np

from ._decord import DecordDecoder, decord_suitable
from ._probe import (
    DEFAULT_MAX_PIXELS, PYAV_ERRORS, build_info, check_codec, check_path, check_pixels, first_frame, one_line,
    open_container, scan_file, slice_threads, video_stream,
)
from ._pyav import FrameRows, PyAVDecoder, to_rgb
from ._torchcodec import TorchcodecDecoder, short_error, torchcodec_unsuitable, video_decoder_class
from .errors import DamagedVideoError, DecodeWarning
from .types import DECODE_MAX_PIXELS, DecodeReport, FrameBatch, VideoInfo
from ..errors import ConfigError, VidsiftError

BACKENDS = ("auto", "pyav", "decord", "torchcodec")


def _budget_size(width: int, height: int, max_pixels: int | None) -> tuple[int, int] | None:
    """(W, H) shrunk (aspect kept, even sizes) to fit ``max_pixels``; None when it already fits."""
    if max_pixels is None or width * height <= max_pixels:
        return None
    scale = math.sqrt(max_pixels / (width * height))
    w, h = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
    return w, h


class VideoReader:
    """An open video. Use as a context manager, or call :meth:`close`.

    ``info``: :class:`VideoInfo` (display orientation, true frame count).
    ``report``: :class:`DecodeReport` accumulated over every read: ``expected_frames`` counts the
    frames asked for, ``decoded_frames`` those delivered, ``missing_indices`` the rest.
    ``backend``: ``"pyav"``, ``"decord"`` (what ``auto`` picked) or ``"torchcodec"``.
    """

    def __init__(self, source: str | os.PathLike, *, backend: str = "auto", strict: bool = False,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, downscale: bool = False) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"backend={backend!r}", f"must be one of {', '.join(BACKENDS)}")
        if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels <= 0):
            raise ConfigError(f"max_pixels={max_pixels!r}", "must be a positive int or None")
        if backend == "torchcodec":
            video_decoder_class()  # not installed: one line naming the install command, before any work
        self.path = path = check_path(source)
        self.strict = strict
        self._decoder = None
        container = open_container(path)
        try:
            stream = video_stream(container, path)
            codec = check_codec(stream, path)
            slice_threads(stream)
            cc = stream.codec_context
            check_pixels(cc.width or 0, cc.height or 0, max_pixels, path, downscale=downscale)
            frame0 = first_frame(container, stream, path)
            check_pixels(frame0.width, frame0.height, max_pixels, path, downscale=downscale)
            k_ccw = int(round((frame0.rotation or 0) / 90.0)) % 4
            index = scan_file(path, stream.index)
        except PYAV_ERRORS as err:
            container.close()
            if isinstance(err, VidsiftError):
                raise
            raise DamagedVideoError(path, f"damaged video: its streams cannot be read ({type(err).__name__}: "
                                          f"{one_line(err)})") from None
        except BaseException:
            container.close()
            raise
        sw, sh = frame0.width, frame0.height  # stored (coded) orientation
        out_size = _budget_size(sw, sh, max_pixels) if downscale else None
        dw, dh = (sh, sw) if k_ccw % 2 else (sw, sh)
        self._index = index
        self._times = index.seconds  # (N,) presentation times, seconds from the stream start
        self.report = DecodeReport(expected_frames=0)
        self._asked: set[int] = set()  # every index a read asked for
        pyav = PyAVDecoder(path, container, stream, index, k_ccw=k_ccw, size=(sw, sh), out_size=out_size,
                           on_error=self._on_error, on_suspect=self._on_suspect, on_resize=self._on_resize)
        self._decoder = pyav
        chosen = "pyav"
        info, notes, expected = build_info(path, container, stream, index, width=dw, height=dh,
                                           rotation_cw=(-90 * k_ccw) % 360, codec=codec, backend=chosen)
        damaged = expected > len(index)  # decord hides decode errors: damaged files go to PyAV
        # decord trusts headers (it allocates what they claim) and numbers frames by pts: only for files
        # whose header agrees with their content
        suspect = bool(notes or index.notes)
        if backend in ("decord", "torchcodec") and suspect:
            warnings.warn(f"{path}: {backend} cannot be trusted with this file ({(notes or index.notes)[0]}); "
                          "using PyAV", DecodeWarning, stacklevel=3)
        elif backend == "torchcodec":
            why = torchcodec_unsuitable(path, container.format.name, out_size=out_size)
            try:
                if why is None:
                    self._decoder = TorchcodecDecoder(path, stream_index=stream.index, index=index,
                                                      first_frame=to_rgb(frame0, k_ccw, None), fallback=pyav,
                                                      on_warning=self.report.warnings.append)
                    chosen = "torchcodec"
            except Exception as err:  # noqa: BLE001 - torchcodec cannot open it: PyAV it is
                why = f"it cannot read this file ({short_error(err)})"
            if why is not None:
                warnings.warn(f"{path}: torchcodec is not used: {why}; using PyAV", DecodeWarning, stacklevel=3)
        elif backend == "decord" or (backend == "auto" and not strict and not suspect
                                     and decord_suitable(path, container.format.name)):
            try:
                first = to_rgb(frame0, k_ccw, out_size)  # (H, W, 3) display orientation, for calibration
                self._decoder = DecordDecoder(path, n_frames=len(index), first_frame=first, out_size=out_size,
                                              fallback=pyav, on_warning=self.report.warnings.append,
                                              lazy=backend == "auto")  # opened for the first dense request
                chosen = "decord"
            except Exception as err:  # noqa: BLE001 - decord cannot open it: PyAV it is
                if backend == "decord":
                    warnings.warn(f"{path}: decord cannot read this file ({str(err).splitlines()[0][:100]}); "
                                  "using PyAV", DecodeWarning, stacklevel=3)
        self.info: VideoInfo = dataclasses.replace(info, backend=chosen)
        self.report.expected_duration_s = info.duration_s
        self.report.warnings.extend([*index.notes, *notes])
        self.report.frames_expected, self.report.frames_in_file = expected, len(index)
        if damaged:  # the header or the timestamps promise frames the file does not hold
            self.report.reason = "; ".join(n for n in notes if "missing" in n)
            if strict:
                self.close()
                raise DamagedVideoError(path, f"damaged video: {self.report.reason}")
            warnings.warn(f"{path}: {self.report.reason}", DecodeWarning, stacklevel=3)
        self.frame_size = (out_size[1], out_size[0]) if out_size and k_ccw % 2 == 0 else (
            (out_size[0], out_size[1]) if out_size else (dh, dw))  # (H, W) of returned frames

    # ------------------------------------------------------------------ report hooks
    def _on_error(self, index: int, message: str, first_suspect: int | None = None) -> None:
        t = self.time_of(index)
        self.report.errors.append(f"frame {index} ({t:.2f}s): {message}")
        start = max(0, index if first_suspect is None else min(first_suspect, index))
        nxt = self._index.next_keyframe_after(max(index, start))
        known = set(self.report.suspect_frames)
        self.report.suspect_frames.extend(i for i in range(start, min(nxt, len(self._index))) if i not in known)
        self.report.suspect_frames.sort()

    def _on_suspect(self, index: int) -> None:
        if index not in self.report.suspect_frames:
            self.report.suspect_frames.append(index)

    def _on_resize(self, index: int, size: tuple[int, int]) -> None:
        """Frame ``index`` is ``size`` (W, H, stored orientation), not the first frame's size: scaled to it."""
        report = self.report
        if not report.resized_frames:
            h, w = self.frame_size
            note = (f"the resolution changes mid-file: frame {index} ({self.time_of(index):.2f}s) is {size[0]}x{size[1]}, "
                    f"frames of another size than the first are scaled to {w}x{h}")
            report.warnings.append(note)
            warnings.warn(f"{self.path}: {note}", DecodeWarning, stacklevel=4)
        if index not in report.resized_frames:
            report.resized_frames.append(index)

    # ------------------------------------------------------------------ public
    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def frame_times(self) -> np.ndarray:
        """(N,) presentation time in seconds of every frame in the file's index (read-only copy)."""
        return self._times.copy()

    def time_of(self, index: int) -> float:
        """Presentation time of frame ``index``; extrapolated at the declared fps past the readable end."""
        n = len(self._times)
        if 0 <= index < n:
            return float(self._times[index])
        fps = self.info.fps or 25.0
        return float(self._times[-1] + (index - n + 1) / fps) if n else index / fps

    def read(self, indices: Sequence[int]) -> FrameBatch:
        """Frames by index (presentation order, 0 .. info.n_frames-1), in the order given, display
        orientation. Frames that do not decode are left out, counted in ``report`` and warned about
        (``DecodeWarning``); with ``strict=True`` they raise :class:`DamagedVideoError` instead."""
        if self._decoder is None:
            raise ValueError(f"{self.path}: reader is closed")
        idx = np.asarray(list(indices), dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.info.n_frames):
            bad = int(idx[(idx < 0) | (idx >= self.info.n_frames)][0])
            raise IndexError(f"{self.path}: frame index {bad} out of range [0, {self.info.n_frames})")
        uniq = np.unique(idx)
        self._asked.update(int(i) for i in uniq)
        n_err = len(self.report.errors)
        readable = uniq[uniq < len(self._index)]
        frames = self._decoder.read(readable) if readable.size else FrameRows(readable)  # decoded in place
        missing = [int(i) for i in uniq if int(i) not in frames]
        self.report.expected_frames += int(uniq.size)
        self.report.decoded_frames += int(uniq.size) - len(missing)
        self.report.missing_indices.extend(missing)
        if frames:
            last = max(self.time_of(i) for i in frames)
            self.report.last_pts_s = max(last, self.report.last_pts_s or 0.0)
        new_errors = self.report.errors[n_err:]
        if missing or new_errors:
            self._complain(missing, len(uniq), new_errors)
        keep = [int(i) for i in idx if int(i) in frames]
        if not keep:
            h, w = self.frame_size
            return FrameBatch(np.zeros((0, h, w, 3), np.uint8), np.zeros(0), np.zeros(0, np.int64),
                              decode=self.report.summary())
        if len(keep) == len(readable) and frames.ok.all() and np.array_equal(keep, readable):
            data = frames.data  # the usual case (sorted unique indices, all decoded): the rows themselves
        else:
            data = frames.data[np.searchsorted(readable, keep)]  # (N, H, W, 3)
        return FrameBatch(data, np.asarray([self.time_of(i) for i in keep]), np.asarray(keep, np.int64),
                          decode=self.report.summary())

    @property
    def saw_damage(self) -> bool:
        """Whether the file or any read so far showed damage (missing, undecodable or suspect frames)."""
        r = self.report
        return bool(r.reason or r.errors or r.missing_indices or r.suspect_frames)

    def count_damage(self, *, chunk_frames: int = 64) -> None:
        """Decode the frames of the file that no read asked for (nothing is kept), so that the
        report's file count (``report.summary()``) is what ``vidsift info --scan`` counts.
        ``sample(..., exact_count=True)`` (`plan`, `ask`) calls it when its reads saw damage.
        Decode errors seen: every frame (damage may be anywhere). Only the header or timestamps
        saying frames are missing (a cut or a hole): the last group of pictures, where a cut leaves
        a partial frame, so a long truncated file costs one GOP, not a full decode."""
        n = len(self._index)
        r = self.report
        decode_damage = r.errors or r.suspect_frames or any(i < n for i in r.missing_indices)  # frames past the end: a cut
        first = 0 if decode_damage else self._index.keyframe_before(n - 1)
        rest = np.asarray(sorted(set(range(first, n)) - self._asked), np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DecodeWarning)  # the reads that asked already warned
            for lo in range(0, rest.size, chunk_frames):
                self.read(rest[lo : lo + chunk_frames])

    def _complain(self, missing: list[int], asked: int, errors: list[str]) -> None:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {asked} requested frames could not be decoded "
                         f"(first missing: frame {missing[0]} at {self.time_of(missing[0]):.2f}s)")
        if errors:
            parts.append(f"{len(errors)} decode error(s), first: {errors[0]}")
        reason = "; ".join(parts)
        if self.strict:
            raise DamagedVideoError(self.path, f"damaged video: {reason}")
        self.report.warnings.append(reason)
        warnings.warn(f"{self.path}: {reason}", DecodeWarning, stacklevel=3)

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # containers hold file handles and threads
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __repr__(self) -> str:
        i = self.info
        return (f"VideoReader({i.path!r}, {i.width}x{i.height}, {i.n_frames} frames, {i.fps:g} fps, "
                f"{i.duration_s:.2f}s, {i.codec}, backend={i.backend})")


def open_video(source: str | os.PathLike, *, backend: Literal["auto", "pyav", "decord", "torchcodec"] = "auto",
               strict: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               downscale: bool = False) -> VideoReader:
    """Open a video file for decoding.

    backend:    ``"auto"`` (decord for ordinary mp4/mov/mkv/avi files it can open, else PyAV;
                always PyAV when ``strict``), ``"pyav"``, ``"decord"`` or ``"torchcodec"`` (opt-in,
                installed apart: ``pip install torchcodec==0.13.0 --no-deps``; PyAV reads what it
                cannot, and damaged frames: see ``vidsift/frames/_torchcodec.py``).
    strict:     raise :class:`DamagedVideoError` instead of returning fewer frames (+ a warning).
    max_pixels: pixel budget per frame (default 8192*4320); larger videos raise
                :class:`TooLargeError` before decoding, or with ``downscale=True`` are decoded
                downscaled (aspect kept) to fit it. ``None`` disables the check.
    """
    return VideoReader(source, backend=backend, strict=strict, max_pixels=max_pixels, downscale=downscale)


def open_for_planning(source: str | os.PathLike, *, max_pixels: int | None = DECODE_MAX_PIXELS) -> VideoReader:
    """Open ``source`` as `vidsift plan` and `Pipeline.ask` decode it, and as `check_ask` checks it:
    frames above ``max_pixels`` decode downscaled (aspect kept), so no pixel limit refuses a large
    video (8K and beyond); ``None`` decodes at full size with no limit."""
    return open_video(source, max_pixels=max_pixels, downscale=max_pixels is not None)
