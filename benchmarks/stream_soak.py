"""Streaming soak: an accelerated stream of N simulated minutes through a `StreamSession`.

Reports, at 1, 10 and 30 (...) simulated minutes: answer latency (median of the standing
question's answers around that minute), memory tokens vs budget and process RSS, for the
incremental KV cache and (with ``--compare``) the re-prefill fallback. The source is a lavfi
test pattern read at full speed, so stream time is exact and no frame is dropped.

    python benchmarks/stream_soak.py --model random:tiny-qwen2.5-vl --minutes 32 --compare
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import psutil


def soak(adapter, *, minutes: float, fps: float, size: str, budget: int, every_s: float, incremental: bool,
         max_new_tokens: int) -> dict:
    from vidsift.stream import StreamOptions, StreamSession

    rate = f"{fps:g}" if fps >= 1 else f"1/{round(1 / fps):d}"
    session = StreamSession(adapter, f"lavfi:testsrc2=size={size}:rate={rate}", StreamOptions(
        realtime=False, budget=budget, fps=fps, query="what is happening now?", every_s=every_s,
        duration_s=minutes * 60 + 1, max_new_tokens=max_new_tokens, incremental=incremental, max_side=None))
    proc = psutil.Process()
    rows, peak_tokens, start = [], 0, time.perf_counter()
    with session:
        for event in session.events():
            if event["event"] == "answer":
                peak_tokens = max(peak_tokens, event["memory_tokens"])
                rows.append({"t": event["t"], "latency_s": event["latency_s"], "memory_tokens": event["memory_tokens"],
                             "rss_mb": proc.memory_info().rss / 2**20})
            elif event["event"] == "error":
                raise RuntimeError(event["error"])
    wall = time.perf_counter() - start
    stats = session.stats()
    paired = _paired(session) if session.cache is not None else None
    marks = {}
    for minute in (1, 10, 30, 60, 120):
        near = [r for r in rows if abs(r["t"] - minute * 60) <= 60]
        if minute * 60 <= minutes * 60 and near:
            marks[minute] = {"latency_ms": round(1000 * statistics.median(r["latency_s"] for r in near), 2),
                             "memory_tokens": near[-1]["memory_tokens"], "rss_mb": round(near[-1]["rss_mb"], 1)}
    return {"mode": session.mode, "stream_min": round(stats["t"] / 60, 2), "wall_s": round(wall, 1),
            "speedup_vs_realtime": round(stats["t"] / wall, 1), "groups": stats["groups"], "budget": budget,
            "peak_memory_tokens": peak_tokens, "tokens_deduped": stats["tokens_deduped"],
            "tokens_evicted": stats["tokens_evicted"], "answers": len(rows), "at_minute": marks,
            "paired_end_of_stream": paired}


def _paired(session, repeats: int = 15) -> dict:
    """Same full memory, same question, alternating: incremental answer vs re-prefill (1 new token:
    the time to first token), medians in ms, and how many prompt tokens each prefilled."""
    from vidsift.stream import ReprefillAnswerer

    fallback = ReprefillAnswerer(session.adapter)
    q = "what is happening now?"
    inc, rep = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        a = session.cache.answer(q, max_new_tokens=1)
        inc.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = fallback.answer(session.memory, q, max_new_tokens=1)
        rep.append(time.perf_counter() - t)
    return {"memory_tokens": session.memory.n_tokens, "cache_tokens": session.cache.length,
            "incremental_ms": round(1000 * statistics.median(inc), 2), "incremental_prefill_tokens": a.prefill_tokens,
            "reprefill_ms": round(1000 * statistics.median(rep), 2), "reprefill_prefill_tokens": b.prefill_tokens,
            "speedup": round(statistics.median(rep) / statistics.median(inc), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:tiny-qwen2.5-vl")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--minutes", type=float, default=32)
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--size", default="112x112")
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--every", type=float, default=20.0)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--compare", action="store_true", help="also run the re-prefill fallback")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from vidsift.pipeline.loader import load_adapter

    hf_logging.set_verbosity_error()
    adapter = load_adapter(args.model, device=args.device, dtype=args.dtype)
    results = []
    for incremental in ([True, False] if args.compare else [True]):
        res = soak(adapter, minutes=args.minutes, fps=args.fps, size=args.size, budget=args.budget,
                   every_s=args.every, incremental=incremental, max_new_tokens=args.max_new_tokens)
        res.update(model=args.model, device=str(adapter.device))
        results.append(res)
        print(json.dumps(res), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
