"""Getting a request's video onto disk safely, and checking it before the model sees it.

- Uploads (multipart, a raw ``video/*`` body, a base64 ``data:`` URL) are streamed into a file
  in the server's private temporary folder, counting bytes as they come; past the cap the
  request fails with 413 and the partial file is removed. `MediaFile` deletes the file after
  use (``with``), whatever happens.
- Server-side paths (``{"path": ...}`` or a ``file://`` URL) must resolve (symlinks followed)
  inside one of the configured allowed roots; without roots, no path is readable (403).
- Remote ``http(s)://`` video URLs are refused unless the server was started with
  ``allow_remote_urls`` (``--allow-remote-urls``); then they are fetched (urllib's redirect
  rules, never to ``file:``; a timeout; the same size cap) into a private file like an upload.
- `check_video` opens the file (headers only) and rejects what is not a decodable video, or is
  longer or larger than the limits, with a one-line 4xx reason naming what the client sent.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO
from urllib.parse import unquote, urlparse

from ..errors import VidsiftError
from ._config import ServeConfig
from ._errors import HTTPProblem

_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_MIME_SUFFIX = {"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "video/x-matroska": ".mkv",
                "video/mp2t": ".ts", "video/x-msvideo": ".avi", "video/ogg": ".ogv", "video/mpeg": ".mpg"}


class MediaFile:
    """A video on disk for one request: ``path`` to decode, ``label`` for messages (the client's
    name for it, never a server path), ``owned`` files are deleted on close."""

    def __init__(self, path: Path, label: str, owned: bool) -> None:
        self.path, self.label, self.owned = path, label, owned

    def close(self) -> None:
        if self.owned:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "MediaFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clean(self, message: str) -> str:
        """``message`` with the server-side path replaced by the client's label."""
        return message.replace(str(self.path), self.label)


def _suffix(name: str | None, mime: str | None = None) -> str:
    suffix = Path(name or "").suffix
    if _SUFFIX.match(suffix):
        return suffix.lower()
    return _MIME_SUFFIX.get((mime or "").split(";")[0].strip().lower(), ".mp4")


def _new_file(config: ServeConfig, suffix: str) -> tuple[Path, BinaryIO]:
    folder = config.tmp_dir or Path(tempfile.gettempdir())
    path = Path(folder) / f"upload-{uuid.uuid4().hex}{suffix}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return path, os.fdopen(fd, "wb")


def _too_large(label: str, limit: int) -> HTTPProblem:
    return HTTPProblem(413, f"{label}: upload larger than the server's limit of {limit / 1e6:.3g} MB")


def _append(out: BinaryIO, chunk: bytes, size: int, config: ServeConfig, label: str) -> int:
    """Write one piece of an upload; 413 once the total passes the cap. Returns the new total."""
    size += len(chunk)
    if size > config.max_upload_bytes:
        raise _too_large(label, config.max_upload_bytes)
    out.write(chunk)
    return size


def _finished(path: Path, size: int, label: str) -> MediaFile:
    if size == 0:
        path.unlink(missing_ok=True)
        raise HTTPProblem(400, f"{label}: empty upload")
    return MediaFile(path, label, owned=True)


async def save_stream(chunks: AsyncIterator[bytes], config: ServeConfig, *, label: str, suffix: str) -> MediaFile:
    """Stream ``chunks`` into a private temporary file; 413 (and no file left) past the cap."""
    path, out = _new_file(config, suffix)
    size = 0
    try:
        with out:
            async for chunk in chunks:
                size = _append(out, chunk, size, config, label)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return _finished(path, size, label)


def save_copy(src: BinaryIO, config: ServeConfig, *, label: str, suffix: str) -> MediaFile:
    """Copy an already-spooled upload part into a private file (capped like `save_stream`)."""
    path, out = _new_file(config, suffix)
    size = 0
    try:
        with out:
            while chunk := src.read(1 << 20):
                size = _append(out, chunk, size, config, label)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return _finished(path, size, label)


