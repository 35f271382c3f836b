"""Model families: one adapter module per family, registered in ``ADAPTERS``.

Importing this package imports every family module that exists (like the CLI does for its
commands), so ``ADAPTERS`` lists all installed families.
"""

import importlib
import importlib.util

from .base import ADAPTERS, ModelAdapter

FAMILY_MODULES = ("qwen2_5_vl", "qwen3_vl", "llava_onevision", "smolvlm")

for _name in FAMILY_MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")

__all__ = ["ADAPTERS", "FAMILY_MODULES", "ModelAdapter"]
