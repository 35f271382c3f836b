"""Open a video with PyAV, turn every failure into a typed :mod:`vidsift.frames.errors` error, and
build the frame index both backends share.

The index is one cheap demux pass (no decoding): the pts of every video packet, sorted into
presentation order. Frame ``i`` of a video is the ``i``-th smallest pts, in PyAV and in decord
alike, and its time is ``(pts - start) * time_base`` seconds, so sampling works by real
presentation time even when the header lies about the frame rate (VFR) or the frame count
(MPEG-TS, webm, a truncated download).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from .errors import (
    DamagedVideoError, EmptyFileError, NoVideoStreamError, NotAFileError, NotAVideoError, TooLargeError,
    UnreadableStreamError, UnsupportedCodecError, VideoError, VideoNotFoundError,
)
from .types import VideoInfo

DEFAULT_MAX_PIXELS = 8192 * 4320  # one 8K frame; larger frames are rejected before decoding
NOT_VIDEO_FORMATS = {"tty", "txt", "lrc", "srt", "ass", "webvtt", "subviewer", "jacosub", "mpl2", "sami"}
LIVE_SCHEMES = {"rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp", "v4l2"}
OPEN_OPTIONS = {"probesize": "5000000", "analyzeduration": "5000000"}


@dataclass
class FrameIndex:
    """pts of every frame in presentation order (stream time base) and which are keyframes."""

    pts: np.ndarray  # (N,) int64, sorted
    keyframe: np.ndarray  # (N,) bool
    time_base: Fraction
    start_pts: int

    def __len__(self) -> int:
        return int(self.pts.shape[0])

    @property
    def seconds(self) -> np.ndarray:  # (N,) float64
        return (self.pts - self.start_pts).astype(np.float64) * float(self.time_base)

    def index_of(self, pts: int) -> int:
        """Index of the frame with this pts (nearest when it is not in the index)."""
        i = int(np.searchsorted(self.pts, pts))
        if i >= len(self.pts):
            return len(self.pts) - 1
        if i > 0 and self.pts[i] != pts and abs(self.pts[i - 1] - pts) < abs(self.pts[i] - pts):
            return i - 1
        return i

    def __post_init__(self) -> None:
        self._keys = np.flatnonzero(self.keyframe)  # (K,) indices of keyframes, sorted

    def keyframe_before(self, i: int) -> int:
        """Index of the last keyframe at or before frame ``i`` (0 if none)."""
        k = int(np.searchsorted(self._keys, i, side="right")) - 1
        return int(self._keys[k]) if k >= 0 else 0

    def next_keyframe_after(self, i: int) -> int:
        """Index of the first keyframe after frame ``i`` (len if none)."""
        k = int(np.searchsorted(self._keys, i, side="right"))
        return int(self._keys[k]) if k < len(self._keys) else len(self)


def check_path(source: str | os.PathLike) -> str:
    """Typed errors for paths that are not readable files; URLs pass through unchanged."""
    path = os.fspath(source)
    if "://" in path:
        scheme = path.split("://", 1)[0].lower()
        if scheme in LIVE_SCHEMES:
            raise UnreadableStreamError(path, f"{scheme}:// is a live source: open it with vidsift.stream, "
                                              "not open_video (which needs a finite file)")
        return path
    if not os.path.exists(path):
        raise VideoNotFoundError(path, "no such file")
    if os.path.isdir(path):
        raise NotAFileError(path, "is a directory, not a video file")
    if not os.path.isfile(path):
        raise NotAFileError(path, "is not a regular file (device, FIFO or socket); use vidsift.stream for live sources")
    if os.path.getsize(path) == 0:
        raise EmptyFileError(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise UnreadableStreamError(path, "permission denied")
    return path


def _looks_like_mp4(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[4:8] in (b"ftyp", b"mdat", b"wide", b"free")


def open_container(path: str):
    """``av.open`` with typed errors; returns the container (caller closes it)."""
    try:
        container = av.open(path, "r", options=OPEN_OPTIONS, timeout=10.0 if "://" in path else None)
    except FileNotFoundError:
        raise VideoNotFoundError(path, "no such file") from None
    except PermissionError:
        raise UnreadableStreamError(path, "permission denied") from None
    except IsADirectoryError:
        raise NotAFileError(path, "is a directory, not a video file") from None
    except av.FFmpegError as err:
        if "://" not in path and _looks_like_mp4(path):
            raise DamagedVideoError(path, "truncated or damaged mp4: its index (moov atom) is missing") from None
        reason = getattr(err, "strerror", None) or str(err)
        raise NotAVideoError(path, f"not a video file ({reason.strip().lower()})") from None
    except OSError as err:
        raise UnreadableStreamError(path, f"cannot read file ({err.strerror or err})") from None
    if container.format.name in NOT_VIDEO_FORMATS:
        container.close()
        raise NotAVideoError(path, f"not a video file (looks like {container.format.name})")
    return container


def video_stream(container, path: str):
    """The first video stream, or a typed error saying what the file holds instead."""
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not streams and any(s.type == "video" for s in container.streams):  # FFmpeg knows no such codec
        raise UnsupportedCodecError(path, "unknown video codec: no decoder for it in this FFmpeg build")
    if not streams:
        others = [f"{s.type}: {s.codec_context.name if s.codec_context else '?'}" for s in container.streams]
        what = ", ".join(others) if others else "no streams at all"
        raise NoVideoStreamError(path, f"no video stream ({what})")
    stream = streams[0]
    if stream.codec_context.name in ("ansi", "bintext", "xbin", "idf", "tty"):
        raise NotAVideoError(path, "not a video file (looks like text)")
    return stream


def check_codec(stream, path: str) -> str:
    """The codec's canonical name (``h264``, ``av1``), or UnsupportedCodecError when nothing decodes it."""
    cc = stream.codec_context
    name = cc.name if cc else None
    if not name:
        raise UnsupportedCodecError(path, "unknown video codec: no decoder for it in this FFmpeg build")
    try:
        decoder = av.codec.Codec(name, "r")
    except Exception:  # noqa: BLE001 - any failure means: no decoder
        raise UnsupportedCodecError(path, f"no decoder for video codec {name!r} in this FFmpeg build") from None
    return getattr(decoder, "canonical_name", None) or name


