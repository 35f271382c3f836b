"""``reduce_tokens``: bring every group of visual tokens down to its planned token count.

An optional temporal pass (``temporal="temporal:threshold=0.9"``) first removes tokens that repeat
the same grid position of the previous kept group; then each group is reduced by a spatial merger
(``tome``, ``adjacent``, ``saliency``, ``diverse``, ...) to exactly ``per_group[g]`` tokens (never more;
``mustdrop``'s threshold may leave fewer; a group that already has fewer stays as it is). Kept tokens
stay in their original order with the coords of their representative token; every other per-token
field (embeds, each DeepStack level, saliency) is merged with the merger's weights (size-weighted
means, `merge_groups`, one batched product over all groups), sizes are summed. With ``per_group``
equal to the current counts and no temporal pass the input is returned unchanged (the very same object).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..types import VisualTokens
from .base import MERGERS, TokenMerger
from .merging import merge_groups


def build_merger(spec, kind: str, flag: str):
    """A merger of ``kind`` ("spatial" or "temporal") from a spec; ``flag`` names the option in errors."""
    member = MERGERS.build(spec)
    if getattr(member, "kind", None) != kind:
        raise ConfigError(spec if isinstance(spec, str) else getattr(member, "name", spec),
                          f"not a {kind} merger; {flag} takes one of: "
                          + ", ".join(n for n in MERGERS.names() if MERGERS.get(n).kind == kind))
    return member


def reduce_tokens(tokens: VisualTokens, per_group: list[int] | np.ndarray, *, merger: str | TokenMerger = "tome",
                  temporal: str | None = None) -> VisualTokens:
    """Reduce group g of ``tokens`` to ``min(per_group[g], T_g)`` tokens (after the optional temporal pass)."""
    targets = [int(t) for t in np.asarray(per_group).reshape(-1)]
    if len(targets) != tokens.n_groups:
        raise ValueError(f"per_group has {len(targets)} entries for {tokens.n_groups} groups")
    if any(t < 1 for t in targets):
        raise ValueError(f"per_group entries must be >= 1, got {min(targets)}")
    spatial = build_merger(merger, "spatial", "merger")
    if temporal is not None:
        tokens = build_merger(temporal, "temporal", "temporal").apply(tokens)
    counts = tokens.tokens_per_group
    if all(t >= c for t, c in zip(targets, counts)):
        return tokens
    reductions = []
    for g, (t, c) in enumerate(zip(targets, counts)):
        sal = None if tokens.saliency is None else tokens.saliency[g]
        reductions.append(None if t >= c else
                          spatial.reduce(tokens.embeds[g], tokens.size[g], t, coords=tokens.coords[g], saliency=sal))
    return merge_groups(tokens, reductions)
