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
  (keys/values, or the quantized payloads and scales of a quantized cache), counted by
  `kv_bytes_per_layer`; when a cache press keeps entries outside the cache object (``quantize``
  holds the packed low-precision part), the Pipeline reports the press's own byte count and keeps
  the cache's as ``kv_bytes_in_cache``.
- Memory: ``peak_rss_bytes`` is the largest resident set size (psutil) sampled at every stage
  boundary and at the first token; ``peak_cuda_bytes`` is ``torch.cuda.max_memory_allocated``
  over the question (reset at its start).
- ``decode_tokens_per_s``: (new tokens - 1) / ``generate`` time.

Under a call's `CacheLayout` (pruners, presses), `CallObserver` measures that one generate call
from the model's own forward hooks: the prefill forward's time (``prefill_forward_s``: the model
alone, where ``ttft_s`` spans the whole question), decode steps/s (``decode_steps_per_s``), KV bytes per layer
(the same `kv_bytes_per_layer`, plus what members hold outside the cache), kept lengths, and prefill
FLOPs from the rows each layer processed (`decoder_prefill_flops`, the one count `bench.flops`
also uses for its whole-question estimate).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

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


def kv_bytes_per_layer(cache: Any) -> list[int]:
    """Bytes held by each layer of a transformers ``Cache`` (every tensor of ``cache.layers[i]``,
    a tensor shared between layers counted once); [] for no cache."""
    if cache is None:
        return []
    seen: set[int] = set()
    layers = getattr(cache, "layers", None)
    if layers is None:  # legacy tuple-of-tuples cache
        return [_tensor_bytes(list(layer), seen) for layer in cache]
    return [_tensor_bytes(list(vars(layer).values()), seen) for layer in layers]


def kv_cache_bytes(cache: Any) -> int:
    """Bytes held by a transformers ``Cache`` (sum of `kv_bytes_per_layer`)."""
    return sum(kv_bytes_per_layer(cache))


def decoder_prefill_flops(layer_params: float, d_attn: int, rows: int) -> float:
    """FLOPs of one decoder layer's prefill over ``rows`` tokens: 2 x params x rows for its linear
    maps ("C = 2N" per token, Kaplan et al., arXiv:2001.08361) + 2 x rows^2 x d_attn for causal
    QK^T and AV (each rows^2 / 2 x d_attn multiply-adds). The one count `CallObserver` and the
    bench's whole-question estimate (`vidsift.bench.flops`) share."""
    return 2.0 * layer_params * rows + 2.0 * rows * rows * d_attn


class CallObserver:
    """The stats of one generate call under a `CacheLayout`, published into every dict that
    ``observe`` registered at the end of every forward:

    prefill_forward_s (the prefill forward's wall time), decode_steps_per_s (decode steps / time
    since the prefill ended), kv_bytes_per_layer and kv_bytes (`kv_bytes_per_layer` of the cache plus what
    ``add_bytes`` reporters hold outside it), kv_len_per_layer, prefill_rows_per_layer, prefill_flops
    (`decoder_prefill_flops` of every layer with the rows it kept), decode_steps.
    """

    def __init__(self, layers: Sequence[torch.nn.Module]) -> None:
        self.n_layers = len(layers)
        self.layer_params = [sum(p.numel() for p in layer.parameters()) for layer in layers]
        self.d_attn = [layer.self_attn.q_proj.out_features for layer in layers]
        self.dicts: list[dict[str, Any]] = []
        self.reporters: list[Callable[[int], int]] = []
        self.reset()

    def reset(self) -> None:
        """A new prefill starts (a fresh cache)."""
        self._t0 = self._t_prefill_end = 0.0
        self.timing: dict[str, float] = {}

    def observe(self, stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """Fill ``stats`` (a new dict when None) as the call runs; returns it."""
        stats = {} if stats is None else stats
        self.dicts.append(stats)
        return stats

    def add_bytes(self, reporter: Callable[[int], int]) -> None:
        """``reporter(layer) -> bytes`` a member holds for that layer outside the cache object."""
        self.reporters.append(reporter)

    def forward_start(self) -> None:
        self._t0 = time.perf_counter()

    def forward_end(self, cache: Any, *, prefill: bool, step: int, kv_len: list[int], prefill_rows: list[int]) -> None:
        """Time the forward that just ended (``step``: decode steps done so far) and publish."""
        now = time.perf_counter()
        if prefill:
            self._t_prefill_end = now
            self.timing = {"prefill_forward_s": now - self._t0}
        else:
            elapsed = now - self._t_prefill_end
            self.timing["decode_steps_per_s"] = step / elapsed if elapsed > 0 else float("nan")
        in_cache = kv_bytes_per_layer(cache)
        per_layer = [(in_cache[i] if i < len(in_cache) else 0) + sum(rep(i) for rep in self.reporters)
                     for i in range(self.n_layers)]
        flops = sum(decoder_prefill_flops(params, d, rows)
                    for params, d, rows in zip(self.layer_params, self.d_attn, prefill_rows))
        update = {
            "kv_bytes_per_layer": per_layer, "kv_bytes": int(sum(per_layer)), "kv_len_per_layer": kv_len,
            "prefill_rows_per_layer": list(prefill_rows), "prefill_flops": flops, "decode_steps": step,
            **self.timing,
        }
        for d in self.dicts:
            d.update(update)


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