def check_pixels(width: int, height: int, max_pixels: int | None, path: str, *, downscale: bool) -> None:
    if max_pixels is None or downscale or width * height <= max_pixels:
        return
    raise TooLargeError(
        path, f"{width}x{height} frames ({width * height / 1e6:.1f} MP) exceed max_pixels={max_pixels} "
        f"({max_pixels / 1e6:.1f} MP); raise max_pixels or pass downscale=True"
    )


def scan_index(container, stream, path: str) -> FrameIndex:
    """Demux every video packet (no decoding) and sort their pts into presentation order."""
    pts, keys = [], []
    dts_fallback = 0
    try:
        container.seek(0, backward=True, any_frame=False, stream=stream) if container.streams.video else None
    except av.FFmpegError:
        pass
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            p = packet.pts if packet.pts is not None else packet.dts
            if p is None:
                p = dts_fallback
            dts_fallback = p + 1
            pts.append(p)
            keys.append(bool(packet.is_keyframe))
    except av.FFmpegError:
        pass  # a damaged tail: keep what was indexed, decoding reports the rest
    if not pts:
        raise UnreadableStreamError(path, "video stream holds no packets")
    order = np.argsort(np.asarray(pts, np.int64), kind="stable")
    p = np.asarray(pts, np.int64)[order]
    k = np.asarray(keys, bool)[order]
    p, uniq = np.unique(p, return_index=True)  # duplicated pts (broken muxers): keep one
    k = k[uniq]
    if not k.any():
        k[0] = True
    tb = stream.time_base or Fraction(1, 90000)
    start = stream.start_time if stream.start_time is not None else int(p[0])
    start = min(int(start), int(p[0]))
    return FrameIndex(pts=p, keyframe=k, time_base=Fraction(tb), start_pts=start)


