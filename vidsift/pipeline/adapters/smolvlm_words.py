"""English cardinal numbers for SmolVLM2's video intro ("... series of twelve frames ...").

The SmolVLM processor writes the frame count with ``num2words``; this is the same English
output for 0..999,999 (digits beyond that) without the extra dependency.
"""

from __future__ import annotations

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest or not parts:
        if rest < 20:
            words = _ONES[rest]
        else:
            tens, ones = divmod(rest, 10)
            words = _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
        parts.append(("and " if hundreds else "") + words)
    return " ".join(parts)


def number_words(n: int) -> str:
    """``number_words(42) == "forty-two"`` (num2words style: "one hundred and one")."""
    if n < 0 or n >= 1_000_000:
        return str(n)
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _below_thousand(rest)
    head = f"{_below_thousand(thousands)} thousand"
    if not rest:
        return head
    return f"{head}{' and ' if rest < 100 else ', '}{_below_thousand(rest)}"
