"""The filter / correlate / compress steps of FiCoCo, shared by ``ficoco_v`` (a merger on the vision
output) and ``ficoco_l`` (a prefill pruner inside the LLM).

Han et al., "Filter, Correlate, Compress: Training-Free Token Reduction for MLLM Acceleration"
(first titled "Rethinking Token Reduction in MLLMs: Towards a Unified Paradigm for Training-Free
Acceleration"), arXiv:2411.17686, https://arxiv.org/abs/2411.17686

- filter:    a redundancy score per token; the highest-scoring tokens are dropped
             (`local_penalty` spreads the drops over the grid, one window at a time)
- correlate: each dropped token picks its top-k kept tokens by an affinity; weights are the
             affinities normalised to sum to one (`correlate`)
- compress:  each dropped token is scattered into its targets with those weights, ToMe-style
             size-weighted: target' = (s_t x_t + sum_d w_dt s_d x_d) / (s_t + sum_d w_dt s_d) (`compress`)

Pure tensor functions on one group / one batch row; no model calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .merging import Reduction


def l2_unit(v: torch.Tensor) -> torch.Tensor:
    """``v`` (T,) scaled to unit L2 norm over its tokens (zeros stay zeros): makes the two filter
    terms comparable whatever their units, as the reference implementation does."""
    return F.normalize(v.float(), dim=0)


def local_penalty(score: torch.Tensor, coords: torch.Tensor | None, window: int = 2) -> torch.Tensor:
    """FiCoCo's local penalty: in every ``window`` x ``window`` cell block of the grid (per t) the most
    redundant token's score moves further towards dropping (x2 if positive, /2 if negative), so the
    first drops spread over the frame instead of emptying one region. ``coords`` long (T, 3) or None
    (no grid: unchanged). -> float (T,)."""
    if coords is None or score.numel() == 0 or window <= 1:
        return score.float()
    c = coords.long()
    key = torch.stack([c[:, 0], c[:, 1] // window, c[:, 2] // window], 1)
    _, win = torch.unique(key, dim=0, return_inverse=True)  # (T,) window id
    s = score.float()
    best = torch.full((int(win.max()) + 1,), -float("inf")).scatter_reduce(0, win, s, reduce="amax")
    idx = torch.arange(s.numel())
    top = s == best[win]
    last = torch.full_like(best, -1, dtype=torch.long).scatter_reduce(
        0, win[top], idx[top], reduce="amax")  # one token per window (of equal maxima, the latest)
    chosen = torch.zeros(s.numel(), dtype=torch.bool)
    chosen[last[last >= 0]] = True
    return torch.where(chosen, torch.where(s > 0, s * 2, s / 2), s)


def drop_by_score(score: torch.Tensor, n_drop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (keep, drop): sorted long indices; the ``n_drop`` highest scores are dropped (ties: the later
    token goes, so of equal tokens the first one represents them)."""
    t = score.numel()
    order = t - 1 - torch.argsort(-score.float().flip(0), stable=True)
    drop = torch.sort(order[:n_drop]).values
    mask = torch.ones(t, dtype=torch.bool)
    mask[drop] = False
    return torch.nonzero(mask).flatten(), drop


def correlate(affinity: torch.Tensor, topk: int, rel: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and weights of each dropped token.

    affinity float (n_drop, n_keep) >= 0 (higher: more related); each row keeps its ``topk`` largest
    entries and, of those, the ones at least ``rel`` times the row's best (FiCoCo keeps only the
    top correlations of each row); weights are those affinities over their sum.
    -> targets long (n_drop, k), weights float (n_drop, k): every row sums to one (unused slots have
    weight 0 and repeat the best target).
    """
    n_drop, n_keep = affinity.shape
    k = max(1, min(int(topk), n_keep))
    if n_drop == 0:
        return torch.empty(0, k, dtype=torch.long), torch.empty(0, k)
    a = affinity.float().clamp(min=0)
    val, tgt = a.topk(k, dim=1)  # (n_drop, k), descending
    use = val >= rel * val[:, :1]
    use[:, 0] = True  # the best target always counts, even with zero affinity
    w = torch.where(use, val, torch.zeros_like(val))
    total = w.sum(1, keepdim=True)
    w = torch.where(total > 0, w / total.clamp(min=1e-30), F.one_hot(torch.zeros(n_drop, dtype=torch.long), k).float())
    tgt = torch.where(use, tgt, tgt[:, :1].expand_as(tgt))
    return tgt, w


def scatter_share(n_tokens: int, keep: torch.Tensor, drop: torch.Tensor, targets: torch.Tensor,
                  weights: torch.Tensor) -> torch.Tensor:
    """-> share float (T, m): the fraction of each input token's size that goes to each kept token
    (kept tokens one-hot on themselves, dropped ones spread over their targets); rows sum to one.
    keep (m,) / drop (n_drop,) index T; targets / weights (n_drop, k) with targets indexing ``keep``."""
    m = keep.numel()
    share = torch.zeros(n_tokens, m)
    share[keep, torch.arange(m)] = 1.0
    if drop.numel():
        share[drop] = share[drop].index_put_((torch.arange(drop.numel())[:, None].expand_as(targets), targets),
                                             weights.float(), accumulate=True)
    return share


def compress(x: torch.Tensor, size: torch.Tensor, keep: torch.Tensor, drop: torch.Tensor,
             targets: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scatter every dropped token into its targets (one-to-many), size-weighted.

    x (T, D), size (T,), keep (m,) / drop (n_drop,) indices into T, targets / weights (n_drop, k) with
    targets indexing ``keep``. -> (embeds (m, D) in x's dtype, size (m,) float, share (T, m) float:
    `scatter_share`): the `Reduction` those shares make, applied to ``x``.
    """
    share = scatter_share(x.shape[0], keep, drop, targets, weights)
    red = Reduction.of(x, size, keep=keep, source=share.argmax(dim=1), share=share)
    return red.embeds, red.size, share
