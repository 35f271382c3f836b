"""`run_bench`: every setting (budgets, presets) against the full-token run on one video.

Method: the pipeline's decode and encode caches are cleared before every run, so each run pays
every stage; ``warmup`` unmeasured runs per setting come first (``warmup_mode="cheapest"``:
only of the last listed setting (normally the smallest), enough to pay one-time start-up costs when runs take minutes); then ``repeat`` rounds run
the settings interleaved (round-robin, so drift hits all settings alike). Each metric is the
median over rounds. Ratios compare each setting with the ``full`` setting (unlimited budget, no
pruning) measured in the same process. ``cpu_s`` is the process CPU time (user + system) of a
whole run: on a shared machine, where other processes steal cores, its ratio to full is the
load-independent companion of the wall-clock speed-ups. Overhead = decode + score + select + reduce (merge)
time, as a share of the setting's total.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil

from ..batch.engine import Interrupts
from ..errors import ConfigError
from .flops import FlopModel
from .machine import machine_info
from .memory import PeakMemory

OVERHEAD_STAGES = ("decode", "score", "select", "reduce")


@dataclass(frozen=True)
class BenchSetting:
    """A named set of ``ask`` overrides; ``full`` is the unlimited-budget reference."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


def parse_bench_settings(budgets: str | None = "100%,50%,25%,10%", presets: str | None = None, *,
                         allocation: str | None = None) -> list[BenchSetting]:
    """``"100%,50%,25%,10%"`` and ``"fast,balanced"`` -> settings, the full reference first;
    ``allocation`` (relevance, lean, spread) goes with every budget (a setting's overrides, so its row records it)."""
    from ..pipeline.options import AskOptions
    from ..pipeline.presets import Preset
    from ..types import Budget

    extra = {} if allocation is None else {"allocation": AskOptions(allocation=allocation).allocation}  # validated
    settings = [BenchSetting("full", {"budget": "all"})]
    for b in (budgets or "").split(","):
        b = b.strip()
        if not b or Budget.parse(b) in (Budget(), Budget(fraction=1.0)):  # validated early: one-line error before any model work
            continue
        settings.append(BenchSetting(b, {"budget": b, **extra}))
    for p in (presets or "").split(","):
        if p.strip():
            Preset.named(p.strip())
            settings.append(BenchSetting(f"preset:{p.strip()}", {"preset": p.strip(), **extra}))
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ConfigError(",".join(names), "a setting is listed twice")
    return settings


def _median(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


@dataclass
class BenchReport:
    """Median metrics per setting plus ratios to ``full``; ``to_dict`` is the JSON output."""

    model: str
    video: str
    device: str
    frames: int
    repeat: int
    warmup: int
    rows: list[dict[str, Any]]
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("model", "video", "device", "frames", "repeat", "warmup", "environment", "rows")}


