"""Text handling shared by the runtime and triage: normalising what a child types, and matching it."""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Protocol

# Characters that render as nothing or as a space but defeat naive matching.
_INVISIBLE = {"\u00ad", "\u034f", "\u061c", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u3164"}
_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACE = re.compile(r"\s+", re.UNICODE)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_NUMBER = re.compile(r"(\d{1,3})")

FUZZY_CUTOFF = 0.8


def strip_invisible(text: str) -> str:
    """Remove zero-width and other format characters (Unicode category Cf) and soft hyphens."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf" and ch not in _INVISIBLE)


@functools.lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Fold text for matching: NFKC, invisible characters out, case folded, punctuation to spaces."""
    text = unicodedata.normalize("NFKC", strip_invisible(text))
    text = text.casefold().replace("\u2019", "'").replace("'", "")
    text = _PUNCT.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


@functools.lru_cache(maxsize=8192)
def strip_accents(text: str) -> str:
    """Drop combining marks so "yn ol" matches "yn ôl" when a phone has no accents."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def placeholders(text: str) -> list[str]:
    """The ``{variable}`` names used in a message."""
    return _PLACEHOLDER.findall(text)


class Lookup(Protocol):
    """What ``fill`` reads names from: a dict, or anything with ``get`` (see ``runtime.Values``)."""

    def get(self, name: str, default: str, /) -> str: ...


def fill(text: str, variables: Lookup) -> str:
    """Replace ``{name}`` placeholders; unknown names are left visible rather than raising.

    Only the names the text uses are read, so a host may work a fact out on first read."""
    if "{" not in text:
        return text  # most texts name nothing
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


@functools.lru_cache(maxsize=2048)
def split_keywords(keywords: str) -> tuple[str, ...]:
    """A comma-separated keyword message as normalised phrases (cached: flows repeat them)."""
    return tuple(k for k in (normalise(p) for p in keywords.split(",")) if k)


@dataclass(frozen=True)
class KeywordForms:
    """Keywords as normalised phrases, and the same phrases with their accents dropped."""

    phrases: frozenset[str]
    plain: frozenset[str]


@functools.lru_cache(maxsize=2048)
def keyword_forms(*keywords: str) -> KeywordForms:
    """Comma-separated keyword messages (e.g. one in the child's language, one in English) as one
    set of phrases (cached: every message is checked against the command words)."""
    phrases = frozenset(phrase for text in keywords for phrase in split_keywords(text))
    return KeywordForms(phrases, frozenset(strip_accents(phrase) for phrase in phrases))


@functools.lru_cache(maxsize=8192)
def _forms(phrase: str) -> frozenset[str]:
    folded = normalise(phrase)
    return frozenset({folded, strip_accents(folded)} - {""})


@dataclass(frozen=True)
class _Option:
    """One option's phrases folded for matching, worked out once per set of phrases (read only)."""

    forms: frozenset[str]  # every phrase, folded, with and without accents
    padded: tuple[tuple[str, int], ...]  # (" plain form ", length of the form) to find inside a text
    # (plain form, its distinct characters, how often each occurs) for near spellings
    plain: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...]


@functools.lru_cache(maxsize=4096)
def _option(phrases: frozenset[str]) -> _Option:
    forms = frozenset().union(*(_forms(p) for p in phrases))
    plain = {strip_accents(form) for form in forms}
    return _Option(
        forms=forms,
        padded=tuple((f" {strip_accents(form)} ", len(form)) for form in forms),
        plain=tuple((form, *_characters(form)) for form in plain),
    )


def _characters(text: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The distinct characters of a text, and how often each occurs."""
    counts = Counter(text)
    return tuple(counts), tuple(counts.values())


class _Spelling:
    """What a text is compared with each phrase for a near spelling (``difflib``), made once a text."""

    def __init__(self, said: str):
        self.said = said
        self.counts = dict(Counter(said))
        self.matcher = difflib.SequenceMatcher(None, said)

    def best_ratio(self, option: _Option) -> float:
        """The best similarity of the text to any phrase, skipping phrases that cannot reach the cutoff.

        Two bounds rule most phrases out before the full comparison: the difference in length,
        and the characters the two have in common (``SequenceMatcher.quick_ratio``, worked out
        here from counts made once per phrase)."""
        best = 0.0
        said, count_of = self.said, self.counts.get
        for plain, characters, counts in option.plain:
            total = len(said) + len(plain)
            if 2.0 * min(len(said), len(plain)) / total < FUZZY_CUTOFF:
                continue  # the difference in length alone rules it out
            # Characters in common: for each of the phrase's, the fewer of its count and the text's.
            common = sum(map(min, counts, map(count_of, characters, repeat(0))))
            if 2.0 * common / total < FUZZY_CUTOFF:
                continue
            self.matcher.set_seq2(plain)
            best = max(best, self.matcher.ratio())
        return best


def typed_number(text: str) -> int | None:
    """The number a message is ("2", " 2. "), or None when it is not just a number of up to three digits."""
    number = _NUMBER.fullmatch(normalise(text))
    return int(number.group(1)) if number else None


def match_option(text: str, options: Sequence[Iterable[str]], *, within: bool = True) -> int | None:
    """Index of the option a child meant, or None.

    Each option is a set of phrases (its label in every language the child may use, plus
    keywords). A bare number picks by position; then an exact phrase; then the option whose
    phrase appears as whole words in the text (longest phrase wins, a tie is no match); then a
    near spelling of the whole text.
    """
    said = normalise(text)
    if not said:
        return None
    number = typed_number(text)
    if number is not None:
        return number - 1 if 1 <= number <= len(options) else None
    said_plain = strip_accents(said)

    folded = [_option(frozenset(phrases)) for phrases in options]
    for index, option in enumerate(folded):
        if said in option.forms or said_plain in option.forms:
            return index

    best: tuple[int, int] | None = None
    tie = False
    padded = f" {said_plain} "
    for index, option in enumerate(folded if within else []):
        for phrase, length in option.padded:
            if phrase in padded:
                if best is None or length > best[0]:
                    best, tie = (length, index), False
                elif length == best[0] and index != best[1]:
                    tie = True
    if best is not None and not tie:
        return best[1]

    spelling = _Spelling(said_plain)
    scored = [(spelling.best_ratio(option), index) for index, option in enumerate(folded)]
    scored.sort(reverse=True)
    if scored and scored[0][0] >= FUZZY_CUTOFF:
        if len(scored) > 1 and scored[1][0] == scored[0][0]:
            return None
        return scored[0][1]
    return None
