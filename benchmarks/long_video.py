"""Long-video costs at a realistic size (issue 22): a probe-world hour rendered at 640x360, 25 fps,
H.264 with a 250-frame GOP, asked with default flags through `vidsift ask` (the temporal search).

Measures, in one process with the model loaded first: the cheap pass's decode alone (every 1-fps
candidate at the scan size, nothing else), the first question (no index on disk), a second,
different question (the index and the model's features on disk, nothing in memory); then in a
second process what a user runs, `vidsift ask` on the unseen video: wall time and peak RSS
(`ru_maxrss` of each process, from the kernel).

    python benchmarks/long_video.py [--minutes 60] [--out benchmarks/results/long_video/NAME.json]

Writes the video once under ``--work`` (default /tmp/vidsift-long), then the JSON result with the
load average and CPU flags. The probe model answers (its answers on upscaled frames are not the
point: time and memory are).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_video(path: Path, minutes: float, *, fps: int = 25, size=(640, 360), gop: int = 250, seed: int = 0) -> dict:
    """A long probe scene (`make_long_scene`) upscaled to ``size`` and encoded at ``fps``."""
    import av
    from PIL import Image

    from vidsift.probe.generate import make_long_scene
    from vidsift.probe.scene import render

    scene, questions = make_long_scene(random.Random(seed), minutes * 60)
    n = int(scene.duration_s * fps)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        last_t, img = None, None
        for i in range(n):
            t = i / fps
            key = round(t * 2) / 2  # the scene changes at most every 0.5 s: render at 2 fps, hold
            if key != last_t:
                img = np.asarray(Image.fromarray(render(scene, key)).resize(size, Image.NEAREST))
                last_t = key
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, path)
    return questions


CHILD = r"""
import json, os, resource, sys, tempfile, time
mode, video, q1, q2 = sys.argv[1:5]
os.environ["VIDSIFT_CACHE"] = tempfile.mkdtemp()
out = {}
if mode == "cli":  # what a user runs: `vidsift ask` on a video never seen (no index on disk)
    from vidsift.cli.app import run
    t0 = time.perf_counter()
    code = run(["ask", video, q1, "--model", "vidsift/probe/checkpoint", "--budget", "52", "--max-new-tokens", "3", "--json"])
    assert code == 0, code
    out["wall_s"] = round(time.perf_counter() - t0, 3)
else:  # one process, the model loaded first: decode alone, the first question, a second question
    from vidsift import Pipeline
    from vidsift.probe.long_split import _decode_alone
    pipe = Pipeline.from_pretrained("vidsift/probe/checkpoint", device="cpu")
    out["decode_alone_s"] = round(_decode_alone(video), 3)
    for name, q in (("first_question", q1), ("second_question", q2)):
        pipe.clear_cache()  # nothing in memory: the second question finds the index (and features) on disk only
        t0 = time.perf_counter()
        answer = pipe.ask(video, q, budget=52, max_new_tokens=3)
        out[name] = {"wall_s": round(time.perf_counter() - t0, 3), "stages_s": answer.stats["time_s"],
                     "plan_s": answer.plan.stats["time_s"], "scorer_calls": answer.plan.stats["scorer_calls"],
                     "candidates": answer.plan.stats["n_candidates"], "index_cached": answer.plan.stats["index_cached"]}
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(out))
"""


def child(mode: str, video: Path, q1: str, q2: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(video), q1, q2], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{mode} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--work", default="/tmp/vidsift-long")
    parser.add_argument("--out", default="benchmarks/results/long_video/hour_640x360.json")
    args = parser.parse_args()
    from vidsift.probe.generate import OPTIONS, QUESTIONS
    from vidsift.probe.model import mc_text

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    video = work / f"probe_{args.minutes:g}min_640x360.mp4"
    if not video.exists():
        t0 = time.perf_counter()
        make_video(video, args.minutes)
        print(f"wrote {video} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    q1 = mc_text(QUESTIONS["needle"], list(OPTIONS["needle"]))
    q2 = mc_text(QUESTIONS["order"], list(OPTIONS["order"]))
    result = {"video": video.name, "minutes": args.minutes, "size": "640x360", "fps": 25, "gop": 250,
              "bytes": video.stat().st_size, "load_before": os.getloadavg()}
    result["in_process"] = child("pipeline", video, q1, q2)
    result["cli_first_question"] = child("cli", video, q1, q2)
    result["load_after"] = os.getloadavg()
    p = result["in_process"]
    result["first_over_decode"] = round(p["first_question"]["wall_s"] / p["decode_alone_s"], 3)
    result["first_over_second"] = round(p["first_question"]["wall_s"] / p["second_question"]["wall_s"], 3)
    from vidsift.bench.machine import machine_info

    result["cpu"] = machine_info()
    result["threads"] = os.environ.get("OMP_NUM_THREADS")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
