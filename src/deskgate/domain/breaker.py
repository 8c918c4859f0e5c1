"""Circuit breaker records, as stored in the breaker KV bucket."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from deskgate.domain.base import Message


class BreakerTrip(Message):
    """Key `trip`, written only by the factory."""

    trip_id: str
    at: datetime
    reason: str
    drawdown_pct: float
    limit_pct: float
    equity_usd: float
    peak_equity_usd: float


class BreakerReset(Message):
    """Key `reset`, written only by a principal; names the exact trip it clears."""

    resets_revision: int = Field(ge=1)
    resets_trip_id: str
    at: datetime
    principal: str = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=2000)


class BreakerState(Message):
    state: Literal["armed", "tripped"]
    trip: BreakerTrip | None = None
    trip_revision: int | None = None
    reset: BreakerReset | None = None
    note: str = ""
