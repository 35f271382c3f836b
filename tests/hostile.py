"""Hostile video files for the decode tests, written deterministically with PyAV and byte surgery
(no binary fixtures): headers that lie, timestamps that start below zero, wrap, repeat or run out
of order, files cut short or holed in the middle.

Each ``make_*`` writes into the path it is given and returns it. :func:`straight_count` is the
ground truth: how many frames PyAV's demuxer + decoder produce reading the file straight through.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np

from videos import make_video, shapes_frame

TS_PACKET = 188
WRAP_33 = 1 << 33


def straight_count(path: str | Path) -> int:
    """Frames PyAV decodes reading the file straight through (no seeks), errors skipped."""
    n = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                try:
                    n += len(packet.decode())
                except av.FFmpegError:
                    pass
    except (av.FFmpegError, IndexError, OSError, UnicodeDecodeError):  # PyAV raises the last two on hostile metadata
        pass
    return n


def make_lying_avi(path: str | Path, *, n_frames: int = 48, claim: int = 2_000_000_000) -> str:
    """An AVI whose ``avih`` and ``strh`` headers claim ``claim`` frames (it holds ``n_frames``)."""
    data = bytearray(Path(make_video(Path(path).with_suffix(".src.avi"), n_frames=n_frames)).read_bytes())
    Path(path).with_suffix(".src.avi").unlink()
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, claim)  # dwTotalFrames
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, claim)  # dwLength
    Path(path).write_bytes(bytes(data))
    return str(path)


def make_negative_start(path: str | Path, *, n_frames: int = 24, fps: int = 24, lead: int = 12,
                        gop: int = 100) -> str:
    """A clip (mkv: H.264, flv: FLV1) whose first ``lead`` frames have negative timestamps
    (the muxer is told not to shift them); one keyframe per file with the default ``gop``."""
    ext = Path(path).suffix.lower()
    fmt, codec = {".mkv": ("matroska", "libx264"), ".flv": ("flv", "flv")}[ext]
    container = av.open(str(path), "w", format=fmt, options={"fflags": "+bitexact", "avoid_negative_ts": "disabled"})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    stream.codec_context.gop_size = gop
    stream.codec_context.time_base = Fraction(1, fps)
    for k in range(n_frames):
        frame = av.VideoFrame.from_ndarray(shapes_frame(k, (96, 64)), format="rgb24")
        frame.pts, frame.time_base = k - lead, Fraction(1, fps)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return str(path)


def _pes_times(buf: bytearray, at: int) -> tuple[int, int | None, int | None]:
    """(flags, pts offset, dts offset) of a video PES header starting at ``at``."""
    flags = buf[at + 7] >> 6
    pts_at = at + 9 if flags & 2 else None
    dts_at = at + 14 if flags == 3 else None
    return flags, pts_at, dts_at


def _read_ts(buf: bytearray, at: int) -> int:
    b = buf[at : at + 5]
    return ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def _write_ts(buf: bytearray, at: int, value: int) -> None:
    value %= WRAP_33
    prefix = buf[at] & 0xF0
    buf[at : at + 5] = bytes([prefix | ((value >> 30) & 7) << 1 | 1, (value >> 22) & 0xFF,
                              ((value >> 15) & 0x7F) << 1 | 1, (value >> 7) & 0xFF, (value & 0x7F) << 1 | 1])


def rewrite_ts_times(src: str | Path, dst: str | Path, fn: Callable[[int, int, int | None], tuple[int, int | None]]) -> str:
    """Copy an MPEG-TS with the PTS/DTS of every video PES rewritten: ``fn(k, pts, dts) -> (pts, dts)``
    for the ``k``-th video PES in file order."""
    buf = bytearray(Path(src).read_bytes())
    k = 0
    for off in range(0, len(buf) - TS_PACKET + 1, TS_PACKET):
        if buf[off] != 0x47 or not buf[off + 1] & 0x40:  # not a payload unit start
            continue
        head = off + 4 + (1 + buf[off + 4] if buf[off + 3] & 0x20 else 0)
        if buf[head : head + 4] != b"\x00\x00\x01\xe0":
            continue
        _, pts_at, dts_at = _pes_times(buf, head)
        if pts_at is None:
            continue
        pts = _read_ts(buf, pts_at)
        dts = _read_ts(buf, dts_at) if dts_at else None
        new_pts, new_dts = fn(k, pts, dts)
        _write_ts(buf, pts_at, new_pts)
        if dts_at is not None:
            _write_ts(buf, dts_at, new_pts if new_dts is None else new_dts)
        k += 1
    Path(dst).write_bytes(bytes(buf))
    return str(dst)


def make_wrapped_ts(path: str | Path, *, n_frames: int = 48, fps: int = 24) -> str:
    """An MPEG-TS whose 33-bit PTS/DTS cross the wrap halfway through."""
    src = make_video(Path(path).with_suffix(".src.ts"), n_frames=n_frames, fps=fps)
    shift = WRAP_33 - (n_frames // 2) * (90000 // fps) - 126000  # the wrap falls near the middle
    rewrite_ts_times(src, path, lambda k, pts, dts: (pts + shift, None if dts is None else dts + shift))
    Path(src).unlink()
    return str(path)


def make_repeated_ts(path: str | Path, *, n_frames: int = 48) -> str:
    """An MPEG-TS where every video PES carries the same PTS and DTS."""
    src = make_video(Path(path).with_suffix(".src.ts"), n_frames=n_frames, codec="mpeg2video")
    rewrite_ts_times(src, path, lambda k, pts, dts: (900000, None))
    Path(src).unlink()
    return str(path)


def make_shuffled_ts(path: str | Path, *, n_frames: int = 48, seed: int = 0) -> str:
    """An MPEG-TS whose video PTS values are a random permutation of the real ones (DTS dropped)."""
    src = make_video(Path(path).with_suffix(".src.ts"), n_frames=n_frames, codec="mpeg2video")
    times: list[int] = []
    rewrite_ts_times(src, src, lambda k, pts, dts: (times.append(pts) or pts, dts))
    perm = np.random.default_rng(seed).permutation(len(times))
    rewrite_ts_times(src, path, lambda k, pts, dts: (times[perm[k]], None))
    Path(src).unlink()
    return str(path)


def drop_ts_frames(src: str | Path, dst: str | Path, drop: set[int]) -> str:
    """Copy an MPEG-TS without the TS packets of the video PES numbered ``drop`` (a hole in the middle)."""
    buf = Path(src).read_bytes()
    out, k, skipping = bytearray(), -1, False
    for off in range(0, len(buf) - TS_PACKET + 1, TS_PACKET):
        pkt = buf[off : off + TS_PACKET]
        pid = (pkt[1] & 0x1F) << 8 | pkt[2]
        if pkt[1] & 0x40:
            head = 4 + (1 + pkt[4] if pkt[3] & 0x20 else 0)
            if pkt[head : head + 4] == b"\x00\x00\x01\xe0":
                k += 1
                skipping, video_pid = k in drop, pid
        if not (skipping and pid == locals().get("video_pid")):
            out += pkt
    Path(dst).write_bytes(bytes(out))
    return str(dst)


def make_flv(path: str | Path, *, n_frames: int = 96, fps: int = 24) -> str:
    """A plain FLV (FLV1 video only, timestamps from 0)."""
    return make_negative_start(path, n_frames=n_frames, fps=fps, lead=0, gop=12)


def make_resolution_change(path: str | Path, *, sizes: tuple[tuple[int, int], ...] = ((96, 64), (128, 96)),
                           n_frames: int = 48) -> str:
    """H.264 MPEG-TS segments of different sizes (W, H) concatenated byte for byte (``cat a.ts b.ts``,
    as broadcast streams and joined recordings change resolution), ``n_frames`` each."""
    data = b""
    for k, size in enumerate(sizes):
        part = make_video(Path(path).with_suffix(f".part{k}.ts"), n_frames=n_frames, size=size)
        data += Path(part).read_bytes()
        Path(part).unlink()
    Path(path).write_bytes(data)
    return str(path)


def make_bad_brand(path: str | Path, *, n_frames: int = 24) -> str:
    """An mp4 whose ``ftyp`` major brand is 4 bytes that are not UTF-8 (PyAV's open raised
    UnicodeDecodeError reading it as a metadata tag)."""
    src = make_video(Path(path).with_suffix(".src.mp4"), n_frames=n_frames, faststart=True)
    data = bytearray(Path(src).read_bytes())
    Path(src).unlink()
    data[8:12] = b"\xdd\xb7\x80\xeb"
    Path(path).write_bytes(bytes(data))
    return str(path)


# ----------------------------------------------------------------------------- mutation fuzz

FUZZ_SEEDS = ("mp4", "mkv", "ts", "avi", "flv", "res.ts")


def make_seed(directory: str | Path, ext: str) -> str:
    """A small clean clip to mutate (48 frames, 96x64; mp4 with its index first; ``res.ts``: 24 frames
    at 96x64 then 24 at 128x96, :func:`make_resolution_change`)."""
    path = Path(directory) / f"seed.{ext}"
    if ext == "flv":
        return make_flv(path, n_frames=48)
    if ext == "res.ts":
        return make_resolution_change(path, n_frames=24)
    return make_video(path, n_frames=48, faststart=(ext == "mp4"))


def mutate(src: str | Path, dst: str | Path, seed: int) -> str:
    """A deterministic mutation of ``src``: flipped bytes, a zeroed or deleted run, a duplicated run,
    a cut, or bytes that are not UTF-8 written over a header field (the first 64 bytes: an mp4's
    brands, an EBML or RIFF tag), chosen and placed by ``seed``."""
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    n = len(data)
    kind = int(rng.integers(6))  # drawn, not seed % 6: run_fuzz cycles the seed files by k too
    at = int(rng.integers(64, n - 64))
    span = int(rng.integers(1, 400))
    if kind == 0:  # flip a few bytes anywhere (headers included)
        for pos in rng.integers(0, n, int(rng.integers(1, 16))):
            data[pos] ^= int(rng.integers(1, 256))
    elif kind == 1:
        data[at : at + span] = bytes(min(span, n - at))
    elif kind == 2:
        del data[at : at + span]
    elif kind == 3:
        data[at:at] = data[at - span : at] if at > span else data[:at]
    elif kind == 4:
        data = data[: int(n * rng.uniform(0.2, 0.95))]
    else:
        pos = int(rng.integers(4, 60))
        data[pos : pos + 4] = rng.integers(0x80, 0x100, 4, dtype=np.uint8).tobytes()  # never valid UTF-8 first byte
    Path(dst).write_bytes(bytes(data))
    return str(dst)


def check_file(path: str | Path) -> dict:
    """Open ``path`` with vidsift and read every frame it indexes: the outcome as a dict, never a raise.
    ``error``: the one-line message of a typed error; ``traceback``: anything else; else ``frames``
    (delivered), ``missing`` (the report's file-level count), ``warned``, and ``straight`` (PyAV's own
    straight-through count) and ``seconds``."""
    import time
    import traceback
    import warnings

    from vidsift.frames import VideoError, open_video

    t0 = time.perf_counter()
    out: dict = {"path": str(path), "straight": straight_count(path)}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with open_video(path) as video:
                got = video.read(range(len(video.frame_times)))
                out.update(frames=len(got), missing=video.report.summary()["missing"])
        out["warned"] = bool(caught)
    except VideoError as err:
        out["error"] = str(err)
    except Exception:  # noqa: BLE001 - what the fuzz hunts for
        out["traceback"] = traceback.format_exc()
    out["seconds"] = time.perf_counter() - t0
    return out


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB: ``VmHWM`` of /proc/self/status (Linux). Not
    ``getrusage(...).ru_maxrss``: Linux carries the pre-exec image's high-water mark into it, so a
    child spawned by a 1.1 GB pytest process reports >= 1.1 GB however little it uses itself
    (measured: 13 MB alone, 1037 MB as the child of a 1 GB parent; VmHWM 13 MB in both)."""
    import resource

    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: an upper bound


# ``python -c MEASURED_CLI path args...``: vidsift's CLI in this process, then its own peak RSS (MB)
# written to ``path`` at exit (the CLI leaves through sys.exit, so atexit runs)
MEASURED_CLI = ("import atexit, runpy, sys; from hostile import peak_rss_mb; out = sys.argv.pop(1); "
                "atexit.register(lambda: open(out, 'w').write(str(peak_rss_mb()))); "
                "sys.argv[0] = 'vidsift'; runpy.run_module('vidsift', run_name='__main__')")


def run_fuzz(directory: str, count: int) -> None:
    """Write ``count`` mutated files under ``directory`` and print one JSON line per file (``check_file``),
    then the peak RSS in MB (run in a subprocess: the memory bound is per process)."""
    import json

    seeds = {ext: make_seed(directory, ext) for ext in FUZZ_SEEDS}
    for k in range(count):
        ext = FUZZ_SEEDS[k % len(FUZZ_SEEDS)]
        path = mutate(seeds[ext], Path(directory) / f"fuzz{k:03d}.{ext}", seed=k)
        print(json.dumps(check_file(path)), flush=True)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True)
