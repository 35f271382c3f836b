"""Feeding only the chosen visual tokens to a video MLLM, pruning inside it, compressing its cache."""

from .types import Answer, ModelInputs, VisualTokens

__all__ = ["Answer", "ModelInputs", "VisualTokens"]
