"""Which option a free-form model reply chose: a letter (``"B"``, ``"(B)"``, ``"B. a car"``,
``"The answer is B"``) or, failing that, the text of exactly one option. Returns the option
index or None (counted as wrong). Mirrors the tolerant extraction of lmms-eval's video
multiple-choice tasks, but never guesses between two candidates."""

from __future__ import annotations

import re

from .items import LETTERS

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
