"""A test-pattern MPEG-TS sender (PyAV only, no ffmpeg binary): ``python -m vidsift.stream.sender``.

Streams a moving synthetic pattern to a URL (``udp://127.0.0.1:5000``) at real-time pace, so a
`StreamSession` can be tested end to end on a real network protocol. ``--pause-at``/``--pause-for``
stop sending for a while without closing (a stalled sender). Used by the stream tests and handy
to try ``vidsift stream --source udp://127.0.0.1:5000`` by hand.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def pattern(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i`` of a moving bar over a slowly changing background: uint8 (H, W, 3)."""
    img = np.empty((height, width, 3), np.uint8)
    img[:] = ((i * 3) % 256, (i * 5 + 80) % 256, 128)
    x = (i * 4) % max(1, width - 16)
    img[:, x:x + 16] = 255
    return img


def send(url: str, *, seconds: float, fps: float = 30.0, width: int = 160, height: int = 120,
         pause_at: float | None = None, pause_for: float = 0.0, codec: str = "mpeg2video") -> int:
    """Send ``seconds`` of pattern to ``url`` at real-time pace; returns frames sent."""
    import av

    target = url if "?" in url or not url.startswith("udp:") else f"{url}?pkt_size=1316"
    out = av.open(target, mode="w", format="mpegts")
    stream = out.add_stream(codec, rate=int(round(fps)))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.gop_size = max(1, int(fps // 2))  # frequent keyframes: a receiver (re)joins fast
    start, n, paused = time.monotonic(), int(seconds * fps), 0.0
    try:
        for i in range(n):
            if pause_at is not None and paused == 0.0 and i / fps >= pause_at:
                time.sleep(pause_for)
                paused = pause_for
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
            delay = start + paused + (i + 1) / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for packet in stream.encode():
            out.mux(packet)
    finally:
        out.close()
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--pause-at", type=float, default=None)
    parser.add_argument("--pause-for", type=float, default=0.0)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    send(args.url, seconds=args.seconds, fps=args.fps, width=width, height=height,
         pause_at=args.pause_at, pause_for=args.pause_for)


if __name__ == "__main__":
    main()
