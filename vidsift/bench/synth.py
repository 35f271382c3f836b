"""A synthesised test video of any length (PyAV), for `vidsift bench --synthetic SECONDS` and
for evaluation fixtures: moving coloured shapes on a background that changes every few seconds
(scene cuts), so relevance scoring and keyframe selection see real content changes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ConfigError

_COLORS = np.array([(200, 40, 40), (40, 170, 60), (40, 70, 210), (220, 200, 40),
                    (160, 40, 180), (30, 190, 200), (240, 130, 30), (110, 110, 110)], dtype=np.uint8)


def synth_frame(i: int, *, fps: float, width: int, height: int, scene_s: float = 4.0, seed: int = 0) -> np.ndarray:
    """Frame ``i``: (H, W, 3) uint8, a scene colour plus two moving squares."""
    t = i / fps
    scene = int(t // scene_s)
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = _COLORS[(scene + seed) % len(_COLORS)]
    side = max(4, min(width, height) // 4)
    for k, speed in enumerate((0.21, -0.13)):
        phase = (t * speed + k * 0.5 + scene * 0.37) % 1.0
        x = int(phase * (width - side))
        y = int((0.5 + 0.4 * np.sin(2 * np.pi * (phase + k / 3))) * (height - side))
        img[y:y + side, x:x + side] = _COLORS[(scene + seed + 3 + k) % len(_COLORS)] // 2 + 100
    return img


def synthesize_video(path: str | Path, *, seconds: float, fps: float = 8.0, width: int = 320, height: int = 240,
                     scene_s: float = 4.0, seed: int = 0) -> Path:
    """Write an H.264 MP4 of ``seconds`` seconds at ``fps`` and return its path (kept if it exists)."""
    if not seconds > 0:
        raise ConfigError("--synthetic", f"length must be > 0 seconds, got {seconds}")
    if not fps > 0 or width < 16 or height < 16:
        raise ConfigError("--synthetic", f"need fps > 0 and a size of at least 16x16, got {fps} fps {width}x{height}")
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = width // 2 * 2, height // 2 * 2  # yuv420p needs even sizes
    n_frames = max(1, int(round(seconds * fps)))
    tmp = path.with_name(f".{path.name}.part")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(synth_frame(i, fps=fps, width=width, height=height,
                                                           scene_s=scene_s, seed=seed), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path
