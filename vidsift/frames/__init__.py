"""Decoding and sampling video frames (PyAV reference backend, decord fast path)."""

from .types import DecodeReport, FrameBatch, VideoInfo

__all__ = ["DecodeReport", "FrameBatch", "VideoInfo"]
