"""Measuring what a budget buys: per-stage time, TTFT, decode speed, KV bytes, peak memory and
FLOPs of each setting against the full-token run (`vidsift bench`), plus a synthesised video
of any length for benchmarks without a clip at hand."""

from .flops import FlopModel
from .memory import PeakMemory
from .report import bench_table, write_json, write_plot
from .runner import BenchReport, BenchSetting, parse_bench_settings, run_bench
from .synth import synthesize_video

__all__ = ["BenchReport", "BenchSetting", "FlopModel", "PeakMemory", "bench_table", "parse_bench_settings",
           "run_bench", "synthesize_video", "write_json", "write_plot"]
