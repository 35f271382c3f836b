"""Loaders for public video multiple-choice benchmarks, registered by name.

``load_dataset("videomme", root)`` -> list of `EvalItem`. Each loader's module docstring gives
the folder layout it expects (the one the official release unpacks to); a file path instead of
a folder is also accepted (its folder is then searched for the videos).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import ConfigError
from ...registry import Registry
from ..items import EvalItem

DATASETS: Registry = Registry("dataset", {
    "mlvu": "vidsift.eval.datasets.mlvu:load_mlvu",
    "mvbench": "vidsift.eval.datasets.mvbench:load_mvbench",
    "nextqa": "vidsift.eval.datasets.nextqa:load_nextqa",
    "videomme": "vidsift.eval.datasets.videomme:load_videomme",
})

def load_dataset(name: str, root: str | Path, *, limit: int | None = None, allow_outside: bool = False,
                 **options) -> list[EvalItem]:
    """Items of dataset ``name`` under ``root`` (the first ``limit`` when given).

    Annotations are data: every video they name must lie inside the dataset folder (``root``, or
    the folder of an annotation file given as ``root``), as written (``..`` collapsed, symlinks
    not followed), unless ``allow_outside`` (``--allow-outside``); URLs are refused."""
    from ...batch.manifest import check_location

    loader = DATASETS.get(name)
    path = Path(root)
    if not path.exists():
        raise ConfigError(root, "no such dataset folder or file")
    items = loader(path, **options)
    if not items:
        raise ConfigError(root, f"no {name} questions found (see vidsift/eval/README.md for the layout)")
    folder = path if path.is_dir() else path.parent
    seen: set[str] = set()
    for item in items:
        if item.qid in seen:
            raise ConfigError(root, f"duplicate question id {item.qid!r}")
        seen.add(item.qid)
        refused = check_location(item.video, roots=[folder], allow_outside=allow_outside)
        if refused:
            raise ConfigError(root, f"question {item.qid}: video {item.video}: {refused}")
    return items[:limit] if limit else items


def files(root: Path, patterns: tuple[str, ...], *, subdirs: tuple[str, ...] = ("", "json")) -> list[Path]:
    """Annotation files: ``root`` itself, or matches of ``patterns`` in ``root``/``subdirs``."""
    if root.is_file():
        return [root]
    found: list[Path] = []
    for sub in subdirs:
        for pattern in patterns:
            found.extend(sorted((root / sub).glob(pattern)))
    return list(dict.fromkeys(found))

