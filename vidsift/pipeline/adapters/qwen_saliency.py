"""Encoder saliency for the Qwen-VL vision towers: attention each LLM token's patches receive in
the tower's last block, read while the tower runs (no second pass, outputs untouched).

Attention received (as in VisionZip, Yang et al., 2024, https://arxiv.org/abs/2412.04467; the
Qwen-VL towers have no [CLS] token, so this is not [CLS] attention) ranks patches by how much the
other patches of their frame attend to them. A forward pre-hook on the last block's ``attn`` records its input
(already normed), ``cu_seqlens`` and rotary ``position_embeddings``; we recompute q and k with the
module's own ``qkv`` and the family's ``apply_rotary_pos_emb_vision``, softmax per attention span
(one temporal patch, or one window for a windowed Qwen2.5-VL block), average over heads and
queries, then average the ``merge_size**2`` patches of each LLM token. Qwen2.5-VL runs its blocks
in window order: we undo it with the tower's own ``get_vision_window_index``.
"""

from __future__ import annotations

import sys

import torch


@torch.no_grad()
def attention_received(visual: torch.nn.Module, seen: dict, grid_thw: torch.Tensor) -> torch.Tensor:
    """(n_llm_tokens,) float32 saliency in the tower's output order, from the inputs ``record_inputs`` saw enter the last block's ``attn``."""
    attn = visual.blocks[-1].attn
    rotary = sys.modules[type(attn).__module__].apply_rotary_pos_emb_vision
    hidden = seen["hidden_states"]
    cu = seen.get("cu_seqlens", seen["args"][0] if seen["args"] else None)
    n = hidden.shape[0]
    q, k, _ = attn.qkv(hidden).reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)  # (n, H, d)
    cos, sin = seen["position_embeddings"]
    q, k = rotary(q, k, cos, sin)
    received = torch.empty(n, dtype=torch.float32, device=hidden.device)
    bounds = cu.tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b <= a:
            continue
        qs, ks = q[a:b].transpose(0, 1).float(), k[a:b].transpose(0, 1).float()  # (H, s, d)
        probs = torch.softmax(qs @ ks.transpose(1, 2) * attn.scaling, dim=-1)  # (H, s, s)
        received[a:b] = probs.mean(dim=(0, 1))
    unit = visual.spatial_merge_size ** 2
    per_token = received.view(-1, unit).mean(1)  # (n / unit,) in block order
    order = output_order(visual, grid_thw)
    return per_token if order is None else per_token[order.to(per_token.device)]


def output_order(visual: torch.nn.Module, grid_thw: torch.Tensor) -> torch.Tensor | None:
    """Block order -> output order of the merged tokens (Qwen2.5-VL's window permutation), or None."""
    if getattr(visual, "window_size", None) is None or not hasattr(visual, "fullatt_block_indexes"):
        return None
    from transformers.vision_utils import get_vision_window_index

    window_index, _ = get_vision_window_index(grid_thw.cpu(), spatial_merge_size=visual.spatial_merge_size,
                                              window_size=visual.window_size, patch_size=visual.patch_size, kwargs={})
    return torch.argsort(window_index)
