"""Batch throughput: `vidsift batch --engine ray` with 1 vs 2 local CPU workers (and the local
in-process engine), same jobs, same model. One Ray cluster is started up front so both Ray runs
pay actor start-up (model load) but not cluster start-up; each actor gets 1 CPU and 1 torch thread.

    python benchmarks/batch_engines.py --out benchmarks/results/batch_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from vidsift.batch import WorkerSpec, build_engine, read_manifest, run_batch
from vidsift.bench import synthesize_video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="random:smolvlm2-500m")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--max-frames", type=int, default=4)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=16)
    ap.add_argument("--budget", default="50%")
    ap.add_argument("--out", default="benchmarks/results/batch_engines.json")
    args = ap.parse_args()

    import ray

    folder = Path(tempfile.mkdtemp(prefix="vidsift-batch-"))
    for i in range(args.videos):
        synthesize_video(folder / f"clip{i:02d}.mp4", seconds=args.seconds, fps=4, width=224, height=168, seed=i)
    jobs = read_manifest(folder, question="What changes in this video?")
    spec = WorkerSpec(model=args.model, device="cpu", dtype=args.dtype, budget=args.budget, max_new_tokens=8, threads=1,
                      options={"max_frames": args.max_frames})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    results = {}
    answers = {}
    for name, engine in (("ray-1", build_engine("ray", workers=1)), ("ray-2", build_engine("ray", workers=2)),
                         ("local-1", build_engine("local"))):
        recs = []
        start = time.perf_counter()
        summary = run_batch(jobs, spec, engine=engine, progress=False, on_record=recs.append)
        wall = time.perf_counter() - start
        answers[name] = {r["id"]: r["answer"] for r in recs}
        results[name] = {"wall_s": round(wall, 2), "ok": summary.ok, "failed": summary.failed,
                         "mean_job_s": round(sum(r["elapsed_s"] for r in recs) / len(recs), 3)}
        print(name, results[name], file=sys.stderr)
    ray.shutdown()
    report = {
        "model": args.model, "dtype": args.dtype, "max_frames": args.max_frames, "videos": args.videos, "seconds": args.seconds, "budget": args.budget,
        "engines": results,
        "ray2_vs_ray1_speedup": round(results["ray-1"]["wall_s"] / results["ray-2"]["wall_s"], 2),
        "same_answers": answers["ray-1"] == answers["ray-2"] == answers["local-1"],
        "environment": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "load_avg_1m": os.getloadavg()[0]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
