"""Markdown tables from `vidsift bench` JSON reports (for benchmarks/README.md).

    python benchmarks/summarize.py benchmarks/results/*/bench.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(x, spec=".2f", suffix=""):
    return "-" if x is None else f"{x:{spec}}{suffix}"


def table(path: Path) -> str:
    """One row per setting: medians, the speed-ups (wall TTFT, process CPU time) beside the FLOPs
    bound (full's FLOPs over the setting's), each round's TTFT ratio against the full run of the same
    round, and the load average over the setting's runs."""
    rep = json.loads(path.read_text())
    env = rep.get("environment", {})
    machine = env.get("machine", {})
    flags = ", ".join(f for f in machine.get("cpu_flags", []) if f.startswith(("avx512_bf16", "amx", "avx512f")))
    lines = [f"**{rep['model']}**, {rep['frames']} frames, {rep['device']} ({env.get('dtype', '?')}, "
             f"{env.get('torch_threads', '?')} threads), {env.get('params', 0) / 1e6:.0f} M params, "
             f"median of {rep['repeat']}, CPU {machine.get('cpu', '?')} ({flags or 'no avx512f/bf16/amx flags'}); `{path}`", "",
             "| setting | visual tokens | frames encoded | tokens encoded | TTFT s | TTFT speed-up (rounds) | CPU-time speed-up | "
             "FLOPs bound | KV vs full | vision encode s | prefill s | overhead share | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    full_each = rep["rows"][0].get("each") or []
    for r in rep["rows"]:
        vs = r["vs_full"]
        each = r.get("each") or []
        rounds = ", ".join(f"{f['ttft_s'] / e['ttft_s']:.1f}" for f, e in zip(full_each, each) if e.get("ttft_s"))
        loads = [x for e in each for x in (e.get("load_before"), e.get("load_after")) if x]
        load = f"{min(x[0] for x in loads):.1f}-{max(x[0] for x in loads):.1f}" if loads else "-"
        lines.append(
            f"| {r['setting']} | {r['tokens_in_prompt']} | {r.get('frames_planned')} | {r.get('tokens_encoded')} | "
            f"{fmt(r['ttft_s'], '.1f')} | {fmt(vs['ttft_speedup'], '.1f', 'x')} ({rounds or '-'}) | {fmt(vs.get('cpu_speedup'), '.1f', 'x')} | "
            f"{fmt(vs.get('flops_bound'), '.1f', 'x')} | {fmt(vs['kv_ratio'], '.1%')} | {fmt(r['time_s'].get('encode'), '.1f')} | "
            f"{fmt(r['time_s'].get('prefill'), '.1f')} | {fmt(r['overhead_share'], '.1%')} | {load} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(table(Path(p)) for p in sys.argv[1:]))
