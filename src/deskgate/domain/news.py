"""News and research items: what the agents may see, and what was held back."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from deskgate.domain.base import Message


class NewsItem(Message):
    """market.data.news: an item that passed the screen.

    The structured fields (source, times, assets mentioned, screen score) are what
    deterministic code may use. `text` is the sanitised text wrapped in delimiters
    that name its source and its untrusted status, and datamarked; only a language
    model reads it, and its prompt says it is data, never instructions.
    """

    news_id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=64)
    published_at: AwareDatetime | None = None
    received_at: AwareDatetime
    assets: list[str] = Field(default_factory=list, max_length=50)
    screen_score: float = Field(ge=0, le=1)
    text: str = Field(max_length=20_000)


class QuarantinedItem(Message):
    """quarantine.news: an item the screen flagged, kept with its reasons for a person.
    Its text is cleaned (no hidden characters or markup) but never wrapped, and no
    agent can read this subject: the broker refuses it."""

    news_id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=64)
    published_at: AwareDatetime | None = None
    received_at: AwareDatetime
    score: float = Field(ge=0, le=1)
    reasons: list[str]
    text: str = Field(max_length=20_000)
