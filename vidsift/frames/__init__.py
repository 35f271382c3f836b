"""Decoding and sampling video frames (PyAV reference backend, decord fast path).

    with open_video("talk.mp4") as video:          # typed errors, fast, before any bulk decoding
        video.info                                  # VideoInfo: true n_frames, display width/height
        frames = sample(video, fps=1, max_frames=64)   # FrameBatch by presentation time
        video.report                                # DecodeReport: asked vs delivered, errors

Frame ``i`` is the ``i``-th frame in presentation order in both backends; times are real pts.
"""

from ._probe import DEFAULT_MAX_PIXELS
from .errors import (
    DamagedVideoError, DecodeWarning, EmptyFileError, NoVideoStreamError, NotAFileError, NotAVideoError,
    TooLargeError, UnreadableStreamError, UnsupportedCodecError, VideoError, VideoNotFoundError,
)
from .reader import BACKENDS, DECODE_MAX_PIXELS, VideoReader, open_for_planning, open_video
from .sampling import DEFAULT_MAX_FRAMES, iter_chunks, plan_indices, sample, scan_keyframes
from .types import DecodeReport, FrameBatch, VideoInfo

__all__ = [
    "BACKENDS", "DEFAULT_MAX_FRAMES", "DEFAULT_MAX_PIXELS", "DecodeReport", "FrameBatch", "VideoInfo",
    "VideoReader", "open_video", "open_for_planning", "DECODE_MAX_PIXELS", "sample", "iter_chunks", "scan_keyframes", "plan_indices",
    "VideoError", "VideoNotFoundError", "NotAFileError", "EmptyFileError", "NotAVideoError",
    "NoVideoStreamError", "UnsupportedCodecError", "UnreadableStreamError", "DamagedVideoError",
    "TooLargeError", "DecodeWarning",
]
