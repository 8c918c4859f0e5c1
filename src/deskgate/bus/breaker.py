"""Reading and writing the circuit breaker's KV bucket.

Reads use direct get and writes plain JetStream publishes on `$KV.<bucket>.<key>`,
which is all a KV put is; nats-py's KeyValue helper would also need the stream-info
API, which does not cross account boundaries.
"""

from __future__ import annotations

from deskgate.bus import subjects as S
from deskgate.bus.reader import last_message
from deskgate.domain.breaker import BreakerState
from deskgate.policy.breaker import KvRecord, breaker_state

BREAKER_STREAM = f"KV_{S.BREAKER_BUCKET}"


async def read_breaker_state(nc) -> BreakerState:
    trip = await read_key(nc, S.BREAKER_TRIP_KEY)
    reset = await read_key(nc, S.BREAKER_RESET_KEY)
    return breaker_state(trip, reset)


async def read_key(nc, key: str) -> KvRecord | None:
    stored = await last_message(nc, BREAKER_STREAM, S.breaker_kv_subject(key))
    if stored is None:
        return None
    # A deleted or purged key is not "never written": keep the marker so the
    # breaker fails closed.
    op = stored.headers.get("KV-Operation")
    return KvRecord(stored.seq, op, b"" if op in ("DEL", "PURGE") else stored.data)


async def write_key(js, key: str, payload: bytes, headers: dict[str, str] | None = None) -> int:
    """Put a value (with its writer's signature headers); returns its revision (the stream sequence)."""
    ack = await js.publish(S.breaker_kv_subject(key), payload, headers=headers)
    return ack.seq
