"""The pipeline's options beside the visual-token budget, and the named presets that set both.

`Budget` (``vidsift.types``) says how many visual tokens the LLM is fed. `Compression` says what
else reduces them: the prefill pruner inside the LLM (``prune``, a `PRUNERS` spec), the
decoding-cache press (``kv``, a `PRESSES` spec) and, optionally, the spatial merger that brings
the frames to their share (``merger``, a `MERGERS` spec). A `Preset` holds one of each.

A preset name (``--preset fast`` or ``--budget fast``) yields both parts (`PRESETS`): the share
of the full video's tokens (``vidsift.types.PRESET_SHARES``, so that the planner reads preset
names too) and the in-model options. Explicit options win over the preset: ``--budget``,
``--prune`` and ``--kv`` given next to it (``--budget fast --kv snapkv:ratio=0.5``) replace its
value (`Preset.apply`), and an explicit ``--merger`` wins over its merger.

fast:     a quarter of the visual tokens, FastV halves them again after layer 2 (the paper's
          setting), SnapKV keeps a quarter of the cache and stores it in fp8.
balanced: half the visual tokens, a gentle FastV (3/4 after layer 3), SnapKV keeps half.
faithful: three quarters of the visual tokens, no in-LLM pruning, full cache.
mustdrop: MustDrop's three stages (Liu et al., arXiv:2411.10803): a quarter of the visual tokens
          reached by the ``mustdrop`` merger (key-token set never merged, adjacent tokens merged
          from cosine similarity 0.8), the ``mustdrop`` dual-attention filter at layer 2, and the
          ``mustdrop`` output-aware press keeping half of each layer's visual cache entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..errors import ConfigError
from ..types import PRESET_SHARES, Budget

__all__ = ["Compression", "PRESETS", "Preset"]

OFF = ("none", "off", "")  # an option that switches a stage off


@dataclass(frozen=True, kw_only=True)
class Compression:
    """What reduces the visual tokens besides the budget's share.

    prune:  prefill pruner spec inside the LLM, e.g. ``"fastv:k=2,keep=0.5"`` (None: off)
    kv:     decoding-cache press spec, e.g. ``"snapkv:ratio=0.25+quantize:bits=8"`` (None: off)
    merger: spatial merger spec a preset chooses, e.g. ``"mustdrop:threshold=0.8"`` (None: the
            ``merger`` option, default ``tome``; an explicit ``merger`` option wins)
    """

    prune: str | None = None
    kv: str | None = None
    merger: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            spec = getattr(self, f.name)
            if spec is not None and (not isinstance(spec, str) or spec.strip().lower() in OFF):
                raise ConfigError(f.name, f"give a method spec such as 'name:key=value', or None for off; got {spec!r}")

    def apply(self, *, prune: str | None = None, kv: str | None = None) -> "Compression":
        """These options with ``prune`` and ``kv`` applied: None leaves one as it is, ``"none"``,
        ``"off"`` or ``""`` switch it off, a spec replaces it."""
        out = self
        for key, spec in (("prune", prune), ("kv", kv)):
            if spec is not None:
                off = isinstance(spec, str) and spec.strip().lower() in OFF
                out = replace(out, **{key: None if off else spec})
        return out


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A budget and the in-model options together: what a preset name stands for (`PRESETS`), and
    what a pipeline's defaults and a question's options resolve to (`apply`)."""

    budget: Budget = field(default_factory=Budget)
    compression: Compression = field(default_factory=Compression)

    def __post_init__(self) -> None:
        if not isinstance(self.budget, Budget):
            raise ConfigError("budget", f"expected a Budget, got {self.budget!r}")
        if not isinstance(self.compression, Compression):
            raise ConfigError("compression", f"expected a Compression, got {self.compression!r}")

    @classmethod
    def named(cls, name: str) -> "Preset":
        """The preset called ``name`` (`PRESETS`)."""
        if name not in PRESETS:
            raise ConfigError(name, f"unknown preset; choose one of: {', '.join(PRESETS)}")
        return PRESETS[name]

    def apply(self, *, preset: str | None = None, budget: Any = None, prune: str | None = None,
              kv: str | None = None) -> "Preset":
        """This preset with the user's options applied, in order: ``preset`` (a name; replaces both
        parts), ``budget`` (`Budget.apply`: a size replaces the size, a `Budget` the budget; a
        preset name replaces both parts), then ``prune`` and ``kv`` (`Compression.apply`). None
        leaves a part as it is."""
        out = self if preset is None else Preset.named(preset)
        named = budget.strip() if isinstance(budget, str) and budget.strip() in PRESETS else None
        compression = out.compression if named is None else PRESETS[named].compression
        return Preset(budget=out.budget.apply(budget=budget), compression=compression.apply(prune=prune, kv=kv))


_COMPRESSION: dict[str, Compression] = {  # each preset's in-model options; its share is PRESET_SHARES[name]
    "fast": Compression(prune="fastv:k=2,keep=0.5", kv="snapkv:ratio=0.25+quantize:bits=8"),
    "balanced": Compression(prune="fastv:k=3,keep=0.75", kv="snapkv:ratio=0.5"),
    "faithful": Compression(),
    "mustdrop": Compression(merger="mustdrop:threshold=0.8", prune="mustdrop:k=2", kv="mustdrop:ratio=0.5"),
}

PRESETS: dict[str, Preset] = {name: Preset(budget=Budget(fraction=PRESET_SHARES[name]), compression=compression)
                              for name, compression in _COMPRESSION.items()}
