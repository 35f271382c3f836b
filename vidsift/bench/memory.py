"""Peak memory of one measured run: host RSS sampled by a background thread (the increase over
the RSS at the start of the run, so settings run in one process compare fairly: a process's
all-time peak only ever grows) and, on CUDA, ``torch.cuda.max_memory_allocated`` minus the
allocation at the start."""

from __future__ import annotations

import threading
from typing import Any

import psutil
import torch


class PeakMemory:
    """Context manager: ``with PeakMemory(device) as m: ...``; then ``m.rss_bytes``, ``m.cuda_bytes``."""

    def __init__(self, device: torch.device | str = "cpu", *, interval_s: float = 0.002) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.rss_bytes = 0
        self.cuda_bytes: int | None = None
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __enter__(self) -> "PeakMemory":
        self._start = self._peak = self._proc.memory_info().rss
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._cuda_start = torch.cuda.memory_allocated(self.device)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.rss_bytes = int(self._peak - self._start)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.cuda_bytes = int(torch.cuda.max_memory_allocated(self.device) - self._cuda_start)
