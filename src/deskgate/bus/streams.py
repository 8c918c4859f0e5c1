"""JetStream streams, durable consumers and the breaker bucket, created at start-up.

Only the provisioner role may create or change these; services bind to the
durable consumers made here and never create consumers themselves, so no service
can alter another's consumer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from deskgate.bus.lease import LEASE_SECONDS
from deskgate.bus.subjects import BREAKER_BUCKET, LEASE_BUCKET, SUBJECTS, Role

DAY = 86_400.0


@dataclass(frozen=True)
class StreamSpec:
    name: str
    max_age_s: float
    max_msgs_per_subject: int = -1
    duplicate_window_s: float = 600.0
    max_bytes: int = -1  # bounded by age; nats-server refuses reservations beyond the disk

    @property
    def subjects(self) -> list[str]:
        return [f.pattern for f in SUBJECTS if f.stream == self.name]


@dataclass(frozen=True)
class DurableSpec:
    stream: str
    name: str
    filter_subject: str
    owner: Role
    ack_wait_s: float = 30.0
    max_ack_pending: int = 20_000


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("MARKET", max_age_s=7 * DAY, max_msgs_per_subject=100_000, duplicate_window_s=60.0),
    StreamSpec("DIRECTIVES", max_age_s=90 * DAY),
    StreamSpec("INSIGHTS", max_age_s=90 * DAY),
    StreamSpec("APPROVALS", max_age_s=90 * DAY),
    # After APPROVALS, which held the review requests before: it gives their subjects up first.
    StreamSpec("REVIEWS", max_age_s=90 * DAY),
    StreamSpec("RESPONSES", max_age_s=90 * DAY),
    StreamSpec("STATUS", max_age_s=90 * DAY, max_msgs_per_subject=50_000),
    StreamSpec("ORDERS", max_age_s=90 * DAY),
    StreamSpec("FILLS", max_age_s=90 * DAY),
    # The executor's venue reports come every few seconds: the latest ones are what counts.
    StreamSpec("VENUES", max_age_s=7 * DAY, max_msgs_per_subject=1_000),
    StreamSpec("QUARANTINE", max_age_s=365 * DAY, max_msgs_per_subject=100_000),
)

DURABLES: tuple[DurableSpec, ...] = (
    DurableSpec("DIRECTIVES", "factory_directives", "consciousness.directives.>", Role.FACTORY),
    DurableSpec("RESPONSES", "factory_responses", "approvals.response.>", Role.FACTORY),
    DurableSpec("FILLS", "factory_fills", "factory.execution.fills.>", Role.FACTORY),
    DurableSpec("ORDERS", "executor_orders", "factory.execution.orders.>", Role.EXECUTOR),
)

BREAKER_HISTORY = 64


def durable(name: str) -> DurableSpec:
    for d in DURABLES:
        if d.name == name:
            return d
    raise KeyError(name)


# Every stream republishes what it stores here; readers in other accounts import it
# (see bus/accounts.py for why).
LIVE_REPUBLISH = RePublish(src=">", dest="deskgate.live.>")


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=spec.subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=spec.max_age_s,
        max_msgs_per_subject=spec.max_msgs_per_subject,
        max_bytes=spec.max_bytes,
        duplicate_window=spec.duplicate_window_s,
        allow_direct=True,
        num_replicas=replicas,
        republish=LIVE_REPUBLISH,
    )


def consumer_config(spec: DurableSpec) -> ConsumerConfig:
    return ConsumerConfig(
        name=spec.name,
        durable_name=spec.name,
        filter_subject=spec.filter_subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=spec.max_ack_pending,
    )


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


async def provision(js: JetStreamContext, replicas: int = 1) -> ProvisionReport:
    """Create or update every stream, durable and the breaker bucket. Idempotent."""
    report = ProvisionReport()
    for spec in STREAMS:
        config = stream_config(spec, replicas)
        try:
            info = await js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            report.created.append(f"stream {spec.name}")
            continue
        if (
            sorted(info.config.subjects or []) != sorted(config.subjects or [])
            or info.config.max_msgs_per_subject != config.max_msgs_per_subject
            or _republish_dest(info.config) != LIVE_REPUBLISH.dest
            or (info.config.num_replicas or 1) != replicas
        ):
            await js.update_stream(config)
            report.updated.append(f"stream {spec.name}")
        else:
            report.unchanged.append(f"stream {spec.name}")
    for spec in DURABLES:
        try:
            await js.consumer_info(spec.stream, spec.name)
            report.unchanged.append(f"consumer {spec.stream}/{spec.name}")
        except nats.js.errors.NotFoundError:
            await js.add_consumer(spec.stream, consumer_config(spec))
            report.created.append(f"consumer {spec.stream}/{spec.name}")
    try:
        info = await js.stream_info(f"KV_{BREAKER_BUCKET}")
    except nats.js.errors.NotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=BREAKER_BUCKET,
                history=BREAKER_HISTORY,
                storage=StorageType.FILE,
                direct=True,
                replicas=replicas,
                republish=LIVE_REPUBLISH,
                description="deskgate circuit breaker: trip (factory) and reset (principal)",
            )
        )
        report.created.append(f"bucket {BREAKER_BUCKET}")
        info = await js.stream_info(f"KV_{BREAKER_BUCKET}")
    try:
        leases = await js.stream_info(f"KV_{LEASE_BUCKET}")
        if (leases.config.num_replicas or 1) != replicas:
            leases.config.num_replicas = replicas
            await js.update_stream(leases.config)
            report.updated.append(f"bucket {LEASE_BUCKET}")
        else:
            report.unchanged.append(f"bucket {LEASE_BUCKET}")
    except nats.js.errors.NotFoundError:
        # A lease is kept only as long as its holder renews it: the bucket's age limit is its expiry.
        await js.create_key_value(KeyValueConfig(bucket=LEASE_BUCKET, history=1, ttl=LEASE_SECONDS, storage=StorageType.FILE,
                                                 direct=True, replicas=replicas, republish=LIVE_REPUBLISH,
                                                 description="deskgate: which instance of a service is active"))
        report.created.append(f"bucket {LEASE_BUCKET}")
    if _republish_dest(info.config) != LIVE_REPUBLISH.dest or info.config.allow_rollup_hdrs or (info.config.num_replicas or 1) != replicas:
        # No rollups: a `Nats-Rollup` header on the reset key would wipe the trip's history.
        config = info.config
        config.republish = LIVE_REPUBLISH
        config.allow_rollup_hdrs = False
        config.num_replicas = replicas
        await js.update_stream(config)
        report.updated.append(f"bucket {BREAKER_BUCKET}")
    else:
        report.unchanged.append(f"bucket {BREAKER_BUCKET}")
    return report


def _republish_dest(config: StreamConfig) -> str | None:
    return config.republish.dest if config.republish else None
