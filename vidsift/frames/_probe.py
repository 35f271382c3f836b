"""Open a video with PyAV, turn every failure into a typed :mod:`vidsift.frames.errors` error, and
build the frame index both backends share.

The index is one cheap demux pass (no decoding): the pts of every video packet, sorted into
presentation order. Frame ``i`` of a video is the ``i``-th smallest pts, in PyAV and in decord
alike, and its time is ``(pts - start) * time_base`` seconds, so sampling works by real
presentation time even when the header lies about the frame rate (VFR) or the frame count
(MPEG-TS, webm, a truncated download).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from .errors import (
    DamagedVideoError, EmptyFileError, NoVideoStreamError, NotAFileError, NotAVideoError, TooLargeError,
    UnreadableStreamError, UnsupportedCodecError, VideoError, VideoNotFoundError,
)
from .types import LIVE_SCHEMES, PLAYLIST_FORMATS, VideoInfo
from .. import threads

DEFAULT_MAX_PIXELS = 8192 * 4320  # one 8K frame; larger frames are rejected before decoding
NOT_VIDEO_FORMATS = {"tty", "txt", "lrc", "srt", "ass", "webvtt", "subviewer", "jacosub", "mpl2", "sami"}
OPEN_OPTIONS = {"probesize": "5000000", "analyzeduration": "5000000"}
OPEN_KWARGS = {"metadata_errors": "replace"}  # av.open: tags that are not UTF-8 (a fuzzed mp4 brand) are not an error
# what PyAV raises while opening or demuxing a hostile file: its own errors, and IndexError /
# UnicodeDecodeError / OverflowError from its Python wrappers (seen in fuzzed files); all mean "damaged"
PYAV_ERRORS = (av.FFmpegError, IndexError, ValueError, OverflowError)
# demuxers that read other files or URLs named inside the input: refused for file inputs (a
# renamed ffconcat script or HLS playlist would make vidsift read whatever it names)
FILE_ONLY = {"protocol_whitelist": "file"}  # a local file never reaches the network through its demuxer


def slice_threads(stream) -> None:
    """Decode ``stream`` with slice threads only (frame threads delay errors and hide their logs),
    as many as the thread policy allows (`vidsift.threads.current`): one on a 2-CPU machine, where
    a pool of slice threads cost 13% of the decoding time of single-slice H.264 (measured on a
    30-min 640x360 file) and competes with the model's threads."""
    stream.thread_type = "SLICE"
    stream.codec_context.thread_count = threads.current()


@dataclass
class FrameIndex:
    """pts of every frame in presentation order (stream time base) and which are keyframes.

    ``sequential``: the container's timestamps cannot identify frames (repeated, out of order,
    missing, or a discontinuity was bridged): frame ``i`` is the ``i``-th frame the decoder
    outputs from the start of the file, decoding never seeks, and ``pts`` are the corrected
    presentation times (or frame numbers at the declared rate when there are none).
    """

    pts: np.ndarray  # (N,) int64, sorted
    keyframe: np.ndarray  # (N,) bool
    time_base: Fraction
    start_pts: int
    sequential: bool = False
    notes: tuple[str, ...] = ()  # what was corrected, one line each

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


# errors of reaching a URL's server (refused, unreachable, timed out; EIO: the name did not resolve)
CONNECT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH,
                            errno.ETIMEDOUT, errno.EIO})


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
        if os.path.islink(path):  # the link exists, what it names does not
            raise VideoNotFoundError(path, "a symlink that leads nowhere (dangling or a loop)")
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


def _has_moov(path: str) -> bool:
    """Whether a top-level ``moov`` box header is in the file (walks the box sizes, reads no payload)."""
    try:
        size, at = os.path.getsize(path), 0
        with open(path, "rb") as fh:
            while at + 8 <= size:
                fh.seek(at)
                head = fh.read(16)
                n = int.from_bytes(head[:4], "big")
                if head[4:8] == b"moov":
                    return True
                n = int.from_bytes(head[8:16], "big") if n == 1 and len(head) == 16 else n
                if n < 8:
                    return False
                at += n
    except OSError:
        return False
    return False


