"""Request options -> `AskOptions` for `Pipeline.ask`, and the JSON an answer becomes."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable

from ..errors import VidsiftError
from ..pipeline.choice import Choice, mc_prompt, parse_options
from ..pipeline.options import AskOptions, fields_for
from ._config import ServeConfig
from ._engine import Engine, text_tap
from ._errors import HTTPProblem
from ._media import MediaFile

# what a client may set per request: `AskOptions`'s fields for the "server" (`fields_for`), and
# "options" (multiple choice); this server's policy on top: no scorer that loads another model,
# nothing that reads files, bounded frames, tokens and fps, and no dense search (every candidate scored)
QUESTION_FIELDS = ("options",)  # part of the question (multiple choice), not of how it is answered
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


@dataclass(frozen=True)
class RequestOptions:
    """A request's options: the question options (`AskOptions`, validated once) and, for a
    multiple-choice question, its options (``choices``)."""

    ask: AskOptions
    choices: list[str] | None = None

    @property
    def max_new_tokens(self) -> int:
        return int(self.ask.max_new_tokens)

    def with_max_new_tokens(self, n: int) -> "RequestOptions":
        return replace(self, ask=replace(self.ask, max_new_tokens=n))


def ask_options(raw: Any, config: ServeConfig, *, where: str = "options") -> RequestOptions:
    """A request's validated options (unknown names, bad types and values: 400 naming ``where.field``)."""
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
    raw = {k: v for k, v in raw.items() if v is not None}
    allowed = sorted((*fields_for("server"), *QUESTION_FIELDS))
    for key in raw:
        if key not in allowed:
            raise HTTPProblem(400, f"{where}.{key}: unknown option; choose from: {', '.join(allowed)}")
    choices = raw.pop("options", None)
    if not isinstance(choices, (type(None), str, list)):
        raise HTTPProblem(400, f"{where}.options: wrong type {type(choices).__name__}")
    raw.setdefault("max_new_tokens", config.max_new_tokens)
    try:
        ask = AskOptions.from_json(raw, where=where, surface="server")
    except VidsiftError as err:
        raise HTTPProblem(400, str(err)) from None
    if ask.scorer is not None and str(ask.scorer).split(":")[0] not in _SCORERS:
        raise HTTPProblem(400, f"{where}.scorer: this server allows only {', '.join(_SCORERS)}")
    n = ask.max_new_tokens
    if not 1 <= int(n) <= config.max_new_tokens_limit:
        raise HTTPProblem(400, f"{where}.max_new_tokens: must be 1..{config.max_new_tokens_limit}, got {n}")
    for key in ("max_frames", "frames"):
        if getattr(ask, key) is not None and not 1 <= getattr(ask, key) <= MAX_FRAMES_LIMIT:
            raise HTTPProblem(400, f"{where}.{key}: must be 1..{MAX_FRAMES_LIMIT}")
    if ask.fps is not None and not 0 < ask.fps <= 30:
        raise HTTPProblem(400, f"{where}.fps: must be in (0, 30]")
    if ask.search is not None and ask.parsed("search")[0] == "dense":  # the mode as parsed (" dense" is dense)
        raise HTTPProblem(400, f"{where}.search: this server allows auto, on or off (a dense search scores every frame)")
    if choices is not None:
        try:
            choices = parse_options(choices, where=f"{where}.options")
        except VidsiftError as err:
            raise HTTPProblem(400, f"{where}.options: {err.reason}") from None
    return RequestOptions(ask=ask, choices=choices)


def ask_job(engine: Engine, media: MediaFile, question: str, options: RequestOptions,
            on_text: Callable[[str], None] | None = None) -> Callable[[], Any]:
    """The queued work of one question: ``Pipeline.ask`` with the request's `AskOptions` (errors
    naming the client's label). With ``options.choices`` the question is asked as multiple choice
    (the prompt `vidsift eval` sends) and the answer carries the chosen option (``choice``)."""
    choices = options.choices
    prompt = mc_prompt(question, choices) if choices else question

    def run() -> Any:
        try:
            with text_tap(engine.adapter, on_text):
                answer = engine.pipeline.ask(str(media.path), prompt, options.ask)
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
