"""Resume keys: everything that changes a job's answer, hashed, so a resumed batch or evaluation
keeps a finished answer only when it would come out the same.

A key covers the model (its name, and for a local checkpoint folder the names, sizes and
modification times of its files), the answerer, the dtype, the options resolved from the default
budget, options and generation length and the job's overrides (`options_key`: `AskOptions`'
canonical form), the question text (for multiple choice: the whole prompt
with its options) and the video's content (a streaming BLAKE2b of the file, computed once per
file per run by `ContentHashes`; a URL counts by its address). A record whose key differs, or that
has none (written before keys existed), is answered again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .manifest import is_url

CHUNK_BYTES = 1 << 20


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b (128 bit) of a file's bytes, read in 1 MiB chunks (bounded memory)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ContentHashes:
    """Video path -> content digest, each file read once per run (`hashed` counts the reads)."""

    def __init__(self) -> None:
        self._seen: dict[tuple, str] = {}
        self.hashed = 0

    def __call__(self, video: str) -> str:
        if is_url(video) and not os.path.exists(video):  # a URL or protocol: its address
            return f"url:{video}"
        try:
            st = os.stat(video)
        except OSError:
            return f"missing:{os.path.abspath(video)}"  # the job fails; a later run with the file re-runs it
        where = (os.path.realpath(video), st.st_size, st.st_mtime_ns)
        if where not in self._seen:
            self._seen[where] = file_digest(video)
            self.hashed += 1
        return self._seen[where]


def model_identity(model: str | None) -> Any:
    """A model as it answers: the name, and for a local folder what its files are (name, size,
    mtime): a retrained checkpoint in the same folder is another model."""
    if not model or not Path(model).is_dir():
        return model
    return [model, sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(model).iterdir() if p.is_file())]


def options_key(spec: Any, overrides: dict[str, Any]) -> Any:
    """The options a job is answered with, resolved as the worker resolves them (`AskOptions`: the
    spec's budget, generation length and pipeline options, then the job's overrides) and written
    canonically (`AskSettings.canonical`: the budget and compression after presets, every plan
    setting, numbers normalised), so two spellings of one setting share a key and any change
    re-runs. Options that do not parse are keyed by their text (their jobs fail when answered)."""
    from ..errors import VidsiftError
    from ..pipeline.options import AskOptions, resolve

    try:
        defaults = AskOptions.from_kwargs(budget=spec.budget, **spec.options)  # the worker's pipeline defaults
        question = AskOptions.from_kwargs(**{"max_new_tokens": spec.max_new_tokens, **overrides})  # as it asks
        return resolve(defaults, question).canonical()
    except VidsiftError:
        return {"unparsed": [spec.budget, spec.max_new_tokens, spec.options, overrides]}


def job_key(job: Any, spec: Any, *, video_digest: str, model: Any) -> str:
    """The resume key of ``job`` answered under ``spec`` (a hex string)."""
    parts = {"model": model, "answerer": spec.answerer, "dtype": spec.dtype, "options": options_key(spec, job.overrides),
             "question": job.question, "video": video_digest}
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
