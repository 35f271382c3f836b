"""MLVU (Zhou et al., 2024, arXiv:2406.04264) loader (multiple-choice dev set).

Expected layout (the Hugging Face release ``MLVU/MVLU``, ``MLVU/`` folder)::

    ROOT/json/<n>_<task>.json      e.g. 1_plotQA.json, 3_ego.json, ...
    ROOT/video/<n>_<task>/<video>  e.g. video/1_plotQA/movie101_66.mp4

Each entry: ``video``, ``duration``, ``question``, ``candidates``, ``answer`` (the correct
text), ``question_type`` (the task). The open-ended tasks (sub-scene captioning, summary) carry
no candidates and are skipped.
"""

from __future__ import annotations

from pathlib import Path

from ..items import EvalItem
from .mvbench import load_candidates


def load_mlvu(root: Path) -> list[EvalItem]:
    return load_candidates(root, "mlvu", strip_task_number=True)
