"""Safeguarding triage: spot a risk of harm in any message a child sends, in any flow.

``assess(text, previous, book=...)`` runs on every inbound message before the flow sees it. It is
a deliberately cautious word-and-phrase check: a missed risk is far worse than a false alarm, so
when a phrase is ambiguous it counts as urgent. The one kind of hyperbole treated as safe is a
thing "killing me" ("this homework is killing me"); "he is killing me" and threats such as
"my mum will kill me" are still urgent.

The phrases are data, not code: ``flows/safeguarding/<locale>.yaml``, which participation
workers edit (their header says how). ``load_phrasebook`` reads every file in that folder into
one ``PhraseBook`` that is applied to every message, whatever language the child chose.
This module keeps only the algorithm: look-alike letters, leetspeak, the regexes.

How a message is read, in order:

1. NFKC (full-width letters become ASCII), invisible characters out, case folded, look-alike
   Cyrillic and Greek letters mapped to Latin, accents dropped (Welsh "yn ôl" -> "yn ol").
2. Each word: leetspeak mapped when the word also has a letter ("k1ll", "$uicide"; "14" stays a
   number), letters typed 3+ times squashed ("diiiie" -> "die"), text-speak expanded ("wanna" ->
   "want to", "dont" -> "do not", "bf" -> "boyfriend"), then small typos corrected towards the
   book's typo words with rapidfuzz ("sucide" -> "suicide"), never from an everyday word
   ("exploded" is not "exploited").
3. Runs of single letters are joined ("k i l l" -> "kill") and, like any long unknown word
   ("killmyself"), also searched with the spaces taken out of the phrases.

The phrase lists are written in the same plain words and go through the same steps, so "don't",
"dont" and "do not" in a list all mean the same.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from rapidfuzz import process
from rapidfuzz.distance import OSA

from app.engine.definition import FlowDefinitionError, FlowLoader, Problem, load_yaml_lines
from app.engine.text import strip_invisible

# Most serious first: the first category found names the concern.
CATEGORIES: tuple[str, ...] = (
    "suicide",
    "self_harm",
    "abuse",
    "hurt",
    "missing",
    "exploitation",
    "unsafe",
)

# Sections of a phrase file that are lists of single words, and what each is for.
WORD_SETS: dict[str, str] = {
    "gift_verbs": "words for giving: gave, buys, sends",
    "pay_verbs": "words for paying someone to do something",
    "gift_substances": "drugs, alcohol, vapes: a cue whoever gives them",
    "gift_phones": "phones and SIM cards: a cue unless a trusted adult gives them",
    "gift_soft": "other gifts: a cue only from a suspect giver",
    "trusted_givers": "people whose gifts are ordinary",
    "suspect_givers": "people whose gifts are a cue",
    "age_persons": "people whose age is compared with the child's",
    "age_fillers": "words skipped when reading whose age a number is",
    "age_units": "words after an age: 25 years",
    "contact_words": "words that make an adult's age a cue on its own",
}
PHRASE_LISTS = ("not_risk", "typo_words", "not_typos")
SECTIONS: tuple[str, ...] = ("phrases", *PHRASE_LISTS, "text_speak", "joined_words", *WORD_SETS)

_ITEMS = {"type": "array", "items": {"type": ["string", "integer"]}}
PHRASEBOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"enum": list(SECTIONS)},
    "properties": {
        "phrases": {
            "type": "object",
            "propertyNames": {"enum": list(CATEGORIES)},
            "additionalProperties": _ITEMS,
        },
        **{name: _ITEMS for name in PHRASE_LISTS},
        "text_speak": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
        "joined_words": {"type": "object", "additionalProperties": {"type": "string"}},
        **{name: _ITEMS for name in WORD_SETS},
    },
}

# ---------------------------------------------------------------------------------------------
# Folding text into words.
# ---------------------------------------------------------------------------------------------

_LOOKALIKES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "һ": "h",
        "ӏ": "l",
        "ԛ": "q",
        "ԝ": "w",
        "ɡ": "g",
        "ɑ": "a",
        "ɩ": "i",
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "γ": "y",
        "ω": "w",
        "ς": "s",
        "μ": "u",
        "ѵ": "v",
        "ո": "n",
        "ս": "u",
    }
)
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
# "1" and "|" stand for either i or l: each word is read both ways.
_LEET_I = str.maketrans({**_LEET, "1": "i", "|": "l"})
_LEET_L = str.maketrans({**_LEET, "1": "l", "|": "i"})
_LEET_CHARS = frozenset("013457@$!|")
_NO_SYMBOLS = str.maketrans("", "", "@$!|")
_WELSH_YN = re.compile(r"(?<=\w)['’‘ʼ`]n(?!\w)")  # Welsh "teimlo'n" is "teimlo yn"
_DROPPED = re.compile(r"['’‘ʼ`´*]")  # apostrophes, and the * in "sh*t"
_SEPARATORS = re.compile(r"(?:[^\w@$!|]|_)+")
_NUMBER_UNIT = re.compile(r"(\d+)(yo|yrs|yr|years|year|kms|km|pm|am|st|nd|rd|th|s)")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_DOUBLES = re.compile(r"([a-z])\1+")
_ASCII_WORD = re.compile(r"[a-z]+")

# Bounds that keep a very long message fast: typo correction stops after this many distinct
# words (exact matching still reads the whole message), and skips very short and long words.
MAX_FUZZY_WORDS = 2_000
MIN_TYPO_LENGTH = 5
MAX_TYPO_LENGTH = 16
# The shortest word a phrase file may list under typo_words: shorter words have too many
# everyday neighbours one letter away ("kill" / "bill", "hurt" / "hunt").
MIN_TYPO_WORD = 6


def _squash(word: str) -> str:
    """Letters typed three or more times in a row as one ("diiiie" -> "die")."""
    return _REPEATS.sub(r"\1", word)


def _collapse(word: str) -> str:
    """Every doubled letter as one, to compare spellings ("kil" and "kill")."""
    return _DOUBLES.sub(r"\1", word)


def _prefold(text: str) -> str:
    """Unicode and case folding, look-alike letters, accents, apostrophes."""
    if text.isascii():  # nothing invisible, wide, look-alike or accented to fold
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", strip_invisible(text)).casefold()
        text = text.translate(_LOOKALIKES)
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return _DROPPED.sub("", _WELSH_YN.sub(" yn", text))


def _pieces(text: str) -> list[str]:
    """The typed words, split on spaces and punctuation but keeping leetspeak symbols."""
    pieces: list[str] = []
    for raw in _SEPARATORS.split(_prefold(text)):
        piece = raw.strip("!|")
        unit = _NUMBER_UNIT.fullmatch(piece)
        if unit:
            pieces.extend(unit.groups())
        elif piece and _ASCII_WORD.search(piece):
            pieces.append(piece)
        elif piece:
            pieces.append(piece.translate(_NO_SYMBOLS))
    return [p for p in pieces if p]


def _allowed_typos(word: str) -> int:
    """How many edits a typo word tolerates."""
    return 2 if len(word) >= 9 else 1


@dataclass(frozen=True)
class _Spelling:
    """Text-speak and joined words: how typed words become the words the phrases use."""

    text_speak: Mapping[str, tuple[str, ...]]
    joined: Mapping[tuple[str, ...], str]

    def expand(self, word: str) -> list[str]:
        """Text-speak as the words it stands for."""
        return list(self.text_speak.get(word, (word,)))

    def join_pairs(self, words: list[str]) -> list[str]:
        """Two typed words that the lists spell as one ("my self" -> "myself")."""
        out: list[str] = []
        for word in words:
            if out and (out[-1], word) in self.joined:
                out[-1] = self.joined[(out[-1], word)]
            else:
                out.append(word)
        return out


class _Words:
    """Turns typed words into the words of the lists; built once from the lists."""

    def __init__(self, vocabulary: frozenset[str], typo_words: Iterable[str], not_typos: frozenset[str]):
        self.vocabulary = vocabulary
        self.not_typos = not_typos
        collapsed: dict[str, str] = {}
        for word in sorted(vocabulary):
            collapsed.setdefault(_collapse(word), word)
        self.collapsed = collapsed
        # One sorted list per tolerance, so rapidfuzz applies the right cutoff and ties go to
        # the first word alphabetically.
        ordered = sorted(set(typo_words))
        self.typo_groups = tuple(
            (group, allowed)
            for allowed in (1, 2)
            if (group := tuple(w for w in ordered if _allowed_typos(w) == allowed))
        )

    def correct(self, word: str, fuzzy: bool) -> str:
        """A list word the typed word is a near spelling of, or the word itself."""
        if word in self.vocabulary or word in self.not_typos or not word.isascii() or not word.isalpha():
            return word
        if word.endswith("in") and word + "g" in self.vocabulary:
            return word + "g"  # "goin", "cuttin"
        near = self.collapsed.get(_collapse(word))
        if near and max(len(near), len(word)) >= 4:
            return near
        if not fuzzy or not MIN_TYPO_LENGTH <= len(word) <= MAX_TYPO_LENGTH:
            return word
        best: tuple[int, str] | None = None
        for choices, allowed in self.typo_groups:
            # Optimal string alignment: a swap of two neighbouring letters is one edit.
            found = process.extractOne(word, choices, scorer=OSA.distance, score_cutoff=allowed)
            if found is not None and (best is None or (found[1], found[0]) < best):
                best = (found[1], found[0])
        return best[1] if best else word


def _leet_variants(piece: str) -> tuple[str, ...]:
    """The piece with leetspeak read as letters; "1" may be an i or an l."""
    if not _LEET_CHARS.intersection(piece) or not _ASCII_WORD.search(piece):
        return (piece,)
    as_i = piece.translate(_LEET_I)
    as_l = piece.translate(_LEET_L)
    return (as_i,) if as_i == as_l else (as_i, as_l)


@dataclass(frozen=True)
class _Folded:
    """A message ready for matching: its words, and text to search without spaces."""

    words: tuple[str, ...]
    runs: tuple[str, ...] = ()  # spaced-out letters joined up: "k i l l" -> "kill"
    long_words: tuple[str, ...] = ()  # long words not in the lists, maybe "killmyself"

    def __add__(self, other: _Folded) -> _Folded:
        """Two messages read as one."""
        return _Folded(
            self.words + other.words,
            self.runs + other.runs,
            self.long_words + other.long_words,
        )


def _fold(text: str, spelling: _Spelling, words: _Words | None) -> _Folded:
    """A message (or a list phrase, when ``words`` is None) as list words."""
    memo: dict[str, list[str]] = {}
    found_runs: list[str] = []
    long_words: list[str] = []
    letters: list[str] = []
    pieces: list[str] = []
    runs: set[str] = set()
    for piece in _pieces(text) + [""]:
        if len(piece) == 1 and (piece.isalpha() or piece in _LEET_CHARS):
            letters.append(piece)
            continue
        if len(letters) >= 3:  # spaced-out letters: "k i l l  m y s e l f"
            runs.add("".join(letters))
            pieces.append("".join(letters))
        else:
            pieces.extend(letters)
        letters = []
        if piece:
            pieces.append(piece)
    folded: list[str] = []
    for piece in pieces:
        if piece not in memo:
            memo[piece] = _fold_piece(piece, spelling, words, fuzzy=len(memo) < MAX_FUZZY_WORDS)
        result = memo[piece]
        long_unknown = len(result) == 1 and len(result[0]) >= 8
        if piece in runs:
            found_runs.append("".join(result))
        elif words and long_unknown and result[0] not in words.vocabulary:
            long_words.append(result[0])
        folded.extend(result)
    return _Folded(
        tuple(spelling.join_pairs(folded)),
        tuple(dict.fromkeys(found_runs)),
        tuple(dict.fromkeys(long_words)),
    )


def _fold_piece(piece: str, spelling: _Spelling, words: _Words | None, fuzzy: bool) -> list[str]:
    """One typed piece as list words: leetspeak, stretched letters, text-speak, typos."""
    best: list[str] | None = None
    for variant in _leet_variants(piece):
        variant = _squash(variant)
        expanded = spelling.expand(variant)
        if words is not None and len(expanded) == 1:
            expanded = spelling.expand(words.correct(expanded[0], fuzzy))
        if best is None:
            best = expanded
        if words is None or all(w in words.vocabulary for w in expanded):
            return expanded
    return best or []


# ---------------------------------------------------------------------------------------------
# Compiling the phrase lists.
# ---------------------------------------------------------------------------------------------

_GAP = "..."
_NUMBER = "#"
# Shortest phrase looked for inside joined-up spaced letters, and inside a long unknown word
# (where shorter ones turn up by chance: "rapist" in "therapist").
_SPACELESS_MIN = 5
_SPACELESS_MIN_IN_WORDS = 7
_SPACELESS_MAX_FORMS = 400  # spellings of one phrase; more than this and it is not searched so


def _slot_options(slot: str, spelling: _Spelling) -> list[list[str]]:
    """Each "a/b" alternative of a list word, folded the same way a message is."""
    return [words for alt in slot.split("/") if (words := list(_fold(alt, spelling, None).words))]


@dataclass(frozen=True)
class _Phrase:
    """One compiled list phrase: its category, its text as written, and its regex."""

    category: str
    text: str
    regex: re.Pattern[str]
    first: frozenset[str]


def _compile_phrase(category: str, phrase: str, spelling: _Spelling) -> _Phrase | None:
    """A list phrase as a regex matched at a word start of the folded message."""
    parts: list[str] = []
    first: set[str] = set()
    for slot in phrase.split():
        if slot == _GAP:
            if parts:
                parts.append(r"(?: [^ ]+){0,3}")
            continue
        options = [[_NUMBER]] if _NUMBER in slot.split("/") else []
        options += _slot_options(slot.replace(_NUMBER, ""), spelling)
        if not options:
            continue
        spellings = sorted({" ".join(o) for o in options}, key=len, reverse=True)
        body = "|".join("[0-9]+" if s == _NUMBER else re.escape(s) for s in spellings)
        if not parts:
            first.update(o[0] for o in options)
        parts.append((" " if parts else "") + f"(?:{body})")
    if not parts:
        return None
    return _Phrase(category, phrase, re.compile("".join(parts) + r"(?![^ ])"), frozenset(first))


def _spaceless_forms(phrase: str, spelling: _Spelling) -> set[str]:
    """A phrase's spellings with the spaces taken out ("kill myself" -> "killmyself")."""
    if _GAP in phrase.split() or _NUMBER in phrase.replace("/", " ").split():
        return set()
    forms = {""}
    for slot in phrase.split():
        options = {"".join(o) for o in _slot_options(slot, spelling)}
        options |= {_DROPPED.sub("", alt.casefold()) for alt in slot.split("/")}
        forms = {f + o for f in forms for o in options}
        if len(forms) > _SPACELESS_MAX_FORMS:
            return set()
    return {f for f in forms if len(f) >= _SPACELESS_MIN}


