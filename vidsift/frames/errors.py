"""Typed errors for videos that cannot be (fully) decoded.

Each message is one line, ``"<path>: <reason>"``, so the CLI prints ``error: <path>: <reason>``.
All are :class:`VideoError`, a :class:`vidsift.errors.VidsiftError`.
"""

from __future__ import annotations

from ..errors import VidsiftError


class VideoError(VidsiftError):
    """A video file or stream that cannot be opened or decoded as asked."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The path does not exist."""


class NotAFileError(VideoError):
    """The path is a directory (or another non-file)."""


class EmptyFileError(VideoError):
    """The file has 0 bytes."""


class NotAVideoError(VideoError):
    """No container format recognised (random bytes, text, ...)."""


class NoVideoStreamError(VideoError):
    """A media file without a video stream (audio only, subtitles only)."""


class UnsupportedCodecError(VideoError):
    """The video codec has no decoder in this FFmpeg build."""


class UnreadableStreamError(VideoError):
    """The video stream exists but no frame can be decoded from it (or the file cannot be read)."""


class DamagedVideoError(VideoError):
    """The file is truncated or corrupted: raised instead of a partial result when ``strict=True``,
    and always when not even the container index survives (an mp4 cut before its ``moov`` atom)."""


class TooLargeError(VideoError):
    """Frames exceed the pixel budget (``max_pixels``): rejected before decoding."""




class DecodeWarning(UserWarning):
    """Emitted (``warnings.warn``) when a read returns fewer frames than asked for, or suspect ones."""


__all__ = [
    "VideoError", "VideoNotFoundError", "NotAFileError", "EmptyFileError", "NotAVideoError",
    "NoVideoStreamError", "UnsupportedCodecError", "UnreadableStreamError", "DamagedVideoError",
    "TooLargeError", "DecodeWarning",
]
