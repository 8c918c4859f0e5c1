"""Circuit breaker state, decided from the two KV keys; and when to trip.

The factory may only write `trip`, a principal only `reset` (enforced by the
broker). A reset clears exactly one trip: it must name the trip's revision and its
trip id (random, so it cannot be guessed), and it must have been written after the
trip, so a reset written in advance disarms nothing. Anything unreadable counts as
tripped: the breaker fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from deskgate.domain.breaker import BreakerReset, BreakerState, BreakerTrip
from deskgate.policy.engine import within


@dataclass(frozen=True)
class KvRecord:
    revision: int
    operation: str | None  # None or "PUT" for a value; "DEL" / "PURGE" for deletions
    value: bytes


def breaker_state(trip: KvRecord | None, reset: KvRecord | None) -> BreakerState:
    if trip is None:
        return BreakerState(state="armed", note="never tripped")
    if trip.operation not in (None, "PUT"):
        return BreakerState(state="tripped", trip_revision=trip.revision, note=f"trip record was {trip.operation}; failing closed")
    try:
        trip_record = BreakerTrip.model_validate_json(trip.value)
    except ValidationError:
        return BreakerState(state="tripped", trip_revision=trip.revision, note="trip record unreadable; failing closed")
    reset_record = None
    if reset is not None and reset.operation in (None, "PUT"):
        try:
            reset_record = BreakerReset.model_validate_json(reset.value)
        except ValidationError:
            reset_record = None
    if (
        reset_record is not None
        and reset.revision > trip.revision
        and reset_record.resets_revision == trip.revision
        and reset_record.resets_trip_id == trip_record.trip_id
    ):
        return BreakerState(state="armed", trip=trip_record, trip_revision=trip.revision, reset=reset_record)
    return BreakerState(state="tripped", trip=trip_record, trip_revision=trip.revision, reset=reset_record)


def should_trip(drawdown_pct: float, max_drawdown_pct: float) -> bool:
    """The breaker trips when drawdown exceeds the limit (the limit itself is allowed)."""
    return not within(drawdown_pct, max_drawdown_pct)
