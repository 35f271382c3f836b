"""SigLIP-tower helpers shared by the LLaVA-OneVision and SmolVLM2 adapters.

Both families put frames through a SigLIP vision tower at one fixed square size:

- `frames_to_pixels`: resize + rescale + normalise with PIL and torch from the checkpoint's
  ``preprocessor_config.json`` values (no torchvision, which HF video processors need).
- `attention_received`: encoder saliency of every patch = the attention it receives from the
  other patches in that layer, averaged over heads and queries (attention received, as
  VisionZip scores SigLIP towers; SigLIP has no [CLS] token, so there is no [CLS] attention).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from ...errors import ConfigError

# PIL resample ids equal the ``resample`` ints HF writes into preprocessor_config.json.
_RESAMPLE = {int(r): r for r in Image.Resampling}


def frames_to_pixels(data: np.ndarray, *, height: int, width: int, preprocessor: dict[str, Any],
                     default_resample: int, dtype: torch.dtype, device: torch.device,
                     via: Callable[[int, int], tuple[int, int]] | None = None) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) -> normalised pixels (N, 3, height, width) for the vision tower.

    ``via(h, w) -> (h1, w1)``: resize to that size first, then to ``(height, width)`` (SmolVLM's
    processors resize to the longest edge, then to the square), each step to uint8 as PIL does."""
    resample = int(preprocessor.get("resample", default_resample))
    if resample not in _RESAMPLE:
        raise ConfigError(f"resample={resample}", f"unknown PIL resample; choose one of: {sorted(_RESAMPLE)}")
    do_resize = preprocessor.get("do_resize", True)
    out = np.empty((data.shape[0], height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(data):
        if frame.shape[:2] == (height, width) or not do_resize:
            if frame.shape[:2] != (height, width):
                raise ConfigError("do_resize=false", f"frame is {frame.shape[1]}x{frame.shape[0]}, the vision tower needs {width}x{height}")
            out[i] = frame
        else:
            img = Image.fromarray(frame)
            if via is not None:
                h1, w1 = via(*frame.shape[:2])
                img = img.resize((w1, h1), resample=_RESAMPLE[resample])
            out[i] = np.asarray(img.resize((width, height), resample=_RESAMPLE[resample]))
    pixels = torch.from_numpy(out).to(device=device, dtype=torch.float32).permute(0, 3, 1, 2)  # (N, 3, H, W)
    if preprocessor.get("do_rescale", True):
        pixels = pixels * float(preprocessor.get("rescale_factor", 1 / 255))
    if preprocessor.get("do_normalize", True):
        mean = torch.tensor(preprocessor.get("image_mean", [0.5, 0.5, 0.5]), dtype=torch.float32, device=device)
        std = torch.tensor(preprocessor.get("image_std", [0.5, 0.5, 0.5]), dtype=torch.float32, device=device)
        pixels = (pixels - mean[:, None, None]) / std[:, None, None]
    return pixels.to(dtype)


@torch.no_grad()
def attention_received(layer: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Mean attention each patch receives in a SigLIP encoder ``layer``.

    hidden: (N, P, C) input of the layer -> (N, P) float32, each row sums to 1. Computed one
    frame at a time from the layer's own layer_norm1 / q_proj / k_proj (no attention maps are
    requested from the model, so SDPA / flash attention stay on).
    """
    attn = layer.self_attn
    out = torch.empty(hidden.shape[:2], dtype=torch.float32, device=hidden.device)
    for i in range(hidden.shape[0]):
        x = layer.layer_norm1(hidden[i : i + 1])  # (1, P, C)
        q = attn.q_proj(x).float().view(1, -1, attn.num_heads, attn.head_dim).transpose(1, 2)  # (1, h, P, d)
        k = attn.k_proj(x).float().view(1, -1, attn.num_heads, attn.head_dim).transpose(1, 2)
        probs = torch.softmax(q @ k.transpose(-1, -2) * attn.scale, dim=-1)  # (1, h, P, P)
        out[i] = probs.mean(dim=(1, 2))[0]
    return out


def feature_layer_index(vision_feature_layer: int | list[int], n_layers: int) -> int | None:
    """Index of the encoder layer whose output is ``hidden_states[vision_feature_layer]``
    (the deepest one for a list), or None when that is the embedding output."""
    layer = max(vision_feature_layer) if isinstance(vision_feature_layer, (list, tuple)) else vision_feature_layer
    k = layer % (n_layers + 1)
    return None if k == 0 else k - 1
