"""Several presses applied in order as one member (``snapkv:ratio=0.25+quantize:bits=8``).

Composition by wrapping, as in kvpress's ComposedPress: each member compresses what the previous
one kept. A ``Budget.kv`` spec with ``+`` gives the same effect as a list of members; this class
packs them into one object for code that wants a single press.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

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

    @contextlib.contextmanager
    def session(self, adapter: Any, inputs: Any) -> Iterator[dict[str, Any]]:
        stats: dict[str, Any] = {"method": self.name, "members": []}
        with contextlib.ExitStack() as stack:
            layout = stack.enter_context(CacheLayout.acquire(adapter, inputs))
            stack.enter_context(layout.stats_dict(stats))
            for press in self.presses:
                stats["members"].append(stack.enter_context(press.session(adapter, inputs)))
            yield stats


def compose(spec: str) -> Composed:
    """``compose("snapkv:ratio=0.25+quantize:bits=8")`` -> one `Composed` press."""
    return Composed(PRESSES.build_many(spec))
