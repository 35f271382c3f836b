"""Pure token-reduction functions on one group of tokens (ToMe style: size-weighted merges that
carry ``size`` and ``source``). Every function returns a `Reduction` (`vidsift.selectors.merging`)
whose ``keep`` is sorted, so surviving tokens stay in their original order with their own coords,
and whose ``merge`` applies the same weights to any other per-token tensor.

bipartite_merge:   ToMe bipartite soft matching (Bolya et al., ICLR 2023), repeated until ``target``
adjacent_merge:    most similar 4-neighbour regions of the grid (MustDrop spatial merging; optional
                   protected key tokens and similarity threshold)
absorb:            keep a chosen set; fold every other token into its most similar kept token
keep_then_absorb:  the shared body of the keep-a-subset mergers (``saliency``, ``diverse``)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .merging import Reduction


def check_merge_flag(merge: object) -> None:
    """Validate the ``merge`` option of the keep-a-subset mergers."""
    if not isinstance(merge, bool):
        raise ValueError(f"merge must be true or false, got {merge!r}")


def _check(embeds: torch.Tensor, size: torch.Tensor, target: int) -> None:
    if embeds.ndim != 2 or size.shape != (embeds.shape[0],):
        raise ValueError(f"embeds must be (T, D) and size (T,), got {tuple(embeds.shape)} and {tuple(size.shape)}")
    if isinstance(target, bool) or int(target) != target or target < 1:
        raise ValueError(f"target must be an int >= 1, got {target!r}")


class _State:
    """Alive representatives with size-weighted mean embeddings (to match on), and the owner of every
    input token."""

    def __init__(self, embeds: torch.Tensor, size: torch.Tensor) -> None:
        self.emb = embeds.float()  # (A, D)
        self.size = size.float()  # (A,)
        self.rep = torch.arange(embeds.shape[0])  # (A,) original index of each alive token
        self.owner = torch.arange(embeds.shape[0])  # (T,) alive position of each input token

    @property
    def n(self) -> int:
        return int(self.rep.shape[0])

    def merge(self, src: torch.Tensor, dst: torch.Tensor) -> None:
        """Merge alive positions ``src`` into ``dst`` (disjoint sets, same length)."""
        if src.numel() == 0:
            return
        w = self.size[src, None]
        acc = self.emb * self.size[:, None]  # (A, D)
        acc.index_add_(0, dst, self.emb[src] * w)
        size = self.size.clone().index_add_(0, dst, self.size[src])
        alive = torch.ones(self.n, dtype=torch.bool)
        alive[src] = False
        new_pos = torch.cumsum(alive.long(), 0) - 1  # (A,) position after removal
        redirect = new_pos.clone()
        redirect[src] = new_pos[dst]
        self.emb = (acc / size[:, None])[alive]
        self.size = size[alive]
        self.rep = self.rep[alive]
        self.owner = redirect[self.owner]

    def result(self, embeds: torch.Tensor, size: torch.Tensor) -> Reduction:
        """Which inputs merged into which representative; the merged values come from `Reduction.merge`."""
        return Reduction.of(embeds, size, keep=self.rep.clone(), source=self.owner)


def _bipartite_round(st: _State, r: int, alive: torch.Tensor | None = None) -> None:
    """One ToMe step: alternate tokens into sets A (even) / B (odd); the r A-tokens with the most
    similar B partner merge into it. ``alive``: long, only these alive positions take part (all
    when None)."""
    alive = torch.arange(st.n) if alive is None else alive
    a_pos = alive[0::2]
    b_pos = alive[1::2]
    r = min(r, a_pos.numel(), max(b_pos.numel(), 0))
    if r <= 0:
        return
    x = F.normalize(st.emb, dim=-1)
    sim = x[a_pos] @ x[b_pos].T  # (na, nb)
    best, partner = sim.max(dim=-1)  # (na,)
    order = torch.argsort(-best, stable=True)[:r]
    st.merge(a_pos[order], b_pos[partner[order]])


def bipartite_merge(embeds: torch.Tensor, size: torch.Tensor, target: int) -> Reduction:
    """Reduce ``embeds`` (T, D) to ``min(target, T)`` tokens by repeated ToMe bipartite soft matching."""
    _check(embeds, size, target)
    if target >= embeds.shape[0]:
        return Reduction.identity(embeds, size)
    st = _State(embeds, size)
    while st.n > target:
        _bipartite_round(st, st.n - target)
    return st.result(embeds, size)


def _grid_edges(coords: torch.Tensor) -> np.ndarray:
    """int64 (E, 2) pairs of input tokens that are 4-neighbours (same t, |dh|+|dw| == 1)."""
    c = coords.long().numpy()
    key = {tuple(v): i for i, v in enumerate(c.tolist())}
    edges = []
    for i, (t, h, w) in enumerate(c.tolist()):
        for dh, dw in ((0, 1), (1, 0)):
            j = key.get((t, h + dh, w + dw))
            if j is not None:
                edges.append((i, j))
    return np.asarray(edges, dtype=np.int64).reshape(-1, 2)


def _adjacent_round(st: _State, edges: np.ndarray, free: np.ndarray, need: int, min_sim: float) -> int:
    """One greedy round over adjacent region pairs, most similar first: non-overlapping pairs with
    cosine similarity >= ``min_sim`` whose regions are both ``free`` (bool over alive positions)
    merge, at most ``need`` of them; the larger region's representative survives. -> merges made."""
    owner = st.owner.numpy()
    pairs = owner[edges] if len(edges) else np.zeros((0, 2), np.int64)
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)  # (P, 2) region pairs
    pairs = pairs[free[pairs].all(axis=1)] if len(pairs) else pairs
    if len(pairs) == 0:
        return 0
    x = F.normalize(st.emb, dim=-1)
    p = torch.from_numpy(pairs)
    sim = (x[p[:, 0]] * x[p[:, 1]]).sum(-1).numpy()  # (P,)
    used = np.zeros(st.n, bool)
    src, dst = [], []
    sizes = st.size.numpy()
    for e in np.lexsort((pairs[:, 1], pairs[:, 0], -sim)):
        if len(src) == need or sim[e] < min_sim:
            break
        i, j = pairs[e]
        if used[i] or used[j]:
            continue
        used[i] = used[j] = True
        keep_i = sizes[i] >= sizes[j]  # the larger region (ties: the earlier token) survives
        src.append(j if keep_i else i)
        dst.append(i if keep_i else j)
    st.merge(torch.tensor(src, dtype=torch.long), torch.tensor(dst, dtype=torch.long))
    return len(src)


