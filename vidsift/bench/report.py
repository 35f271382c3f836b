"""Writing a `BenchReport`: a rich table, JSON, and a PNG plot of time and memory against the
visual tokens kept (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .runner import BenchReport


def _fmt_bytes(n: Any) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fmt(x: Any, spec: str = ".3f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def bench_table(report: BenchReport):
    """The summary table (one row per setting, medians, ratios to full)."""
    from rich.table import Table

    table = Table(title=f"vidsift bench: {report.model} on {Path(report.video).name} "
                        f"({report.frames} frames, {report.device}, median of {report.repeat})")
    cols = ["setting", "tokens", "TTFT s", "x full", "CPU s", "x CPU", "ovh s", "enc s", "prefill s",
            "bound", "tok/s", "KV", "KV %", "peak mem", "GFLOP", "ovh %"]
    for c in cols:
        table.add_column(c, justify="left" if c == "setting" else "right", no_wrap=True)
    for row in report.rows:
        t = row["time_s"]
        vs = row["vs_full"]
        table.add_row(
            row["setting"], str(row.get("tokens_in_prompt")), _fmt(row["ttft_s"]), _fmt(vs["ttft_speedup"], ".2f", "x"),
            _fmt(row.get("cpu_s"), ".1f"), _fmt(vs.get("cpu_speedup"), ".2f", "x"),
            _fmt(row["overhead_s"]), _fmt(t.get("encode")), _fmt(t.get("prefill")), _fmt(vs.get("flops_bound"), ".2f", "x"),
            _fmt(row["decode_tokens_per_s"], ".1f"),
            _fmt_bytes(row["kv_bytes"]), _fmt(vs["kv_ratio"], ".1%"),
            _fmt_bytes(row["peak_cuda_bytes"] if row["peak_cuda_bytes"] is not None else row["peak_mem_bytes"]),
            _fmt(None if row["flops"].get("total") is None else row["flops"]["total"] / 1e9, ".1f"),
            _fmt(row["overhead_share"], ".1%"),
        )
    table.caption = ("ovh = video decode + score + select + merge (vidsift's own work); x full = TTFT speed-up; x CPU = process "
                     "CPU-time speed-up of the whole run (robust to other load); bound = full's FLOPs / this setting's FLOPs "
                     "(a speed-up above it says the runs did not get the same CPU); "
                     "KV % = KV-cache bytes vs full; peak mem = CUDA peak, else host RSS increase during the run")
    return table


def write_json(report: BenchReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")  # never a half-written report (Ctrl-C, a full disk)
    tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    tmp.replace(path)
    return path


def write_plot(report: BenchReport, path: str | Path) -> Path:
    """Two panels against visual tokens kept: time (TTFT, total, per stage) and memory (KV, peak)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(report.rows, key=lambda r: r.get("tokens_in_prompt") or 0)
    x = [r.get("tokens_in_prompt") or 0 for r in rows]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_t.plot(x, [r["ttft_s"] for r in rows], "o-", label="TTFT")
    ax_t.plot(x, [r["total_s"] for r in rows], "s--", label="total")
    for stage, label in (("encode", "vision encode"), ("prefill", "prefill"), ("decode", "video decode")):
        ax_t.plot(x, [r["time_s"].get(stage) for r in rows], ".:", label=label)
    ax_t.set_xlabel("visual tokens in the prompt")
    ax_t.set_ylabel("seconds (median)")
    ax_t.set_title("time")
    ax_t.legend(fontsize=8)
    mib = 1024 ** 2
    ax_m.plot(x, [(r["kv_bytes"] or 0) / mib for r in rows], "o-", label="KV cache")
    peak_key = "peak_cuda_bytes" if any(r["peak_cuda_bytes"] is not None for r in rows) else "peak_mem_bytes"
    ax_m.plot(x, [(r[peak_key] or 0) / mib for r in rows], "s--", label="peak CUDA" if peak_key == "peak_cuda_bytes" else "peak RSS increase")
    ax_m.set_xlabel("visual tokens in the prompt")
    ax_m.set_ylabel("MiB")
    ax_m.set_title("memory")
    ax_m.legend(fontsize=8)
    for r, xi in zip(rows, x):
        ax_t.annotate(r["setting"], (xi, r["ttft_s"] or 0), fontsize=7, textcoords="offset points", xytext=(3, 3))
    fig.suptitle(f"{report.model} - {report.frames} frames - {report.device}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    tmp.replace(path)
    return path
