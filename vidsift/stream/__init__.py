"""Live sources and a rolling visual-token memory for streaming question answering.

Public API (loaded lazily, so ``python -m vidsift.stream.sender`` stays light)::

    StreamSession(adapter, source, StreamOptions(budget=..., fps=..., query=..., every_s=...))  # .ask .events .stats .close
    open_session(pipe or adapter, source, budget=..., fps=...)   # a started StreamSession (keywords: StreamOptions fields)
    open_source("0" | "rtsp://..." | "clip.mp4" | "lavfi:testsrc2")  # LiveSource kinds, registry SOURCES
    StreamMemory, TemporalDedup, EvictionPolicy, make_cache (IncrementalCache), ReprefillAnswerer, Capture
"""

from __future__ import annotations

from ..lazy import lazy_attributes

_LAZY = {
    "Capture": ".capture", "CaptureStats": ".capture",
    "TemporalDedup": ".dtd", "same_cell_match": "..selectors.cells",
    "EvictionPolicy": ".evict", "temporal_redundancy": ".evict",
    "IncrementalCache": ".kvcache", "ReprefillAnswerer": ".kvcache", "supports_incremental": ".kvcache",
    "make_cache": ".kvcache", "QwenMRoPECache": ".kv_qwen", "LlavaOnevisionCache": ".kv_llava",
    "MemoryEntry": ".memory", "StreamMemory": ".memory",
    "StreamAnswer": ".answering", "StreamOptions": ".options", "StreamSession": ".session", "open_session": ".session",
    "EventQueue": ".events", "Ingest": ".ingest", "MemoryStore": ".store", "Answerer": ".answering", "Trigger": ".trigger",
    "SOURCES": ".sources", "LiveFrame": ".sources", "LiveSource": ".sources", "open_source": ".sources",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_attributes(__name__, _LAZY)