def adjacent_merge(embeds: torch.Tensor, size: torch.Tensor, target: int, coords: torch.Tensor, *,
                   protect: torch.Tensor | None = None, threshold: float | None = None) -> Reduction:
    """Reduce to at most ``min(target, T)`` tokens by merging the most similar *spatially adjacent*
    regions (greedy non-overlapping pairs per round; the larger region's representative survives).
    Falls back to bipartite matching when no adjacent pairs remain.

    protect:   bool (T,) tokens never merged, neither absorbed nor absorbing (MustDrop's key set);
               at most ``target - 1`` of them when ``target < T``, so the budget can be met.
    threshold: first merge, round after round, every adjacent pair whose cosine similarity reaches
               it (this may leave fewer than ``target`` tokens); then, while more than ``target``
               remain, go on most similar first. None: exactly ``target`` tokens."""
    _check(embeds, size, target)
    if coords is None or coords.shape != (embeds.shape[0], 3):
        raise ValueError("adjacent merging needs coords (T, 3)")
    if target >= embeds.shape[0]:
        return Reduction.identity(embeds, size)
    protect = torch.zeros(embeds.shape[0], dtype=torch.bool) if protect is None else protect.bool()
    if int(protect.sum()) >= target:
        raise ValueError(f"protect holds {int(protect.sum())} tokens; at most target - 1 = {target - 1} fit the budget")
    st = _State(embeds, size)
    edges = _grid_edges(coords)  # (E, 2) over input tokens
    free_of = lambda: np.isin(np.arange(st.n), st.owner[protect].numpy(), invert=True)  # noqa: E731
    if threshold is not None:
        while _adjacent_round(st, edges, free_of(), st.n, float(threshold)):
            pass
    while st.n > target:
        free = free_of()
        if not _adjacent_round(st, edges, free, st.n - target, float("-inf")):
            _bipartite_round(st, st.n - target, torch.from_numpy(np.flatnonzero(free)))
    return st.result(embeds, size)


def absorb(embeds: torch.Tensor, size: torch.Tensor, keep: torch.Tensor, *, merge: bool = True) -> Reduction:
    """Keep tokens ``keep`` (any order); with ``merge`` every other token folds into its most similar
    kept token (size-weighted mean, sizes summed), otherwise it is dropped."""
    keep = torch.sort(torch.as_tensor(keep, dtype=torch.long)).values
    t = embeds.shape[0]
    dropped = torch.ones(t, dtype=torch.bool)
    dropped[keep] = False
    drop = torch.nonzero(dropped).flatten()
    source = torch.full((t,), -1, dtype=torch.long)
    source[keep] = torch.arange(keep.numel())
    if drop.numel() and merge:
        x = F.normalize(embeds.float(), dim=-1)
        source[drop] = (x[drop] @ x[keep].T).argmax(dim=-1)  # position among kept
    return Reduction.of(embeds, size, keep=keep, source=source)


def keep_then_absorb(embeds: torch.Tensor, size: torch.Tensor, target: int,
                     pick: Callable[[torch.Tensor, int], torch.Tensor], *, merge: bool) -> Reduction:
    """Keep the ``target`` tokens ``pick(embeds, target)`` chooses and :func:`absorb` the rest
    (identity when ``target`` >= T, without calling ``pick``)."""
    _check(embeds, size, target)
    if target >= embeds.shape[0]:
        return Reduction.identity(embeds, size)
    return absorb(embeds, size, pick(embeds, target), merge=merge)


def distinctiveness(embeds: torch.Tensor) -> torch.Tensor:
    """float (T,): 1 - mean cosine similarity to the other tokens (a model-free saliency)."""
    x = F.normalize(embeds.float(), dim=-1)
    t = x.shape[0]
    mean_sim = (x @ x.sum(0) - 1.0) / max(t - 1, 1)
    return 1.0 - mean_sim


def maxmin_tokens(embeds: torch.Tensor, k: int) -> torch.Tensor:
    """long (k,): DivPrune greedy Max-Min diversity on cosine distance, seeded by the token whose
    nearest neighbour is farthest."""
    x = F.normalize(embeds.float(), dim=-1)
    t = x.shape[0]
    k = min(k, t)
    dist = 1.0 - x @ x.T  # (T, T)
    dist.fill_diagonal_(float("inf"))
    first = int(torch.argmax(dist.min(dim=1).values))
    dist.fill_diagonal_(0.0)
    picks = [first]
    mind = dist[first].clone()
    mind[first] = -1.0
    for _ in range(k - 1):
        j = int(torch.argmax(mind))
        picks.append(j)
        mind = torch.minimum(mind, dist[j])
        mind[picks] = -1.0
    return torch.tensor(picks, dtype=torch.long)
