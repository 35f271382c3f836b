"""Decoding and sampling video frames (PyAV reference backend, decord fast path, torchcodec opt-in).

    with open_video("talk.mp4") as video:          # typed errors, fast, before any bulk decoding
        video.info                                  # VideoInfo: true n_frames, display width/height
        frames = sample(video, fps=1, max_frames=64)   # FrameBatch by presentation time
        video.report                                # DecodeReport: asked vs delivered, errors

Frame ``i`` is the ``i``-th frame in presentation order in every backend; times are real pts.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

# name -> private module; loaded on first use, so importing vidsift.frames (or the light
# vidsift.frames.types) loads no decoder
_LAZY = {
    "DEFAULT_MAX_PIXELS": "._probe",
    **dict.fromkeys(("DamagedVideoError", "DecodeWarning", "EmptyFileError", "NoVideoStreamError", "NotAFileError",
                     "NotAVideoError", "TooLargeError", "UnreadableStreamError", "UnsupportedCodecError", "VideoError",
                     "VideoNotFoundError"), ".errors"),
    **dict.fromkeys(("BACKENDS", "VideoReader", "open_for_planning", "open_video"), ".reader"),
    **dict.fromkeys(("DEFAULT_MAX_FRAMES", "iter_chunks", "plan_indices", "sample", "scan_keyframes"), ".sampling"),
    **dict.fromkeys(("DECODE_MAX_PIXELS", "DecodeReport", "FrameBatch", "LIVE_SCHEMES", "PLAYLIST_FORMATS", "VideoInfo"), ".types"),
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_attributes(__name__, _LAZY)
