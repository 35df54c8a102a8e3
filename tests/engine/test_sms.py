"""SMS cost: GSM-7 or UCS-2, and segment counts at the boundaries."""

from __future__ import annotations

import pytest

from app.engine.sms import is_gsm7, non_gsm7_characters, sms_cost


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("[" * 80, "gsm7", 1),  # extension characters take two places
        ("[" * 81, "gsm7", 2),
        ("ŵ" * 70, "ucs2", 1),
        ("ŵ" * 71, "ucs2", 2),
        ("a" * 150 + "\u2019", "ucs2", 3),  # one curly quote triples the cost
    ],
)
def test_segments_are_counted_for_the_encoding_the_text_needs(
    text: str, encoding: str, segments: int
) -> None:
    cost = sms_cost(text)
    assert (cost.encoding, cost.segments) == (encoding, segments)


def test_curly_quotes_and_emoji_are_found_as_non_gsm7() -> None:
    assert not is_gsm7("It\u2019s ok \U0001f600")
    assert non_gsm7_characters("It\u2019s ok \U0001f600 \u2019") == ["\u2019", "\U0001f600"]
    assert is_gsm7("It's ok, call 999. {} [] ~ ^ \u20ac")
