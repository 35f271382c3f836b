"""The probe's synthetic world: what a video shows at each moment, drawn with PIL.

A `Scene` is a list of timed backgrounds (scenes), a few grey distractor discs that drift and
bounce for the whole video, and `Event`s: a bright shape visible over ``[start_s, end_s)``.
``render(scene, t)`` draws the frame at time ``t`` (uint8 RGB, ``size`` x ``size``);
``write_video`` encodes a scene as H.264 with PyAV. The same renderer feeds training (frames at
the sampled times only, never encoded: H.264 at crf 18 changes these frames by < 1 grey level on
average) and the written evaluation files, so the two see the same world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 56  # frame side in pixels: 4x4 patches of 14 px, 4 LLM tokens per Qwen temporal pair (2 per frame)

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (16, 16, 16), "navy": (18, 28, 112), "maroon": (112, 18, 28),
    "olive": (96, 96, 16), "teal": (16, 96, 96), "purple": (88, 24, 104),
}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (240, 40, 40), "green": (40, 220, 60), "blue": (70, 120, 255),
    "yellow": (250, 230, 40), "white": (245, 245, 245), "orange": (255, 150, 20),
}
SHAPES = ("star", "triangle", "square", "cross", "diamond", "ring", "bar")


@dataclass(frozen=True)
class Event:
    """A shape of a colour, centred at ``(x, y)`` (pixels), visible for ``start_s <= t < end_s``."""

    shape: str
    colour: str
    start_s: float
    end_s: float
    x: int
    y: int
    radius: int = 14

    def visible(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


@dataclass(frozen=True)
class Distractor:
    """A grey disc moving at constant velocity (pixels/s), bouncing off the frame edges."""

    x0: float
    y0: float
    vx: float
    vy: float
    radius: int
    grey: int

    def at(self, t: float, size: int) -> tuple[float, float]:
        lo, hi = self.radius, size - self.radius

        def bounce(p: float) -> float:
            span = hi - lo
            q = (p - lo) % (2 * span)
            return lo + (q if q <= span else 2 * span - q)

        return bounce(self.x0 + self.vx * t), bounce(self.y0 + self.vy * t)


@dataclass
class Scene:
    """Everything a probe video shows. ``backgrounds`` are ``(start_s, name)`` in time order."""

    duration_s: float
    backgrounds: list[tuple[float, str]]
    distractors: list[Distractor] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    size: int = SIZE

    def background_at(self, t: float) -> str:
        name = self.backgrounds[0][1]
        for start, bg in self.backgrounds:
            if start <= t:
                name = bg
        return name

    def background_share(self) -> dict[str, float]:
        """Seconds of the video each background covers, as shares of the duration."""
        share: dict[str, float] = {}
        bounds = [s for s, _ in self.backgrounds[1:]] + [self.duration_s]
        for (start, name), end in zip(self.backgrounds, bounds):
            share[name] = share.get(name, 0.0) + (end - start) / self.duration_s
        return share


def _shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, fill: tuple[int, int, int]) -> None:
    if shape == "star":
        pts = [(x + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                y - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5)) for i in range(10)]
        draw.polygon(pts, fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + r * 0.95, y + r * 0.8), (x - r * 0.95, y + r * 0.8)], fill=fill)
    elif shape == "square":
        draw.rectangle([x - r * 0.8, y - r * 0.8, x + r * 0.8, y + r * 0.8], fill=fill)
    elif shape == "cross":
        w = r * 0.35
        draw.rectangle([x - r, y - w, x + r, y + w], fill=fill)
        draw.rectangle([x - w, y - r, x + w, y + r], fill=fill)
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r * 0.75, y), (x, y + r), (x - r * 0.75, y)], fill=fill)
    elif shape == "ring":
        draw.ellipse([x - r, y - r, x + r, y + r], outline=fill, width=max(3, int(r * 0.35)))
    elif shape == "bar":
        draw.rectangle([x - r, y - r * 0.3, x + r, y + r * 0.3], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")


def render(scene: Scene, t: float) -> np.ndarray:
    """The frame at time ``t`` seconds: (size, size, 3) uint8 RGB."""
    img = Image.new("RGB", (scene.size, scene.size), BACKGROUNDS[scene.background_at(t)])
    draw = ImageDraw.Draw(img)
    for d in scene.distractors:
        x, y = d.at(t, scene.size)
        draw.ellipse([x - d.radius, y - d.radius, x + d.radius, y + d.radius], fill=(d.grey,) * 3)
    for e in scene.events:
        if e.visible(t):
            _shape(draw, e.shape, e.x, e.y, e.radius, COLOURS[e.colour])
    return np.asarray(img)


def write_video(scene: Scene, path: str | Path, *, fps: int = 4, crf: int = 18, times: list[float] | None = None) -> Path:
    """Encode ``scene`` as an H.264 MP4 (yuv420p) at ``fps`` frames per second. ``times``: the
    scene time each written frame shows (default: frame ``i`` shows ``i / fps``); repeating a time
    holds that picture, as a frozen video does."""
    import av

    path = Path(path)
    if times is None:
        times = [i / fps for i in range(int(round(scene.duration_s * fps)))]
    n = len(times)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = scene.size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "animation"}
        stream.codec_context.thread_count = 1
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(render(scene, times[i]), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