def _summarise(name: str, overrides: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    stages = sorted({k for r in runs for k in r["stats"].get("time_s", {})})
    stats0 = runs[0]["stats"]
    row: dict[str, Any] = {
        "setting": name, "budget": overrides.get("budget"), "allocation": overrides.get("allocation"),
        "tokens_full": stats0.get("tokens_full"), "tokens_budget": stats0.get("tokens_budget"),
        "tokens_encoded": stats0.get("tokens_encoded"), "tokens_in_prompt": stats0.get("tokens_in_prompt"),
        "prompt_len": stats0.get("prompt_len"), "frames_candidates": stats0.get("frames_candidates"),
        "frames_planned": stats0.get("frames_planned"), "new_tokens": stats0.get("new_tokens"),
        "time_s": {s: _median([r["stats"]["time_s"].get(s) for r in runs]) for s in stages},
        "total_s": _median([r["wall_s"] for r in runs]),
        "cpu_s": _median([r["cpu_s"] for r in runs]),
        "ttft_s": _median([r["stats"].get("ttft_s") for r in runs]),
        "decode_tokens_per_s": _median([r["stats"].get("decode_tokens_per_s") for r in runs]),
        "kv_bytes": _median([r["stats"].get("kv_bytes") for r in runs]),
        "peak_mem_bytes": _median([r["peak_rss_bytes"] for r in runs]),
        "peak_cuda_bytes": _median([r["peak_cuda_bytes"] for r in runs]),
        "flops": runs[0]["flops"],
        "answer": runs[0]["answer"],
        "runs": len(runs),
        # every measured run, in order: a median hides drift, the load says what the run shared the CPU with
        "each": [{"ttft_s": r["stats"].get("ttft_s"), "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                  "load_before": r.get("load_before"), "load_after": r.get("load_after")} for r in runs],
    }
    overhead = sum(row["time_s"].get(s) or 0.0 for s in OVERHEAD_STAGES)
    row["overhead_s"] = overhead
    row["overhead_share"] = overhead / row["total_s"] if row["total_s"] else None
    return row


def _ratios(rows: list[dict[str, Any]]) -> None:
    full = rows[0]

    def ratio(a: Any, b: Any) -> float | None:
        return a / b if a is not None and b not in (None, 0) else None

    for row in rows:
        row["vs_full"] = {
            "ttft_speedup": ratio(full["ttft_s"], row["ttft_s"]),
            "total_speedup": ratio(full["total_s"], row["total_s"]),
            "cpu_speedup": ratio(full["cpu_s"], row["cpu_s"]),
            "kv_ratio": ratio(row["kv_bytes"], full["kv_bytes"]),
            "mem_ratio": ratio(row["peak_mem_bytes"], full["peak_mem_bytes"]),
            "cuda_mem_ratio": ratio(row["peak_cuda_bytes"], full["peak_cuda_bytes"]),
            "flops_ratio": ratio(row["flops"]["total"], full["flops"]["total"]),
            # the speed-up if time followed FLOPs: full's FLOPs over this setting's (a measured one above it
            # says the runs did not get the same CPU, e.g. other load during the full run)
            "flops_bound": ratio(full["flops"]["total"], row["flops"]["total"]),
            "tokens_ratio": ratio(row["tokens_in_prompt"], full["tokens_in_prompt"]),
        }


def run_bench(pipe: Any, video: str, *, question: str = "What happens in this video?",
              settings: list[BenchSetting] | None = None, repeat: int = 3, warmup: int = 1,
              frames: int | None = 32, max_new_tokens: int = 16, extra: dict[str, Any] | None = None,
              warmup_mode: str = "each", on_run: Callable[[str, int], None] | None = None) -> BenchReport:
    """Measure ``pipe.ask(video, question)`` under each setting; see the module docstring."""
    if repeat < 1:
        raise ConfigError("--repeat", f"must be >= 1, got {repeat}")
    if warmup < 0:
        raise ConfigError("--warmup", f"must be >= 0, got {warmup}")
    if frames is not None and frames < 1:
        raise ConfigError("--frames", f"must be >= 1, got {frames}")
    if warmup_mode not in ("each", "cheapest"):
        raise ConfigError(f"--warmup-mode {warmup_mode}", "choose one of: each, cheapest")
    settings = settings or parse_bench_settings()
    if settings[0].name != "full":
        settings = [BenchSetting("full", {"budget": "all"}), *settings]
    base: dict[str, Any] = {"max_new_tokens": max_new_tokens, **(extra or {})}
    if frames is not None:
        duration = _duration(video)
        # exactly ``frames`` candidates, evenly spread: a sampling rate that yields more, capped
        base.setdefault("max_frames", frames)
        base.setdefault("fps", max(frames / max(duration, 1e-6), 1e-3) * 1.0001)
    device = getattr(getattr(pipe, "adapter", None), "device", "cpu")
    flop_model = FlopModel.from_model(pipe.adapter.model) if hasattr(pipe, "adapter") else None

    proc = psutil.Process()

    def one(setting: BenchSetting) -> dict[str, Any]:
        pipe.clear_cache()
        load_before = list(os.getloadavg())
        cpu0 = proc.cpu_times()
        start = time.perf_counter()
        with PeakMemory(device) as mem:
            answer = pipe.ask(video, question, **{**base, **setting.overrides})
        wall = time.perf_counter() - start
        cpu1 = proc.cpu_times()
        cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        stats = dict(answer.stats)
        flops = flop_model.estimate(prompt_len=stats.get("prompt_len") or 0, new_tokens=stats.get("new_tokens") or 0,
                                    tokens_encoded=stats.get("tokens_encoded") or 0,
                                    frames_encoded=stats.get("frames_planned") or 1) if flop_model else {"total": None}
        return {"stats": stats, "wall_s": wall, "cpu_s": cpu_s, "load_before": load_before, "load_after": list(os.getloadavg()),
                "peak_rss_bytes": mem.rss_bytes, "peak_cuda_bytes": mem.cuda_bytes,
                "flops": flops, "answer": answer.text}

    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in settings}
    # Ctrl-C always stops a bench, also when the interrupt is swallowed inside a run (a __del__)
    with Interrupts() as interrupts:
        for setting in (settings if warmup_mode == "each" else settings[-1:]):
            for i in range(warmup):
                if on_run:
                    on_run(f"warm-up {setting.name}", i)
                one(setting)
                interrupts.check()
        for i in range(repeat):
            for setting in settings:
                if on_run:
                    on_run(setting.name, i)
                runs[setting.name].append(one(setting))
                interrupts.check()
    rows = [_summarise(s.name, s.overrides, runs[s.name]) for s in settings]
    _ratios(rows)
    return BenchReport(model=str(getattr(pipe, "name", "?")), video=str(video), device=str(device),
                       frames=int(rows[0].get("frames_candidates") or (frames or 0)), repeat=repeat, warmup=warmup,
                       rows=rows, environment=_environment(pipe))


def _duration(video: str) -> float:
    import av

    try:
        with av.open(str(video)) as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = container.streams.video[0]
            return float(stream.duration * stream.time_base) if stream.duration else 0.0
    except (av.error.FFmpegError, IndexError, OSError) as err:
        raise ConfigError(video, f"cannot read the video ({err})") from None


def _environment(pipe: Any) -> dict[str, Any]:
    import platform

    import torch
    import transformers

    model = getattr(getattr(pipe, "adapter", None), "model", None)
    env = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform()}
    if model is not None:
        env["params"] = int(sum(p.numel() for p in model.parameters()))
        env["dtype"] = str(next(model.parameters()).dtype)
        env["family"] = getattr(pipe.adapter, "family", None)
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    env["machine"] = machine_info()  # CPU flags (bf16/AMX or not) and the load at the end of the bench
    return env
