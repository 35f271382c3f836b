"""Measuring one question: time per stage, time to first token, KV-cache bytes, peak memory.

How things are measured
-----------------------
- Stage times (``time_s``): wall clock around each stage; on CUDA the device is synchronised
  at both ends so asynchronous kernels are charged to the right stage. Stages: ``decode``
  (video decoding and sampling), ``score`` (frame relevance), ``select`` (keyframes and token
  allocation), ``encode`` (vision tower on the planned frames), ``reduce`` (token merging),
  ``build`` (prompt layout), ``prefill`` (``generate`` start -> first new token) and
  ``generate`` (first new token -> last new token). A stage served from a cache costs ~0.
- TTFT (``ttft_s``): wall time from the start of ``ask`` to the first new token, measured with
  a generation *streamer* (:class:`FirstTokenStreamer`): ``generate`` calls ``streamer.put``
  once with the prompt and then once per new token, so the second call marks the first token.
  No extra forward pass is run.
- KV cache (``kv_bytes``): bytes of every tensor held by the cache's layers after generation
  (keys/values, or the quantized payloads and scales of a quantized cache); when a cache press
  keeps entries outside the cache object (``quantize`` holds the packed low-precision part),
  the Pipeline reports the press's own byte count and keeps the cache's as ``kv_bytes_in_cache``.
- Memory: ``peak_rss_bytes`` is the largest resident set size (psutil) sampled at every stage
  boundary and at the first token; ``peak_cuda_bytes`` is ``torch.cuda.max_memory_allocated``
  over the question (reset at its start).
- ``decode_tokens_per_s``: (new tokens - 1) / ``generate`` time.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

import psutil
import torch
from transformers.generation.streamers import BaseStreamer

STAGES = ("decode", "score", "select", "encode", "reduce", "build", "prefill", "generate")


class FirstTokenStreamer(BaseStreamer):
    """Records when ``generate`` produced its first new token and when it finished."""

    def __init__(self, on_token: Any = None) -> None:
        self.calls = 0
        self.start_time = time.perf_counter()
        self.first_token_time: float | None = None
        self.end_time: float | None = None
        self._on_token = on_token

    def put(self, value: torch.Tensor) -> None:
        self.calls += 1
        if self.calls == 2:  # call 1 is the prompt
            self.first_token_time = time.perf_counter()
            if self._on_token is not None:
                self._on_token()

    def end(self) -> None:
        self.end_time = time.perf_counter()


def _tensor_bytes(obj: Any, seen: set[int]) -> int:
    if isinstance(obj, torch.Tensor):
        key = obj.data_ptr() if obj.numel() else id(obj)
        if key in seen:
            return 0
        seen.add(key)
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(x, seen) for x in obj)
    return 0


def kv_cache_bytes(cache: Any) -> int:
    """Bytes held by a transformers ``Cache`` (sum over ``cache.layers`` of their tensors)."""
    if cache is None:
        return 0
    seen: set[int] = set()
    layers = getattr(cache, "layers", None)
    if layers is None:  # legacy tuple-of-tuples cache
        return _tensor_bytes(list(cache), seen)
    return sum(_tensor_bytes(list(vars(layer).values()), seen) for layer in layers)


class StatsRecorder:
    """Collects the stats of one question (see the module docstring for the method)."""

    def __init__(self, device: torch.device | str = "cpu", *, on_stage: Any = None) -> None:
        self.device = torch.device(device)
        self.on_stage = on_stage  # called with each stage's name as it starts (progress displays)
        self.cuda = self.device.type == "cuda" and torch.cuda.is_available()
        self.t0 = time.perf_counter()
        self.time_s: dict[str, float] = {name: 0.0 for name in STAGES}
        self.values: dict[str, Any] = {}
        self._proc = psutil.Process()
        self.peak_rss = self._proc.memory_info().rss
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def sample_memory(self) -> None:
        self.peak_rss = max(self.peak_rss, self._proc.memory_info().rss)

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.announce(name)
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.time_s[name] = self.time_s.get(name, 0.0) + time.perf_counter() - start
            self.sample_memory()

    def announce(self, name: str) -> None:
        """Tell ``on_stage`` that stage ``name`` starts."""
        if self.on_stage is not None:
            self.on_stage(name)

    def streamer(self) -> FirstTokenStreamer:
        return FirstTokenStreamer(on_token=self.sample_memory)

    def record_generation(self, streamer: FirstTokenStreamer, new_tokens: int) -> None:
        """Split ``generate`` into prefill and decoding using the streamer's timestamps."""
        self._sync()
        end = streamer.end_time or time.perf_counter()
        first = streamer.first_token_time or end
        self.time_s["prefill"] += first - streamer.start_time
        self.time_s["generate"] += end - first
        self.values["ttft_s"] = first - self.t0
        self.values["new_tokens"] = int(new_tokens)
        gen = end - first
        self.values["decode_tokens_per_s"] = (new_tokens - 1) / gen if new_tokens > 1 and gen > 0 else None

    def set(self, **values: Any) -> None:
        self.values.update(values)

    def finish(self) -> dict[str, Any]:
        self.sample_memory()
        out: dict[str, Any] = dict(self.values)
        out["time_s"] = {k: round(v, 6) for k, v in self.time_s.items()}
        out["total_s"] = round(time.perf_counter() - self.t0, 6)
        out["peak_rss_bytes"] = int(self.peak_rss)
        out["peak_cuda_bytes"] = int(torch.cuda.max_memory_allocated(self.device)) if self.cuda else None
        return out
