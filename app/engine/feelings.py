"""Sad news: a message that deserves a kind reply before anything else (not a safeguarding risk).

"my nan died", "i'm so sad", "i miss my mum": the child hears "I am sorry to hear that" first and
their words reach their reviewing officer. Risk of harm is triage's job and always comes first.
"""

from __future__ import annotations

import re

from app.engine.text import normalise

# Whole words or phrases, matched after normalising (case, accents, punctuation).
SAD_NEWS: tuple[str, ...] = (
    "died",
    "has died",
    "passed away",
    "passed on",
    "funeral",
    "lost my",
    "we lost",
    "i am sad",
    "im sad",
    "i am so sad",
    "im so sad",
    "feel sad",
    "feeling sad",
    "so sad",
    "i miss my",
    "i miss him",
    "i miss her",
    "i miss them",
    "really miss",
    "lonely",
    "heartbroken",
    "i am upset",
    "im upset",
    "feel upset",
    "crying",
    "cry all the time",
    "nobody cares",
    "no one cares",
    "i feel alone",
    "feel so alone",
    # Welsh
    "wedi marw",
    "angladd",
    "dw i n drist",
    "rwy n drist",
    "yn drist",
    "unig",
    "hiraeth",
)
NOT_SAD: tuple[str, ...] = ("phone died", "battery died", "my phone has died", "dying to")

_SAD = re.compile(r"\b(" + "|".join(re.escape(normalise(p)) for p in SAD_NEWS) + r")\b")
_NOT_SAD = re.compile(r"\b(" + "|".join(re.escape(normalise(p)) for p in NOT_SAD) + r")\b")


def is_sad_news(text: str) -> bool:
    """True when a message tells of a loss or sadness (and is not an everyday figure of speech)."""
    folded = normalise(text)
    return bool(_SAD.search(folded)) and not _NOT_SAD.search(folded)
