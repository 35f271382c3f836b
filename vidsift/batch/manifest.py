"""What a batch is made of: `Job` (one video + one question) and `read_manifest`, which turns a
folder of videos, a JSONL file or a CSV file into jobs.

Manifest formats
----------------
* a folder: every video file in it (sorted, non-recursive) with the same ``question``;
* ``.jsonl``: one object per line with ``video`` and ``question`` (``id`` optional, any other
  keys are kept in ``meta`` and copied to the output record);
* ``.csv``: a header row with ``video`` and ``question`` columns (``id`` optional, other
  columns kept in ``meta``).

A row's ``options`` (a list, or ``"red,green,blue"``; in CSV the latter) makes it a multiple-choice
question: the job asks the prompt `vidsift eval` sends (`vidsift.pipeline.choice.mc_prompt`) and
its record carries ``choice`` (index, letter, option), as ``vidsift ask --options`` does.

Relative video paths are resolved against the manifest's folder. Job ids default to the video's
file name plus the line number, so resuming a batch recognises finished jobs.

Safe inputs: a manifest is data, not a program. Every video must resolve inside the manifest's
folder (or one of ``roots``) unless ``allow_outside`` (``--allow-outside``): ``/etc/passwd`` and
``../x.mp4`` are refused. The check is on where the path leads (``..`` collapsed, every symlink
resolved): a link inside the folder to a file or folder outside it is refused like the path it
names, in a folder manifest too; ``--allow-outside`` lets links (and paths) lead anywhere. URLs
(``http://``, ``file:``, any ``scheme:``) are refused unless ``allow_urls`` (``--allow-urls``); write ``./a:b.mp4`` for a file
whose name has a colon. A row's ``overrides`` may only set the budget and plan settings (`ROW_OPTIONS`: the
`AskOptions` fields for the "manifest", validated as the row is read), and a scorer only when it
loads no checkpoint (`ROW_SCORERS`): a row cannot make a worker load a path or Hub id.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..pipeline.choice import mc_prompt, parse_options
from ..pipeline.options import AskOptions, fields_for

ROW_OPTIONS = fields_for("manifest")  # what a row's overrides may set: the budget and plan settings of `AskOptions`
QUESTION_FIELDS = ("options",)  # a row's multiple-choice options: part of its question
ROW_SCORERS = ("uniform", "mllm")  # scorers that load no checkpoint of their own
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # http:, file:, rtsp:, concat:, ... (not C:)
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


def is_url(text: str) -> bool:
    """``scheme:...`` (``http://``, ``file:``, ``concat:``): what FFmpeg would open as a protocol."""
    return "://" in text or bool(_SCHEME.match(text))


def inside(path: str | os.PathLike, roots: "list[Path] | tuple[Path, ...]") -> bool:
    """Whether ``path`` (made absolute, ``..`` collapsed, every symlink resolved: where it leads)
    lies in a root (resolved too)."""
    full = os.path.realpath(path)
    return any(full == r or full.startswith(r.rstrip(os.sep) + os.sep) for r in (os.path.realpath(r) for r in roots))


def check_location(video: str, *, roots: "list[Path] | tuple[Path, ...]", allow_outside: bool = False,
                   allow_urls: bool = False) -> str | None:
    """Why ``video`` (a URL, or a path as the manifest resolves it) may not be read, None when it
    may: a URL without ``allow_urls``, a path outside every root without ``allow_outside``."""
    if is_url(video):
        return None if allow_urls else "a URL; pass --allow-urls to fetch URLs (a file whose name has a colon: write ./NAME)"
    if allow_outside or inside(video, roots):
        return None
    leads = os.path.realpath(video)
    via = f"a symlink to {leads}, " if leads != os.path.normpath(os.path.abspath(video)) else ""
    return f"{via}outside {' and '.join(str(r) for r in roots)}; pass --allow-outside to read it"


def _check_overrides(overrides: Any, *, where: str, number: int) -> dict[str, Any]:
    """A row's overrides validated as `AskOptions` (`AskOptions.from_row`), as the given fields."""
    options = AskOptions.from_row(overrides, where=where, number=number)
    scorer = options.scorer
    if scorer is not None and (not isinstance(scorer, str) or scorer.split(":", 1)[0] not in ROW_SCORERS):
        raise ConfigError(where, f"line {number}: a row's scorer may only be {' or '.join(ROW_SCORERS)} "
                                 "(one that loads a checkpoint is chosen for the whole batch)")
    return options.given()


def _resolve(video: str, base: Path) -> str:
    if is_url(video) or Path(video).is_absolute():
        return video
    return os.path.normpath(base / video)


def _row_to_job(row: dict[str, Any], *, where: str, number: int, base: Path, question: str | None,
                roots: list[Path], allow_outside: bool, allow_urls: bool) -> Job:
    row = {str(k).strip(): v for k, v in row.items() if k is not None}
    video = row.pop("video", None) or row.pop("path", None)
    text = row.pop("question", None) or question
    if not video:
        raise ConfigError(where, f"line {number}: missing 'video'")
    if not text:
        raise ConfigError(where, f"line {number}: missing 'question' (give one per line or --question)")
    choices = row.pop("options", None)
    if choices not in (None, ""):  # multiple choice: the prompt vidsift eval sends; the record names the choice
        try:
            choices = parse_options(choices, where="options")
        except ConfigError as err:
            raise ConfigError(where, f"line {number}: options: {err.reason}") from None
        text = mc_prompt(str(text), choices)
        row["options"] = choices
    job_id = row.pop("id", None)
    job_id = str(job_id) if job_id not in (None, "") else f"{Path(str(video)).name}#{number}"
    overrides = _check_overrides(row.pop("overrides", None) or {}, where=where, number=number)
    resolved = _resolve(str(video), base)
    refused = check_location(resolved, roots=roots, allow_outside=allow_outside, allow_urls=allow_urls)
    if refused:
        raise ConfigError(where, f"line {number}: {video}: {refused}")
    return Job(id=job_id, video=resolved, question=str(text), overrides=overrides, meta=row)


def read_manifest(source: str | Path, *, question: str | None = None, allow_outside: bool = False,
                  allow_urls: bool = False, roots: "list[str | Path] | None" = None) -> list[Job]:
    """Jobs from a folder of videos (needs ``question``), a ``.jsonl`` or a ``.csv`` manifest.

    Videos must lie inside the manifest's folder or one of ``roots``, unless ``allow_outside``;
    URLs need ``allow_urls``; rows override plan settings only (see the module docstring)."""
    path = Path(source)
    if not path.exists():
        raise ConfigError(source, "no such file or folder")
    if path.is_dir():
        if not question:
            raise ConfigError(source, "a folder of videos needs --question")
        videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise ConfigError(source, f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
        for p in videos:  # a link in the folder to a file outside it
            refused = check_location(str(p), roots=[path.resolve(), *(Path(r) for r in roots or [])],
                                     allow_outside=allow_outside)
            if refused:
                raise ConfigError(source, f"{p.name}: {refused}")
        return _unique([Job(id=p.name, video=str(p.resolve()), question=question) for p in videos], source)
    base = path.parent.resolve()
    safe = dict(roots=[base, *(Path(r) for r in roots or [])], allow_outside=allow_outside, allow_urls=allow_urls)
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
                jobs.append(_row_to_job(row, where=str(source), number=number, base=base, question=question, **safe))
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "video" not in [f.strip() for f in reader.fieldnames]:
                raise ConfigError(source, "CSV manifest needs a header with a 'video' column")
            for number, row in enumerate(reader, 2):
                jobs.append(_row_to_job(row, where=str(source), number=number, base=base, question=question, **safe))
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
