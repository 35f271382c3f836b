"""The multiple-choice prompt: question, lettered options, and the instruction to answer with a
letter. It follows the template lmms-eval and LLaVA-Video use for Video-MME/MVBench/MLVU so
scores are comparable with published numbers. `vidsift ask --options`, the server and batch
manifests build the same prompt (`vidsift.pipeline.choice.mc_prompt`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..pipeline.choice import DEFAULT_POST, DEFAULT_PRE, mc_prompt
from .items import EvalItem


@dataclass(frozen=True)
class MCPrompt:
    """Builds ``pre\\nquestion\\nA. opt\\nB. opt\\n...\\npost``."""

    pre: str = DEFAULT_PRE
    post: str = DEFAULT_POST

    def __call__(self, item: EvalItem) -> str:
        return mc_prompt(item.question, item.options, pre=self.pre, post=self.post)
