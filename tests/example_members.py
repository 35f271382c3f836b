"""A tests-only selector, added to ``SELECTORS`` by name from a test (no list in vidsift names it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass
class EveryOther:
    """Frames 0, 2, 4, ... (the first ``k`` of them), whatever their scores."""

    name: ClassVar[str] = "every_other"

    def select(self, features: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        return np.arange(0, len(scores), 2, dtype=np.int64)[:k]
