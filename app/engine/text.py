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
    parts = _template(text)
    filled = list(parts)
    for at in range(1, len(parts), 2):
        filled[at] = variables.get(parts[at], f"{{{parts[at]}}}")
    return "".join(filled)


@functools.lru_cache(maxsize=4096)
def _template(text: str) -> tuple[str, ...]:
    """A text split at its placeholders: text, name, text, name, ..., text."""
    return tuple(_PLACEHOLDER.split(text))


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


# A form to compare for a near spelling: its text, distinct characters, how often each occurs, option.
_Spelling = tuple[str, tuple[str, ...], tuple[int, ...], int]


@dataclass(frozen=True)
class _Options:
    """A list of options' phrases folded for matching, worked out once per list (read only)."""

    count: int
    first: dict[str, int]  # each folded form (with and without accents) -> the first option with it
    padded: tuple[tuple[str, int, int], ...]  # (" plain form ", length of the form, option), in order
    # (plain form, its distinct characters, how often each occurs, option) for near spellings,
    # shortest form first; starts[n] is where the forms of n or more characters start, so only forms
    # of about the text's length are looked at
    plain: tuple[_Spelling, ...]
    starts: tuple[int, ...]

    def of_length(self, shortest: int, longest: int) -> tuple[_Spelling, ...]:
        """The near-spelling forms from ``shortest`` to ``longest`` characters long."""
        last = len(self.starts) - 1
        return self.plain[
            self.starts[min(max(shortest, 0), last)] : self.starts[min(max(longest + 1, 0), last)]
        ]


@functools.lru_cache(maxsize=2048)
def _prepared(options: tuple[frozenset[str], ...]) -> _Options:
    first: dict[str, int] = {}
    padded: list[tuple[str, int, int]] = []
    plain: list[_Spelling] = []
    for index, phrases in enumerate(options):
        forms = frozenset().union(*(_forms(p) for p in phrases))
        for form in forms:
            first.setdefault(form, index)
            padded.append((f" {strip_accents(form)} ", len(form), index))
        plain += [(form, *_characters(form), index) for form in {strip_accents(form) for form in forms}]
    plain.sort(key=lambda entry: len(entry[0]))
    lengths = [len(entry[0]) for entry in plain]
    starts = [sum(1 for length in lengths if length < n) for n in range(max(lengths, default=0) + 2)]
    return _Options(len(options), first, tuple(padded), tuple(plain), tuple(starts))


def _characters(text: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The distinct characters of a text, and how often each occurs."""
    counts = Counter(text)
    return tuple(counts), tuple(counts.values())


def _spelling_scores(said: str, options: _Options) -> list[float]:
    """Each option's best similarity to the text, leaving out phrases that cannot reach the cutoff.

    Two bounds rule most phrases out before ``difflib`` compares them: the difference in length,
    and the characters the two have in common (``SequenceMatcher.quick_ratio``, worked out here
    from counts made once per phrase)."""
    scores = [0.0] * options.count
    matcher = None  # made for the first phrase that passes both bounds
    count_of = dict(Counter(said)).get
    # Only forms from 2/3 to 3/2 of the text's length can reach the cutoff (one more each way
    # to be safe; the exact test follows).
    for plain, characters, counts, index in options.of_length(2 * len(said) // 3 - 1, 3 * len(said) // 2 + 1):
        total = len(said) + len(plain)
        if 2.0 * min(len(said), len(plain)) / total < FUZZY_CUTOFF:
            continue  # the difference in length alone rules it out
        # Characters in common: for each of the phrase's, the fewer of its count and the text's.
        common = sum(map(min, counts, map(count_of, characters, repeat(0))))
        if 2.0 * common / total < FUZZY_CUTOFF:
            continue
        if matcher is None:
            matcher = difflib.SequenceMatcher(None, said)
        matcher.set_seq2(plain)
        scores[index] = max(scores[index], matcher.ratio())
    return scores


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

    prepared = _prepared(tuple(frozenset(phrases) for phrases in options))
    exact = [prepared.first[form] for form in (said, said_plain) if form in prepared.first]
    if exact:
        return min(exact)

    best: tuple[int, int] | None = None
    tie = False
    padded = f" {said_plain} "
    for phrase, length, index in prepared.padded if within else ():
        if phrase in padded:
            if best is None or length > best[0]:
                best, tie = (length, index), False
            elif length == best[0] and index != best[1]:
                tie = True
    if best is not None and not tie:
        return best[1]

    scored = [(score, index) for index, score in enumerate(_spelling_scores(said_plain, prepared))]
    scored.sort(reverse=True)
    if scored and scored[0][0] >= FUZZY_CUTOFF:
        if len(scored) > 1 and scored[1][0] == scored[0][0]:
            return None
        return scored[0][1]
    return None
