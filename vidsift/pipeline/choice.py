"""Multiple choice for one question, the same everywhere: `vidsift ask --options`, the server's
``options``, a manifest row's ``options`` and `vidsift eval` build one prompt (`mc_prompt`: the
template lmms-eval and LLaVA-Video use for Video-MME/MVBench/MLVU) and read the reply one way
(`extract_choice`); `Choice` is what an answer carries (index, letter, option text).

Extraction: a letter (``"B"``, ``"(B)"``, ``"B. a car"``, ``"The answer is B"``) or, failing
that, the text of exactly one option; None when it cannot be told (counted as wrong). Mirrors the
tolerant extraction of lmms-eval's video multiple-choice tasks, but never guesses between two
candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

LETTERS = "ABCDEFGHIJ"
DEFAULT_PRE = "Select the best answer to the following multiple-choice question based on the video."
DEFAULT_POST = "Answer with the option's letter from the given choices directly."


def parse_options(value: Any, *, where: str = "--options") -> list[str]:
    """``"red,green,blue"`` or ``["red", "green", "blue"]`` -> the option texts (2 to 10, none
    empty); a `ConfigError` naming ``where`` otherwise."""
    if isinstance(value, str):
        texts = [t.strip() for t in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        texts = [t.strip() for t in value]
    else:
        raise ConfigError(where, "must be a comma-separated string or a list of strings")
    if any(not t for t in texts):
        raise ConfigError(f"{where} {value if isinstance(value, str) else ','.join(value)}", "an option is empty")
    if not 2 <= len(texts) <= len(LETTERS):
        raise ConfigError(f"{where} {value if isinstance(value, str) else ','.join(value)}",
                          f"give 2 to {len(LETTERS)} options, got {len(texts)}")
    return texts


def mc_prompt(question: str, options: list[str], *, pre: str = DEFAULT_PRE, post: str = DEFAULT_POST) -> str:
    """``pre\nquestion\nA. opt\nB. opt\n...\npost`` (the prompt `vidsift eval` sends)."""
    lettered = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(options))
    return "\n".join(part for part in (pre, question.strip(), lettered, post) if part)


@dataclass(frozen=True)
class Choice:
    """The option a reply chose: ``index`` into ``options`` (None: it cannot be told)."""

    options: tuple[str, ...]
    index: int | None

    @classmethod
    def of(cls, reply: str | None, options: list[str]) -> "Choice":
        return cls(tuple(options), extract_choice(reply, list(options)))

    @property
    def letter(self) -> str | None:
        return None if self.index is None else LETTERS[self.index]

    @property
    def option(self) -> str | None:
        return None if self.index is None else self.options[self.index]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "letter": self.letter, "option": self.option, "options": list(self.options)}


_PREFIXES = ("the best answer is", "the correct answer is", "the answer is", "the answer",
             "best answer:", "answer:", "the best option is", "the correct option is", "best option:", "option")


def extract_choice(reply: str | None, options: list[str]) -> int | None:
    """Index into ``options`` chosen by ``reply``, or None when it cannot be told."""
    if not reply:
        return None
    valid = LETTERS[: len(options)]
    text = reply.strip()
    low = text.lower()
    for prefix in _PREFIXES:
        if low.startswith(prefix):
            text = text[len(prefix):].strip(" :")
            low = text.lower()
            break
    # a letter at the very start: "B", "(B)", "B.", "B)", "B: text"
    m = re.match(rf"^\(?([{valid}])\)?(?=$|[\s.:),])", text)
    article = bool(m) and m.group(0) == "A" and re.match(r"^A\s+[a-z]", text) is not None  # "A dog runs"
    if m and not article:
        return valid.index(m.group(1))
    # "answer is (C)" / "option C" anywhere
    m = re.search(rf"(?:answer|option)\s*(?:is|:)?\s*\(?([{valid}])\)?(?=$|[\s.:),])", text, flags=re.IGNORECASE)
    if m and m.group(1).upper() in valid:
        return valid.index(m.group(1).upper())
    # the text of exactly one option
    words = " ".join(re.sub(r"[^a-z0-9 ]+", " ", low).split())
    hits = {i for i, opt in enumerate(options)
            if (o := " ".join(re.sub(r"[^a-z0-9 ]+", " ", opt.lower()).split())) and re.search(rf"\b{re.escape(o)}\b", words)}
    if len(hits) > 1:  # keep the longest when one option's text contains another's
        longest = max(hits, key=lambda i: len(options[i]))
        hits = {longest} if all(options[i].lower() in options[longest].lower() for i in hits) else hits
    if len(hits) == 1:
        return hits.pop()
    # a lone letter in parentheses or standing alone, if only one distinct such letter occurs
    found = set(re.findall(rf"\(([{valid}])\)", text)) or set(re.findall(rf"(?<![A-Za-z'])([{valid}])(?![A-Za-z'])", text))
    found.discard("A") if len(found) > 1 and "A" in found and re.search(r"\bA\s+[a-z]", text) else None
    if len(found) == 1 and not (article and found == {"A"}):
        return valid.index(found.pop())
    return 0 if article else None
