"""What a batch is made of: `Job` (one video + one question) and `read_manifest`, which turns a
folder of videos, a JSONL file or a CSV file into jobs.

Manifest formats
----------------
* a folder: every video file in it (sorted, non-recursive) with the same ``question``;
* ``.jsonl``: one object per line with ``video`` and ``question`` (``id`` optional, any other
  keys are kept in ``meta`` and copied to the output record);
* ``.csv``: a header row with ``video`` and ``question`` columns (``id`` optional, other
  columns kept in ``meta``).

Relative video paths are resolved against the manifest's folder. Job ids default to the video's
file name plus the line number, so resuming a batch recognises finished jobs.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".ts", ".mpg", ".mpeg", ".flv", ".wmv", ".gif")


@dataclass
class Job:
    """One question about one video.

    id:        unique within the batch; the key of resuming
    video:     path or URL
    question:  the text asked (for multiple choice: the full prompt with options)
    overrides: per-job keyword options for the answerer (e.g. ``{"budget": "25%"}``)
    meta:      anything else, copied into the output record
    """

    id: str
    video: str
    question: str
    overrides: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not str(self.id):
            raise ConfigError("job", "empty id")
        if not str(self.video):
            raise ConfigError(self.id, "job has no video")
        if not isinstance(self.question, str) or not self.question.strip():
            raise ConfigError(self.id, "job has no question")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "video": self.video, "question": self.question,
                "overrides": dict(self.overrides), "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Job":
        return cls(id=str(data["id"]), video=str(data["video"]), question=str(data["question"]),
                   overrides=dict(data.get("overrides") or {}), meta=dict(data.get("meta") or {}))


def _resolve(video: str, base: Path) -> str:
    if "://" in video or Path(video).is_absolute():
        return video
    return str((base / video).resolve())


def _row_to_job(row: dict[str, Any], *, where: str, number: int, base: Path, question: str | None) -> Job:
    row = {str(k).strip(): v for k, v in row.items() if k is not None}
    video = row.pop("video", None) or row.pop("path", None)
    text = row.pop("question", None) or question
    if not video:
        raise ConfigError(where, f"line {number}: missing 'video'")
    if not text:
        raise ConfigError(where, f"line {number}: missing 'question' (give one per line or --question)")
    job_id = row.pop("id", None)
    job_id = str(job_id) if job_id not in (None, "") else f"{Path(str(video)).name}#{number}"
    overrides = row.pop("overrides", None) or {}
    return Job(id=job_id, video=_resolve(str(video), base), question=str(text), overrides=dict(overrides), meta=row)


def read_manifest(source: str | Path, *, question: str | None = None) -> list[Job]:
    """Jobs from a folder of videos (needs ``question``), a ``.jsonl`` or a ``.csv`` manifest."""
    path = Path(source)
    if not path.exists():
        raise ConfigError(source, "no such file or folder")
    if path.is_dir():
        if not question:
            raise ConfigError(source, "a folder of videos needs --question")
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise ConfigError(source, f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
        return _unique([Job(id=p.name, video=str(p.resolve()), question=question) for p in videos], source)
    base = path.parent.resolve()
    suffix = path.suffix.lower()
    jobs: list[Job] = []
    if suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ConfigError(source, f"line {number}: not JSON ({err.msg})") from None
                if not isinstance(row, dict):
                    raise ConfigError(source, f"line {number}: expected a JSON object")
                jobs.append(_row_to_job(row, where=str(source), number=number, base=base, question=question))
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "video" not in [f.strip() for f in reader.fieldnames]:
                raise ConfigError(source, "CSV manifest needs a header with a 'video' column")
            for number, row in enumerate(reader, 2):
                jobs.append(_row_to_job(row, where=str(source), number=number, base=base, question=question))
    else:
        raise ConfigError(source, "manifest must be a folder of videos, a .jsonl or a .csv file")
    if not jobs:
        raise ConfigError(source, "manifest holds no jobs")
    return _unique(jobs, source)


def _unique(jobs: list[Job], source: object) -> list[Job]:
    seen: set[str] = set()
    for job in jobs:
        if job.id in seen:
            raise ConfigError(source, f"duplicate job id {job.id!r}")
        seen.add(job.id)
    return jobs
