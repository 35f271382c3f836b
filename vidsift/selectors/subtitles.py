"""Subtitle files (.srt, .vtt) as timed text segments, and finding them beside a video."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})")
_TAG = re.compile(r"<[^>]+>|\{\\[^}]*\}")


@dataclass(frozen=True)
class Segment:
    """One cue: text shown from ``start_s`` to ``end_s``."""

    start_s: float
    end_s: float
    text: str


def _seconds(m: re.Match) -> float:
    h, mnt, s, ms = m.groups()
    return int(h or 0) * 3600 + int(mnt) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def parse_subtitles(text: str, *, source: str = "subtitles") -> list[Segment]:
    """Cues of an SRT or WebVTT document, sorted by start time; cue numbers, VTT headers,
    NOTE/STYLE blocks, cue settings and formatting tags are ignored."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    segments = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.strip().split("\n") if ln.strip()]
        timing = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
        if timing is None:
            continue
        left, _, right = lines[timing].partition("-->")
        a, b = _TIME.search(left), _TIME.search(right)
        if a is None or b is None:
            raise ConfigError(source, f"bad cue timing {lines[timing]!r}")
        body = " ".join(_TAG.sub("", ln) for ln in lines[timing + 1 :]).strip()
        start, end = _seconds(a), _seconds(b)
        if body and end >= start:
            segments.append(Segment(start, end, body))
    if not segments:
        raise ConfigError(source, "no subtitle cues found (expected SRT or WebVTT)")
    return sorted(segments, key=lambda s: (s.start_s, s.end_s))


def find_subtitles(video: str) -> Path | None:
    """``movie.srt`` / ``movie.vtt`` or ``movie.<lang>.srt|vtt`` beside ``movie.mp4`` (first by name)."""
    p = Path(video)
    if not p.name:
        return None
    for ext in (".srt", ".vtt"):
        if p.with_suffix(ext).is_file():
            return p.with_suffix(ext)
    if p.parent.is_dir():
        found = sorted(q for q in p.parent.glob(f"{glob_escape(p.stem)}.*") if q.suffix.lower() in (".srt", ".vtt"))
        if found:
            return found[0]
    return None


def glob_escape(s: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", s)


def load_subtitles(path: str | Path) -> list[Segment]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(path, f"cannot read subtitles: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_subtitles(text, source=str(path))
