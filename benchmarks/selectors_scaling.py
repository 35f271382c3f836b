"""Selector-stage benchmark: time per planning stage on a 10-minute synthetic video at 1 fps
(600 candidate frames, synthesised directly as arrays), token reduction of the planned frames,
and how the FAISS-backed keyframe selectors scale from 1k to 100k frames (features only).

    python benchmarks/selectors_scaling.py [--sizes 1000,10000,100000] [--k 64] [--dim 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from vidsift.frames import FrameBatch
from vidsift.types import VisualTokens
from vidsift.selectors import SELECTORS, frame_features, plan_frames, reduce_tokens, segment_scenes


def synthetic_video(n_frames: int = 600, size: tuple[int, int] = (224, 224), n_scenes: int = 30, seed: int = 0) -> FrameBatch:
    """``n_frames`` at 1 fps: scenes of random length, each a colour with a moving square and noise."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, n_frames), n_scenes - 1, replace=False))
    lengths = np.diff(np.concatenate([[0], cuts, [n_frames]]))
    h, w = size
    data = np.empty((n_frames, h, w, 3), np.uint8)
    i = 0
    for s, n in enumerate(lengths):
        base = rng.integers(0, 256, 3)
        for j in range(n):
            frame = np.empty((h, w, 3), np.uint8)
            frame[:] = base
            x0, y0 = (j * 7 + s * 13) % (w - 40), (j * 5 + s * 11) % (h - 40)
            frame[y0 : y0 + 40, x0 : x0 + 40] = 255 - base
            data[i] = frame
            i += 1
    data[:] = np.clip(data.astype(np.int16) + rng.integers(-8, 9, data.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    return FrameBatch(data, np.arange(n_frames, dtype=np.float64), np.arange(n_frames) * 30)


def timed(fn, repeat: int = 1):
    """(result of the fastest run, its seconds)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        t = time.perf_counter() - t0
        if t < best:
            best, out = t, res
    return out, best


def stage_times(budget: int = 8192, tokens_per_frame: int = 196) -> dict:
    video, t_make = timed(lambda: synthetic_video())
    res: dict = {"frames": len(video), "frame_size": list(video.data.shape[1:3]), "synthesise_s": round(t_make, 3)}
    feats, t = timed(lambda: frame_features(video), 2)
    res["features_s"] = round(t, 4)
    seg, t = timed(lambda: segment_scenes(feats), 3)
    res["segment_s"], res["segments_found"] = round(t, 5), int(seg.max()) + 1
    plans = {}
    for sel in ("uniform", "topk", "kcenter", "maxmin", "kmeans", "mmr"):
        p, t = timed(lambda: plan_frames(video, "q", budget_tokens=budget, tokens_per_frame=tokens_per_frame, selector=sel), 2)
        plans[sel] = {"total_s": round(t, 4), "frames": len(p.frames), "tokens": p.total_tokens,
                      "segments_covered": p.stats["segments_covered"], "n_segments": p.stats["n_segments"],
                      "stages_s": p.stats["time_s"]}
    res["plan_frames"] = plans
    # token reduction: the kcenter plan's frames, 196 tokens each (14x14 grid), LLM width 896
    p = plan_frames(video, "q", budget_tokens=budget, tokens_per_frame=tokens_per_frame, selector="kcenter")
    g = len(p.frames)
    torch.manual_seed(0)
    grid = 14
    hh, ww = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    coords = [torch.stack([torch.full_like(hh, t), hh, ww], -1).reshape(-1, 3) for t in range(g)]
    tokens = VisualTokens(embeds=[torch.randn(grid * grid, 896) for _ in range(g)], coords=coords,
                          size=[torch.ones(grid * grid) for _ in range(g)], grid_thw=torch.tensor([[1, grid, grid]] * g),
                          pts_seconds=np.array([f.pts_seconds for f in p.frames]), index=p.indices)
    targets = [f.tokens for f in p.frames]
    red = {}
    for merger in ("tome", "adjacent", "saliency", "diverse"):
        out, t = timed(lambda: reduce_tokens(tokens, targets, merger=merger))
        red[merger] = {"s": round(t, 4), "tokens_in": tokens.n_tokens, "tokens_out": out.n_tokens}
    out, t = timed(lambda: reduce_tokens(tokens, targets, merger="tome", temporal="temporal"))
    red["tome+temporal"] = {"s": round(t, 4), "tokens_in": tokens.n_tokens, "tokens_out": out.n_tokens}
    res["reduce_tokens"] = {"groups": g, **red}
    return res


def scaling(sizes: list[int], k: int, dim: int) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        # clustered features (like scenes): 200 centres + noise, unit norm
        centres = rng.normal(size=(200, dim)).astype(np.float32)
        x = centres[rng.integers(0, 200, n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        scores = rng.random(n).astype(np.float32)
        row = {}
        for sel in ("uniform", "topk", "kcenter", "maxmin", "kmeans", "mmr"):
            member = SELECTORS.build(sel)
            idx, t = timed(lambda: member.select(x, scores, k))
            row[sel] = round(t, 4)
            assert len(idx) == min(k, n)
        out[str(n)] = row
        print(f"N={n:>7}: " + "  ".join(f"{s} {v:.3f}s" for s, v in row.items()), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch/FAISS threads (0: library default)")
    args = ap.parse_args()
    if args.threads:
        import faiss

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    result = {"machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}
    result["stages_600_frames"] = stage_times()
    print(json.dumps(result["stages_600_frames"], indent=1), flush=True)
    result["selector_scaling"] = {"k": args.k, "dim": args.dim, "seconds": scaling([int(s) for s in args.sizes.split(",")], args.k, args.dim)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
