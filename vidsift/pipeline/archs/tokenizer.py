"""An offline byte-level BPE tokenizer with chosen special tokens, for random checkpoints.

No network: the vocabulary is the 256 byte tokens (GPT-2 byte-to-unicode map) plus the
family's special tokens, with no merges. It saves and loads with ``save_pretrained`` /
``AutoTokenizer.from_pretrained`` like a real checkpoint's tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from transformers import Qwen2Tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def byte_tokenizer(specials: list[str], *, eos: str = "<|endoftext|>", pad: str | None = None,
                   chat_template: str | None = None) -> Qwen2Tokenizer:
    """A byte-level tokenizer whose ids 0..255 are bytes and 256.. are ``specials`` (in order).

    ``eos`` (and ``pad``) must be among ``specials``; every special is a single token.
    """
    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode().values())}
    for tok in specials:
        vocab.setdefault(tok, len(vocab))
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=eos, eos_token=eos, pad_token=pad or eos)
    tok.add_special_tokens({"additional_special_tokens": [s for s in specials if s not in (eos, pad)]})
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def save_tokenizer(tok: Qwen2Tokenizer, path: str | Path) -> None:
    tok.save_pretrained(str(path))
