"""Sad news gets a kind reply first; everyday phrases do not."""

from __future__ import annotations

import pytest

from app.engine.feelings import is_sad_news


@pytest.mark.parametrize(
    "text",
    [
        "my nan died",
        "My Nan passed away last week",
        "im so sad today",
        "I miss my mum",
        "i feel lonely at the new house",
        "the funeral is on friday",
        "Mae Taid wedi marw",
    ],
)
def test_sad_news_is_recognised(text: str) -> None:
    assert is_sad_news(text)


@pytest.mark.parametrize(
    "text",
    [
        "my phone died",
        "I'm dying to see my mum",
        "who is my IRO",
        "1",
        "school is ok",
        "my battery died lol",
        "can i see my brother more",
    ],
)
def test_everyday_messages_are_not_sad_news(text: str) -> None:
    assert not is_sad_news(text)
