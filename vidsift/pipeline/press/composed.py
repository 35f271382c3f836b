"""Several presses applied in order as one member (``snapkv:ratio=0.25+quantize:bits=8``).

Composition by wrapping, as in kvpress's ComposedPress: each member compresses what the previous
one kept. A ``--kv`` spec with ``+`` (the pipeline's ``Compression.kv``) gives the same effect as a list of members; this class
packs them into one object for code that wants a single press.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..hooks import CacheLayout
from . import PRESSES


@dataclass
class Composed:
    """presses: members (or a ``+``-joined spec string: ``PRESSES.build("composed", presses="snapkv+quantize")``)."""

    presses: Any = field(default_factory=list)
    name: ClassVar[str] = "composed"

    def __post_init__(self) -> None:
        if isinstance(self.presses, str):
            self.presses = PRESSES.build_many(self.presses)
        self.presses = list(self.presses)
        if not self.presses:
            raise ValueError("composed needs at least one press (presses=snapkv+quantize)")
        early = [p for p in self.presses[:-1] if getattr(p, "must_be_last", False)]
        if early:
            raise ValueError(f"{early[0].name} must be the last press of a composition")

    def install(self, layout: CacheLayout) -> dict[str, Any]:
        """Install every member, in order, into one call's layout; returns the stats of the whole."""
        stats = layout.observe({"method": self.name, "members": []})
        for press in self.presses:
            stats["members"].append(layout.add(press))
        return stats


def compose(spec: str) -> Composed:
    """``compose("snapkv:ratio=0.25+quantize:bits=8")`` -> one `Composed` press."""
    return Composed(PRESSES.build_many(spec))
