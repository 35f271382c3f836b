"""Seconds per scored frame of the `mllm` scorer (issue 22 item 3): the shipped probe model and a
random-weight full-size model, on the same frames (a probe-world clip at 640x360 reduced to the
search's scan size, 128x72, as the temporal search scores them). Each model scores ``--frames``
frames twice (the first run warms up); the second run's wall time per frame is reported, with the
scorer's counters (frames scored, LLM forwards, vision calls), load and CPU flags.

    python benchmarks/scorer_cost.py [--models vidsift/probe/checkpoint,random:smolvlm2-500m] [--frames 16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np


def frames(n: int):
    from PIL import Image

    from vidsift.probe.generate import make_long_scene
    from vidsift.probe.scene import render
    from vidsift.selectors.video_index import SCAN_MAX_PIXELS
    from vidsift.types import FrameBatch

    scene, _ = make_long_scene(random.Random(1), 600.0)
    w = int((SCAN_MAX_PIXELS * 16 / 9) ** 0.5) // 2 * 2
    h = int(w * 9 / 16) // 2 * 2
    times = np.linspace(0, 599, n)
    data = np.stack([np.asarray(Image.fromarray(render(scene, float(t))).resize((w, h), Image.BILINEAR)) for t in times])
    return FrameBatch(data, times, np.arange(n))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="vidsift/probe/checkpoint,random:smolvlm2-500m")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/scorer_cost/scorer_cost.json")
    args = parser.parse_args()
    from vidsift import Pipeline

    batch = frames(args.frames)
    rows = []
    for model in args.models.split(","):
        t0 = time.perf_counter()
        pipe = Pipeline.from_pretrained(model, device="cpu")
        load_s = time.perf_counter() - t0
        scorer = pipe._scorer("mllm")
        for run in range(2):
            scorer._cache.clear()
            calls0, t0 = scorer.calls, time.perf_counter()
            scorer.score(batch, f"What colour was the star? (run {run})")
            wall = time.perf_counter() - t0
        rows.append({"model": model, "frame_size": list(batch.data.shape[1:3]), "frames": args.frames,
                     "seconds_per_frame": round(wall / args.frames, 4), "scored": scorer.calls - calls0,
                     "forwards": getattr(scorer, "forwards", None), "vision_calls": getattr(scorer, "vision_calls", None),
                     "load_s": round(load_s, 1), "parameters": sum(p.numel() for p in pipe.adapter.model.parameters()),
                     "dtype": str(next(pipe.adapter.model.parameters()).dtype)})
        print(json.dumps(rows[-1]), flush=True)
        del pipe, scorer
    from vidsift.bench.machine import machine_info

    out = {"rows": rows, "machine": machine_info(), "threads": os.environ.get("OMP_NUM_THREADS")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