def open_container(path: str):
    """``av.open`` with typed errors; returns the container (caller closes it)."""
    try:
        remote = "://" in path
        options = OPEN_OPTIONS if remote else {**OPEN_OPTIONS, **FILE_ONLY}
        container = av.open(path, "r", options=options, timeout=10.0 if remote else None, **OPEN_KWARGS)
    except FileNotFoundError:
        raise VideoNotFoundError(path, "no such file") from None
    except PermissionError:
        if not remote and os.access(path, os.R_OK):  # refused by FILE_ONLY: it names a URL to read
            raise NotAVideoError(path, "not a video file: it names a URL or other protocol to read (a playlist or "
                                       "script?); vidsift does not follow those for file inputs") from None
        raise UnreadableStreamError(path, "permission denied") from None
    except IsADirectoryError:
        raise NotAFileError(path, "is a directory, not a video file") from None
    except av.FFmpegError as err:
        if "://" not in path and _looks_like_mp4(path):
            if _has_moov(path):
                raise DamagedVideoError(path, "damaged mp4: its index (moov atom) is there but cannot be read") from None
            raise DamagedVideoError(path, "truncated or damaged mp4: its index (moov atom) is missing") from None
        reason = getattr(err, "strerror", None) or str(err)
        if remote and getattr(err, "errno", None) in CONNECT_ERRNOS:  # the server, not the file
            raise UnreadableStreamError(path, f"cannot connect ({reason.strip().lower()})") from None
        raise NotAVideoError(path, f"not a video file ({reason.strip().lower()})") from None
    except OSError as err:
        raise UnreadableStreamError(path, f"cannot read file ({err.strerror or err})") from None
    except Exception as err:  # noqa: BLE001 - PyAV's wrappers on hostile bytes (IndexError, ...): still one line
        raise NotAVideoError(path, f"not a readable video file ({type(err).__name__}: {one_line(err)})") from None
    if container.format.name in NOT_VIDEO_FORMATS:
        container.close()
        raise NotAVideoError(path, f"not a video file (looks like {container.format.name})")
    if not remote and set(container.format.name.split(",")) & PLAYLIST_FORMATS:
        container.close()
        raise NotAVideoError(path, f"not a video file but a {container.format.name} playlist/script; "
                                   "vidsift does not follow what a file names (pass the video itself)")
    return container


