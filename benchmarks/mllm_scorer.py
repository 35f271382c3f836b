"""`ask` with the ``mllm`` (QuoTA) scorer against the uniform `ask`, on the shipped probe model.

One probe clip (`vidsift.probe.generate`, seed 0) sampled to 64 candidates; each `ask` starts cold
(`Pipeline.clear_cache`, a new scorer, so no P(yes) is reused); uniform and mllm asks alternate.
``--tree DIR`` (repeatable) runs the same measurement with the vidsift of another checkout
(e.g. a worktree of main: the code before a change), each tree in its own process, the trees
alternated ``--rounds`` times, so before and after share the machine's load.

    python benchmarks/mllm_scorer.py --tree /work/main --tree . --out benchmarks/results/mllm_scorer.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "What colour was the star?"


def worker(video: str, reps: int, budget: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from vidsift.pipeline.pipeline import Pipeline
    from vidsift.pipeline.scorers.mllm import MllmScorer

    root = Path(__file__).resolve().parents[1] / "vidsift" / "probe" / "checkpoint"
    pipe = Pipeline.from_pretrained(str(root), device="cpu", dtype="float32")
    opts = dict(fps=4.0, max_frames=64, budget=budget, max_new_tokens=8)
    from vidsift.pipeline import pipeline as pipeline_module

    if "search" in getattr(pipeline_module, "ASK_OPTIONS", ()):
        opts["search"] = "off"  # score the 64 candidates themselves (no temporal search)
    rows: list[dict] = []

    def one(kind: str) -> dict:
        pipe.clear_cache()
        scorer = MllmScorer(adapter=pipe.adapter) if kind == "mllm" else "uniform"
        t0, c0 = time.perf_counter(), time.process_time()
        ans = pipe.ask(video, QUESTION, scorer=scorer, **opts)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        row = {"kind": kind, "wall_s": wall, "cpu_s": cpu, "score_s": ans.stats.get("time_s", {}).get("score"),
               "candidates": ans.stats.get("frames_candidates"), "load1": os.getloadavg()[0]}
        if kind == "mllm":
            row.update({k: getattr(scorer, k, None) for k in ("calls", "forwards", "vision_calls")})
        return row

    one("uniform"), one("mllm")  # warm-up
    for r in range(reps):
        for kind in (("uniform", "mllm") if r % 2 == 0 else ("mllm", "uniform")):
            rows.append(one(kind))
    return {"rows": rows}


def main() -> None:
    from vidsift.bench.machine import machine_info  # the driver's tree (workers may run another)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", help="checkout whose vidsift to run (repeatable; default: this one)")
    ap.add_argument("--rounds", type=int, default=3, help="times each tree runs, alternated")
    ap.add_argument("--reps", type=int, default=3, help="uniform/mllm pairs per process")
    ap.add_argument("--budget", default="25%")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        Path(args.worker[1]).write_text(json.dumps(worker(args.worker[0], args.reps, args.budget, args.threads)))
        return
    trees = [str(Path(t).resolve()) for t in (args.tree or [str(Path(__file__).resolve().parents[1])])]
    with tempfile.TemporaryDirectory() as tmp:
        from vidsift.probe.generate import generate

        items = generate(tmp, videos=1, stream_videos=0)
        video = str(Path(tmp) / items[0].video)
        results = {t: [] for t in trees}
        load_before = os.getloadavg()
        for _ in range(args.rounds):
            for tree in trees:
                out = Path(tmp) / "w.json"
                env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": str(args.threads)}
                subprocess.run([sys.executable, __file__, "--worker", video, str(out), "--reps", str(args.reps),
                                "--budget", args.budget, "--threads", str(args.threads)], env=env, check=True, cwd=tree)
                results[tree].extend(json.loads(out.read_text())["rows"])
    summary = {}
    for tree, rows in results.items():
        med = lambda kind, key: statistics.median(r[key] for r in rows if r["kind"] == kind)  # noqa: E731
        summary[tree] = {"uniform_wall_s": med("uniform", "wall_s"), "mllm_wall_s": med("mllm", "wall_s"),
                         "mllm_score_s": med("mllm", "score_s"),
                         "ratio_wall": med("mllm", "wall_s") / med("uniform", "wall_s"),
                         "ratio_cpu": med("mllm", "cpu_s") / med("uniform", "cpu_s"),
                         "ratios_per_pair": [round(m["wall_s"] / u["wall_s"], 2) for u, m in
                                             zip([r for r in rows if r["kind"] == "uniform"], [r for r in rows if r["kind"] == "mllm"])]}
    report = {"benchmark": "mllm_scorer", "question": QUESTION, "candidates": 64, "budget": args.budget,
              "threads": args.threads, "dtype": "float32", "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "cpu_flags": machine_info().get("cpu_flags", []), "load_before": load_before, "load_after": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "summary": summary, "rows": results}
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(json.dumps({"load_before": load_before, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
