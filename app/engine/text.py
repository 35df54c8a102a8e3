"""Text handling shared by the runtime and triage: normalising what a child types, and matching it."""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


@functools.lru_cache(maxsize=2048)
def keyword_phrases(*keywords: str) -> frozenset[str]:
    """Comma-separated keyword messages (e.g. one in the child's language, one in English) as one
    set of normalised phrases."""
    return frozenset(phrase for text in keywords for phrase in split_keywords(text))


@functools.lru_cache(maxsize=2048)
def plain_forms(phrases: frozenset[str]) -> frozenset[str]:
    """The phrases with their accents dropped."""
    return frozenset(strip_accents(phrase) for phrase in phrases)


@functools.lru_cache(maxsize=8192)
def _forms(phrase: str) -> frozenset[str]:
    folded = normalise(phrase)
    return frozenset({folded, strip_accents(folded)} - {""})


@dataclass(frozen=True)
class _Option:
    """One option's phrases folded for matching, worked out once per set of phrases."""

    forms: frozenset[str]  # every phrase, folded, with and without accents
    padded: tuple[tuple[str, int], ...]  # (" plain form ", length of the form) to find inside a text
    plain: tuple[tuple[str, dict[str, int]], ...]  # (plain form, count of each character) for spelling


@functools.lru_cache(maxsize=4096)
def _option(phrases: frozenset[str]) -> _Option:
    forms = frozenset().union(*(_forms(p) for p in phrases))
    plain = {strip_accents(form) for form in forms}
    return _Option(
        forms=forms,
        padded=tuple((f" {strip_accents(form)} ", len(form)) for form in forms),
        plain=tuple((form, _counts(form)) for form in plain),
    )


def _counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    return counts


def _best_ratio(said: str, option: _Option) -> float:
    """The best similarity of the text to any phrase, skipping phrases that cannot reach the cutoff.

    Two bounds rule most phrases out before the full comparison: the difference in length, and
    the characters the two have in common (``SequenceMatcher.quick_ratio``, worked out here from
    counts made once per phrase)."""
    best = 0.0
    matcher = difflib.SequenceMatcher(None, said)
    counts = _counts(said)
    for plain, plain_counts in option.plain:
        total = len(said) + len(plain)
        if 2.0 * min(len(said), len(plain)) / total < FUZZY_CUTOFF:
            continue  # the difference in length alone rules it out
        common = sum(min(n, plain_counts.get(ch, 0)) for ch, n in counts.items())
        if 2.0 * common / total < FUZZY_CUTOFF:
            continue
        matcher.set_seq2(plain)
        best = max(best, matcher.ratio())
    return best


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
    said_plain = strip_accents(said)
    number = _NUMBER.fullmatch(said)
    if number:
        index = int(number.group(1)) - 1
        return index if 0 <= index < len(options) else None

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

    scored = [(_best_ratio(said_plain, option), index) for index, option in enumerate(folded)]
    scored.sort(reverse=True)
    if scored and scored[0][0] >= FUZZY_CUTOFF:
        if len(scored) > 1 and scored[1][0] == scored[0][0]:
            return None
        return scored[0][1]
    return None
