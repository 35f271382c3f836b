"""NExT-QA (Xiao et al., 2021, arXiv:2105.08276) multiple-choice loader.

Expected layout (the official ``doc-doc/NExT-QA`` release)::

    ROOT/val.csv (or test.csv / train.csv; ``split=`` picks one, default val)
    ROOT/map_vid_vidorID.json      optional: {"4010069381": "0000/4010069381"}
    ROOT/NExTVideo/<dir>/<video>.mp4

CSV columns: ``video``, ``question``, ``a0`` ... ``a4``, ``answer`` (index of the correct
option), ``qid``, ``type`` (CW, CH, TN, TC, TP, DL, DC, DO: the task).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ...errors import ConfigError
from ..items import EvalItem, VideoIndex


def load_nextqa(root: Path, *, split: str = "val") -> list[EvalItem]:
    if root.is_file():
        path, base = root, root.parent
    else:
        base = root
        candidates = [root / f"{split}.csv", root / "nextqa" / f"{split}.csv"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            found = sorted(root.glob("*.csv"))
            if len(found) != 1:
                raise ConfigError(root, f"no NExT-QA {split}.csv (found: {', '.join(p.name for p in found) or 'none'})")
            path = found[0]
    mapping_file = base / "map_vid_vidorID.json"
    mapping = json.loads(mapping_file.read_text()) if mapping_file.is_file() else {}
    videos = VideoIndex(base, folders=("NExTVideo", "videos", "video", ""))
    items = []
    with path.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            try:
                options = [row[f"a{i}"].strip() for i in range(5) if row.get(f"a{i}") not in (None, "")]
                vid = str(row["video"]).strip()
                answer = int(row["answer"])
            except (KeyError, ValueError) as err:
                raise ConfigError(path, f"line {n}: not a NExT-QA row ({err})") from None
            rel = mapping.get(vid, vid)
            items.append(EvalItem(dataset="nextqa", qid=f"{vid}_{row.get('qid', n)}", video=videos.find(rel, subdirs=("NExTVideo",)),
                                  question=row["question"].strip().rstrip("?") + "?", options=options, answer=answer,
                                  task=str(row.get("type") or "all")))
    return items
