"""Video-MME (Fu et al., 2024, arXiv:2405.21075) loader.

Expected layout (the Hugging Face release ``lmms-lab/Video-MME``)::

    ROOT/videomme/test-00000-of-00001.parquet   (or ROOT/*.parquet, or a .json/.jsonl export)
    ROOT/data/<videoID>.mp4                     (the unzipped videos_chunked_*.zip)

Rows: ``videoID``, ``question_id``, ``question``, ``options`` (``["A. ...", "B. ...", ...]``),
``answer`` (a letter), ``duration`` (short/medium/long), ``task_type``. The original nested JSON
(one object per video with a ``questions`` list) is accepted too. Reading parquet needs
``pyarrow`` (``pip install 'vidsift[eval]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ...errors import ConfigError
from ..items import LETTERS, EvalItem, VideoIndex, strip_letter
from . import files


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(path, "reading parquet needs pyarrow: pip install 'vidsift[eval]'") from None
        yield from pq.read_table(path).to_pylist()
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            yield from (json.loads(line) for line in fh if line.strip())
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        for row in data if isinstance(data, list) else data.get("data", []):
            if "questions" in row:  # original nested format: one object per video
                video = {k: v for k, v in row.items() if k != "questions"}
                for q in row["questions"]:
                    yield {**video, **q}
            else:
                yield row


def load_videomme(root: Path) -> list[EvalItem]:
    paths = files(root, ("*.parquet", "*.json", "*.jsonl"), subdirs=("", "videomme"))
    if not paths:
        raise ConfigError(root, "no Video-MME annotations (*.parquet or *.json) in ROOT or ROOT/videomme")
    videos = VideoIndex(root if root.is_dir() else root.parent)
    items = []
    for path in paths:
        for n, row in enumerate(_rows(path)):
            try:
                options = [strip_letter(o) for o in row["options"]]
                answer = LETTERS.index(str(row["answer"]).strip().upper()[:1])
                vid = str(row.get("videoID") or row["video_id"])
                qid = str(row.get("question_id") or f"{vid}-{n}")
            except (KeyError, ValueError, TypeError) as err:
                raise ConfigError(path, f"row {n + 1}: not a Video-MME row ({err})") from None  # 1-based, as batch counts lines
            items.append(EvalItem(dataset="videomme", qid=qid, video=videos.find(vid, subdirs=("data",)),
                                  question=str(row["question"]), options=options, answer=answer,
                                  task=str(row.get("task_type") or "all"), duration=row.get("duration"),
                                  extra={"domain": row.get("domain"), "sub_category": row.get("sub_category")}))
    return items
