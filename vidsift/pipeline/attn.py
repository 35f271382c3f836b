"""Attention and RoPE maths on one decoder layer's own modules, with no layout state.

Recomputing a layer's queries and keys from its inputs (q/k projections, Qwen3's q/k norms, rotary
embeddings) and the softmax attention between them lets pruners and presses rank tokens under SDPA,
eager or flash attention alike, without asking the model for attention maps; the gathers pick rows
of hidden states or entries of a cache.
"""

from __future__ import annotations

import torch


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, L, D), cos/sin (B, L, D) -> rotated x (B, H, L, D)."""
    return x * cos.unsqueeze(1) + rotate_half(x) * sin.unsqueeze(1)


def _heads(attn: torch.nn.Module, proj: torch.nn.Linear, norm_name: str, x: torch.Tensor) -> torch.Tensor:
    head_dim = attn.head_dim
    out = proj(x).view(*x.shape[:-1], -1, head_dim)  # (B, L, H, D)
    norm = getattr(attn, norm_name, None)  # Qwen3 q_norm / k_norm
    if norm is not None:
        out = norm(out)
    return out.transpose(1, 2)  # (B, H, L, D)


def project_queries(attn: torch.nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Queries of the attention module for normed inputs x (B, L, D) -> (B, Hq, L, Dh), with RoPE."""
    return apply_rope(_heads(attn, attn.q_proj, "q_norm", x), cos, sin)


def project_keys(attn: torch.nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Keys for normed inputs x (B, L, D) -> (B, Hk, L, Dh), with RoPE (what the cache would store)."""
    return apply_rope(_heads(attn, attn.k_proj, "k_norm", x), cos, sin)


def attention_probs(q: torch.Tensor, k: torch.Tensor, *, scaling: float, allowed: torch.Tensor | None) -> torch.Tensor:
    """Softmax attention of queries q (B, Hq, w, D) over keys k (B, Hk, n, D) -> (B, Hk, w, n),
    averaged over the query heads that share each key head (GQA). ``allowed``: bool
    broadcastable to (B, 1 or Hk, w, n); disallowed pairs get zero probability."""
    b, hq, w, d = q.shape
    hk = k.shape[1]
    qg = q.float().view(b, hk, hq // hk, w, d)  # (B, Hk, G, w, D)
    logits = torch.einsum("bhgwd,bhnd->bhgwn", qg, k.float()) * scaling  # (B, Hk, G, w, n)
    if allowed is not None:
        logits = logits.masked_fill(~allowed.unsqueeze(2), float("-inf"))
    probs = torch.softmax(logits, dim=-1).nan_to_num(0.0)
    return probs.mean(dim=2)  # (B, Hk, w, n)


def gather_rows(x: torch.Tensor, idx: torch.Tensor, dim: int) -> torch.Tensor:
    """Batched gather along ``dim``: x (B, ..., L, ...), idx (B, n) -> (B, ..., n, ...)."""
    shape = [1] * x.ndim
    shape[0], shape[dim] = idx.shape[0], idx.shape[1]
    expand = list(x.shape)
    expand[0], expand[dim] = idx.shape[0], idx.shape[1]
    return x.expand(idx.shape[0], *x.shape[1:]).gather(dim, idx.view(shape).expand(expand))


def gather_entries(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Cache entries: x (B, H, n, D), idx (B, H or 1, m) -> (B, H, m, D)."""
    idx = idx.expand(x.shape[0], x.shape[1], idx.shape[-1])
    return x.gather(2, idx.unsqueeze(-1).expand(-1, -1, -1, x.shape[-1]))
