"""lmms-eval model plugin: ``lmms_eval --model vidsift --model_args pretrained=PATH,budget=25%``
runs lmms-eval's video tasks (videomme, mvbench, mlvu, nextqa_mc_test, ...) through a vidsift
`Pipeline`, so published task definitions score vidsift's budgets and methods.

Registration: vidsift's ``pyproject.toml`` declares the entry point
``[project.entry-points."lmms_eval.models"] vidsift = "vidsift.eval.lmms_plugin:manifest"``;
lmms-eval (``ModelRegistryV2``, 0.5+; checked against 0.7.3) loads every manifest in that
group at start-up and resolves ``--model vidsift`` to `VidsiftLMM`.

model_args (``key=value`` comma-separated): ``pretrained`` (folder, Hub id or random:ARCH),
``budget`` (2048, 0.25, 25% or a preset), ``prune``, ``kv`` (method specs), ``device``,
``dtype``, ``max_frames``, ``fps``, ``scorer``, ``selector``, ``max_new_tokens`` (default for
tasks that do not set one). Only ``generate_until`` is supported: video MC tasks generate.
"""

from __future__ import annotations

from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from ..errors import ConfigError

MODEL_ID = "vidsift"
_PLAN_KEYS = ("max_frames", "fps", "scorer", "selector", "allocator", "merger", "prune", "kv")


def manifest():
    """The entry-point payload lmms-eval's model registry loads."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.VidsiftLMM")


def _first_video(visuals: Any) -> str:
    items = visuals if isinstance(visuals, (list, tuple)) else [visuals]
    for item in items:
        if isinstance(item, str):
            return item
        if isinstance(item, dict) and isinstance(item.get("path") or item.get("video"), str):
            return item.get("path") or item.get("video")
    raise ConfigError(repr(visuals)[:80], "vidsift answers about videos: the task gave no video path")


def _cut_at(text: str, until: Any) -> str:
    stops = [until] if isinstance(until, str) else list(until or [])
    for stop in stops:
        if stop and stop in text:
            text = text.split(stop, 1)[0]
    return text


class VidsiftLMM(lmms):
    """An lmms-eval "simple" model answering each request with ``Pipeline.ask``."""

    is_simple = True

    def __init__(self, pretrained: str, budget: Any = None, device: str = "auto", dtype: str = "auto",
                 max_new_tokens: int = 16, batch_size: int = 1, pipeline: Any = None, **options: Any) -> None:
        super().__init__()
        unknown = sorted(set(options) - set(_PLAN_KEYS))
        if unknown:
            raise ConfigError(", ".join(unknown), f"unknown vidsift model_args; choose from: pretrained, budget, device, dtype, max_new_tokens, {', '.join(_PLAN_KEYS)}")
        if int(batch_size) != 1:
            raise ConfigError(f"batch_size={batch_size}", "vidsift answers one video at a time; use batch_size=1")
        if pipeline is None:
            from ..batch.worker import resolve_model
            from ..pipeline.pipeline import Pipeline

            pipeline = Pipeline.from_pretrained(resolve_model(str(pretrained)), device=device, dtype=dtype,
                                                budget=None if budget in (None, "") else str(budget))
        self.pipe = pipeline
        self.max_new_tokens = int(max_new_tokens)
        self.options = {k: v for k, v in options.items() if v not in (None, "")}
        self.last_stats: list[dict[str, Any]] = []

    def generate_until(self, requests: list[Instance]) -> list[str]:
        out: list[str] = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            gen_kwargs = dict(gen_kwargs or {})
            video = _first_video(doc_to_visual(self.task_dict[task][split][doc_id]))
            answer = self.pipe.ask(video, context, max_new_tokens=int(gen_kwargs.get("max_new_tokens") or self.max_new_tokens),
                                   **self.options)
            self.last_stats.append(answer.stats)
            text = _cut_at(answer.text, gen_kwargs.get("until"))
            out.append(text)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return out

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError("vidsift: loglikelihood tasks are not supported; use generation (video MC) tasks")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("vidsift: multi-round generation is not supported")
