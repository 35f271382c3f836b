"""The multiple-choice prompt: question, lettered options, and the instruction to answer with a
letter. It follows the template lmms-eval and LLaVA-Video use for Video-MME/MVBench/MLVU so
scores are comparable with published numbers."""

from __future__ import annotations

from dataclasses import dataclass

from .items import LETTERS, EvalItem

DEFAULT_PRE = "Select the best answer to the following multiple-choice question based on the video."
DEFAULT_POST = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class MCPrompt:
    """Builds ``pre\\nquestion\\nA. opt\\nB. opt\\n...\\npost``."""

    pre: str = DEFAULT_PRE
    post: str = DEFAULT_POST

    def __call__(self, item: EvalItem) -> str:
        options = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(item.options))
        return "\n".join(part for part in (self.pre, item.question.strip(), options, self.post) if part)
