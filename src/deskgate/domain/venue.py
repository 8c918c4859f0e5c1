"""What the desk knows of a real venue: the executor's observations, the factory's
reconciliation and health verdict, and a principal's acknowledgement of a mismatch."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deskgate.domain.base import Message

#: What the executor saw. "healthy" is the only state in which orders may be staged.
ObservedState = Literal["healthy", "unreachable", "rate_limited", "clock_skew", "auth", "stuck"]
#: The factory's verdict adds what only it knows: a mismatch with its book, a hold until a
#: principal acknowledges it, no report for too long, or none yet.
VenueState = Literal["healthy", "unreachable", "rate_limited", "clock_skew", "auth", "stuck", "mismatch", "held", "stale", "unknown"]

VenueName = str


class VenueObservation(Message):
    """factory.execution.venues.<VENUE>: the executor's look at a venue, signed by it."""

    venue: VenueName = Field(min_length=1, max_length=32)
    observed_at: datetime
    state: ObservedState
    observed: str = Field("", max_length=200)  # e.g. "skew 1830 ms", "3 rate limits in a row"
    limit: str = Field("", max_length=200)
    reason: str = Field("", max_length=1000)
    clock_skew_ms: float | None = None
    # Totals at the venue, of assets with no order of ours still open or being sent (their
    # fills may not be in the book yet); None when not read this time.
    balances: dict[str, float] | None = None
    open_orders: list[str] = Field(default_factory=list, max_length=10_000)  # our client ids open there
    unknown_orders: list[str] = Field(default_factory=list, max_length=10_000)  # open there, never sent by us


class Mismatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    asset: str
    book: float  # what the factory's book holds at this venue
    venue: float  # what the venue reports
    baseline: float  # held outside deskgate, as a principal acknowledged
    difference: float  # venue - book - baseline
    difference_usd: float | None  # at the latest price; None without one


class VenueStatus(Message):
    """factory.status.venue.<VENUE>: the factory's verdict, which the policy engine applies."""

    venue: VenueName
    state: VenueState
    healthy: bool
    observed: str = ""
    limit: str = ""
    reason: str = ""
    at: datetime
    observed_at: datetime | None = None
    clock_skew_ms: float | None = None
    mismatches: list[Mismatch] = Field(default_factory=list)
    unknown_orders: list[str] = Field(default_factory=list)
    # A mismatch waiting for a principal: `review` names it, an acknowledgement must too.
    review: int | None = None
    review_opened_at: str | None = None
    held: bool = False
    baseline: dict[str, float] = Field(default_factory=dict)
    reconciled_at: datetime | None = None


class VenueAck(Message):
    """approvals.venues.<VENUE>: a principal has looked at a mismatch and accepts the venue's
    numbers as they were (the difference becomes the baseline held outside deskgate)."""

    venue: VenueName = Field(min_length=1, max_length=32)
    review: int = Field(ge=1)
    opened_at: str = Field(min_length=1, max_length=64)  # the review's, as shown: a review once lost and numbered again is another
    principal: str = Field(min_length=1, max_length=128)
    at: datetime
    note: str = Field("", max_length=2000)
