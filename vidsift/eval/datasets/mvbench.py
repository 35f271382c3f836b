"""MVBench (Li et al., 2024, arXiv:2311.17005) loader.

Expected layout (the Hugging Face release ``OpenGVLab/MVBench``)::

    ROOT/json/<task>.json          e.g. action_sequence.json, one list per task
    ROOT/video/<source>/.../<file> e.g. video/star/Charades_v1_480/6H78U.mp4

Each entry: ``video`` (file name relative to the task's source folder), ``question``,
``candidates`` (option texts), ``answer`` (the correct text); ``start``/``end`` seconds when
the task uses a segment (kept in ``extra``). Videos are found by name anywhere under ROOT, so
the per-task source folders need no mapping. Tasks stored as frame folders are not videos:
those questions fail individually and are reported.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import ConfigError
from ..items import EvalItem, VideoIndex
from . import files


def load_candidates(root: Path, dataset: str, *, strip_task_number: bool = False) -> list[EvalItem]:
    """Shared by MVBench and MLVU: per-task JSON lists of video/question/candidates/answer."""
    paths = files(root, ("*.json",))
    if not paths:
        raise ConfigError(root, f"no {dataset} task files (ROOT/json/<task>.json)")
    videos = VideoIndex(root if root.is_dir() else root.parent)
    items = []
    for path in paths:
        task = path.stem.split("_", 1)[1] if strip_task_number and "_" in path.stem and path.stem.split("_", 1)[0].isdigit() else path.stem
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ConfigError(path, f"expected a list of {dataset} questions")
        for n, row in enumerate(data):
            if not row.get("candidates"):
                continue  # open-ended questions (MLVU sub_scene/summary) are not multiple choice
            try:
                options = [str(c) for c in row["candidates"]]
                answer = options.index(str(row["answer"]))
            except (KeyError, ValueError) as err:
                raise ConfigError(path, f"item {n}: answer is not one of the candidates ({err})") from None
            extra = {k: row[k] for k in ("start", "end", "question_type") if k in row}
            duration = row.get("duration")
            items.append(EvalItem(dataset=dataset, qid=f"{task}/{n}", video=videos.find(str(row["video"]), subdirs=(f"video/{path.stem}",)),
                                  question=str(row["question"]), options=options, answer=answer,
                                  task=str(row.get("question_type") or task),
                                  duration=None if duration is None else str(duration), extra=extra))
    return items


def load_mvbench(root: Path) -> list[EvalItem]:
    return load_candidates(root, "mvbench")
