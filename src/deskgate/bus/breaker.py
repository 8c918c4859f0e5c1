"""Reading and writing the circuit breaker's KV bucket.

Reads ask the bucket's stream leader and writes are plain JetStream publishes on
`$KV.<bucket>.<key>`, which is all a KV put is; nats-py's KeyValue helper would also
need the stream-info API, which no role but the provisioner is given.
"""

from __future__ import annotations

import asyncio

from deskgate.bus import subjects as S
from deskgate.bus.publish import publish_stored
from deskgate.bus.reader import last_message
from deskgate.domain.breaker import BreakerState
from deskgate.policy.breaker import KvRecord, breaker_state

BREAKER_STREAM = f"KV_{S.BREAKER_BUCKET}"


async def read_breaker_state(nc) -> BreakerState:
    # Both at once: during a leader election each waits for the new leader, together, not in turn.
    trip, reset = await asyncio.gather(read_key(nc, S.BREAKER_TRIP_KEY), read_key(nc, S.BREAKER_RESET_KEY))
    return breaker_state(trip, reset)


async def read_key(nc, key: str) -> KvRecord | None:
    """The key's newest record, read from the bucket's leader (`current`): the factory decides
    from it whether its trip must be written again, a principal's reset names the trip revision
    it read. A follower behind by one write would make the factory write its trip again, and
    the reset a principal just signed name an older trip."""
    stored = await last_message(nc, BREAKER_STREAM, S.breaker_kv_subject(key), current=True)
    if stored is None:
        return None
    # A deleted or purged key is not "never written": keep the marker so the
    # breaker fails closed.
    op = stored.headers.get("KV-Operation")
    return KvRecord(stored.seq, op, b"" if op in ("DEL", "PURGE") else stored.data)


async def write_key(js, key: str, payload: bytes, headers: dict[str, str] | None = None, *, within: float = 0.0) -> int:
    """Put a value (with its writer's signature headers); returns its revision (the stream sequence).

    `within`: how long to ask again while no stream answers (a cluster electing the bucket's
    leader; bus/publish.py `publish_stored`). The factory asks again on its own schedule (a
    pending trip); a principal's reset waits."""
    ack = await publish_stored(js, S.breaker_kv_subject(key), payload, headers, within=within)
    return ack.seq