def _trie_regex(forms: set[str]) -> str:
    """One regex for many fixed strings, shaped as a tree so each position is tried once."""
    trie: dict[str, dict] = {}
    for form in forms:
        node = trie
        for ch in form:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            body = f"(?:{body})?" if len(branches) == 1 else body + "?"
        return body

    return emit(trie)


class _Matcher:
    """Finds list phrases in a folded message: by first word, then by regex."""

    def __init__(self, entries: list[tuple[str, str]], spelling: _Spelling) -> None:
        compiled = [p for c, text in entries if (p := _compile_phrase(c, text, spelling))]
        # Phrases that fold to the same words ("wanna die", "want to die"): the first one counts.
        self.phrases = list({p.regex.pattern: p for p in reversed(compiled)}.values())[::-1]
        index: dict[str, list[_Phrase]] = {}
        for phrase in self.phrases:
            for word in phrase.first:
                index.setdefault(word, []).append(phrase)
        self.index = {word: tuple(found) for word, found in index.items()}
        forms: dict[str, _Phrase] = {}
        for phrase in self.phrases:
            for form in _spaceless_forms(phrase.text, spelling):
                forms.setdefault(form, phrase)
        self.forms = forms
        self.spaceless = re.compile("(?=(" + _trie_regex(set(forms)) + "))") if forms else None

    def find(self, text: str) -> Iterator[tuple[_Phrase, int, int]]:
        """Every phrase found, with where it starts and ends."""
        position = 0
        for word in text.split(" "):
            candidates = self.index.get(word, ())
            if word.isascii() and word.isdigit():
                candidates += self.index.get(_NUMBER, ())
            for phrase in candidates:
                match = phrase.regex.match(text, position)
                if match:
                    yield phrase, position, match.end()
            position += len(word) + 1

    def find_spaceless(self, chunk: str, shortest: int) -> Iterator[_Phrase]:
        """Phrases of at least ``shortest`` letters inside run-together text ("killmyself")."""
        if self.spaceless is not None:
            for match in self.spaceless.finditer(chunk):
                form = match.group(1)
                if form in self.forms and len(form) >= shortest:
                    yield self.forms[form]


