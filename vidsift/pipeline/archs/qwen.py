"""Random-weight Qwen2-VL, Qwen2.5-VL and Qwen3-VL (+ MoE) checkpoints (tiny ones for tests,
published sizes for benchmarks).

Each builder writes ``config.json`` + safetensors (seeded random weights, ``save_pretrained``),
an offline byte-level tokenizer with the family's special tokens and chat template (the config's
token ids point at them), and ``preprocessor_config.json`` with the family's real preprocessing
values (Qwen3-VL also gets ``video_preprocessor_config.json``, as its Hub repos do). Full-size
builds use the published ``config.json`` numbers (Qwen/Qwen2.5-VL-3B-Instruct, -7B-Instruct,
Qwen/Qwen3-VL-2B-Instruct) and are saved in bf16; their token ids follow our tokenizer, so the
embedding table keeps the published vocab size but only its first rows are ever used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .tokenizer import byte_tokenizer, save_tokenizer

QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# The Qwen2-VL / Qwen2.5-VL chat template (default system prompt), trimmed to text/image/video.
QWEN2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Qwen3-VL: no default system prompt.
QWEN3_CHAT_TEMPLATE = QWEN2_CHAT_TEMPLATE.replace(
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}", ""
)


def _token_ids(tok) -> dict[str, int]:
    ids = {s: tok.convert_tokens_to_ids(s) for s in QWEN_SPECIALS}
    return {
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
        "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
    }


def _config(*, family: str, text: dict[str, Any], vision: dict[str, Any], tie: bool,
            vocab_size: int | None = None):
    """(config, model class, tokenizer) of one architecture; token ids follow the byte tokenizer."""
    import transformers

    tok = byte_tokenizer(QWEN_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>",
                         chat_template=QWEN3_CHAT_TEMPLATE if family.startswith("qwen3") else QWEN2_CHAT_TEMPLATE)
    ids = _token_ids(tok)
    text = {**text, "vocab_size": vocab_size or len(tok),
            **{k: ids[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}}
    cfg_cls, model_cls = {
        "qwen2_vl": (transformers.Qwen2VLConfig, transformers.Qwen2VLForConditionalGeneration),
        "qwen2_5_vl": (transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration),
        "qwen3_vl": (transformers.Qwen3VLConfig, transformers.Qwen3VLForConditionalGeneration),
        "qwen3_vl_moe": (transformers.Qwen3VLMoeConfig, transformers.Qwen3VLMoeForConditionalGeneration),
    }[family]
    config = cfg_cls(text_config=text, vision_config=vision, tie_word_embeddings=tie,
                     **{k: ids[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                            "vision_end_token_id")})
    config.eos_token_id = ids["eos_token_id"]
    config.pad_token_id = ids["pad_token_id"]
    return config, model_cls, tok


def _write(path: Path, *, family: str, text: dict[str, Any], vision: dict[str, Any], preprocessor: dict[str, Any],
           seed: int, dtype: torch.dtype, tie: bool, vocab_size: int | None = None,
           video_size: dict[str, int] | None = None) -> None:
    config, model_cls, tok = _config(family=family, text=text, vision=vision, tie=tie, vocab_size=vocab_size)
    ids = _token_ids(tok)
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = model_cls(config).eval()
    finally:
        torch.set_default_dtype(old)
    model.generation_config.eos_token_id = ids["eos_token_id"]
    model.generation_config.pad_token_id = ids["pad_token_id"]
    model.generation_config.bos_token_id = ids["bos_token_id"]
    model.save_pretrained(str(path))
    save_tokenizer(tok, path)
    (path / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    if family.startswith("qwen3"):
        # Qwen3-VL's video file: its size is the whole video's pixel total (Hub: 4096 .. 25165824)
        video = {**{k: v for k, v in preprocessor.items() if k != "image_processor_type"},
                 "size": video_size or preprocessor["size"], "video_processor_type": "Qwen3VLVideoProcessor",
                 "fps": 2, "min_frames": 4, "max_frames": 768}
        (path / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2))


def _qwen2_preprocessor(*, min_pixels: int, max_pixels: int, processor_class: str) -> dict[str, Any]:
    return {"min_pixels": min_pixels, "max_pixels": max_pixels, "patch_size": 14, "temporal_patch_size": 2,
            "merge_size": 2, "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "do_rescale": True,
            "rescale_factor": 1 / 255, "do_normalize": True, "do_resize": True, "resample": 3,
            "image_processor_type": "Qwen2VLImageProcessor", "processor_class": processor_class}


def _qwen3_preprocessor(*, shortest_edge: int, longest_edge: int) -> dict[str, Any]:
    return {"size": {"shortest_edge": shortest_edge, "longest_edge": longest_edge}, "patch_size": 16,
            "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "do_resize": True, "resample": 3,
            "image_processor_type": "Qwen2VLImageProcessorFast", "processor_class": "Qwen3VLProcessor"}


TINY_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]}}
# tiny frames: 56..224 px a side (4..64 LLM tokens per temporal patch)
TINY_QWEN2_PRE = {"min_pixels": 56 * 56, "max_pixels": 224 * 224}


def tiny_qwen2_5_vl(path: Path, *, seed: int = 0) -> None:
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "tokens_per_second": 2,
              "window_size": 56, "fullatt_block_indexes": [1], "hidden_act": "silu"}
    _write(path, family="qwen2_5_vl", text=TINY_TEXT, vision=vision, seed=seed, dtype=torch.float32, tie=False,
           preprocessor=_qwen2_preprocessor(**TINY_QWEN2_PRE, processor_class="Qwen2_5_VLProcessor"))


def tiny_qwen2_vl(path: Path, *, seed: int = 0) -> None:
    vision = {"depth": 2, "embed_dim": 32, "hidden_size": 64, "mlp_ratio": 2, "num_heads": 2, "patch_size": 14,
              "spatial_merge_size": 2, "temporal_patch_size": 2, "hidden_act": "quick_gelu"}
    _write(path, family="qwen2_vl", text=TINY_TEXT, vision=vision, seed=seed, dtype=torch.float32, tie=False,
           preprocessor=_qwen2_preprocessor(**TINY_QWEN2_PRE, processor_class="Qwen2VLProcessor"))


# Qwen3-VL tiny text/vision settings shared by the dense and MoE variants
TINY_QWEN3_TEXT = {**TINY_TEXT, "head_dim": 16,
                   "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [2, 3, 3],
                                       "mrope_interleaved": True}}
TINY_QWEN3_VISION = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                     "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                     "num_position_embeddings": 64, "deepstack_visual_indexes": [0, 1],
                     "hidden_act": "gelu_pytorch_tanh"}


def tiny_qwen3_vl(path: Path, *, seed: int = 0) -> None:
    _write(path, family="qwen3_vl", text=TINY_QWEN3_TEXT, vision=TINY_QWEN3_VISION, seed=seed, dtype=torch.float32,
           tie=False,
           preprocessor=_qwen3_preprocessor(shortest_edge=64 * 64, longest_edge=256 * 256))


def tiny_qwen3_vl_moe(path: Path, *, seed: int = 0) -> None:
    text = {**TINY_QWEN3_TEXT, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
    _write(path, family="qwen3_vl_moe", text=text, vision=TINY_QWEN3_VISION, seed=seed, dtype=torch.float32, tie=False,
           preprocessor=_qwen3_preprocessor(shortest_edge=64 * 64, longest_edge=256 * 256))


# --- published sizes (config.json of the Hub repos), random bf16 weights ---------------------------

def _qwen2_5_spec(*, hidden: int, inter: int, layers: int, heads: int, kv: int, tie: bool, vocab: int) -> dict[str, Any]:
    text = {"hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv, "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6, "sliding_window": 32768, "max_window_layers": layers, "use_sliding_window": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}}
    vision = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "out_hidden_size": hidden,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "tokens_per_second": 2,
              "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "hidden_act": "silu"}
    return {"family": "qwen2_5_vl", "text": text, "vision": vision, "tie": tie, "vocab_size": vocab,
            "preprocessor": _qwen2_preprocessor(min_pixels=3136, max_pixels=12845056, processor_class="Qwen2_5_VLProcessor")}


FULL_SIZE: dict[str, dict[str, Any]] = {
    # Qwen/Qwen2.5-VL-3B-Instruct (3.75 B parameters)
    "qwen2.5-vl-3b": _qwen2_5_spec(hidden=2048, inter=11008, layers=36, heads=16, kv=2, tie=True, vocab=151936),
    # Qwen/Qwen2.5-VL-7B-Instruct (8.29 B parameters)
    "qwen2.5-vl-7b": _qwen2_5_spec(hidden=3584, inter=18944, layers=28, heads=28, kv=4, tie=False, vocab=152064),
    # Qwen/Qwen3-VL-2B-Instruct (2.13 B parameters)
    "qwen3-vl-2b": {
        "family": "qwen3_vl", "tie": True, "vocab_size": 151936,
        "text": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
                 "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 262144, "rms_norm_eps": 1e-6,
                 "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [24, 20, 20],
                                     "mrope_interleaved": True}},
        "vision": {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16, "out_hidden_size": 2048,
                   "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304,
                   "deepstack_visual_indexes": [5, 11, 17], "hidden_act": "gelu_pytorch_tanh"},
        "preprocessor": _qwen3_preprocessor(shortest_edge=65536, longest_edge=16777216),
        "video_size": {"shortest_edge": 4096, "longest_edge": 25165824},
    },
}


def full_size_config(name: str):
    """The transformers config of a full-size architecture (no weights), e.g. to size it on ``meta``."""
    spec = FULL_SIZE[name]
    config, model_cls, _ = _config(family=spec["family"], text=spec["text"], vision=spec["vision"], tie=spec["tie"],
                                   vocab_size=spec["vocab_size"])
    return config, model_cls


def _full_builder(name: str):
    def build(path: Path, *, seed: int = 0) -> None:
        spec = FULL_SIZE[name]
        _write(path, family=spec["family"], text=spec["text"], vision=spec["vision"], preprocessor=spec["preprocessor"],
               seed=seed, dtype=torch.bfloat16, tie=spec["tie"], vocab_size=spec["vocab_size"],
               video_size=spec.get("video_size"))

    build.__name__ = build.__qualname__ = f"build_{name.replace('.', '_').replace('-', '_')}"
    build.__doc__ = f"Random-weight {name} at its published size, saved in bf16."
    return build


qwen2_5_vl_3b = _full_builder("qwen2.5-vl-3b")
qwen2_5_vl_7b = _full_builder("qwen2.5-vl-7b")
qwen3_vl_2b = _full_builder("qwen3-vl-2b")