def one_line(err: BaseException, limit: int = 160) -> str:
    """An exception's message as one short line (for a reason inside ``<path>: <reason>``)."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        path, f"{width}x{height} frames ({width * height:,} pixels) exceed max_pixels={max_pixels} (the most a frame "
        "may have to be decoded at full size); `vidsift plan` decodes it downscaled (Python: "
        "open_video(..., downscale=True) or a larger max_pixels)"
    )


def scan_file(path: str, stream_index: int) -> FrameIndex:
    """:func:`scan_index` on a container of its own, from the very start of the file (or the
    container's own sample table when it is complete: :func:`table_index`)."""
    for use_table in (True, False):  # the table check demuxes a few packets: the scan gets a fresh container
        container = open_container(path)
        try:
            stream = container.streams[stream_index]
            index = table_index(container, stream, path) if use_table else scan_index(container, stream, path)
        finally:
            container.close()
        if index is not None:
            return index


TABLE_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2"}  # a sample table lists every frame: time, size, offset, key flag
TABLE_CHECK_PACKETS = 64  # demuxed packets compared with the table before it is trusted
TABLE_CHUNK = 4096  # table entries turned into Python objects at once


def table_index(container, stream, path: str) -> FrameIndex | None:
    """The index read from an mp4/mov sample table instead of a demux pass over the whole file (a
    30-minute file: 45,000 packets, seconds of CPU), or None (then :func:`scan_index` runs). Used
    only when the table is plainly whole and needs no reordering: one entry per frame the header
    counts, every entry inside the file (a truncated file fails this), times strictly increasing,
    no frame reordering (``has_b_frames == 0``, so pts == dts), and the first packets a demuxer
    reads carry exactly the table's times and key flags. Nothing is decoded."""
    if container.format.name not in TABLE_FORMATS or stream.codec_context.has_b_frames:
        return None
    n = len(stream.index_entries)
    if not n or n != int(stream.frames or 0):
        return None
    rows = np.empty((n, 3), np.int64)  # (N, 3) time, end offset, key flag
    # slices of the table (5x faster than iterating it), TABLE_CHUNK entries at a time: the whole
    # table as Python objects held 8 MB at once for 45,000 frames
    for a in range(0, n, TABLE_CHUNK):
        entries = stream.index_entries[a:min(n, a + TABLE_CHUNK)]
        rows[a:a + len(entries)] = [(e.timestamp, e.pos + e.size, e.is_keyframe) for e in entries]
    ts, keys = rows[:, 0], rows[:, 2].astype(bool)
    if (n > 1 and (np.diff(ts) <= 0).any()) or rows[:, 1].max() > os.path.getsize(path) or not keys[0]:
        return None
    try:
        for i, packet in zip(range(min(n, TABLE_CHECK_PACKETS)), container.demux(stream)):
            if packet.pts != ts[i] or bool(packet.is_keyframe) != keys[i]:
                return None
    except PYAV_ERRORS:
        return None
    # strictly increasing pts: already in presentation order, nothing repeated or missing (what
    # `_order_frames` would find), so the index is the table itself
    start = int(ts[0]) if stream.start_time is None else min(int(stream.start_time), int(ts[0]))
    return FrameIndex(pts=ts.copy(), keyframe=keys, time_base=Fraction(stream.time_base or Fraction(1, 90000)),
                      start_pts=start)


def scan_index(container, stream, path: str) -> FrameIndex:
    """Demux every video packet (no decoding) of a freshly opened container and sort their pts into
    presentation order, correcting what FFmpeg's own decoding would survive: timestamp jumps in
    formats with discontinuities (MPEG-TS, FLV: more than ``TS_JUMP_S`` between packets) are
    bridged, and timestamps that are repeated, missing or out of order beyond B-frame reordering
    give way to decode order (``FrameIndex.sequential``)."""
    pts: list[int | None] = []
    dts: list[int | None] = []
    keys: list[bool] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            pts.append(packet.pts)
            dts.append(packet.dts)
            keys.append(bool(packet.is_keyframe))
    except PYAV_ERRORS:
        pass  # a damaged tail: keep what was indexed, decoding reports the rest
    if not pts:
        raise UnreadableStreamError(path, "video stream holds no packets")
    tb = Fraction(stream.time_base or Fraction(1, 90000))
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return _order_frames(pts, dts, np.asarray(keys, bool), tb, float(rate) if rate else 0.0, container.format.name,
                         stream.start_time)


TS_JUMP_S = 10.0  # FFmpeg's dts_delta_threshold: a bigger jump in MPEG-TS / FLV is a discontinuity
DISCONTINUOUS_FORMATS = {"mpegts", "flv", "mpeg", "mpegvideo", "live_flv"}
REORDER_DEPTH = 16  # frames a B-frame decoder may hold back: further out of order means broken timestamps


def _order_frames(pts: list, dts: list, keys: np.ndarray, tb: Fraction, fps: float, fmt: str,
                  start_time: int | None) -> FrameIndex:
    n = len(pts)
    notes: list[str] = []
    p = np.asarray([x if x is not None else (d if d is not None else np.iinfo(np.int64).min)
                    for x, d in zip(pts, dts)], np.int64)  # (N,) decode order
    known = p != np.iinfo(np.int64).min
    sequential = not known.all()
    if known.all() and fmt in DISCONTINUOUS_FORMATS and n > 1:
        d = np.asarray([x if x is not None else y for x, y in zip(dts, pts)], np.int64)
        steps = np.diff(d)
        step = int(_median(steps[steps > 0])) if (steps > 0).any() else 1
        jumps = np.flatnonzero(np.abs(steps) > TS_JUMP_S / float(tb))
        for j in jumps:  # shift everything after the jump so time goes on one frame later
            p[j + 1:] += d[j] + step - d[j + 1]
            d[j + 1:] += d[j] + step - d[j + 1]
        if jumps.size:
            sequential = True
            notes.append(f"timestamps jump {jumps.size} time(s) (discontinuity or wrap): times were made continuous")
    if not sequential:
        rank = np.empty(n, np.int64)
        rank[np.argsort(p, kind="stable")] = np.arange(n)
        if np.unique(p).size < n or np.abs(rank - np.arange(n)).max() > REORDER_DEPTH:
            sequential = True
    if sequential and not notes:
        notes.append("timestamps are repeated, missing or out of order: frames are numbered in decode order, "
                     f"timed at {fps or 25:g} fps")
        tb = Fraction(1, 1000)
        p = np.round(np.arange(n) * 1000.0 / (fps or 25.0)).astype(np.int64)
    order = np.argsort(p, kind="stable")
    p, k = p[order], keys[order]
    start = int(p[0])
    if not sequential and start_time is not None:
        start = min(int(start_time), start)  # an edit list may start the stream before its first frame
    return FrameIndex(pts=p, keyframe=k if k.any() else np.r_[True, k[1:]], time_base=tb, start_pts=start,
                      sequential=sequential, notes=tuple(notes))


def _median(x: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D array without its NaN check, whose first call imports
    ``numpy.ma``: 16 ms of every fresh process's first open (a sample of a 30-minute file takes 0.1 s)."""
    k = x.size // 2
    if x.size % 2:
        return float(np.partition(x, k)[k])
    part = np.partition(x, [k - 1, k])
    return float((part[k - 1] + part[k]) / 2)


MAX_CLAIM_RATIO = 100  # a header may promise at most this many times the frames (or time) the file holds


def build_info(path: str, container, stream, index: FrameIndex, *, width: int, height: int, rotation_cw: int,
               codec: str, backend: str) -> tuple[VideoInfo, list[str], int]:
    """VideoInfo from header + index; returns also warnings about a header that disagrees with the file
    and how many frames the file should hold (``n_frames`` plus holes inside it).

    Counts and durations read from a header are hints, bounded by what the file holds: a claim
    above ``MAX_CLAIM_RATIO`` times the scanned content is ignored (with a warning), so no later
    allocation or loop scales with it. A file with regular timestamps reports every frame the
    timestamps skip (a hole inside) and every frame its header's duration promises past the last
    one (a cut-off tail, also for FLV whose only duration is the container's)."""
    warnings: list[str] = []
    tb = float(stream.time_base) if stream.time_base else 0.0
    n_scan = len(index)
    secs = index.seconds
    diffs = np.diff(secs)
    frame_dur = _median(diffs) if n_scan > 1 else 0.0
    scanned_duration = float(secs[-1] + frame_dur) if n_scan else 0.0
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else (n_scan / scanned_duration if scanned_duration else 0.0)
    limit_s = (scanned_duration or 1.0) * MAX_CLAIM_RATIO

    def plausible_s(value: float | None, what: str) -> float | None:
        if value is not None and value > limit_s:
            warnings.append(f"{what} claims {value:.6g} s but the frames in the file span {scanned_duration:.2f} s: "
                            "the claim is ignored")
            return None
        return value

    header_frames = int(stream.frames or 0)
    if header_frames > max(n_scan, 1) * MAX_CLAIM_RATIO:
        warnings.append(f"header claims {header_frames} frames but the file holds {n_scan}: the claim is ignored")
        header_frames = 0
    stream_duration = None
    if stream.duration and tb:
        stream_duration = float(stream.duration * tb)
    elif stream.metadata.get("DURATION"):  # matroska: per-stream "HH:MM:SS.nnnnnnnnn" tag
        try:
            h, m, sec = stream.metadata["DURATION"].split(":")
            stream_duration = int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            stream_duration = None
    stream_duration = plausible_s(stream_duration, "stream header")
    container_duration = container.duration / 1e6 if container.duration and container.duration > 0 else None
    container_duration = plausible_s(container_duration, "container header") if stream_duration is None else None
    duration = stream_duration or container_duration
    if not duration or duration <= 0:
        duration = scanned_duration
    measured = (n_scan - 1) / (secs[-1] - secs[0]) if n_scan > 1 and secs[-1] > secs[0] else None
    if header_frames > n_scan:
        n_frames, scanned = header_frames, False
        warnings.append(f"header says {header_frames} frames but only {n_scan} are in the file "
                        f"({header_frames - n_scan} missing: truncated or damaged)")
    else:
        n_frames, scanned = n_scan, header_frames != n_scan
        if header_frames and header_frames != n_scan:
            warnings.append(f"header says {header_frames} frames, the file holds {n_scan}")
    regular = float(np.mean(np.abs(diffs - frame_dur) < 0.1 * frame_dur)) if n_scan > 1 and frame_dur else 0.0
    # constant frame rate: the declared rate matches the pts and >= 90% of the intervals are one frame long
    # (a few holes = damage; many irregular intervals = variable frame rate, where gaps are legitimate)
    cfr_like = bool(frame_dur and fps and abs(frame_dur * fps - 1.0) < 0.05 and regular >= 0.9)
    holes = 0
    if cfr_like and not index.sequential:
        gaps = diffs[diffs > 1.5 * frame_dur]
        holes = int(np.round(gaps / frame_dur).sum()) - gaps.size
        if holes > n_scan * MAX_CLAIM_RATIO:
            warnings.append(f"timestamps jump by {gaps.max():.6g} s inside the file: not counted as missing frames")
            holes = 0
        elif holes:
            first = float(secs[1:][diffs > 1.5 * frame_dur][0])
            warnings.append(f"timestamps skip {holes} frame(s) inside the file (first gap ends at {first:.2f}s): "
                            f"{holes} missing: damaged")
    promised_s = stream_duration or container_duration if len(container.streams) == 1 or stream_duration else None
    if not header_frames and promised_s and cfr_like and n_scan > 1:
        tail = int(round((promised_s - scanned_duration) / frame_dur))
        if tail > 0:
            n_frames = n_scan + tail
            warnings.append(f"header says {promised_s:.2f}s at {fps:g} fps but the frames end at "
                            f"{scanned_duration:.2f}s ({tail} missing: truncated or damaged)")
    if scanned_duration > duration * 1.05 + 0.1:
        duration = scanned_duration
    info = VideoInfo(
        path=path, duration_s=round(float(duration), 6), fps=round(fps, 6),
        measured_fps=round(float(measured), 6) if measured else None, n_frames=n_frames,
        n_frames_scanned=scanned, width=width, height=height, rotation=rotation_cw, codec=codec, backend=backend,
    )
    return info, warnings, (max(n_frames, n_scan + holes) if header_frames > n_scan else n_frames + holes)


def first_frame(container, stream, path: str):
    """Decode the first frame of a freshly opened container (validates the decoder, gives rotation and
    true coded size). No seek: frames before timestamp 0 count too."""
    errors = []
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except PYAV_ERRORS as err:
                errors.append(one_line(err))
                if len(errors) > 50:
                    break
    except PYAV_ERRORS as err:
        errors.append(one_line(err))
    detail = f": {errors[0]}" if errors else ""
    raise UnreadableStreamError(path, f"no frame of the video stream could be decoded{detail}")


__all__ = ["DEFAULT_MAX_PIXELS", "FrameIndex", "VideoError", "build_info", "check_codec", "check_path",
           "check_pixels", "first_frame", "open_container", "scan_file", "scan_index", "video_stream"]
