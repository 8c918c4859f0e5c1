"""News and research items: what the agents may see, and what was held back."""

from __future__ import annotations

from typing import Literal

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
    released_by: str | None = Field(None, max_length=128)  # the principal who released it from quarantine


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
    flagged_by: list[Literal["rules", "model", "judge"]] = []  # the screen's layers that flagged it
    text: str = Field(max_length=20_000)


class QuarantineRelease(Message):
    """quarantine.release: a principal read a quarantined item and releases it as a false
    positive. Signed with the principal's own key (and passkey, when they have one); the
    market-data service publishes the item only for a release that verifies."""

    release_id: str = Field(min_length=1, max_length=128)
    news_id: str = Field(min_length=1, max_length=200)
    # SHA-256 of the quarantined text the principal read: what is published is exactly that.
    text_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    principal: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)
    at: AwareDatetime


def text_digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()