def build_info(path: str, container, stream, index: FrameIndex, *, width: int, height: int, rotation_cw: int,
               codec: str, backend: str) -> tuple[VideoInfo, list[str]]:
    """VideoInfo from header + index; returns also warnings about a header that disagrees with the file."""
    warnings: list[str] = []
    tb = float(stream.time_base) if stream.time_base else 0.0
    n_scan = len(index)
    secs = index.seconds
    frame_dur = float(np.median(np.diff(secs))) if n_scan > 1 else 0.0
    scanned_duration = float(secs[-1] + frame_dur) if n_scan else 0.0
    header_frames = int(stream.frames or 0)
    duration, stream_duration = None, None
    if stream.duration and tb:
        stream_duration = float(stream.duration * tb)
    elif stream.metadata.get("DURATION"):  # matroska: per-stream "HH:MM:SS.nnnnnnnnn" tag
        try:
            h, m, s = stream.metadata["DURATION"].split(":")
            stream_duration = int(h) * 3600 + int(m) * 60 + float(s)
        except ValueError:
            stream_duration = None
    if stream_duration:
        duration = stream_duration
    elif container.duration:
        duration = container.duration / 1e6
    if not duration or duration <= 0:
        duration = scanned_duration
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else (n_scan / scanned_duration if scanned_duration else 0.0)
    measured = (n_scan - 1) / (secs[-1] - secs[0]) if n_scan > 1 and secs[-1] > secs[0] else None
    if header_frames > n_scan:
        n_frames, scanned = header_frames, False
        warnings.append(f"header says {header_frames} frames but only {n_scan} are in the file "
                        f"({header_frames - n_scan} missing: truncated or damaged)")
    else:
        n_frames, scanned = n_scan, header_frames != n_scan
        if header_frames and header_frames != n_scan:
            warnings.append(f"header says {header_frames} frames, the file holds {n_scan}")
    diffs = np.diff(secs)
    regular = float(np.mean(np.abs(diffs - frame_dur) < 0.1 * frame_dur)) if n_scan > 1 and frame_dur else 0.0
    # constant frame rate: the declared rate matches the pts and >= 90% of the intervals are one frame long
    # (a few holes = damage; many irregular intervals = variable frame rate, where gaps are legitimate)
    cfr_like = bool(frame_dur and fps and abs(frame_dur * fps - 1.0) < 0.05 and regular >= 0.9)
    if not header_frames and stream_duration and cfr_like and n_scan > 1:
        promised = int(round(stream_duration * fps))
        if n_scan < promised - max(2, int(0.02 * promised)):  # a cut-off tail or a hole in the middle
            n_frames = promised
            where = (f"frames end at {scanned_duration:.2f}s" if stream_duration > scanned_duration + 2 * frame_dur
                     else "frames are missing inside it")
            warnings.append(f"header says {stream_duration:.2f}s at {fps:g} fps = {promised} frames but the file "
                            f"holds {n_scan}, {where} ({promised - n_scan} missing: truncated or damaged)")
    if scanned_duration > duration * 1.05 + 0.1:
        duration = scanned_duration
    info = VideoInfo(
        path=path, duration_s=round(float(duration), 6), fps=round(fps, 6),
        measured_fps=round(float(measured), 6) if measured else None, n_frames=n_frames,
        n_frames_scanned=scanned, width=width, height=height, rotation=rotation_cw, codec=codec, backend=backend,
    )
    return info, warnings


def first_frame(container, stream, path: str):
    """Decode the first frame (validates the decoder, gives rotation and true coded size)."""
    try:
        container.seek(0, backward=True, any_frame=False, stream=stream)
    except av.FFmpegError:
        pass
    errors = []
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except av.FFmpegError as err:
                errors.append(str(err))
                if len(errors) > 50:
                    break
    except av.FFmpegError as err:
        errors.append(str(err))
    detail = f": {errors[0]}" if errors else ""
    raise UnreadableStreamError(path, f"no frame of the video stream could be decoded{detail}")


__all__ = ["DEFAULT_MAX_PIXELS", "FrameIndex", "VideoError", "build_info", "check_codec", "check_path",
           "check_pixels", "first_frame", "open_container", "scan_index", "video_stream"]
