"""Translations: Babel catalogs in locales/, read as .po files, and dates in the child's language.

A translation marked fuzzy (its English changed since it was translated) needs review, so it is
never shown to a child: they get the English text instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

SOURCE_LOCALE = "en"
DOMAIN = "messages"


@dataclass(frozen=True)
class Coverage:
    """How much of a catalog is ready for children."""

    locale: str
    total: int
    translated: int
    fuzzy: int

    @property
    def missing(self) -> int:
        return self.total - self.translated - self.fuzzy

    @property
    def percent(self) -> float:
        return 100.0 * self.translated / self.total if self.total else 100.0


class Catalogs:
    """Every locale's catalog, loaded once; lookups by (context, English text)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.catalogs: dict[str, Catalog] = {}
        # Translations approved in the editor, by (locale, context, msgid); they win over the files.
        self.overrides: dict[tuple[str, str, str], str] = {}
        for po in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
            locale = po.parent.parent.name
            with po.open("rb") as handle:
                self.catalogs[locale] = read_po(handle, locale=locale, domain=DOMAIN)

    @property
    def locales(self) -> list[str]:
        """English first, then every locale with a catalog."""
        return [SOURCE_LOCALE, *sorted(k for k in self.catalogs if k != SOURCE_LOCALE)]

    def with_overrides(self, overrides: dict[tuple[str, str, str], str]) -> Catalogs:
        """These catalogs with translations approved in the editor on top (the files are shared)."""
        combined = copy.copy(self)
        combined.overrides = overrides
        return combined

    def file_lookup(self, locale: str, context: str, msgid: str) -> str | None:
        """The reviewed translation in the shipped .po file only."""
        catalog = self.catalogs.get(locale)
        if catalog is None:
            return None
        message = catalog.get(msgid, context=context)
        if message is None or message.fuzzy or not message.string:
            return None
        return message.string if isinstance(message.string, str) else message.string[0]

    def lookup(self, locale: str, context: str, msgid: str) -> str | None:
        """The reviewed translation, or None if there is none (missing, empty or fuzzy)."""
        approved = self.overrides.get((locale, context, msgid))
        return approved if approved is not None else self.file_lookup(locale, context, msgid)

    def translator(self, locale: str, missing: list[str] | None = None) -> Callable[[str, str], str]:
        """A ``(context, msgid) -> text`` function for a locale, falling back to English;
        ``missing`` collects the contexts that fell back."""
        if locale == SOURCE_LOCALE or locale not in self.catalogs:
            return lambda context, msgid: msgid

        def translate(context: str, msgid: str) -> str:
            found = self.lookup(locale, context, msgid)
            if found is None and missing is not None:
                missing.append(context)
            return found if found is not None else msgid

        return translate

    def coverage(self, locale: str, messages: list[tuple[str, str]]) -> Coverage:
        """How many of the given (context, msgid) messages a locale translates, or has fuzzy."""
        catalog = self.catalogs.get(locale)
        translated = fuzzy = 0
        for context, msgid in messages:
            if locale == SOURCE_LOCALE:
                translated += 1
                continue
            if (locale, context, msgid) in self.overrides:
                translated += 1
                continue
            entry = catalog.get(msgid, context=context) if catalog else None
            if entry is None or not entry.string:
                continue
            if entry.fuzzy:
                fuzzy += 1
            else:
                translated += 1
        return Coverage(locale, len(messages), translated, fuzzy)


def language_name(locale: str) -> str:
    """The name of a language in that language, e.g. Cymraeg."""
    name = Locale.parse(locale).get_display_name(locale) or locale
    return name[:1].upper() + name[1:]


def english_name(locale: str) -> str:
    """The name of a language in English, for staff pages, e.g. Welsh."""
    return Locale.parse(locale).get_display_name("en") or locale


def staff_language_name(locale: str) -> str:
    """A language as staff pages name it: in English, then in itself if different, e.g. Welsh (Cymraeg)."""
    english, own = english_name(locale), language_name(locale)
    return english if english == own else f"{english} ({own})"


@lru_cache(maxsize=4096)
def format_day(day: date, locale: str) -> str:
    """A date as a child would say it, e.g. "Tuesday 12 January 2027" / "Dydd Mawrth 12 Ionawr 2027".

    Kept once worked out (Babel took about 50 µs a date; a conversation names the same few days)."""
    return format_date(day, format="EEEE d MMMM y", locale=locale)
