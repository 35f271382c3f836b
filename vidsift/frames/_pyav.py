"""PyAV decoding backend (the reference): frames by index via keyframe seeks, errors captured per packet.

The decoder keeps its position between calls, so consecutive reads (``iter_chunks``) continue
decoding instead of seeking back. FFmpeg's own error messages (concealed macroblocks, broken NAL
units) are captured per packet: the frames from such a packet to the next keyframe are marked
suspect in the :class:`~vidsift.frames.types.DecodeReport`.
"""

from __future__ import annotations

from typing import Callable, Iterator

import av
import av.logging
import numpy as np
from av.video.reformatter import VideoReformatter

from ._probe import OPEN_KWARGS, OPEN_OPTIONS, PYAV_ERRORS, FrameIndex, slice_threads

SEEK_GAP = 8  # seek instead of decoding through when this many frames would be skipped


def to_rgb(frame, k_ccw: int, out_size: tuple[int, int] | None, *, reformatter=None) -> np.ndarray:
    """Decoded frame -> uint8 (H, W, 3) RGB in display orientation (rotated ``k_ccw`` x 90 degrees CCW);
    ``out_size`` (W, H), stored orientation: scaled to it (None: the frame's own size). Pass the
    caller's ``reformatter`` (a ``VideoReformatter`` kept across frames): it keeps its swscale
    context, and the same pixels cost 0.1 ms a 640x360 frame against 3 ms for ``to_ndarray(format=)``
    or 0.9 ms for ``frame.reformat()``, which set one up per call (PyAV 18, measured)."""
    if reformatter is None:
        reformatter = VideoReformatter()
    width, height = out_size if out_size is not None else (None, None)
    img = reformatter.reformat(frame, format="rgb24", width=width, height=height,
                               interpolation="AREA" if out_size is not None else None).to_ndarray()
    if k_ccw:
        img = np.ascontiguousarray(np.rot90(img, k=k_ccw))
    return img


def turns_to_display(img: np.ndarray, display: np.ndarray, *, who: str) -> int:
    """How many 90-degree CCW turns take ``who``'s frame 0 (decord, torchcodec) to PyAV's display
    frame 0. Some builds apply the display matrix themselves and some do not; a mismatch means:
    do not use it."""
    if img.shape == display.shape and np.array_equal(img, display):
        return 0  # the usual case, at a tenth of the cost of the four differences below
    best, best_k = None, None
    for k in range(4):
        turned = np.rot90(img, k=k)
        if turned.shape != display.shape:
            continue
        err = float(np.abs(turned.astype(np.int16) - display.astype(np.int16)).mean())
        if best is None or err < best:
            best, best_k = err, k
    if best is None or best > 12.0:
        raise RuntimeError(f"{who}'s frames do not match PyAV's (shape or orientation)")
    return int(best_k)


class FrameRows:
    """Decoded frames written straight into one ``(n, H, W, 3)`` array as they decode, row ``j`` for
    ``targets[j]`` (allocated at the first frame: its shape is the decoder's), so a read holds each
    frame once. Reads like the dict it replaces: ``i in rows``, ``rows[i]``, iteration over the
    decoded indices."""

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = np.asarray(targets, np.int64)
        self.row = {int(t): j for j, t in enumerate(self.targets)}
        self.ok = np.zeros(len(self.targets), bool)
        self.data: np.ndarray | None = None

    def put(self, index: int, img: np.ndarray) -> None:
        if self.data is None:
            self.data = np.empty((len(self.targets), *img.shape), img.dtype)
        j = self.row[index]
        self.data[j] = img  # a frame of another shape raises, as stacking it would
        self.ok[j] = True

    def __contains__(self, index: object) -> bool:
        j = self.row.get(index)  # type: ignore[arg-type]
        return j is not None and bool(self.ok[j])

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self:
            raise KeyError(index)
        return self.data[self.row[index]]  # type: ignore[index]

    def __iter__(self) -> Iterator[int]:
        return (int(t) for t in self.targets[self.ok])

    def __len__(self) -> int:
        return int(self.ok.sum())


