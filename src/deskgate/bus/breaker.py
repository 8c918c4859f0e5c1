"""Reading the circuit breaker's KV bucket (both keys) into a BreakerState."""

from __future__ import annotations

import nats.js.errors

from deskgate.bus import subjects as S
from deskgate.domain.breaker import BreakerState
from deskgate.policy.breaker import KvRecord, breaker_state


async def read_breaker_state(kv) -> BreakerState:
    trip = await _kv_record(kv, S.BREAKER_TRIP_KEY)
    reset = await _kv_record(kv, S.BREAKER_RESET_KEY)
    return breaker_state(trip, reset)


async def _kv_record(kv, key: str) -> KvRecord | None:
    try:
        entry = await kv.get(key)
    except nats.js.errors.KeyNotFoundError as exc:
        # A deleted or purged key is not "never written": report the marker so the
        # breaker fails closed.
        marker = getattr(exc, "entry", None)
        if marker is not None:
            return KvRecord(marker.revision or 0, getattr(exc, "op", None) or "DEL", b"")
        return None
    return KvRecord(entry.revision, entry.operation, entry.value or b"")
