"""The contract every model family implements (`ModelAdapter`) and the family registry.

An adapter owns everything family-specific: preprocessing from ``preprocessor_config.json``
(no torchvision), running the vision tower on chosen frames only, laying out the prompt
(placeholders, timestamps, M-RoPE positions gathered from the *full* layout) and generation.
The `Pipeline` and the pruners/presses only talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class PromptParts:
    """The chat turn around the video, as text: the prompt is ``head`` + the family's video layout +
    ``tail``. ``head`` holds what comes before the video (system turn, user turn opener), ``tail``
    what follows it (the question, the turn's end, the assistant opener). `build_inputs` lays the
    prompt out from them, and the stream caches prefill them around the memory."""

    head: str
    tail: str


class ModelAdapter(ABC):
    """One video-MLLM family on stock transformers.

    Subclasses set ``family`` and ``model_types`` (``config.model_type`` values they serve) and
    implement the abstract methods. ``model`` is the loaded ``*ForConditionalGeneration``;
    ``tokenizer`` its tokenizer; ``preprocessor`` the dict from ``preprocessor_config.json``
    (or ``video_preprocessor_config.json``).

    Optional capabilities, declared here with their defaults (a family overrides what it has):

    - `model_class` ``(config)``: the transformers class the loader builds (default: the Auto class).
    - `encode_each` ``(frames)``: each frame as a one-frame clip (default: one `encode` per frame;
      every in-tree family does it in one tower call).
    - `frames_per_group`: frames one encoded group holds (default 1; Qwen pairs frames).
    - `max_pixels_for_tokens`: the per-frame pixel cap that fits a token count (default None: a
      fixed-resolution family, whose `encode` is never asked for a lower resolution).
    - `decoder_layers`: the LLM's decoder layers (default ``model.model.language_model.layers``).
    - `deepstack_layers`: decoder layers that also receive visual features (default 0).
    - ``incremental_cache``: the name of the family's stream KV cache in
      ``vidsift.stream.kvcache.CACHES`` (default None: streams re-prefill the memory).
    """

    family: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    incremental_cache: ClassVar[str | None] = None

    def __init__(self, model: torch.nn.Module, tokenizer: Any, preprocessor: dict[str, Any]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor

    @classmethod
    def matches(cls, config: Any) -> bool:
        return getattr(config, "model_type", None) in cls.model_types

    @classmethod
    def model_class(cls, config: Any) -> type:
        """The transformers model class for a checkpoint with this ``config``."""
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

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

    @property
    def deepstack_layers(self) -> int:
        """Decoder layers that also receive visual features (DeepStack); in-LLM pruning must start at
        or after this layer (default 0)."""
        return 0

    @property
    def frames_per_group(self) -> int:
        """Frames in one encoded group (one `VisualTokens` group)."""
        return 1

    def max_pixels_for_tokens(self, height: int, width: int, tokens: int) -> int | None:
        """The per-frame pixel cap (``encode(max_pixels=)``) whose group has at most ``tokens``
        tokens; None when the family encodes one fixed resolution (or the full one fits)."""
        return None

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

    def encode_each(self, frames: FrameBatch) -> list[VisualTokens]:
        """Each frame as its own one-frame clip: ``[encode(frames[i]) for i]``, in as few vision-tower
        calls as the family allows (the ``mllm`` scorer's batched encoding). The default calls
        `encode` once per frame; a family whose tower sees each frame alone overrides it with one
        call split by `one_frame_clips`."""
        return [self.encode(frames[i]) for i in range(len(frames))]

    @abstractmethod
    def prompt_parts(self, question: str) -> PromptParts:
        """The chat-formatted text before and after the video for ``question``."""

    @abstractmethod
    def build_inputs(self, tokens: VisualTokens, question: str) -> ModelInputs:
        """Prompt with exactly ``tokens.n_tokens`` visual placeholders, the chosen tokens
        injected via ``mm_encoder_outputs``, and positions/timestamps of the full layout."""

    @abstractmethod
    def pixel_inputs(self, frames: FrameBatch, question: str) -> dict[str, Any]:
        """Inputs that run the model's own vision tower on this adapter's pixels of ``frames``, in
        this adapter's prompt layout (pixel values instead of `encode`'s features). Only the
        feature injection differs from `build_inputs` at full budget; the tests check pixels and
        prompt against the transformers processors separately."""

    def generate(self, inputs: ModelInputs, *, max_new_tokens: int = 64, **generate_kwargs: Any) -> torch.Tensor:
        """Greedy generation; returns only the new token ids (B, N)."""
        generate_kwargs.setdefault("do_sample", False)
        out = self.model.generate(**inputs.kwargs, max_new_tokens=max_new_tokens, **generate_kwargs)
        return out[:, inputs.prompt_len:]

    def decode(self, ids: torch.Tensor) -> list[str]:
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)


def one_frame_clips(tokens: VisualTokens) -> list[VisualTokens]:
    """Split the groups of one `encode` call into one-group clips, each as `encode` returns a lone
    group (its tokens at temporal coordinate 0); for families whose groups are encoded independently."""
    out = []
    for g in range(tokens.n_groups):
        one = tokens.select([g])
        coords = one.coords[0].clone()
        coords[:, 0] = 0
        out.append(replace(one, coords=[coords]))
    return out
