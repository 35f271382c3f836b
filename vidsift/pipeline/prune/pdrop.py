"""PyramidDrop: drop visual tokens in stages, a fixed ratio at the end of each stage.

Xing et al., "PyramidDrop: Accelerating Your Large Vision-Language Models via Pyramid Visual
Redundancy Reduction", CVPR 2025, https://arxiv.org/abs/2410.17247
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import PrefillPruner, check_fraction, check_layer


@dataclass
class PDrop(PrefillPruner):
    """Multi-stage schedule.

    stages: number of stages; boundaries at ``n_layers * j / stages`` (j = 1..stages-1)
    ratio:  keep ratio per stage boundary (lambda; stage j keeps ``ratio**j`` of the visual tokens)
    layers: explicit boundary layers, e.g. ``8/16/24`` (overrides stages)
    keep:   explicit keep fractions per boundary, e.g. ``0.5/0.25/0.125`` (with ``layers``)
    """

    stages: int = 4
    ratio: float = 0.5
    layers: tuple[int, ...] | None = None
    keep: tuple[float, ...] | None = None
    name: ClassVar[str] = "pdrop"

    def __post_init__(self) -> None:
        if not isinstance(self.stages, int) or self.stages < 2:
            raise ValueError(f"stages must be an int >= 2, got {self.stages!r}")
        check_fraction("ratio", self.ratio)
        if isinstance(self.layers, int):
            self.layers = (self.layers,)
        if isinstance(self.keep, (int, float)):
            self.keep = (float(self.keep),)
        if self.keep is not None and self.layers is None:
            raise ValueError("keep needs layers (e.g. layers=8/16/24,keep=0.5/0.25/0.125)")
        if self.layers is not None:
            for layer in self.layers:
                check_layer("layers", layer)
            if list(self.layers) != sorted(set(self.layers)):
                raise ValueError(f"layers must be strictly increasing, got {self.layers}")
            if self.keep is not None:
                if len(self.keep) != len(self.layers):
                    raise ValueError(f"keep has {len(self.keep)} values for {len(self.layers)} layers")
                for frac in self.keep:
                    check_fraction("keep", frac)

    def schedule(self, n_layers: int) -> dict[int, float]:
        layers = self.layers or tuple(sorted({n_layers * j // self.stages for j in range(1, self.stages)}))
        keep = self.keep or tuple(self.ratio ** (j + 1) for j in range(len(layers)))
        return {int(layer): float(frac) for layer, frac in zip(layers, keep)}
