"""The contract every model family implements (`ModelAdapter`) and the family registry.

An adapter owns everything family-specific: preprocessing from ``preprocessor_config.json``
(no torchvision), running the vision tower on chosen frames only, laying out the prompt
(placeholders, timestamps, M-RoPE positions gathered from the *full* layout) and generation.
The `Pipeline` and the pruners/presses only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from ...types import FrameBatch, VisualTokens, whole_tokens
from ...registry import Registry
from ..types import ModelInputs

ADAPTERS: Registry[type["ModelAdapter"]] = Registry("model family", {
    "llava_onevision": "vidsift.pipeline.adapters.llava_onevision:LlavaOnevisionAdapter",
    "qwen2_5_vl": "vidsift.pipeline.adapters.qwen2_5_vl:Qwen2_5_VLAdapter",
    "qwen3_vl": "vidsift.pipeline.adapters.qwen3_vl:Qwen3VLAdapter",
    "smolvlm": "vidsift.pipeline.adapters.smolvlm:SmolVLMAdapter",
})


class ModelAdapter(ABC):
    """One video-MLLM family on stock transformers.

    Subclasses set ``family`` and ``model_types`` (``config.model_type`` values they serve) and
    implement the abstract methods. ``model`` is the loaded ``*ForConditionalGeneration``;
    ``tokenizer`` its tokenizer; ``preprocessor`` the dict from ``preprocessor_config.json``
    (or ``video_preprocessor_config.json``).
    """

    family: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]

    def __init__(self, model: torch.nn.Module, tokenizer: Any, preprocessor: dict[str, Any]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor

    @classmethod
    def matches(cls, config: Any) -> bool:
        return getattr(config, "model_type", None) in cls.model_types

    @classmethod
    def check_frame_size(cls, width: int, height: int) -> None:
        """Raise `FrameSizeError` when this family cannot encode frames of this size at all; checked
        from the config alone, before a model loads (default: every size is fine)."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def decoder_layers(self) -> torch.nn.ModuleList:
        """The LLM's decoder layers (for prefill pruners and cache presses)."""
        return self.model.model.language_model.layers

    @abstractmethod
    def tokens_per_frame(self, height: int, width: int) -> float:
        """Visual tokens the LLM sees per *frame* of this size at full budget (Qwen2.5-VL: half
        a temporal patch's tokens). The planner budgets with it before anything is encoded."""

    def tokens_for_frames(self, n_frames: int, height: int, width: int) -> int:
        """Visual tokens the LLM sees when ``n_frames`` frames of this size are encoded at full
        budget: what the encoder really produces (families that pair frames count the padding)."""
        return int(n_frames) * whole_tokens(self.tokens_per_frame(height, width))

    @abstractmethod
    def encode(self, frames: FrameBatch) -> VisualTokens:
        """Run the vision tower (and projector) on these frames only -> tokens in LLM space."""

    @abstractmethod
    def build_inputs(self, tokens: VisualTokens, question: str) -> ModelInputs:
        """Prompt with exactly ``tokens.n_tokens`` visual placeholders, the chosen tokens
        injected via ``mm_encoder_outputs``, and positions/timestamps of the full layout."""

    @abstractmethod
    def vanilla_inputs(self, frames: FrameBatch, question: str) -> dict[str, Any]:
        """The family's stock transformers inputs (pixel values through the model's own vision
        path) for the same frames and question: the reference of the equivalence tests."""

    def generate(self, inputs: ModelInputs, *, max_new_tokens: int = 64, **generate_kwargs: Any) -> torch.Tensor:
        """Greedy generation; returns only the new token ids (B, N)."""
        generate_kwargs.setdefault("do_sample", False)
        out = self.model.generate(**inputs.kwargs, max_new_tokens=max_new_tokens, **generate_kwargs)
        return out[:, inputs.prompt_len:]

    def decode(self, ids: torch.Tensor) -> list[str]:
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)