class PyAVDecoder:
    """Decodes frames by presentation-order index from one open container."""

    name = "pyav"

    def __init__(self, path: str, container, stream, index: FrameIndex, *, k_ccw: int, size: tuple[int, int],
                 out_size: tuple[int, int] | None, on_error: Callable[[int, str], None], on_suspect: Callable[[int], None],
                 on_resize: Callable[[int, tuple[int, int]], None]) -> None:
        self.path, self.container, self.stream, self.index = path, container, stream, index
        self.stream_index = stream.index
        self.k_ccw, self.size, self.out_size = k_ccw, size, out_size  # (W, H) stored orientation: first frame's, output's
        self.on_error, self.on_suspect, self.on_resize = on_error, on_suspect, on_resize
        self._reformatter = VideoReformatter()
        self._gen: Iterator | None = None
        self._pending = None
        self._pos = -1  # index of the last frame the generator produced

    def _rgb(self, idx: int, frame) -> np.ndarray:
        """``to_rgb`` at the one size of this video: a frame of another size (the resolution changes
        mid-file: concatenated recordings, broadcast MPEG-TS) is scaled to it and reported."""
        if (frame.width, frame.height) != self.size:
            self.on_resize(idx, (frame.width, frame.height))
            return to_rgb(frame, self.k_ccw, self.out_size or self.size, reformatter=self._reformatter)
        return to_rgb(frame, self.k_ccw, self.out_size, reformatter=self._reformatter)

    # ------------------------------------------------------------------ positioning
    def _restart(self) -> None:
        """Reopen the container: the only exact way back to the first frame (MPEG-TS seeks are
        approximate), and the way back after :meth:`release`."""
        old = self.container
        self.container = av.open(self.path, "r", options=OPEN_OPTIONS, **OPEN_KWARGS)
        self.stream = self.container.streams[self.stream_index]
        slice_threads(self.stream)
        if old is not None:
            old.close()

    def release(self) -> None:
        """Close the container (its demuxer's index, its decoder's buffers) while another backend
        decodes; the next read reopens it."""
        self._gen, self._pending, self._pos = None, None, -1
        if self.container is not None:
            self.container.close()
            self.container = None

    def _seek(self, i: int, *, restart: bool = False) -> None:
        """Position the decoder so the next frames start at or before frame ``i`` (``restart``: reopen
        when ``i``'s keyframe is the first one, instead of trusting the demuxer's seek)."""
        self._gen = None
        kf = self.index.keyframe_before(i) if len(self.index) and not self.index.sequential else 0
        synced = kf == 0
        if synced or self.container is None:  # reopening is exact (frames before timestamp 0 included);
            self._restart()  # a seek to the start is not
        if not synced:
            try:
                self.container.seek(int(self.index.pts[kf]), backward=True, any_frame=False, stream=self.stream)
            except PYAV_ERRORS:
                self._restart()  # unseekable: from the beginning
                synced = True
        self._gen = self._frames(synced=synced)
        self._pending = None
        self._pos = -1

    def _frames(self, *, synced: bool = True) -> Iterator[tuple[int, object]]:
        """(index, frame) from the current position. After a seek (``synced=False``) everything before
        the first decoded keyframe is dropped: an approximate seek (MPEG-TS) may land on packets whose
        references are gone, and those errors are artefacts of seeking, not damage."""
        last = -1
        try:
            for packet in self.container.demux(self.stream):
                err = None
                with av.logging.Capture(local=False) as logs:
                    try:
                        frames = packet.decode()
                    except PYAV_ERRORS as e:
                        frames, err = [], (getattr(e, "strerror", None) or str(e))
                bad = [m for (lvl, _, m) in logs if lvl <= av.logging.ERROR]
                if not synced:
                    keep = [f for f in frames if f.key_frame]
                    if not keep:
                        continue
                    synced, frames = True, frames[frames.index(keep[0]):]
                    err, bad = None, []
                if err or bad:
                    guess = self._index_of(packet.pts, last)
                    # frames still in the reorder buffer may be hit too: suspect from the next output on
                    self.on_error(guess, (err or bad[0]).strip() or "decoder error", min(guess, last + 1))
                for frame in frames:
                    idx = self._index_of(frame.pts, last)
                    if getattr(frame, "is_corrupt", False):
                        self.on_suspect(idx)
                    last = idx
                    yield idx, frame
        except PYAV_ERRORS as e:  # the demuxer gave up (truncated / garbage tail): drain the decoder
            self.on_error(min(last + 1, len(self.index) - 1), f"demuxing stopped: {getattr(e, 'strerror', None) or e}")
            try:
                frames = self.stream.codec_context.decode(None)
            except PYAV_ERRORS:
                frames = []
            for frame in frames:
                idx = self._index_of(frame.pts, last)
                last = idx
                yield idx, frame

    def _index_of(self, pts: int | None, last: int) -> int:
        """Index of the frame with this pts; the one after ``last`` when the pts is unknown or the
        index numbers frames in decode order (``FrameIndex.sequential``)."""
        if pts is not None and not self.index.sequential:
            j = last + 1  # the usual case, checked first: a numpy search costs 2-3 us a frame
            if not (j < len(self.index) and self.index.pts[j] == pts):  # (pts are unique in such an index)
                j = int(np.searchsorted(self.index.pts, pts))
            if j < len(self.index) and self.index.pts[j] == pts:
                return j
        return last + 1

    # ------------------------------------------------------------------ reading
    def _next(self):
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        item = next(self._gen, None) if self._gen is not None else None
        if item is None:
            self._gen, self._pos = None, 1 << 62  # end of stream: any later target needs a seek
        return item

    def _seek_for(self, t: int) -> None:
        """Seek so that decoding resumes at or before frame ``t``; retries earlier keyframes on overshoot."""
        first = t
        for attempt in range(4):
            self._seek(first, restart=attempt == 3)
            item = next(self._gen, None)
            if (item is not None and item[0] <= t) or attempt == 3:  # nothing after a seek: it overshot too
                self._pending = item
                if item is None:
                    self._gen, self._pos = None, 1 << 62
                return
            kf = self.index.keyframe_before(first)  # overshoot: one keyframe earlier, finally reopen
            first = self.index.keyframe_before(max(kf - 1, 0)) if attempt < 2 else 0

    def read(self, targets: np.ndarray, out: FrameRows | None = None) -> FrameRows:
        """Decode frames ``targets`` (sorted unique indices < len(index)) into ``out`` (default: new
        rows for ``targets``); undecodable ones are left out."""
        out = FrameRows(targets) if out is None else out
        wanted = set(int(x) for x in targets)
        level = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)
        stray = av.logging.Capture(local=False)  # swallows demuxer logs; per-packet captures nest inside
        stray.__enter__()
        try:
            i = 0
            while i < len(targets):
                t = int(targets[i])
                if self._gen is None or t <= self._pos or self.index.keyframe_before(t) - self._pos > SEEK_GAP:
                    self._seek_for(t)
                while self._pos < t:
                    item = self._next()
                    if item is None:
                        break
                    idx, frame = item
                    self._pos = idx
                    if idx in wanted and idx not in out:
                        out.put(idx, self._rgb(idx, frame))
                i += 1
                while i < len(targets) and int(targets[i]) <= self._pos:
                    i += 1
        finally:
            stray.__exit__(None, None, None)
            av.logging.set_level(level)
        return out

    def keyframes(self, path: str) -> Iterator[tuple[int, np.ndarray]]:
        """Keyframe-only pass on a fresh container (``skip_frame="NONKEY"``, only key packets sent)."""
        container = av.open(path, "r", options=OPEN_OPTIONS, **OPEN_KWARGS)
        level = av.logging.get_level()
        av.logging.set_level(None)  # silent: errors surface as exceptions or missing keyframes
        try:
            stream = container.streams[self.stream_index]
            stream.codec_context.skip_frame = "NONKEY"
            slice_threads(stream)
            keys = iter(np.flatnonzero(self.index.keyframe))  # sequential index: the k-th keyframe out
            for packet in container.demux(stream):
                if packet.size and not packet.is_keyframe:
                    continue
                try:
                    frames = packet.decode()
                except PYAV_ERRORS as e:
                    self.on_error(self.index.index_of(packet.pts) if packet.pts is not None else 0, str(e))
                    continue
                for frame in frames:
                    if self.index.sequential:
                        i = next(keys, None)
                        if i is None:
                            return
                        yield int(i), self._rgb(int(i), frame)
                    elif frame.pts is not None:
                        i = self.index.index_of(frame.pts)
                        yield i, self._rgb(i, frame)
        except PYAV_ERRORS as e:
            self.on_error(len(self.index), f"demuxing stopped: {e}")
        finally:
            av.logging.set_level(level)
            container.close()

    def close(self) -> None:
        self.release()
