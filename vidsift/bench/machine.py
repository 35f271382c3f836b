"""Where a number came from: the CPU model and the flags that matter for speed, cores, torch
threads and the load average, for every results file (benchmarks, probe summaries)."""

from __future__ import annotations

import os
import platform
from typing import Any


def machine_info() -> dict[str, Any]:
    """``machine``, ``cores``, ``torch``, ``threads``, ``load`` (1/5/15 min), and from /proc/cpuinfo
    (where it exists) ``cpu`` (model name) and ``cpu_flags`` (avx*, amx*, fma, f16c)."""
    import torch

    info: dict[str, Any] = {"machine": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                            "threads": torch.get_num_threads(), "load": list(os.getloadavg())}
    try:
        lines = open("/proc/cpuinfo").read().splitlines()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags"))
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c")))
    except (OSError, StopIteration):
        pass
    return info
