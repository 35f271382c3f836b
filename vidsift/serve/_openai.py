"""The OpenAI-compatible chat completion: request parsing and response/chunk shapes.

A request is answered from its video and the text of its last user message. Video content
parts are the ones vLLM accepts: ``{"type": "video_url", "video_url": {"url": URL}}`` where
URL is a base64 ``data:video/...`` URL, a ``file://`` URL or a path under an allowed root.
``max_completion_tokens`` / ``max_tokens`` set the tokens to generate; decoding is greedy
(``temperature``/``top_p`` are accepted and ignored); ``n`` must be 1. vidsift's own options
(budget, preset, prune, kv, ...) ride in an extra ``"vidsift": {...}`` field (the OpenAI client's
``extra_body``). Replies carry ``usage`` and a ``vidsift`` field with the plan and stats. The
server holds one model, so the request's ``model`` is not checked (replies name the served one);
system and assistant messages are not part of the prompt.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._config import ServeConfig
from ._errors import HTTPProblem
from ._ask import RequestOptions, ask_options

VIDEO_PARTS = ("video_url", "input_video", "video")


@dataclass
class ChatRequest:
    question: str
    video_url: str
    options: RequestOptions
    model: str
    stream: bool
    include_usage: bool
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))


def _video_url(part: dict[str, Any]) -> str:
    value = part.get(part["type"])
    if isinstance(value, dict):
        value = value.get("url")
    if not isinstance(value, str) or not value:
        raise HTTPProblem(400, f"messages: a {part['type']} part needs {{\"url\": ...}}")
    return value


def parse_chat(body: Any, config: ServeConfig) -> ChatRequest:
    if not isinstance(body, dict):
        raise HTTPProblem(400, "body: must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HTTPProblem(400, "messages: must be a non-empty list")
    if body.get("n") not in (None, 1):
        raise HTTPProblem(400, "n: only n=1 is supported")
    question, video = None, None
    for message in reversed(messages):
        if not isinstance(message, dict):
            raise HTTPProblem(400, "messages: each message must be an object")
        if message.get("role") != "user":
            continue
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise HTTPProblem(400, "messages: content must be a string or a list of parts")
        texts = []
        for part in parts:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise HTTPProblem(400, "messages: each content part needs a type")
            if part["type"] == "text":
                texts.append(str(part.get("text") or ""))
            elif part["type"] in VIDEO_PARTS:
                video = video or _video_url(part)
            elif part["type"] == "image_url":
                raise HTTPProblem(400, "messages: image parts are not supported; send a video_url part")
            else:
                raise HTTPProblem(400, f"messages: unsupported content part type {part['type']!r}")
        if question is None and any(t.strip() for t in texts):
            question = "\n".join(t for t in texts if t.strip())
        if question is not None and video is not None:
            break
    if video is None:
        raise HTTPProblem(400, "messages: no video; add a {\"type\": \"video_url\", \"video_url\": {\"url\": ...}} part")
    if not question:
        raise HTTPProblem(400, "messages: the user message has no question text")
    options = ask_options(body.get("vidsift"), config, where="vidsift")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= config.max_new_tokens_limit:
            raise HTTPProblem(400, f"max_tokens: must be an integer 1..{config.max_new_tokens_limit}")
        options = options.with_max_new_tokens(limit)
    stream_options = body.get("stream_options") or {}
    return ChatRequest(question=question, video_url=video, options=options, model=str(body.get("model") or ""),
                       stream=bool(body.get("stream")), include_usage=bool(stream_options.get("include_usage")))


def usage(stats: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(stats.get("prompt_len") or 0), int(stats.get("new_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reason(stats: dict[str, Any], max_new_tokens: int) -> str:
    return "length" if int(stats.get("new_tokens") or 0) >= max_new_tokens else "stop"


def completion(req: ChatRequest, model: str, text: str, stats: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": req.id, "object": "chat.completion", "created": req.created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason(stats, req.options.max_new_tokens), "logprobs": None}],
            "usage": usage(stats), "vidsift": extra}


def chunk(req: ChatRequest, model: str, delta: dict[str, Any], finish: str | None = None,
          usage_: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": req.id, "object": "chat.completion.chunk", "created": req.created, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
    if usage_ is not None:
        out["choices"], out["usage"] = [], usage_
    return out
