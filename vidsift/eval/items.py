"""One multiple-choice question (`EvalItem`) and how to find its video under a dataset root.

Every loader returns `EvalItem`s with the options as plain texts (letters stripped) and the
correct option as an index, so prompts, extraction and scoring are the same for all datasets.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..pipeline.choice import LETTERS

_LETTER_PREFIX = re.compile(r"^\s*\(?([A-J])\)?\s*[.:)]\s*")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".gif", ".flv", ".mpg", ".wmv")


@dataclass
class EvalItem:
    """One question: ``options[answer]`` is correct; ``task`` groups accuracy."""

    dataset: str
    qid: str
    video: str
    question: str
    options: list[str]
    answer: int
    task: str = "all"
    duration: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 2 <= len(self.options) <= len(LETTERS):
            raise ConfigError(f"{self.dataset}:{self.qid}", f"needs 2-{len(LETTERS)} options, got {len(self.options)}")
        if not 0 <= self.answer < len(self.options):
            raise ConfigError(f"{self.dataset}:{self.qid}", f"answer index {self.answer} outside {len(self.options)} options")

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]


def strip_letter(option: str) -> str:
    """``"A. a red car"`` -> ``"a red car"``."""
    return _LETTER_PREFIX.sub("", str(option), count=1).strip()


class VideoIndex:
    """Finds a dataset's video by relative path or by file name anywhere under ``root``.

    Official releases differ in folder layout (MVBench nests videos per source dataset,
    NExT-QA per VidOR folder), so after the expected folders a one-time recursive scan maps
    file names (with and without extension) to paths.
    """

    def __init__(self, root: Path, *, folders: tuple[str, ...] = ("", "video", "videos", "data")) -> None:
        self.root = root
        self.folders = folders
        self._by_name: dict[str, str] | None = None

    def _scan(self) -> dict[str, str]:
        if self._by_name is None:
            self._by_name = {}
            for dirpath, _, files in os.walk(self.root):
                for name in files:
                    if name.lower().endswith(VIDEO_SUFFIXES):
                        full = os.path.join(dirpath, name)
                        self._by_name.setdefault(name, full)
                        self._by_name.setdefault(os.path.splitext(name)[0], full)
        return self._by_name

    def find(self, video: str, *, subdirs: tuple[str, ...] = ()) -> str:
        """Path of ``video``; when it is missing, the expected path (the job then fails alone)."""
        rel = Path(video)
        names = [rel] if rel.suffix else [rel.with_suffix(s) for s in (".mp4", ".mkv", ".webm", ".avi")]
        for folder in (*subdirs, *self.folders):
            for name in names:
                cand = self.root / folder / name
                if cand.is_file():
                    return str(cand)
        hit = self._scan().get(rel.name) or self._scan().get(rel.stem if rel.suffix else rel.name)
        if hit:
            return hit
        return str(self.root / (subdirs[0] if subdirs else self.folders[-1]) / names[0])
