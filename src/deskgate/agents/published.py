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


class LastRun(Message):
    """One cycle kind's most recent run."""

    at: datetime  # the cycle's scheduled time
    ok: bool
    duration_s: float
    outcome: str = Field("", max_length=600)  # what it did, or why it failed
    endpoint: str | None = None  # the model server it called (None: the offline analyst)


class AgentsStatus(Message):
    """consciousness.insights.agents, after every cycle, run or failed: what a person needs to see the
    agents at work (the Command Center's Agents page, `deskgate agents status`, /metrics)."""

    kind: Literal["agents"] = "agents"
    at: datetime  # when this was published, on the agents' clock
    analyst: str
    endpoint: str | None = None
    endpoint_problem: str | None = Field(None, max_length=1000)  # the start-up check's finding, until a cycle succeeds
    last: dict[str, LastRun] = Field(default_factory=dict)  # by cycle kind
    next_due: dict[str, datetime] = Field(default_factory=dict)  # by cycle kind
    model_errors: int = 0  # since the data directory began
    cycle_errors: int = 0
    cycles: dict[str, int] = Field(default_factory=dict)  # runs by kind
    usage_day: str = ""  # YYYY-MM-DD (UTC) of usage_today
    usage_today: UsageLine = Field(default_factory=UsageLine)
    usage_total: UsageLine = Field(default_factory=UsageLine)
