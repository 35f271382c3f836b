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
    rep = json.loads(path.read_text())
    env = rep.get("environment", {})
    lines = [f"**{rep['model']}**, {rep['frames']} frames, {rep['device']} ({env.get('dtype', '?')}, "
             f"{env.get('torch_threads', '?')} threads), {env.get('params', 0) / 1e6:.0f} M params, "
             f"median of {rep['repeat']}; `{path}`", "",
             "| setting | visual tokens | TTFT s | TTFT speed-up | KV bytes | KV vs full | vision encode s | prefill s | "
             "overhead s (decode+score+select+merge) | overhead share | est. TFLOPs | decode tok/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep["rows"]:
        vs = r["vs_full"]
        lines.append(
            f"| {r['setting']} | {r['tokens_in_prompt']} | {fmt(r['ttft_s'], '.1f')} | {fmt(vs['ttft_speedup'], '.1f', 'x')} | "
            f"{r['kv_bytes'] / 2**20:.1f} MiB | {fmt(vs['kv_ratio'], '.1%')} | {fmt(r['time_s'].get('encode'), '.1f')} | "
            f"{fmt(r['time_s'].get('prefill'), '.1f')} | {fmt(r['overhead_s'], '.2f')} | {fmt(r['overhead_share'], '.1%')} | "
            f"{fmt(r['flops']['total'] / 1e12, '.2f')} | {fmt(r['decode_tokens_per_s'], '.1f')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(table(Path(p)) for p in sys.argv[1:]))
