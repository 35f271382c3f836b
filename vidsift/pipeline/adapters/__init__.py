"""Model families: one adapter module per family, registered in ``ADAPTERS``."""

from .base import ADAPTERS, ModelAdapter

__all__ = ["ADAPTERS", "ModelAdapter"]
