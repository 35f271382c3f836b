"""Random-weight LLaVA-OneVision / LLaVA-Video checkpoints (Qwen2 LLM + SigLIP tower).

``tiny-llava-onevision`` (~0.2 M params, 98 px frames -> 7x7 patches -> 4x4 = 16 tokens per
frame) is for tests; ``llava-onevision-0.5b`` and ``llava-video-7b`` use the published
``llava-hf/llava-onevision-qwen2-0.5b-ov-hf`` / ``llava-hf/LLaVA-Video-7B-Qwen2-hf`` configs
(bf16 weights) for benchmarks. Each folder holds config + safetensors, a byte-level tokenizer
with the family's special tokens and chat template (config token ids point into it), and the
checkpoint's ``preprocessor_config.json`` / ``video_preprocessor_config.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .tokenizer import byte_tokenizer, save_tokenizer

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]

# chat_template.json of llava-hf/llava-onevision-qwen2-*-ov-hf
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}{% endfor %}"
    "{{'<|im_end|>'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SIGLIP_SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
                      image_size=384, patch_size=14, vision_use_head=False)


def _pinpoints(side: int) -> list[list[int]]:
    return [[side * i, side * j] for i in range(1, 7) for j in range(1, 7)]


def make_config(*, text: dict, vision: dict):
    """(LlavaOnevisionConfig, tokenizer) with the config's token ids pointing into the tokenizer."""
    from transformers import LlavaOnevisionConfig

    tok = byte_tokenizer(SPECIALS, eos="<|im_end|>", pad="<|endoftext|>", chat_template=CHAT_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    side = vision["image_size"]
    text = {"model_type": "qwen2", "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"], "rope_theta": 1000000.0, **text}
    text.setdefault("vocab_size", len(tok))
    config = LlavaOnevisionConfig(
        text_config=text, vision_config={"model_type": "siglip_vision_model", **vision},
        image_token_index=ids["<image>"], video_token_index=ids["<video>"],
        vision_feature_layer=-1, vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9",
        image_grid_pinpoints=_pinpoints(side), tie_word_embeddings=text.get("tie_word_embeddings", False),
    )
    return config, tok


def _build(path: Path, *, seed: int, text: dict, vision: dict, dtype: torch.dtype) -> None:
    from transformers import LlavaOnevisionForConditionalGeneration

    config, tok = make_config(text=text, vision=vision)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    side = vision["image_size"]
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(str(path))
    save_tokenizer(tok, path)
    common = {"do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
              "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3,
              "rescale_factor": 1 / 255, "size": {"height": side, "width": side},
              "processor_class": "LlavaOnevisionProcessor"}
    files = {
        "preprocessor_config.json": {**common, "image_processor_type": "LlavaOnevisionImageProcessor",
                                     "do_pad": True, "image_grid_pinpoints": _pinpoints(side)},
        "video_preprocessor_config.json": {**common, "video_processor_type": "LlavaOnevisionVideoProcessor"},
        "processor_config.json": {"processor_class": "LlavaOnevisionProcessor", "vision_feature_select_strategy": "full",
                                  "num_image_tokens": (side // vision["patch_size"]) ** 2, "vision_aspect_ratio": "anyres_max_9"},
    }
    for name, data in files.items():
        (path / name).write_text(json.dumps(data, indent=2))


TINY = dict(text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
                     initializer_range=0.2),
            vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                        image_size=98, patch_size=14, vision_use_head=False))
ONEVISION_05B = dict(vision=_SIGLIP_SO400M,
                     text=dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                               num_key_value_heads=2, max_position_embeddings=32768, max_window_layers=24,
                               vocab_size=152000, tie_word_embeddings=True))
VIDEO_7B = dict(vision=_SIGLIP_SO400M,
                text=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                          num_key_value_heads=4, max_position_embeddings=32768, max_window_layers=28,
                          vocab_size=152128, tie_word_embeddings=False))


def tiny_llava_onevision(path: Path, *, seed: int = 0) -> None:
    _build(path, seed=seed, dtype=torch.float32, **TINY)


def llava_onevision_05b(path: Path, *, seed: int = 0) -> None:
    _build(path, seed=seed, dtype=torch.bfloat16, **ONEVISION_05B)


def llava_video_7b(path: Path, *, seed: int = 0) -> None:
    _build(path, seed=seed, dtype=torch.bfloat16, **VIDEO_7B)
