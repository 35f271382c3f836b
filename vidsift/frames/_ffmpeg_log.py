"""The log of a bundled or system FFmpeg that PyAV does not own (decord's, torchcodec's): captured,
not printed.

decord ships its own FFmpeg (``decord.libs/libavutil-*.so``) and torchcodec links the system's
(``libavutil.so.57`` on Debian 12), both separate from PyAV's. Their ``av_log`` writes lines such
as ``[h264 @ 0x55d0...] error while decoding MB 0 3`` straight to the process's stderr, past Python
(torchcodec silences them instead, hiding the damage). `capture` replaces that library's log
callback (ctypes) with one that keeps error lines (``AV_LOG_ERROR`` and worse; nothing is printed)
in a small queue of its own, and `FFmpegLog.drain` hands them to the backend, which then re-reads
the frames with PyAV: PyAV reports each damaged frame in the `DecodeReport` and the one-line
warning. So the raw lines leave the terminal, and the errors they announced still reach the user.
With ``--debug`` (``VIDSIFT_DEBUG=1``) decord's log is left alone and FFmpeg prints as before;
torchcodec's is still captured (the backend depends on it) and each line is also printed.

A library's queue is per process: when several of its readers decode at once, a line may trigger
another reader's PyAV re-read (more work, never a lost error). FFmpeg calls the callback for every
line at every level (the level filter is inside its default callback), about two a packet:
`FFmpegLog.paused` hands logging back to FFmpeg's own quiet callback for work whose lines are not
wanted. At exit FFmpeg's callback is restored (a decoder closed then must not call into Python).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import glob
import os
import re
import sys
import threading

from ..logs import debugging

AV_LOG_QUIET, AV_LOG_ERROR = -8, 16
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+\]")
_WHEEL_LIBS = ("/av.libs/", "/decord.libs/")  # the FFmpeg copies PyAV's and decord's wheels bundle
_lock = threading.Lock()
_captured: dict[str, "FFmpegLog"] = {}  # libavutil path -> its capture (kept alive with its callback)


class FFmpegLog:
    """The captured log of one libavutil: its error lines, oldest first."""

    def __init__(self, lib: ctypes.CDLL, *, echo: bool) -> None:
        self.lib, self.echo = lib, echo
        self.lines: collections.deque[str] = collections.deque(maxlen=256)
        self.callback = _CALLBACK(self._on_log)
        self._own = ctypes.cast(self.callback, ctypes.c_void_p)
        self._default = ctypes.cast(lib.av_log_default_callback, ctypes.c_void_p)

    def _on_log(self, avcl: int | None, level: int, fmt: int | None, args: int | None) -> None:
        if level > AV_LOG_ERROR or not fmt:
            return
        try:
            line = ctypes.create_string_buffer(1024)
            prefix = ctypes.c_int(1)
            self.lib.av_log_format_line2(avcl, level, fmt, args, line, len(line), ctypes.byref(prefix))
            text = _ADDRESS.sub("]", line.value.decode("utf-8", "replace")).strip()
            if text:
                self.lines.append(text)
                if self.echo:
                    print(text, file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - never raise into C
            pass

    def start(self) -> None:
        self.lib.av_log_set_level(AV_LOG_ERROR)  # warnings and chatter are not even formatted
        self.lib.av_log_set_callback(self._own)

    def arm(self) -> None:
        """Set the level back to errors (torchcodec sets it to quiet each time it opens a decoder,
        and then nothing would reach the callback)."""
        self.lib.av_log_set_level(AV_LOG_ERROR)

    def stop(self) -> None:
        self.lib.av_log_set_level(AV_LOG_QUIET)  # what torchcodec sets; decord's lines were captured, not shown
        self.lib.av_log_set_callback(self._default)

    @contextlib.contextmanager
    def paused(self):
        """FFmpeg's own callback, quiet, while the block runs (torchcodec's scan of a 30-minute file
        logs 90,000 trace lines: 30 ms through Python). The caller keeps other threads from
        decoding with this library meanwhile."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def drain(self) -> list[str]:
        """The error lines captured since the last call (oldest first)."""
        out = []
        while True:
            try:
                out.append(self.lines.popleft())
            except IndexError:
                return out


def decord_libavutil() -> str | None:
    """Path of the libavutil decord loaded (its wheel's bundled copy), None when not found."""
    import decord

    here = os.path.dirname(os.path.abspath(decord.__file__))
    for pattern in (os.path.join(here, os.pardir, "decord.libs", "libavutil*.so*"),
                    os.path.join(here, ".dylibs", "libavutil*.dylib")):
        found = sorted(glob.glob(pattern))
        if found:
            return os.path.normpath(found[0])
    paths = _mapped(exclude=("/av.libs/",))  # a source build links a system FFmpeg: the one mapped
    return paths[0] if len(paths) == 1 else None


def system_libavutil() -> str | None:
    """Path of the one libavutil mapped into this process that no wheel bundles (torchcodec's: the
    system FFmpeg it links against), None when there is none or several."""
    paths = _mapped(exclude=_WHEEL_LIBS)
    return paths[0] if len(paths) == 1 else None


def _mapped(*, exclude: tuple[str, ...]) -> list[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libavutil" in line}
    except OSError:
        return []
    return sorted(p for p in paths if not any(x in p for x in exclude))


def capture(path: str | None, *, when_debugging: bool = False) -> FFmpegLog | None:
    """The capture of the libavutil at ``path`` (made once per library and process); None when it
    cannot be made, or when debugging unless ``when_debugging`` (then captured lines are printed too)."""
    with _lock:
        if path in _captured:
            return _captured[path]
        if path is None or (debugging() and not when_debugging):
            return None
        try:
            lib = ctypes.CDLL(path)  # the copy already loaded: dlopen returns the same handle
            lib.av_log_format_line2.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            lib.av_log_format_line2.restype = ctypes.c_int
            lib.av_log_set_callback.argtypes = [ctypes.c_void_p]
            lib.av_log_set_level.argtypes = [ctypes.c_int]
            log = FFmpegLog(lib, echo=debugging())
        except (OSError, AttributeError):
            return None
        if not _captured:
            atexit.register(_stop_all)
        _captured[path] = log
        log.start()
        return log


def _stop_all() -> None:
    for log in _captured.values():
        log.stop()
