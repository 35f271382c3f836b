"""decord's FFmpeg log: captured, not printed.

decord ships its own FFmpeg (``decord.libs/libavutil-*.so``, separate from PyAV's), whose
``av_log`` writes lines such as ``[h264 @ 0x55d0...] error while decoding MB 0 3`` straight to
the process's stderr, past Python. `install` replaces that library's log callback (ctypes) with
one that keeps error lines (``AV_LOG_ERROR`` and worse; nothing is printed) in a small queue, and
`drain` hands them to the decord backend, which then re-reads the frames of that call with PyAV:
PyAV reports each damaged frame in the `DecodeReport` and the one-line warning. So the raw lines
leave the terminal, and the errors they announced still reach the user. With ``--debug``
(``VIDSIFT_DEBUG=1``) nothing is installed and FFmpeg prints as before.

The queue is per process: when several decord readers decode at once, a line may trigger
another reader's PyAV re-read (more work, never a lost error).
"""

from __future__ import annotations

import collections
import ctypes
import glob
import os
import re
import threading

from ..logs import debugging

AV_LOG_ERROR = 16
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_lines: collections.deque[str] = collections.deque(maxlen=256)
_lock = threading.Lock()
_state: dict[str, object] = {}  # "lib", "callback" (kept alive while installed)
_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+\]")


def _libavutil() -> str | None:
    """Path of the libavutil decord loaded (its wheel's bundled copy), None when not found."""
    import decord

    here = os.path.dirname(os.path.abspath(decord.__file__))
    for pattern in (os.path.join(here, os.pardir, "decord.libs", "libavutil*.so*"),
                    os.path.join(here, ".dylibs", "libavutil*.dylib")):
        found = sorted(glob.glob(pattern))
        if found:
            return os.path.normpath(found[0])
    try:  # a source build links a system FFmpeg: the libavutil this process has mapped
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libavutil" in line and "/av.libs/" not in line}
        return sorted(paths)[0] if len(paths) == 1 else None
    except OSError:
        return None


def _on_log(avcl: int | None, level: int, fmt: int | None, args: int | None) -> None:
    if level > AV_LOG_ERROR or not fmt:
        return
    try:
        lib = _state["lib"]
        line = ctypes.create_string_buffer(1024)
        prefix = ctypes.c_int(1)
        lib.av_log_format_line2(avcl, level, fmt, args, line, len(line), ctypes.byref(prefix))
        text = _ADDRESS.sub("]", line.value.decode("utf-8", "replace")).strip()
        if text:
            _lines.append(text)
    except Exception:  # noqa: BLE001 - never raise into C
        pass


def install() -> bool:
    """Capture decord's FFmpeg log (once per process); False when debugging or not possible, and
    then FFmpeg prints as it always did."""
    with _lock:
        if "callback" in _state:
            return True
        if debugging():
            return False
        try:
            path = _libavutil()
            if path is None:
                return False
            lib = ctypes.CDLL(path)  # the copy already loaded: dlopen returns the same handle
            lib.av_log_format_line2.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            lib.av_log_format_line2.restype = ctypes.c_int
            lib.av_log_set_callback.argtypes = [_CALLBACK]
            lib.av_log_set_level.argtypes = [ctypes.c_int]
        except (OSError, AttributeError, ImportError):
            return False
        _state["lib"] = lib
        _state["callback"] = callback = _CALLBACK(_on_log)
        lib.av_log_set_level(AV_LOG_ERROR)  # warnings and chatter are not even formatted
        lib.av_log_set_callback(callback)
        return True


def drain() -> list[str]:
    """The error lines captured since the last call (oldest first)."""
    out = []
    while True:
        try:
            out.append(_lines.popleft())
        except IndexError:
            return out
