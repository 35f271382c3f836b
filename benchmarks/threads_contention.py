"""Small stages quiet and beside a busy process, per CPU thread setting (`vidsift.threads`).

Three stages that oversubscribed threads slow down most: k-center over 1,800 frame features
(FAISS), the reduce stage (ToMe merging of 42 frames x 196 tokens to a quarter), and decoding 8
tokens with SmolVLM2-500M's LLM (random weights, float32). Each setting runs in its own process:
``libs`` applies nothing (the libraries' own defaults: what vidsift did before the thread policy),
``policy`` applies `vidsift.threads.apply()` (its default count), ``N`` applies N threads. In each
process every stage runs 5 times quiet and 5 times beside a busy process (one bounded busy loop
that this script starts and stops), quiet and contended alternated; the result file holds every
run, the machine's load and CPU flags, and the contended/quiet ratio of the max and the median.

    python benchmarks/threads_contention.py --settings libs,policy,2 --out benchmarks/results/threads
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vidsift.bench.machine import machine_info

BUSY = "import time\nend = time.time() + {seconds}\nx = 0\nwhile time.time() < end:\n    x += 1\n"


def stages(decode_model: str | None) -> dict:
    """name -> callable running the stage once."""
    import numpy as np
    import torch

    from vidsift.selectors import SELECTORS, reduce_tokens
    from vidsift.types import VisualTokens

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(200, 256)).astype(np.float32)
    feats = centres[rng.integers(0, 200, 1800)] + 0.3 * rng.normal(size=(1800, 256)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    scores = rng.random(1800).astype(np.float32)
    kcenter = SELECTORS.build("kcenter")

    torch.manual_seed(0)
    g, grid = 42, 14
    hh, ww = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    tokens = VisualTokens(embeds=[torch.randn(grid * grid, 896) for _ in range(g)],
                          coords=[torch.stack([torch.full_like(hh, t), hh, ww], -1).reshape(-1, 3) for t in range(g)],
                          size=[torch.ones(grid * grid) for _ in range(g)], grid_thw=torch.tensor([[1, grid, grid]] * g),
                          pts_seconds=np.arange(g, dtype=np.float64), index=np.arange(g))
    targets = [49] * g
    out = {"kcenter_1800": lambda: kcenter.select(feats, scores, 64),
           "reduce_tome_42x196": lambda: reduce_tokens(tokens, targets, merger="tome")}
    if decode_model:
        from vidsift.pipeline.loader import load_adapter

        adapter = load_adapter(decode_model, device="cpu", dtype="float32")
        ids = adapter.tokenizer("Describe what happens in the video in one sentence.", return_tensors="pt")["input_ids"]

        @torch.no_grad()
        def decode() -> None:
            adapter.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                   min_new_tokens=8, do_sample=False)

        out["decode_8_tokens"] = decode
    return out


def worker(setting: str, runs: int, decode_model: str | None, busy_s: float) -> dict:
    from vidsift import threads

    if setting == "policy":
        threads.apply()
    elif setting != "libs":
        threads.apply(int(setting))
    import torch

    funcs = stages(decode_model)
    for fn in funcs.values():  # warm-up, quiet
        fn()
    try:
        from threadpoolctl import threadpool_info

        pools = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
    except ImportError:
        pools = []
    import faiss

    times: dict[str, dict[str, list[float]]] = {name: {"quiet": [], "contended": []} for name in funcs}
    loads: dict[str, list[float]] = {"quiet": [], "contended": []}
    for r in range(runs):
        for mode in (("quiet", "contended") if r % 2 == 0 else ("contended", "quiet")):
            busy = None
            if mode == "contended":
                busy = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=busy_s)])
                time.sleep(0.3)  # the busy loop is running
            try:
                for name, fn in funcs.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name][mode].append(time.perf_counter() - t0)
                loads[mode].append(os.getloadavg()[0])
            finally:
                if busy is not None:
                    busy.terminate()
                    busy.wait()
    summary = {}
    for name, t in times.items():
        q, c = t["quiet"], t["contended"]
        summary[name] = {"quiet_max_s": max(q), "contended_max_s": max(c), "ratio_max": max(c) / max(q),
                         "quiet_median_s": statistics.median(q), "contended_median_s": statistics.median(c),
                         "ratio_median": statistics.median(c) / statistics.median(q)}
    return {"setting": setting, "torch_threads": torch.get_num_threads(), "faiss_threads": faiss.omp_get_max_threads(),
            "pools": pools, "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "VIDSIFT_THREADS")},
            "summary": summary, "times_s": times, "load1": loads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="libs,policy,2", help="comma list: libs, policy, or a thread count")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-model", default="random:smolvlm2-500m", help="model for the 8-token decode ('' to skip)")
    ap.add_argument("--busy-s", type=float, default=120.0, help="upper bound on one busy loop's life")
    ap.add_argument("--out", default="benchmarks/results/threads")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.runs, args.decode_model or None, args.busy_s)))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VIDSIFT_THREADS")}
    for setting in args.settings.split(","):
        load_before = os.getloadavg()
        t0 = time.time()
        proc = subprocess.run([sys.executable, __file__, "--worker", setting, "--runs", str(args.runs),
                               "--decode-model", args.decode_model, "--busy-s", str(args.busy_s)],
                              env=env, check=True, capture_output=True, text=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update({"benchmark": "threads_contention", "runs": args.runs, "busy": "one Python busy loop (1 core)",
                       "decode_model": args.decode_model, "dtype": "float32", "cpus": os.cpu_count(),
                       "machine": platform.processor() or platform.machine(), "cpu_flags": machine_info().get("cpu_flags", []),
                       "load_before": load_before, "load_after": os.getloadavg(), "wall_s": round(time.time() - t0, 1),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S")})
        (out / f"threads_{setting}.json").write_text(json.dumps(result, indent=1))
        line = "  ".join(f"{k}: quiet {v['quiet_max_s']:.3f}s contended {v['contended_max_s']:.3f}s (x{v['ratio_max']:.1f} max, "
                         f"x{v['ratio_median']:.1f} median)" for k, v in result["summary"].items())
        print(f"[{setting}] torch {result['torch_threads']} faiss {result['faiss_threads']} load {load_before[0]:.2f}: {line}", flush=True)


if __name__ == "__main__":
    main()
