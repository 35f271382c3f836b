"""Append-only JSONL results that make batches and evaluations resumable.

Every finished job is one JSON line, written and flushed as soon as it completes, so a crash
or Ctrl-C loses at most the jobs in flight. On restart `ResultsFile.done_ids` says which jobs
already have a successful record (failed jobs are retried unless ``retry_errors=False``);
a truncated last line from a killed run is ignored. Reading keeps the latest record per id.
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

    def append(self, record: dict[str, Any]) -> None:
        self.extend([record])

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            if fh.tell() > 0 and not _ends_with_newline(self.path):
                fh.write("\n")  # never glue a record onto a torn line
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
