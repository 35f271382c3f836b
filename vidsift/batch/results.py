"""Append-only JSONL results that make batches and evaluations resumable.

Every finished job is one JSON line, written and flushed as soon as it completes, so a crash
or Ctrl-C loses at most the jobs in flight. On restart `ResultsFile.done_ids` says which jobs
already have a successful record (failed jobs are retried unless ``retry_errors=False``);
a truncated last line from a killed run is ignored, and cut off before the next record is written
(`ResultsFile.repair`, which a resumed batch runs first), so the file stays valid JSONL for other
readers. Reading keeps the latest record per id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import ConfigError


class ResultsFile:
    """A JSONL file of result records keyed by ``record["id"]``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ConfigError(path, "is a folder; give a .jsonl file")

    def records(self) -> Iterator[dict[str, Any]]:
        """Every well-formed record in file order (a torn last line is skipped)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed run
                if isinstance(record, dict) and "id" in record:
                    yield record

    def latest(self) -> dict[str, dict[str, Any]]:
        """id -> last record written for it."""
        out: dict[str, dict[str, Any]] = {}
        for record in self.records():
            out[str(record["id"])] = record
        return out

    def done_ids(self, *, retry_errors: bool = True) -> set[str]:
        latest = self.latest()
        if not retry_errors:
            return set(latest)
        return {i for i, r in latest.items() if not r.get("error")}

    def repair(self) -> int:
        """Cut a torn last line (no newline, not JSON: a run killed mid-write) off the file; a whole
        record that only lacks its newline gets one. Returns the bytes cut (0: nothing torn)."""
        if not self.path.is_file() or self.path.stat().st_size == 0 or _ends_with_newline(self.path):
            return 0
        size = self.path.stat().st_size
        with self.path.open("rb+") as fh:
            keep, end = 0, size  # keep: the bytes up to the last newline, found reading backwards
            while end > 0:
                start = max(0, end - (1 << 16))
                fh.seek(start)
                nl = fh.read(end - start).rfind(b"\n")
                if nl >= 0:
                    keep = start + nl + 1
                    break
                end = start
            fh.seek(keep)
            tail = fh.read()
            try:
                json.loads(tail)
            except (ValueError, RecursionError):  # torn (or not JSON at all): cut it
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
                return size - keep
            fh.write(b"\n")  # a whole record missing its newline: keep it
        return 0

    def append(self, record: dict[str, Any]) -> None:
        self.extend([record])

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repair()  # never glue a record onto a torn line, never leave one in the file
        with self.path.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, default=_jsonable) + "\n")
                fh.flush()
            os.fsync(fh.fileno())


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays, tensors, dataclasses and paths in stats -> plain JSON."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
