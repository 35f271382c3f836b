"""ToMe-shaped merges: a merger decides *which* tokens merge, a `Reduction` records it as weights,
and the same weights merge every per-token tensor.

Token Merging (Bolya et al., arXiv:2210.09461) returns ``merge`` and ``unmerge`` functions from
its matching step, so whatever a token carries is merged the same way. Here a merger returns a
`Reduction` (the ToMe size-weighted average written as sparse weights ``W`` (T', T)):
``Reduction.merge(x) = W @ x`` for any ``x`` (T, ...), and `merge_groups` / `merge_tokens` apply
one merge over all groups of a `VisualTokens` at once, to every per-token field:

- ``embeds``, each DeepStack level, ``saliency``: ``W @ x`` (size-weighted means; a merged
  token's saliency is the size-weighted mean of what it absorbed, in the units of an unmerged one);
- ``size``: the summed sizes of what each output absorbed;
- ``coords`` (positions): the coords of each output's representative input (``keep``, the kept
  destination token), never an average, so every token keeps a real position of the full grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from ..types import VisualTokens


def _index_tensor(x: torch.Tensor | list[int]) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.long)


@dataclass(kw_only=True, eq=False)
class Reduction:
    """How the T input tokens of one group (or of a whole clip, flattened) merge into T' outputs.

    keep:    long (T',) sorted: each output's representative input (its coords are the output's)
    source:  long (T,): the output row each input went to (-1: dropped, it reaches no output); for
             one-to-many merges the row that received most of it
    size_in: (T,) input sizes (how many original tokens each input stands for)
    share:   float (T, T') or None: the fraction of each input's size that went to each output, for
             mergers that scatter one token into several (``ficoco_v``); rows sum to one. None means
             one-hot on ``source``.
    size:    (T',): the summed sizes of what each output absorbed (derived; ``size_in`` itself when
             nothing merges, and then ``merge(x)`` is ``x`` itself)
    embeds:  (T', D): ``merge`` of the embeddings the merger matched on (`Reduction.of`)

    ``W[o, i] = share[i, o] * size_in[i] / size[o]``: the output is the size-weighted mean of its inputs.
    """

    keep: torch.Tensor
    source: torch.Tensor
    size_in: torch.Tensor
    share: torch.Tensor | None = None
    embeds_in: torch.Tensor | None = field(default=None, repr=False)
    size: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.keep, self.source = _index_tensor(self.keep).cpu(), _index_tensor(self.source).cpu()
        self.size_in = self.size_in.cpu()
        self.share = None if self.share is None else self.share.cpu()
        t = self.source.shape[0]
        if self.keep.ndim != 1 or self.source.ndim != 1 or self.size_in.shape != (t,):
            raise ValueError(f"Reduction: keep (T',), source and size_in (T,), got {tuple(self.keep.shape)}, "
                             f"{tuple(self.source.shape)}, {tuple(self.size_in.shape)}")
        if self.share is not None and self.share.shape != (t, self.n_out):
            raise ValueError(f"Reduction: share must be (T, T') = {(t, self.n_out)}, got {tuple(self.share.shape)}")
        if bool((self.source >= self.n_out).any()) or not torch.equal(self.source[self.keep], torch.arange(self.n_out)):
            raise ValueError("Reduction: source must index the outputs, and each representative (keep) must stand for itself")
        if self.embeds_in is not None and self.embeds_in.shape[0] != t:
            raise ValueError(f"Reduction: embeds has {self.embeds_in.shape[0]} rows for {t} inputs")
        if self.share is None:
            self._inp = torch.nonzero(self.source >= 0).flatten()
            self._out = self.source[self._inp]
            mass = self.size_in.float()[self._inp]
        else:
            self._inp, self._out = torch.nonzero(self.share, as_tuple=True)
            mass = self.share.float()[self._inp, self._out] * self.size_in.float()[self._inp]
        size = torch.zeros(self.n_out).index_add_(0, self._out, mass)
        self._coef = mass / size.clamp(min=1e-30)[self._out]  # (P,) W's non-zero entries
        ar = torch.arange(t)
        self._identity = self.share is None and torch.equal(self.keep, ar) and torch.equal(self.source, ar)
        self.size = self.size_in if self._identity else size

    @classmethod
    def of(cls, embeds: torch.Tensor, size: torch.Tensor, *, keep: torch.Tensor, source: torch.Tensor,
           share: torch.Tensor | None = None) -> "Reduction":
        """The reduction of ``embeds`` (T, D) with sizes ``size`` (T,): ``embeds`` is then its merge."""
        return cls(keep=keep, source=source, size_in=size, share=share, embeds_in=embeds)

    @classmethod
    def identity(cls, embeds: torch.Tensor, size: torch.Tensor) -> "Reduction":
        """Every token stays as it is."""
        ar = torch.arange(embeds.shape[0])
        return cls.of(embeds, size, keep=ar, source=ar)

    @property
    def n_in(self) -> int:
        return int(self.source.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.keep.shape[0])

    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """W's non-zero entries: (output rows, input rows, weights), each (P,); W's rows sum to one."""
        return self._out, self._inp, self._coef

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """``W @ x`` for any per-token tensor ``x`` (T, ...) -> (T', ...) in ``x``'s dtype (computed in
        float32 or wider; an output that absorbed nothing is its input exactly)."""
        if x.shape[0] != self.n_in:
            raise ValueError(f"merge: x has {x.shape[0]} rows for {self.n_in} inputs")
        if self._identity:
            return x
        return scatter_mean(x, *self.weights(), self.n_out)

    def unmerge(self, y: torch.Tensor) -> torch.Tensor:
        """(T', ...) -> (T, ...): every input gets the output that holds (most of) it, as ToMe's
        ``unmerge``; dropped inputs get zeros. ``merge(unmerge(y)) == y`` for one-hot merges."""
        if y.shape[0] != self.n_out:
            raise ValueError(f"unmerge: y has {y.shape[0]} rows for {self.n_out} outputs")
        out = y.new_zeros((self.n_in, *y.shape[1:]))
        live = self.source >= 0
        out[live] = y[self.source[live]]
        return out

    @cached_property
    def embeds(self) -> torch.Tensor:
        """(T', D): the merged embeddings the merger matched on."""
        if self.embeds_in is None:
            raise ValueError("this Reduction was built without embeds; call merge(embeds)")
        return self.merge(self.embeds_in)


def scatter_mean(x: torch.Tensor, out: torch.Tensor, inp: torch.Tensor, coef: torch.Tensor, n_out: int) -> torch.Tensor:
    """``y[o] = sum over entries p with out[p] == o of coef[p] * x[inp[p]]``: the sparse product W @ x
    (on ``x``'s device)."""
    work, dev = torch.promote_types(x.dtype, torch.float32), x.device
    src = x.reshape(x.shape[0], -1).to(work)[inp.to(dev)].mul_(coef.to(dev, work)[:, None])  # (P, F), a copy
    y = torch.zeros(n_out, src.shape[1], dtype=work, device=dev).index_add_(0, out.to(dev), src)
    return y.reshape(n_out, *x.shape[1:]).to(x.dtype)


def merge_groups(tokens: VisualTokens, reductions: list[Reduction | None]) -> VisualTokens:
    """Apply one reduction per group (None: the group stays as it is) to every per-token field of
    ``tokens``, batched: one sparse product over the concatenated groups per field."""
    if len(reductions) != tokens.n_groups:
        raise ValueError(f"{len(reductions)} reductions for {tokens.n_groups} groups")
    outs, inps, coefs, keeps, sizes = [], [], [], [], []
    n_in = n_out = 0
    for g, red in enumerate(reductions):
        red = Reduction.identity(tokens.embeds[g], tokens.size[g]) if red is None else red
        if red.n_in != tokens.embeds[g].shape[0]:
            raise ValueError(f"group {g}: the reduction takes {red.n_in} tokens, the group has {tokens.embeds[g].shape[0]}")
        out, inp, coef = red.weights()
        outs.append(out + n_out)
        inps.append(inp + n_in)
        coefs.append(coef)
        keeps.append(red.keep + n_in)
        sizes.append(red.size)
        n_in, n_out = n_in + red.n_in, n_out + red.n_out
    return _apply(tokens, (torch.cat(outs), torch.cat(inps), torch.cat(coefs)), torch.cat(keeps), torch.cat(sizes))


def merge_tokens(tokens: VisualTokens, red: Reduction) -> VisualTokens:
    """Apply ``red``, a reduction of all of ``tokens`` flattened group after group (a token may merge
    into another group's token), to every per-token field; each output stays in its representative's group."""
    if red.n_in != tokens.n_tokens:
        raise ValueError(f"the reduction takes {red.n_in} tokens, there are {tokens.n_tokens}")
    return _apply(tokens, red.weights(), red.keep, red.size)


def _apply(tokens: VisualTokens, w: tuple[torch.Tensor, torch.Tensor, torch.Tensor], keep: torch.Tensor,
           size: torch.Tensor) -> VisualTokens:
    """``tokens`` with W = ``w`` (flat sparse weights) applied to every per-token field."""
    n_out = int(keep.shape[0])
    starts = torch.cumsum(torch.tensor([0] + tokens.tokens_per_group), 0)
    group = torch.searchsorted(starts[1:], keep, right=True)  # (T',) group of each output
    counts = torch.bincount(group, minlength=tokens.n_groups).tolist()

    def merged(per_group: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(scatter_mean(torch.cat(per_group), *w, n_out).split(counts))

    deepstack = None
    if tokens.deepstack is not None:
        levels = [merged([d[lvl] for d in tokens.deepstack]) for lvl in range(len(tokens.deepstack[0]))]
        deepstack = [list(rows) for rows in zip(*levels)]
    return VisualTokens(
        embeds=merged(tokens.embeds),
        coords=list(torch.cat(tokens.coords)[keep].split(counts)),
        size=list(size.to(tokens.size[0].dtype if tokens.size else size.dtype).split(counts)),
        grid_thw=tokens.grid_thw, pts_seconds=tokens.pts_seconds, index=tokens.index,
        saliency=None if tokens.saliency is None else merged(tokens.saliency),
        deepstack=deepstack,
    )
