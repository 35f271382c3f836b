"""The probe model: a small stock Qwen2.5-VL with a word-level tokenizer, built from a config.

Everything a Hub checkpoint folder has is written by `build_untrained` — ``config.json``,
safetensors weights, ``tokenizer.json`` (a `tokenizers` WordLevel model over the probe's words
and the Qwen special tokens, with the Qwen2.5-VL chat template), ``preprocessor_config.json`` —
so the trained folder loads through ``Pipeline.from_pretrained(folder)`` like any checkpoint.

Sizes: vision tower depth 2, width 64, 14-px patches, 2x2 merge, temporal pairs; LLM 4 layers,
width 128, 4 heads (2 KV heads), M-RoPE sections [8, 4, 4] (head dim 32: half the frequencies,
the slowest included, go to time, so the order of events decades apart in position stays readable). A 56x56 frame pair
gives 4 LLM tokens (2 per frame); frames are never resized (min = max pixels = 56x56).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from ..eval.items import EvalItem
from ..eval.prompt import DEFAULT_POST, DEFAULT_PRE, MCPrompt
from .generate import NOW_SHAPES, QUESTIONS, WHEN
from .scene import BACKGROUNDS, COLOURS, SHAPES, SIZE

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
SYSTEM_PROMPT = "You are a helpful assistant."
# the mllm (QuoTA) scorer's prompts: relevance is trained with the first; the second is the
# query-decoupling prompt, whose words are in the vocabulary so it tokenizes without <unk>
RELEVANCE_PROMPT = "Is this frame relevant to: {question}? Answer yes or no."
# training's dense auxiliary task: one caption word group per sampled frame
CAPTION_PROMPT = "Describe every frame."
CUES_PROMPT = ("List the visual cues (objects, people, actions, scene text) a frame must show to answer "
               "this question, one short phrase per line: {question}")

PROBE_TEXT = {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
              "rope_parameters": {"rope_type": "default", "rope_theta": 10_000.0, "mrope_section": [8, 4, 4]}}
PROBE_VISION = {"depth": 2, "hidden_size": 64, "intermediate_size": 192, "num_heads": 2, "out_hidden_size": 128,
                "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "tokens_per_second": 2,
                "window_size": 112, "fullatt_block_indexes": [1], "hidden_act": "silu"}
PROBE_PREPROCESSOR = {"min_pixels": SIZE * SIZE, "max_pixels": SIZE * SIZE, "patch_size": 14, "temporal_patch_size": 2,
                      "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                      "image_std": [0.26862954, 0.26130258, 0.27577711], "do_rescale": True,
                      "rescale_factor": 1 / 255, "do_normalize": True, "do_resize": True, "resample": 3,
                      "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}

CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_WORD = re.compile(r"\w+|[^\w\s]+")  # the Whitespace pre-tokenizer's split


def mc_text(question: str, options: list[str]) -> str:
    """The multiple-choice prompt `vidsift eval` sends for a probe question (`MCPrompt`)."""
    return MCPrompt()(EvalItem("probe", "q", "", question, list(options), 0))


def vocabulary() -> list[str]:
    """Every word the probe's prompts, options and answers use (pre-tokenized), sorted."""
    texts = [SYSTEM_PROMPT, DEFAULT_PRE, DEFAULT_POST, RELEVANCE_PROMPT, CAPTION_PROMPT, CUES_PROMPT, *QUESTIONS.values(),
             *WHEN, *BACKGROUNDS, *COLOURS, *SHAPES, *NOW_SHAPES, "the square the cross", "0 1 2 3 4",
             "A B C D E F G H I J . : ( ) ? ,", "system user assistant yes no Yes No YES NO"]
    return sorted({w for text in texts for w in _WORD.findall(text)})


def build_tokenizer():
    """A word-level fast tokenizer: ids 0.. are the Qwen specials, then ``<unk>``, then the words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([*SPECIALS, "<unk>", *vocabulary()])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces, tidies punctuation
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>",
                                  additional_special_tokens=[s for s in SPECIALS if s not in ("<|im_end|>", "<|endoftext|>")])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_untrained(path: str | Path, *, seed: int = 0, text: dict[str, Any] | None = None,
                    vision: dict[str, Any] | None = None) -> Path:
    """Write a randomly initialised probe checkpoint folder (the start of training)."""
    import transformers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    text = {**PROBE_TEXT, **(text or {}), "vocab_size": len(tok), "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]}
    config = transformers.Qwen2_5_VLConfig(
        text_config=text, vision_config={**PROBE_VISION, **(vision or {})}, tie_word_embeddings=True,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    config.eos_token_id, config.pad_token_id = ids["<|im_end|>"], ids["<|endoftext|>"]
    torch.manual_seed(seed)
    model = transformers.Qwen2_5_VLForConditionalGeneration(config).eval()
    gen = model.generation_config
    gen.eos_token_id, gen.pad_token_id, gen.bos_token_id = ids["<|im_end|>"], ids["<|endoftext|>"], ids["<|endoftext|>"]
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    (path / "preprocessor_config.json").write_text(json.dumps(PROBE_PREPROCESSOR, indent=2))
    return path