def save_data_url(url: str, config: ServeConfig, *, label: str = "video_url") -> MediaFile:
    """Decode a ``data:<mime>;base64,<payload>`` URL into a private file (capped, in 1 MB pieces)."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise HTTPProblem(400, f"{label}: a data URL must look like data:video/mp4;base64,<payload>")
    mime = head[5:-7]
    if 3 * (len(payload) // 4) > config.max_upload_bytes + 3:
        raise _too_large(label, config.max_upload_bytes)
    path, out = _new_file(config, _suffix(None, mime))
    try:
        with out:
            step = 4 * (1 << 18)  # whole base64 quanta
            payload = "".join(payload.split()) if any(c.isspace() for c in payload[:1024]) else payload
            for start in range(0, len(payload), step):
                out.write(base64.b64decode(payload[start:start + step], validate=True))
    except (binascii.Error, ValueError):
        path.unlink(missing_ok=True)
        raise HTTPProblem(400, f"{label}: the data URL's payload is not valid base64") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if path.stat().st_size == 0:
        path.unlink(missing_ok=True)
        raise HTTPProblem(400, f"{label}: empty video")
    return MediaFile(path, label, owned=True)


def resolve_path(text: str, config: ServeConfig) -> MediaFile:
    """A server-side path the client named, if it lies inside an allowed root (else 403/404)."""
    label = text if len(text) <= 200 else text[:199] + "…"
    if not config.allowed_roots:
        raise HTTPProblem(403, f"{label}: this server reads no server-side paths (start it with --allowed-root DIR)")
    if "\x00" in text:
        raise HTTPProblem(400, f"{label!r}: bad path")
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = config.allowed_roots[0] / path
    real = Path(os.path.realpath(path))
    if not any(real == root or root in real.parents for root in config.allowed_roots):
        raise HTTPProblem(403, f"{label}: outside the server's allowed roots")
    if not real.exists():
        raise HTTPProblem(404, f"{label}: no such file under the allowed roots")
    if not real.is_file():
        raise HTTPProblem(400, f"{label}: not a file")
    return MediaFile(real, label, owned=False)


def from_url(url: str, config: ServeConfig, *, label: str = "video_url") -> MediaFile:
    """A chat completion's video URL: ``data:`` (inline), ``file://`` or a path (allowed roots)."""
    if not isinstance(url, str) or not url.strip():
        raise HTTPProblem(400, f"{label}: missing url")
    url = url.strip()
    if url.startswith("data:"):
        return save_data_url(url, config, label=label)
    scheme = urlparse(url).scheme.lower()
    if scheme == "file":
        return resolve_path(unquote(urlparse(url).path), config)
    if scheme in ("http", "https") and config.allow_remote_urls:
        return fetch_url(url, config, label=label)
    if scheme in ("http", "https", "rtsp", "rtmp", "ftp", "udp", "tcp"):
        raise HTTPProblem(400, f"{label}: this server does not fetch remote URLs; send the video as a "
                               "base64 data: URL or upload it")
    if len(scheme) > 1:
        raise HTTPProblem(400, f"{label}: unsupported URL scheme {scheme!r}")
    return resolve_path(url, config)


def fetch_url(url: str, config: ServeConfig, *, label: str = "video_url") -> MediaFile:
    """Download an ``http(s)://`` video into a private file (capped like an upload)."""
    import urllib.error
    import urllib.request

    shown = url if len(url) <= 200 else url[:199] + "…"
    request = urllib.request.Request(url, headers={"User-Agent": "vidsift-serve"})
    try:
        response = urllib.request.urlopen(request, timeout=config.fetch_timeout_s)  # noqa: S310 - scheme checked
    except urllib.error.HTTPError as err:
        raise HTTPProblem(400, f"{label}: fetching {shown} failed: HTTP {err.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise HTTPProblem(400, f"{label}: cannot fetch {shown}: {reason}") from None
    with response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > config.max_upload_bytes:
            raise _too_large(label, config.max_upload_bytes)
        path, out = _new_file(config, _suffix(urlparse(url).path, response.headers.get("Content-Type")))
        size = 0
        try:
            with out:
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > config.max_upload_bytes:
                        raise _too_large(label, config.max_upload_bytes)
                    out.write(chunk)
        except HTTPProblem:
            path.unlink(missing_ok=True)
            raise
        except OSError as err:
            path.unlink(missing_ok=True)
            raise HTTPProblem(400, f"{label}: fetching {shown} failed: {err}") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise HTTPProblem(400, f"{label}: {shown} is empty")
    return MediaFile(path, shown, owned=True)


def check_video(media: MediaFile, config: ServeConfig) -> dict[str, Any]:
    """Open ``media`` (headers only) and enforce the limits; returns the `VideoInfo` as a dict."""
    from ..frames import open_video

    try:
        with open_video(media.path, max_pixels=None) as video:
            info = video.info
    except VidsiftError as err:
        raise HTTPProblem(400, media.clean(str(err))) from None
    except Exception as err:  # noqa: BLE001 - a decoder failure on hostile input is still the input's fault
        raise HTTPProblem(400, f"{media.label}: not a readable video ({type(err).__name__})") from None
    if info.duration_s and info.duration_s > config.max_duration_s:
        raise HTTPProblem(422, f"{media.label}: video is {info.duration_s:.1f} s long; this server takes at most "
                               f"{config.max_duration_s:g} s")
    if info.width * info.height > config.max_pixels:
        raise HTTPProblem(422, f"{media.label}: frames are {info.width}x{info.height}; this server takes at most "
                               f"{config.max_pixels} pixels per frame")
    return {**info.to_dict(), "path": media.label}
