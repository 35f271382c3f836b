"""A per-layer visual-token schedule: an explicit list, or a parametric sigmoid curve.

Sigmoid schedule after Zhao et al., "Accelerating Multimodal Large Language Models by Searching
Optimal Vision Token Reduction", CVPR 2025, https://arxiv.org/abs/2412.00556 (P-Sigmoid: a
parametric sigmoid keep ratio over depth; the paper fits its parameters by Bayesian optimisation,
here they are options).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import PrefillPruner, check_fraction, sigmoid_keep


@dataclass
class Schedule(PrefillPruner):
    """Keep fraction per layer; a new stage wherever the kept count drops.

    keep:  explicit fractions for layers 0, 1, 2, ... (``1/1/0.5/0.5/0.25``); the last value holds
           for deeper layers. Must not increase.
    mid, slope, floor: the sigmoid ``floor + (1 - floor) * s(l) / s(0)`` with
           ``s(l) = 1 / (1 + exp(slope * (l / (n_layers - 1) - mid)))`` when ``keep`` is not given.
    """

    keep: tuple[float, ...] | None = None
    mid: float = 0.5
    slope: float = 10.0
    floor: float = 0.0
    name: ClassVar[str] = "schedule"

    def __post_init__(self) -> None:
        if isinstance(self.keep, (int, float)):
            self.keep = (float(self.keep),)
        if self.keep is not None:
            if not self.keep:
                raise ValueError("keep must list at least one fraction")
            for frac in self.keep:
                check_fraction("keep", frac)
            if any(b > a for a, b in zip(self.keep, self.keep[1:])):
                raise ValueError(f"keep must not increase with depth, got {self.keep}")
        check_fraction("mid", self.mid)
        check_fraction("floor", self.floor)
        if not isinstance(self.slope, (int, float)) or self.slope <= 0:
            raise ValueError(f"slope must be > 0, got {self.slope!r}")

    def per_layer(self, n_layers: int) -> list[float]:
        if self.keep is not None:
            vals = list(self.keep[:n_layers])
            return vals + [vals[-1]] * (n_layers - len(vals))
        return sigmoid_keep(n_layers, mid=self.mid, slope=self.slope, floor=self.floor)

    def schedule(self, n_layers: int) -> dict[int, float]:
        out, last = {}, 1.0
        for layer, frac in enumerate(self.per_layer(n_layers)):
            if frac < last:
                out[layer] = frac
                last = frac
        return out
