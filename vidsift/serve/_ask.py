"""Request options -> `Pipeline.ask` overrides, and the JSON an answer becomes."""

from __future__ import annotations

import json
from typing import Any, Callable

from ..errors import VidsiftError
from ..pipeline.choice import Choice, mc_prompt, parse_options
from ._config import ServeConfig
from ._engine import Engine, text_tap
from ._errors import HTTPProblem
from ._media import MediaFile

# what a client may set per request (no scorer that loads another model, nothing that reads files)
_OPTIONS = {"budget": (str, int, float), "preset": (str,), "prune": (str,), "kv": (str,), "max_new_tokens": (int,),
            "fps": (int, float), "max_frames": (int,), "frames": (int,), "start_s": (int, float), "end_s": (int, float),
            "selector": (str,), "allocator": (str,), "merger": (str,), "temporal": (str,), "resize": (bool,),
            "scorer": (str,), "options": (str, list)}  # options: multiple choice, "a,b,c" or ["a", "b", "c"]
_SCORERS = ("uniform", "mllm")
MAX_FRAMES_LIMIT = 256


def jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def to_json(data: Any) -> Any:
    """``data`` made of plain JSON types (numpy/torch scalars become numbers)."""
    return json.loads(json.dumps(data, default=jsonable))


def ask_options(raw: Any, config: ServeConfig, *, where: str = "options") -> dict[str, Any]:
    """Validated `Pipeline.ask` overrides from a request (unknown names and bad types: 400)."""
    if raw is None:
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply
            raise HTTPProblem(400, f"{where}: not a JSON object") from None
    if isinstance(raw, list):  # a bare list of options: multiple choice with the server's defaults
        raw = {"options": raw}
    if not isinstance(raw, dict):
        raise HTTPProblem(400, f"{where}: must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key not in _OPTIONS:
            raise HTTPProblem(400, f"{where}.{key}: unknown option; choose from: {', '.join(sorted(_OPTIONS))}")
        types = _OPTIONS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise HTTPProblem(400, f"{where}.{key}: wrong type {type(value).__name__}")
        out[key] = value
    if "scorer" in out and str(out["scorer"]).split(":")[0] not in _SCORERS:
        raise HTTPProblem(400, f"{where}.scorer: this server allows only {', '.join(_SCORERS)}")
    n = out.get("max_new_tokens", config.max_new_tokens)
    if not 1 <= int(n) <= config.max_new_tokens_limit:
        raise HTTPProblem(400, f"{where}.max_new_tokens: must be 1..{config.max_new_tokens_limit}, got {n}")
    out["max_new_tokens"] = int(n)
    for key in ("max_frames", "frames"):
        if key in out and not 1 <= out[key] <= MAX_FRAMES_LIMIT:
            raise HTTPProblem(400, f"{where}.{key}: must be 1..{MAX_FRAMES_LIMIT}")
    if "fps" in out and not 0 < out["fps"] <= 30:
        raise HTTPProblem(400, f"{where}.fps: must be in (0, 30]")
    if "options" in out:
        try:
            out["options"] = parse_options(out["options"], where=f"{where}.options")
        except VidsiftError as err:
            raise HTTPProblem(400, f"{where}.options: {err.reason}") from None
    return out


def ask_job(engine: Engine, media: MediaFile, question: str, options: dict[str, Any],
            on_text: Callable[[str], None] | None = None) -> Callable[[], Any]:
    """The queued work of one question: ``Pipeline.ask`` (errors naming the client's label). With
    ``options["options"]`` the question is asked as multiple choice (the prompt `vidsift eval`
    sends) and the answer carries the chosen option (``choice``)."""
    choices = options.get("options")
    overrides = {k: v for k, v in options.items() if k != "options"}
    prompt = mc_prompt(question, choices) if choices else question

    def run() -> Any:
        try:
            with text_tap(engine.adapter, on_text):
                answer = engine.pipeline.ask(str(media.path), prompt, **overrides)
        except VidsiftError as err:
            raise HTTPProblem(400, media.clean(str(err))) from None
        if choices:
            answer.choice = Choice.of(answer.text, choices)
        engine.metrics.add_answer(answer.stats)
        return answer

    return run


def answer_json(answer: Any, media: MediaFile) -> dict[str, Any]:
    """``Answer.to_dict()`` as plain JSON, the server-side path replaced by the client's label."""
    text = json.dumps(answer.to_dict(), default=jsonable)
    text = text.replace(json.dumps(str(media.path))[1:-1], json.dumps(media.label)[1:-1])
    return json.loads(text)
