"""decord decoding backend: fast random access for ordinary files (mp4/mov/mkv/avi), with guards.

decord indexes frames in presentation order, like :class:`~vidsift.frames._probe.FrameIndex`, so
frame ``i`` is the same picture in both backends (checked at open: same frame count). Guards:
every returned frame's shape is checked (decord returns wrong shapes for some small rotated
widths), a failing ``get_batch`` falls back to per-index reads, and those to PyAV. decord is
never used for MPEG-TS, webm, URLs or live sources. Some decord builds apply the display matrix
and some do not: frame 0 is compared with PyAV's at open to find the turn that is still needed.

Chosen by ``backend="auto"`` (``lazy``), decord opens on the first request it serves, and serves
only dense ones (``SEEK_GAP`` frames or more, at most that far apart on average): a few frames or
spread ones go to PyAV's
keyframe seeks, which decode only from each target's keyframe (on a 30-minute file, decord's open
alone indexes every packet, and its ``get_batch`` of 64 spread frames took 1.2-6x PyAV's seeks).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from ._pyav import SEEK_GAP, FrameRows, turns_to_display

BATCH = 32  # frames per get_batch call: what it returns is copied into the rows, so at most this many extra

DECORD_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"}
DECORD_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".avi"}


def decord_suitable(path: str, format_name: str) -> bool:
    """Whether decord may be tried on this file (ordinary local file in an indexable container)."""
    if "://" in path:
        return False
    return format_name in DECORD_FORMATS and os.path.splitext(path)[1].lower() in DECORD_EXTENSIONS


class DecordDecoder:
    """Random-access reads through ``decord.VideoReader.get_batch``, guarded, with a PyAV fallback."""

    name = "decord"

    def __init__(self, path: str, *, n_frames: int, first_frame: np.ndarray, out_size: tuple[int, int] | None,
                 fallback, on_warning: Callable[[str], None], lazy: bool = False) -> None:
        self.path, self.n_frames, self.first_frame, self.out_size = path, n_frames, first_frame, out_size
        self.fallback = fallback  # a PyAVDecoder for what decord cannot deliver
        self.on_warning = on_warning
        self.fell_back = 0  # frames that came from PyAV instead
        self.lazy, self.vr, self.log = lazy, None, None
        self.unusable = False  # a lazy open failed: PyAV serves everything
        if not lazy:
            self._open()

    def _open(self) -> None:
        import decord  # lazy: optional fast path

        from . import _ffmpeg_log

        self.log = _ffmpeg_log.capture(_ffmpeg_log.decord_libavutil())  # its FFmpeg's stderr lines, or None
        kwargs = {}
        if self.out_size is not None:
            kwargs = {"width": int(self.out_size[0]), "height": int(self.out_size[1])}
        self.vr = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=0, **kwargs)
        if len(self.vr) != self.n_frames:
            raise RuntimeError(f"decord sees {len(self.vr)} frames, the index {self.n_frames}")
        self.k_ccw = turns_to_display(self.vr[0].asnumpy(), self.first_frame, who="decord")
        self._errors()  # lines from opening: the frames they concern are read (and checked) later
        self.hw = np.rot90(self.first_frame, k=-self.k_ccw).shape[:2]  # what decord must return, (H, W)

    def _serves(self, ids: list[int]) -> bool:
        """Whether decord reads these frames (else PyAV does): always unless ``lazy``; then dense
        requests only (at least ``SEEK_GAP`` frames, on average at most ``SEEK_GAP`` apart), opening
        decord on the first one (a file it cannot open goes to PyAV)."""
        if not self.lazy:
            return True
        if self.unusable or len(ids) < SEEK_GAP or ids[-1] - ids[0] + 1 > SEEK_GAP * len(ids):
            return False  # a few frames, or spread ones: PyAV's seeks
        if self.vr is None:
            try:
                self._open()
            except Exception:  # noqa: BLE001 - as `auto` always did: decord cannot open it, PyAV reads it
                self.vr, self.unusable = None, True
                return False
        return True

    def _ok(self, img: np.ndarray | None) -> bool:
        return img is not None and img.shape == (*self.hw, 3) and img.dtype == np.uint8

    def read(self, targets: np.ndarray) -> FrameRows:
        """Frames ``targets`` (sorted unique indices); shape-checked, per-index then PyAV fallback.
        ``get_batch`` runs on chunks of ``BATCH`` frames, each copied into the rows at once."""
        ids = [int(t) for t in targets]
        out = FrameRows(np.asarray(ids, np.int64))
        if not ids:
            return out
        if not self._serves(ids):
            return self.fallback.read(np.asarray(ids, np.int64), out)
        for lo in range(0, len(ids), BATCH):
            self._read_chunk(ids[lo : lo + BATCH], out)
        rest = np.asarray([i for i in ids if i not in out], np.int64)
        if rest.size:
            self.fell_back += int(rest.size)
            self.fallback.read(rest, out)  # PyAV: already in display orientation
        return out

    def _read_chunk(self, ids: list[int], out: FrameRows) -> None:
        turn = (lambda img: np.rot90(img, k=self.k_ccw)) if self.k_ccw else (lambda img: img)  # noqa: E731  display orientation
        batch = None
        try:
            batch = self.vr.get_batch(ids).asnumpy()  # (n, H, W, 3)
        except Exception:  # noqa: BLE001 - decord raises plain DECORDError / RuntimeError
            self.on_warning(f"decord get_batch failed on frames {ids[0]}..{ids[-1]}; read them one by one")
        errors = self._errors()
        if errors:  # decord returns what it made of damaged data: PyAV re-reads and reports each frame
            self.on_warning(f"decord's FFmpeg reported {len(errors)} error(s) on frames {ids[0]}..{ids[-1]} "
                            f"(first: {errors[0]}); read them with PyAV")
            return
        if batch is not None and batch.shape == (len(ids), *self.hw, 3):
            for i, img in zip(ids, batch):
                out.put(i, turn(img))
            return
        for i in ids:
            try:
                img = self.vr[i].asnumpy()
            except Exception:  # noqa: BLE001
                img = None
            if self._ok(img) and not self._errors():
                out.put(i, turn(img))

    def _errors(self) -> list[str]:
        """Error lines decord's FFmpeg logged since the last call (captured instead of printed)."""
        return self.log.drain() if self.log is not None else []

    def keyframes(self, path: str):
        return self.fallback.keyframes(path)

    def close(self) -> None:
        self.vr = None
        self.fallback.close()
