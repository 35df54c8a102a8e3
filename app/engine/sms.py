"""SMS text: which alphabet a message needs and how many segments it costs.

GSM-7 (the basic SMS alphabet) fits 160 characters in one segment and 153 per segment when split;
characters from its extension table (such as ``{`` or the euro sign) take two places. Anything
outside GSM-7 (curly quotes, emoji, Welsh letters such as ``ŵ``) switches the whole message to
UCS-2: 70 characters, or 67 per segment, counting UTF-16 code units. The GSM alphabet itself comes
from the maintained ``gsm0338`` codec, a pure table with no I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7 = "gsm7"
UCS2 = "ucs2"


@dataclass(frozen=True)
class SmsCost:
    """The encoding a text needs, its length in that encoding, and its segment count."""

    encoding: str
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 alphabet (basic or extension table)."""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return False
    return True


def non_gsm7_characters(text: str) -> list[str]:
    """The characters that force a text out of GSM-7, in order, without repeats."""
    found: list[str] = []
    for ch in text:
        if ch not in found and not is_gsm7(ch):
            found.append(ch)
    return found


@functools.lru_cache(maxsize=4096)
def sms_cost(text: str) -> SmsCost:
    """How a text would be sent as SMS and how many segments it costs (cached: most replies are
    the same few texts, and the codec works a character at a time)."""
    try:
        units = len(text.encode("gsm03.38"))
        single, multi, encoding = 160, 153, GSM7
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, UCS2
    if units == 0:
        return SmsCost(encoding, 0, 0)
    segments = 1 if units <= single else -(-units // multi)
    return SmsCost(encoding, units, segments)
