"""Phone numbers: one canonical form (E.164) so "07700 900001" and "+447700900001" are one child."""

from __future__ import annotations

import functools

import phonenumbers

DEFAULT_REGION = "GB"


@functools.lru_cache(maxsize=4096)
def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """The E.164 form of a phone number, or None if it is not a possible number (cached: a child
    sends several messages in a row, and parsing costs a quarter of a millisecond)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str) -> str:
    """A phone number as people in its country write it (national format)."""
    try:
        number = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
