"""Model families: one adapter module per family, named in ``ADAPTERS`` (`base.py`) and
imported when first used."""

from .base import ADAPTERS, ModelAdapter, PromptParts

__all__ = ["ADAPTERS", "ModelAdapter", "PromptParts"]
