"""Data inside the pipeline: prepared model inputs (`ModelInputs`). The data the pipeline shares
with other stages (`VisualTokens`, `Answer`, ...) is in `vidsift.types`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class ModelInputs:
    """Everything one forward/generate call needs.

    kwargs:      passed as ``model(**kwargs)`` / ``model.generate(**kwargs)``
                 (input_ids, attention_mask, position_ids, mm_encoder_outputs, ...)
    visual_mask: bool (B, L): True where the prompt holds a visual token (for in-LLM pruners
                 and cache presses, which must never guess offsets)
    """

    kwargs: dict[str, Any]
    visual_mask: torch.Tensor

    @property
    def input_ids(self) -> torch.Tensor:
        return self.kwargs["input_ids"]

    @property
    def prompt_len(self) -> int:
        return int(self.kwargs["input_ids"].shape[1])