# ---------------------------------------------------------------------------------------------
# Reading and checking phrase files.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One entry of a phrase file, with where it was written."""

    value: str
    source: str
    line: int


@dataclass
class _Collected:
    """Every phrase file's entries, combined in file order."""

    sources: list[str] = field(default_factory=list)
    phrases: dict[str, list[_Item]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})
    lists: dict[str, list[_Item]] = field(
        default_factory=lambda: {name: [] for name in (*PHRASE_LISTS, *WORD_SETS)}
    )
    text_speak: dict[str, tuple[tuple[str, ...], _Item]] = field(default_factory=dict)
    joined: dict[tuple[str, ...], tuple[str, _Item]] = field(default_factory=dict)

    def spelling(self) -> _Spelling:
        return _Spelling(
            {key: words for key, (words, _) in self.text_speak.items()},
            {pair: word for pair, (word, _) in self.joined.items()},
        )


def _string_keys(data: Any) -> Any:
    """The data with every mapping key as text ("2: to" in YAML has the number 2 as its key)."""
    if isinstance(data, dict):
        return {str(key): _string_keys(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_string_keys(item) for item in data]
    return data


def _schema_problems(data: Any, lines: dict[tuple, int], source: str) -> list[Problem]:
    """Where a phrase file's shape differs from PHRASEBOOK_SCHEMA, in words a worker can act on."""
    problems = []
    validator = jsonschema.Draft202012Validator(PHRASEBOOK_SCHEMA)
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = tuple(error.absolute_path)
        if "propertyNames" in error.schema_path:
            path = (*path, str(error.instance))
            if len(path) == 1:
                known = ", ".join(SECTIONS)
                message = f"'{path[0]}' is not a section of a phrase file; the sections are: {known}"
            else:
                known = ", ".join(CATEGORIES)
                message = f"'{path[-1]}' is not a kind of concern; the kinds are: {known}"
        elif error.instance is None:
            message = (
                "this entry is empty. A # outside quotes starts a note, so a phrase with # (any "
                'number) must be in double quotes: "owe them #"'
            )
        else:
            where = ".".join(str(p) for p in path)
            message = f"{where}: {error.message}" if where else error.message
        line_path = path
        while line_path and line_path not in lines:
            line_path = line_path[:-1]
        problems.append(Problem(source, lines.get(line_path, 1), message))
    return problems


def _layout_problems(text: str, source: str) -> list[Problem]:
    """Keys written twice (YAML would silently keep only the last) and notes after a phrase."""
    problems: list[Problem] = []
    text_lines = text.splitlines()

    def walk(node: yaml.Node | None, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else ""
                line = key.start_mark.line + 1
                if name in seen:
                    problems.append(
                        Problem(
                            source,
                            line,
                            f"'{name}' is written twice here (first on line {seen[name]}), so only "
                            "one would count: put them together",
                        )
                    )
                seen.setdefault(name, line)
                walk(value, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                if (
                    path[:1] in (("phrases",), ("not_risk",))
                    and isinstance(item, yaml.ScalarNode)
                    and item.style is None
                    and item.value
                    and item.end_mark.line < len(text_lines)
                    and text_lines[item.end_mark.line][item.end_mark.column :].strip().startswith("#")
                ):
                    problems.append(
                        Problem(
                            source,
                            item.start_mark.line + 1,
                            f"'{item.value}' is followed by a #, which starts a note and cuts the "
                            "phrase short: put a phrase with # (any number) in double quotes, and a "
                            "note on a line of its own",
                        )
                    )
                walk(item, path)

    walk(yaml.compose(text, Loader=FlowLoader), ())
    return problems


def _collect_file(collected: _Collected, source: str, data: dict[str, Any], lines: dict[tuple, int]) -> None:
    """Add one checked file's entries to the combined book."""
    collected.sources.append(source)

    def items(path: tuple, values: list[Any]) -> list[_Item]:
        return [_Item(str(v), source, lines.get((*path, i), 1)) for i, v in enumerate(values)]

    for category, phrases in data.get("phrases", {}).items():
        collected.phrases[category].extend(items(("phrases", category), phrases))
    for name in collected.lists:
        collected.lists[name].extend(items((name,), data.get(name, [])))
    for key, value in data.get("text_speak", {}).items():
        collected.text_speak.setdefault(
            key, (tuple(str(value).casefold().split()), _Item(key, source, lines.get(("text_speak", key), 1)))
        )
    for key, value in data.get("joined_words", {}).items():
        pair = tuple(key.casefold().split())
        item = _Item(key, source, lines.get(("joined_words", key), 1))
        collected.joined.setdefault(pair, (value.casefold().strip(), item))


def _clash_problems(files: list[tuple[str, dict[str, Any], dict[tuple, int]]]) -> list[Problem]:
    """The same text-speak or joined words given two meanings in different files."""
    problems: list[Problem] = []
    for section in ("text_speak", "joined_words"):
        first: dict[str, tuple[str, str]] = {}
        for source, data, lines in files:
            for key, value in data.get(section, {}).items():
                meaning = " ".join(str(value).casefold().split())
                earlier = first.setdefault(key.casefold(), (meaning, source))
                if earlier[0] != meaning:
                    problems.append(
                        Problem(
                            source,
                            lines.get((section, key), 1),
                            f"'{key}' already means '{earlier[0]}' in {earlier[1]}",
                        )
                    )
    return problems


def _one_word(item: _Item, spelling: _Spelling) -> str | None:
    """The single list word an entry folds to, or None if it is not one word."""
    words = _fold(item.value, spelling, None).words
    return words[0] if len(words) == 1 else None


def _phrase_problems(item: _Item, spelling: _Spelling) -> list[Problem]:
    """What is wrong with how one phrase is written, if anything."""
    slots = item.value.split()
    found: list[str] = []
    if slots and _GAP in (slots[0], slots[-1]):
        found.append('"..." goes between two words, not at the start or the end')
    for slot in slots:
        if slot != _GAP and "" in slot.split("/"):
            found.append(f"'{slot}' has an empty choice: write a word on each side of every /")
    if not found and _compile_phrase("", item.value, spelling) is None:
        found.append("there are no words to look for")
    return [Problem(item.source, item.line, f"'{item.value}': {message}") for message in found]


def _vocabulary(collected: _Collected, spelling: _Spelling) -> frozenset[str]:
    """Every word used in the lists, so typos can be corrected towards them."""
    found: set[str] = set()
    for item in (*(i for items in collected.phrases.values() for i in items), *collected.lists["not_risk"]):
        for slot in item.value.split():
            for option in _slot_options(slot, spelling):
                found.update(option)
    for name in WORD_SETS:
        found.update(w for item in collected.lists[name] if (w := _one_word(item, spelling)))
    return frozenset(w for w in found if w.isalpha())


def _content_problems(collected: _Collected, spelling: _Spelling) -> list[Problem]:
    """Phrases that cannot work, and word lists with entries that are not single words."""
    problems: list[Problem] = []
    for item in (*(i for items in collected.phrases.values() for i in items), *collected.lists["not_risk"]):
        problems.extend(_phrase_problems(item, spelling))
    for name in (*WORD_SETS, "not_typos"):
        for item in collected.lists[name]:
            if _one_word(item, spelling) is None:
                problems.append(Problem(item.source, item.line, f"'{item.value}' must be one word"))
    vocabulary = _vocabulary(collected, spelling)
    for item in collected.lists["typo_words"]:
        word = _one_word(item, spelling)
        if word is None or not word.isalpha() or len(word) < MIN_TYPO_WORD:
            message = f"'{item.value}' must be one word of {MIN_TYPO_WORD} or more letters"
        elif word not in vocabulary:
            message = f"'{item.value}' is not in any phrase, so a misspelling of it would find nothing"
        else:
            continue
        problems.append(Problem(item.source, item.line, message))
    for key, (words, item) in collected.text_speak.items():
        if _pieces(key) != [key]:
            message = f"'{key}' must be one word in lower case, with no spaces or apostrophes ('dont')"
        elif not words:
            message = f"'{key}' needs the words it stands for after the colon"
        else:
            continue
        problems.append(Problem(item.source, item.line, message))
    for pair, (word, item) in collected.joined.items():
        if len(pair) != 2 or len(word.split()) != 1:
            message = f"'{item.value}' must be two words, and what follows the colon one word"
            problems.append(Problem(item.source, item.line, message))
    return problems


# ---------------------------------------------------------------------------------------------
# The phrase book, and finding risk.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triage:
    """The verdict on one message: whether it is urgent, the main concern and why."""

    urgent: bool
    category: str | None
    reasons: tuple[str, ...]


class PhraseBook:
    """Every locale's phrase files combined and compiled once; ``assess`` reads messages with it.

    Build one with ``load_phrasebook`` or ``parse_phrasebook``. It is never changed after that,
    so one book serves every message and thread.
    """

    def __init__(self, collected: _Collected) -> None:
        spelling = collected.spelling()
        self.sources: tuple[str, ...] = tuple(collected.sources)
        self.phrases: dict[str, tuple[str, ...]] = {
            category: tuple(item.value for item in collected.phrases[category]) for category in CATEGORIES
        }
        self.not_risk: tuple[str, ...] = tuple(item.value for item in collected.lists["not_risk"])
        sets = {
            name: frozenset(w for item in collected.lists[name] if (w := _one_word(item, spelling)))
            for name in (*WORD_SETS, "not_typos")
        }
        typo_words = (w for item in collected.lists["typo_words"] if (w := _one_word(item, spelling)))
        self._spelling = spelling
        self._words = _Words(_vocabulary(collected, spelling), typo_words, sets["not_typos"])
        self._risk = _Matcher([(c, p) for c in CATEGORIES for p in self.phrases[c]], spelling)
        self._not_risk = _Matcher([("", p) for p in self.not_risk], spelling)
        self._pay_verbs = sets["pay_verbs"]
        self._gift_substances = sets["gift_substances"]
        self._gift_phones = sets["gift_phones"]
        self._trusted_givers = sets["trusted_givers"]
        self._suspect_givers = sets["suspect_givers"]
        self._age_persons = sets["age_persons"]
        self._age_fillers = sets["age_fillers"]
        self._age_units = sets["age_units"]
        self._contact_words = sets["contact_words"]
        verbs = sets["gift_verbs"] | sets["pay_verbs"]
        items = sets["gift_substances"] | sets["gift_phones"] | sets["gift_soft"] | {_PAID_TO}
        self._gift = (
            re.compile(
                r"(?<![^ ])(?P<verb>"
                + "|".join(map(re.escape, sorted(verbs, key=len, reverse=True)))
                + r") me (?:[^ ]+ ){0,3}?(?P<item>"
                + "|".join(map(re.escape, sorted(items, key=len, reverse=True)))
                + r")(?![^ ])"
            )
            if verbs
            else None
        )

    def __repr__(self) -> str:
        count = sum(len(phrases) for phrases in self.phrases.values())
        return f"<PhraseBook {', '.join(self.sources)}: {count} phrases>"

    def fold(self, text: str) -> _Folded:
        """A message as list words, with typos corrected."""
        return _fold(text, self._spelling, self._words)

    def hits(self, folded: _Folded) -> list[tuple[str, str]]:
        """Every (category, reason) found in a folded message."""
        text = " ".join(folded.words)
        hits = self._phrase_hits(text)
        for chunk in folded.runs:
            hits.extend((p.category, p.text) for p in self._risk.find_spaceless(chunk, _SPACELESS_MIN))
        for chunk in folded.long_words:
            found = self._risk.find_spaceless(chunk, _SPACELESS_MIN_IN_WORDS)
            hits.extend((p.category, p.text) for p in found)
        hits.extend(self._gift_hits(text))
        hits.extend(self._age_hits(folded.words))
        return list(dict.fromkeys(hits))

    def _phrase_hits(self, text: str) -> list[tuple[str, str]]:
        """Risk phrases in the folded message, less those inside a not_risk phrase."""
        safe = ((start, end) for _, start, end in self._not_risk.find(text))  # in order of start
        upcoming = next(safe, None)
        safe_until = -1  # the furthest end of a not_risk phrase starting at or before here
        hits: dict[int, tuple[str, str]] = {}
        for phrase, start, end in self._risk.find(text):
            while upcoming is not None and upcoming[0] <= start:
                safe_until = max(safe_until, upcoming[1])
                upcoming = next(safe, None)
            if start not in hits and end > safe_until:
                hits[start] = (phrase.category, phrase.text)  # the first listed phrase per word
        return list(hits.values())

    def _gift_hits(self, text: str) -> list[tuple[str, str]]:
        """Gifts, money or lifts from someone who is not a trusted adult."""
        hits: list[tuple[str, str]] = []
        if self._gift is None:
            return hits
        for match in self._gift.finditer(text):
            item = match.group("item")
            before = text[max(0, match.start() - 100) : match.start()].split()[-5:]
            trusted = bool(self._trusted_givers.intersection(before))
            if item == _PAID_TO and match.group("verb") not in self._pay_verbs:
                continue
            if (
                item in self._gift_substances
                or (item in self._gift_phones and not trusted)
                or (self._suspect_givers.intersection(before) and not trusted)
            ):
                reason = "paid by someone to do things" if item == _PAID_TO else f"given by someone: {item}"
                hits.append(("exploitation", reason))
        return hits

    def _age_hits(self, words: tuple[str, ...]) -> list[tuple[str, str]]:
        """An adult's age beside a child's, or an adult's age with a relationship or online contact."""
        children: list[int] = []
        adults: list[int] = []
        for index, word in enumerate(words):
            if not (word.isascii() and word.isdigit()) or not 8 <= int(word) <= 99:
                continue
            before = [w for w in words[max(0, index - 6) : index] if w not in self._age_fillers][-3:]
            if before[-2:] == ["i", "am"] or before[-1:] == ["me"]:
                children.append(int(word))
            elif before[-1:] in (["is"], ["are"], ["aged"]) and self._age_persons.intersection(before):
                if not self._trusted_givers.intersection(words[max(0, index - 5) : index]):
                    adults.append(int(word))
            elif self._age_units.intersection(words[index + 1 : index + 2]):
                adults.append(int(word))
        child = min(children, default=None)  # the youngest age given makes the widest gap
        for adult in adults:
            if child is not None and adult - child >= 3 and (adult >= 18 or child <= 15):
                return [("exploitation", f"age gap: {adult} and {child}")]
        if not children and any(a >= 18 for a in adults) and self._contact_words.intersection(words):
            return [("exploitation", f"adult's age: {max(adults)}")]
        return []


# "(they) pay me to (carry bags)": the word after the gift, when the gift is being paid to do
# something. English grammar, like "i am" and "is" in the age rules, so it stays in the code.
_PAID_TO = "to"


def parse_phrasebook(files: Mapping[str, str]) -> PhraseBook:
    """Check and combine phrase files ({source name: YAML text}, in order) into one book.

    Raises FlowDefinitionError naming the file and line of every problem found.
    """
    if not files:
        raise FlowDefinitionError([Problem("safeguarding", 1, "there are no phrase files")])
    problems: list[Problem] = []
    checked: list[tuple[str, dict[str, Any], dict[tuple, int]]] = []
    for source, text in files.items():
        try:
            data, lines = load_yaml_lines(text, source)
        except FlowDefinitionError as error:
            problems.extend(error.problems)
            continue
        data = _string_keys({} if data is None else data)
        found = _layout_problems(text, source) + _schema_problems(data, lines, source)
        problems.extend(found)
        if not found:
            checked.append((source, data, lines))
    problems.extend(_clash_problems(checked))
    if problems:
        raise FlowDefinitionError(problems)
    collected = _Collected()
    for source, data, lines in checked:
        _collect_file(collected, source, data, lines)
    problems = _content_problems(collected, collected.spelling())
    if problems:
        raise FlowDefinitionError(problems)
    return PhraseBook(collected)


def load_phrasebook(directory: Path, root: Path | None = None) -> PhraseBook:
    """Read every ``*.yaml`` phrase file in a folder into one book; sources relative to ``root``."""
    root = root or directory.parent

    def shown(path: Path) -> str:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)

    files: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            files[shown(path)] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(shown(path), 1, "this file is not UTF-8 text"))
    if not files and not problems:
        problems.append(Problem(shown(directory), 1, "there are no phrase files (*.yaml) in this folder"))
    if problems:
        raise FlowDefinitionError(problems)
    return parse_phrasebook(files)


def assess(text: str, previous: str | None = None, *, book: PhraseBook) -> Triage:
    """Triage a child's message, also read together with their previous message if given."""
    current = book.fold(text)
    hits = book.hits(current)
    if previous and previous.strip():
        before = book.fold(previous)
        joined = before + current
        already = set(book.hits(before)) | set(hits)
        hits += [hit for hit in book.hits(joined) if hit not in already]
    hits.sort(key=lambda hit: CATEGORIES.index(hit[0]))
    return Triage(
        urgent=bool(hits),
        category=hits[0][0] if hits else None,
        reasons=tuple(dict.fromkeys(reason for _, reason in hits)),
    )


# ---------------------------------------------------------------------------------------------
# Measuring the book against labelled messages.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """How a phrase book did on labelled messages: risks caught and missed, false alarms."""

    total: int
    risk: int
    caught: int
    missed: list[str]
    false_positives: list[str]
    wrong_category: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """The share of risk messages marked urgent (1.0 when there are none)."""
        return self.caught / self.risk if self.risk else 1.0

    @property
    def false_positive_rate(self) -> float:
        """The share of messages with no risk that were still marked urgent."""
        safe = self.total - self.risk
        return len(self.false_positives) / safe if safe else 0.0


def evaluate(book: PhraseBook, rows: Iterable[Mapping[str, str | None]]) -> Evaluation:
    """Assess labelled rows (text, previous, urgent yes/no, category) and count the results."""
    total = risk = caught = 0
    missed: list[str] = []
    false_positives: list[str] = []
    wrong_category: list[str] = []
    for number, row in enumerate(rows, 1):
        text = row.get("text") or ""
        previous = row.get("previous") or None
        label = (row.get("urgent") or "").strip().casefold()
        if label not in ("yes", "no"):
            raise ValueError(f"row {number}: urgent must be yes or no, not {label!r}")
        shown = f"{previous} / {text}" if previous else text
        verdict = assess(text, previous, book=book)
        total += 1
        if label == "no":
            if verdict.urgent:
                false_positives.append(shown)
            continue
        risk += 1
        if not verdict.urgent:
            missed.append(shown)
            continue
        caught += 1
        expected = (row.get("category") or "").strip()
        if expected and verdict.category != expected:
            wrong_category.append(f"{shown} (labelled {expected}, found {verdict.category})")
    return Evaluation(total, risk, caught, missed, false_positives, wrong_category)
