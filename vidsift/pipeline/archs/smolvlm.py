"""Random-weight SmolVLM2 checkpoints (Llama/SmolLM2 LLM + SigLIP tower + pixel-shuffle connector).

``tiny-smolvlm2`` (~0.2 M params, 96 px frames -> 6x6 patches -> scale 2 -> 9 tokens per frame)
is for tests; ``smolvlm2-500m`` (SigLIP-B/16 at 512, scale 4 -> 64 tokens, SmolLM2-360M) and
``smolvlm2-2.2b`` (SigLIP-so400m/14 at 384, scale 3 -> 81 tokens, SmolLM2-1.7B) follow the
published ``HuggingFaceTB/SmolVLM2-*-Video-Instruct`` configs (bf16 weights) for benchmarks.
Each folder holds config + safetensors, a byte-level tokenizer with the SmolVLM special tokens
and chat template (config ids point into it), ``preprocessor_config.json`` (size, mean/std,
rescale, splitting, video sampling) and ``processor_config.json`` (image_seq_len).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .tokenizer import byte_tokenizer, save_tokenizer

SPECIALS = (["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>",
             "<end_of_utterance>", "<global-img>"]
            + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)])

# chat template of the SmolVLM2 tokenizers (images); the processor swaps in its video template.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def make_config(*, text: dict, vision: dict, scale: int, longest_edge: int):
    """(SmolVLMConfig, tokenizer) with the config's token ids pointing into the tokenizer."""
    from transformers import SmolVLMConfig

    tok = byte_tokenizer(SPECIALS, eos="<end_of_utterance>", pad="<|im_end|>", chat_template=CHAT_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    text = {"model_type": "llama", "bos_token_id": ids["<|im_start|>"], "eos_token_id": ids["<end_of_utterance>"],
            "pad_token_id": ids["<|im_end|>"], "rms_norm_eps": 1e-5, "tie_word_embeddings": False, **text}
    text.setdefault("vocab_size", len(tok))
    config = SmolVLMConfig(text_config=text, vision_config=vision, scale_factor=scale,
                           image_token_id=ids["<image>"], pad_token_id=ids["<|im_end|>"], tie_word_embeddings=False)
    return config, tok


def _build(path: Path, *, seed: int, text: dict, vision: dict, scale: int, longest_edge: int,
           dtype: torch.dtype) -> None:
    from transformers import SmolVLMForConditionalGeneration

    config, tok = make_config(text=text, vision=vision, scale=scale, longest_edge=longest_edge)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = ids["<end_of_utterance>"]
    model.generation_config.pad_token_id = ids["<|im_end|>"]
    model.save_pretrained(str(path))
    save_tokenizer(tok, path)
    seq_len = (vision["image_size"] // vision["patch_size"]) ** 2 // scale**2
    files = {
        "preprocessor_config.json": {
            "image_processor_type": "SmolVLMImageProcessor", "processor_class": "SmolVLMProcessor",
            "do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True, "do_pad": True,
            "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "max_image_size": {"longest_edge": longest_edge}, "resample": 1, "rescale_factor": 1 / 255,
            "size": {"longest_edge": 4 * longest_edge},
            "video_sampling": {"fps": 1, "max_frames": 64, "video_size": {"longest_edge": longest_edge}},
        },
        "processor_config.json": {"processor_class": "SmolVLMProcessor", "image_seq_len": seq_len},
    }
    for name, data in files.items():
        (path / name).write_text(json.dumps(data, indent=2))


TINY = dict(scale=2, longest_edge=96,
            text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=4096, rope_theta=100000.0, initializer_range=0.2),
            vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                        image_size=96, patch_size=16))
SMOLVLM2_500M = dict(scale=4, longest_edge=512,
                     text=dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                               num_key_value_heads=5, max_position_embeddings=8192, rope_theta=100000.0, vocab_size=49280),
                     vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                 image_size=512, patch_size=16))
SMOLVLM2_22B = dict(scale=3, longest_edge=384,
                    text=dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                              num_key_value_heads=32, max_position_embeddings=16384, rope_theta=130000.0, vocab_size=49280),
                    vision=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                                image_size=384, patch_size=14))


def tiny_smolvlm2(path: Path, *, seed: int = 0) -> None:
    _build(path, seed=seed, dtype=torch.float32, **TINY)


def smolvlm2_500m(path: Path, *, seed: int = 0) -> None:
    _build(path, seed=seed, dtype=torch.bfloat16, **SMOLVLM2_500M)


def smolvlm2_22b(path: Path, *, seed: int = 0) -> None:
    _build(path, seed=seed, dtype=torch.bfloat16, **SMOLVLM2_22B)
