"""What the agents publish on consciousness.insights.<kind>: each cycle's output, labelled with its analyst."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from deskgate.agents.outputs import EndOfDayReview, Insight, MorningBrief, Principle
from deskgate.domain.base import Message


class UsageLine(Message):
    calls: int = 0
    requests: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None when the model's price is unknown


class DirectiveResult(Message):
    """One draft's path: every id it was sent under, and where it ended."""

    asset: str
    side: Literal["buy", "sell"]
    directive_ids: list[str]
    notional_usd: float  # of the last attempt
    confidence: float  # as drafted, before the Governor's damping
    damping: float = 1.0
    decision: Literal["staged", "rejected", "duplicate", "no_verdict", "withdrawn"]
    reason: str | None = None
    revisions: int = 0


class IntradayReport(Message):
    kind: Literal["intraday"] = "intraday"
    at: datetime
    analyst: str  # the analyst's label: the offline analyst says so
    insights: list[Insight]
    principles: list[Principle]
    directives: list[DirectiveResult]
    invented_citations: list[str] = Field(default_factory=list)
    dropped_insights: int = 0
    usage: UsageLine


class MorningBriefReport(Message):
    kind: Literal["morning_brief"] = "morning_brief"
    at: datetime
    analyst: str
    brief: MorningBrief
    review_ids: list[str]
    usage: UsageLine


class EndOfDayReport(Message):
    kind: Literal["eod_review"] = "eod_review"
    at: datetime
    analyst: str
    review: EndOfDayReview
    archival_id: int
    usage: UsageLine
