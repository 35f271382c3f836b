"""A FLOPs estimate for one question, from the model's configs and the measured token counts.

Counts multiply-adds x 2 of the matmuls that dominate (Kaplan et al., 2020, arXiv:2001.08361,
"C = 2N" per token, plus the attention term):

* LLM prefill: ``2 * N_layer_params * L + 2 * n_layers * L^2 * d_attn`` (causal QK^T and AV,
  each ``L^2/2 * d`` multiply-adds) + the LM head for the last position;
* LLM decode: per new token ``2 * N_layer_params + 4 * n_layers * ctx * d_attn + 2 * d * V``;
* vision tower: ``2 * N_vision * patches + 4 * n_layers_v * patches_per_image * patches * d_v``
  with patches = encoded LLM tokens x patches per LLM token (spatial merge^2 for Qwen-VL,
  pixel-shuffle scale^2 for SmolVLM, 729/196 for LLaVA-OneVision's 2x2 pooled video frames).

It is an estimate for comparing settings of one model, not a profiler count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..pipeline.stats import decoder_prefill_flops


def _get(cfg: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(cfg, name, None)
        if value is not None:
            return value
    return default


@dataclass(frozen=True)
class FlopModel:
    """Per-model constants of the estimate (see the module docstring)."""

    llm_layer_params: int  # decoder-layer parameters (no embeddings, no head)
    n_layers: int
    d_attn: int  # heads x head_dim
    hidden: int
    vocab: int
    vision_params: int
    vision_layers: int
    vision_hidden: int
    patches_per_token: float
    patches_per_image: int

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> "FlopModel":
        config = model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        vision = _get(config, "vision_config", default=None)
        hidden = int(_get(text, "hidden_size", default=0))
        heads = int(_get(text, "num_attention_heads", default=1))
        head_dim = int(_get(text, "head_dim", default=hidden // max(heads, 1)))
        n_layers = int(_get(text, "num_hidden_layers", default=0))
        layer_params = vision_params = 0
        for name, p in model.named_parameters():
            if ".layers." in name and ("language_model" in name or "text_model" in name):
                layer_params += p.numel()
            elif any(k in name for k in ("visual", "vision", "multi_modal_projector", "connector")):
                vision_params += p.numel()
        v_hidden = int(_get(vision, "hidden_size", "embed_dim", default=0)) if vision is not None else 0
        v_layers = int(_get(vision, "num_hidden_layers", "depth", default=0)) if vision is not None else 0
        patch = int(_get(vision, "patch_size", default=14)) if vision is not None else 14
        image = int(_get(vision, "image_size", default=0)) if vision is not None else 0
        merge = _get(vision, "spatial_merge_size", default=None) if vision is not None else None
        scale = _get(config, "scale_factor", default=None)
        if merge:
            ratio, per_image = float(merge) ** 2, 0
        elif scale:
            ratio, per_image = float(scale) ** 2, (image // patch) ** 2 if image else 0
        elif image:
            side = image // patch
            pooled = -(-side // 2)
            ratio, per_image = side * side / (pooled * pooled), side * side
        else:
            ratio, per_image = 1.0, 0
        return cls(llm_layer_params=int(layer_params), n_layers=n_layers, d_attn=heads * head_dim, hidden=hidden,
                   vocab=int(_get(text, "vocab_size", default=0)), vision_params=int(vision_params), vision_layers=v_layers,
                   vision_hidden=v_hidden, patches_per_token=ratio, patches_per_image=per_image)

    def estimate(self, *, prompt_len: int, new_tokens: int, tokens_encoded: int, frames_encoded: int) -> dict[str, float]:
        """FLOPs of prefill, decode and the vision tower for one question."""
        L = int(prompt_len)
        per_layer = self.llm_layer_params / max(self.n_layers, 1)
        prefill = self.n_layers * decoder_prefill_flops(per_layer, self.d_attn, L) + 2 * self.hidden * self.vocab
        decode = 0.0
        for step in range(max(int(new_tokens) - 1, 0)):
            ctx = L + step + 1
            decode += 2 * self.llm_layer_params + 4 * self.n_layers * ctx * self.d_attn + 2 * self.hidden * self.vocab
        patches = tokens_encoded * self.patches_per_token
        per_image = self.patches_per_image or (patches / max(frames_encoded, 1))
        vision = 2 * self.vision_params * patches + 4 * self.vision_layers * per_image * patches * self.vision_hidden
        return {"prefill": float(prefill), "decode": float(decode), "vision": float(vision),
                "total": float(prefill + decode + vision)}
