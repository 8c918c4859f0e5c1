"""Broker-enforced permissions, against a real nats-server started from the wheel.

For every role: every subject family it must not publish or subscribe to is
refused by the server (including $KV keys and JetStream admin subjects), and
what it is allowed works.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import provision_bus, start_bus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskgate.bus.permissions import inbox_prefix, permissions_for, readable_streams
from deskgate.bus.pull import PullConsumer
from deskgate.bus.streams import DURABLES, STREAMS
from deskgate.bus.subjects import BREAKER_BUCKET, LEASE_BUCKET, SERVICE_ROLES, SUBJECTS, Role

SAMPLE = {
    "market.data.bars.>": "market.data.bars.BTC",
    "market.data.aggregated.>": "market.data.aggregated.BTC",
    "market.data.signals.>": "market.data.signals.BTC",
    "market.data.news": "market.data.news",
    "quarantine.news": "quarantine.news",
    "quarantine.release": "quarantine.release",
    "consciousness.directives.>": "consciousness.directives.BTC",
    "consciousness.insights.>": "consciousness.insights.morning_brief",
    "approvals.queue.directive.>": "approvals.queue.directive.d1",
    "approvals.queue.review.>": "approvals.queue.review.r1",
    "approvals.acknowledged.>": "approvals.acknowledged.r1",
    "approvals.governor.clear": "approvals.governor.clear",
    "approvals.response.>": "approvals.response.d1",
    "factory.status.>": "factory.status.policy.d1",
    "factory.execution.orders.>": "factory.execution.orders.binance",
    "factory.execution.fills.>": "factory.execution.fills.binance",
    "factory.execution.venues.>": "factory.execution.venues.binance",
    "approvals.venues.>": "approvals.venues.binance",
    f"$KV.{BREAKER_BUCKET}.trip": f"$KV.{BREAKER_BUCKET}.trip",
    f"$KV.{BREAKER_BUCKET}.reset": f"$KV.{BREAKER_BUCKET}.reset",
    f"$KV.{LEASE_BUCKET}.factory": f"$KV.{LEASE_BUCKET}.factory",
    f"$KV.{LEASE_BUCKET}.executor": f"$KV.{LEASE_BUCKET}.executor",
    f"$KV.{LEASE_BUCKET}.marketdata": f"$KV.{LEASE_BUCKET}.marketdata",
    f"$KV.{LEASE_BUCKET}.web": f"$KV.{LEASE_BUCKET}.web",
}

# JetStream administration no service role may touch.
ADMIN = [
    "$JS.API.STREAM.CREATE.EVIL",
    "$JS.API.STREAM.UPDATE.APPROVALS",
    "$JS.API.STREAM.DELETE.DIRECTIVES",
    "$JS.API.STREAM.PURGE.APPROVALS",
    f"$JS.API.STREAM.PURGE.KV_{BREAKER_BUCKET}",
    f"$JS.API.STREAM.MSG.DELETE.KV_{BREAKER_BUCKET}",
    "$JS.API.STREAM.SNAPSHOT.APPROVALS",
    "$JS.API.CONSUMER.CREATE.DIRECTIVES.evil.consciousness.directives.>",
    "$JS.API.CONSUMER.CREATE.RESPONSES",
    "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.evil",
    "$JS.API.CONSUMER.DELETE.DIRECTIVES.factory_directives",
    "$JS.API.CONSUMER.DELETE.ORDERS.executor_orders",
    "$JS.API.ACCOUNT.PURGE",
    "$JS.API.SERVER.REMOVE",
    "$SYS.REQ.SERVER.PING",
]


def own_consumer_subjects(role: Role) -> set[str]:
    out = set()
    for d in DURABLES:
        if d.owner is role:
            out |= {f"$JS.API.CONSUMER.MSG.NEXT.{d.stream}.{d.name}", f"$JS.API.CONSUMER.INFO.{d.stream}.{d.name}"}
    return out


def others_consumer_subjects(role: Role) -> list[str]:
    out = []
    for d in DURABLES:
        if d.owner is not role:
            out += [f"$JS.API.CONSUMER.MSG.NEXT.{d.stream}.{d.name}", f"$JS.ACK.{d.stream}.{d.name}.1.1.1.1.0"]
    return out


def unreadable_leader_gets(role: Role) -> list[str]:
    """The leader's message get (bus/reader.py, `current`) on every stream the role may not read;
    for the agent, on every stream (DESIGN §3: no `$JS.API.STREAM.` subject at all)."""
    streams = {f.stream for f in SUBJECTS if f.stream} - (set() if role is Role.AGENT else set(readable_streams(role)))
    return [f"$JS.API.STREAM.MSG.GET.{s}" for s in sorted(streams)]


def forbidden_publish(role: Role) -> list[str]:
    fam = [SAMPLE[f.pattern] for f in SUBJECTS if role not in f.publishers]
    return fam + ADMIN + others_consumer_subjects(role) + unreadable_leader_gets(role)


def forbidden_subscribe(role: Role) -> list[str]:
    fam = [f.pattern for f in SUBJECTS if role not in f.readers]
    inboxes = ["_INBOX.>", *(f"{inbox_prefix(o)}.>" for o in Role if o is not role)]
    return fam + inboxes + [">", "$JS.>"]


@pytest.fixture
async def observer(bus):
    """Something that would see a leaked message on any family."""
    nc, _ = await bus.connect(Role.OBSERVER)
    seen: list[str] = []

    async def cb(msg):
        seen.append(msg.subject)

    for f in SUBJECTS:
        await nc.subscribe(f.pattern, cb=cb)
    await nc.flush()
    yield seen
    await nc.close()


async def stream_last_seqs(bus) -> dict[str, int]:
    nc, _ = await bus.connect(Role.PROVISIONER)
    js = nc.jetstream()
    out = {}
    for s in [*(s.name for s in STREAMS), f"KV_{BREAKER_BUCKET}"]:
        out[s] = (await js.stream_info(s)).state.last_seq
    await nc.close()
    return out


@pytest.mark.parametrize("role", SERVICE_ROLES, ids=lambda r: r.value)
async def test_every_forbidden_publish_is_refused_by_the_server(bus, observer, role):
    before = await stream_last_seqs(bus)
    nc, events = await bus.connect(role)
    subjects = forbidden_publish(role)
    for subject in subjects:
        await nc.publish(subject, b'{"evil": true}')
    await nc.flush()
    await asyncio.sleep(0.3)
    await nc.close()
    missing = [s for s in subjects if not events.refused(s)]
    assert not missing, f"{role.value} was not refused: {missing}"
    assert events.counts["permission_violation"] >= len(subjects)
    leaked = [s for s in observer if s in subjects]
    assert not leaked, f"{role.value} leaked {leaked}"
    assert await stream_last_seqs(bus) == before


@pytest.mark.parametrize("role", SERVICE_ROLES, ids=lambda r: r.value)
async def test_every_forbidden_subscription_is_refused_and_sees_nothing(bus, role):
    nc, events = await bus.connect(role)
    got: list[str] = []

    async def cb(msg):
        got.append(msg.subject)

    subjects = forbidden_subscribe(role)
    for subject in subjects:
        await nc.subscribe(subject, cb=cb)
    await nc.flush()
    # Someone allowed publishes on each of those families.
    pubs = {}
    for f in SUBJECTS:
        if role not in f.readers:
            pub_role = sorted(f.publishers)[0]
            pubs.setdefault(pub_role, []).append(SAMPLE[f.pattern])
    for pub_role, subs in pubs.items():
        pnc, _ = await bus.connect(pub_role)
        for s in subs:
            await pnc.publish(s, b"{}")
        await pnc.flush()
        await pnc.close()
    await asyncio.sleep(0.3)
    await nc.close()
    missing = [s for s in subjects if not any(f'"{s.lower()}"' in v.lower() and "subscription" in v.lower() for v in events.violations)]
    assert not missing, f"{role.value} subscriptions not refused: {missing}"
    assert got == []


@pytest.mark.parametrize("role", SERVICE_ROLES, ids=lambda r: r.value)
async def test_allowed_publishes_are_stored_and_allowed_subscriptions_deliver(bus, role):
    nc, events = await bus.connect(role)
    js = nc.jetstream()
    allowed = [f for f in SUBJECTS if role in f.publishers]
    for f in allowed:
        ack = await js.publish(SAMPLE[f.pattern], b'{"probe": 1}')
        assert ack.stream == f.stream
    # Live delivery on every family the role reads.
    readable = [f for f in SUBJECTS if role in f.readers]
    got: list[str] = []

    async def cb(msg):
        got.append(msg.subject)

    for f in readable:
        await nc.subscribe(f.pattern, cb=cb)
    await nc.flush()
    for f in readable:
        pnc, _ = await bus.connect(sorted(f.publishers)[0])
        await pnc.publish(SAMPLE[f.pattern], b"{}")
        await pnc.flush()
        await pnc.close()
    await asyncio.sleep(0.3)
    assert sorted(set(got)) == sorted({SAMPLE[f.pattern] for f in readable})
    # Read-only JetStream: direct get, and (not the agent) the leader's message get, on every stream it may read.
    from deskgate.bus.reader import last_message, read_stream

    for stream in readable_streams(role):
        async for _ in read_stream(nc, stream):
            break
        await last_message(nc, stream, ">", current=role is not Role.AGENT)
    await nc.close()
    assert events.violations == []


async def test_durable_consumers_work_only_for_their_owner(bus):
    agent, _ = await bus.connect(Role.AGENT)
    await agent.jetstream().publish("consciousness.directives.BTC", b"{}")
    await agent.close()
    factory, events = await bus.connect(Role.FACTORY)
    msgs = await (await PullConsumer(factory, "DIRECTIVES", "factory_directives").start()).next_batch(wait=3)
    assert [m.data for m in msgs] == [b"{}"]
    await msgs[0].ack()
    await factory.close()
    assert events.violations == []
    executor, xevents = await bus.connect(Role.EXECUTOR)
    assert await (await PullConsumer(executor, "DIRECTIVES", "factory_directives").start()).next_batch(wait=1) == []
    await asyncio.sleep(0.2)
    await executor.close()
    assert xevents.refused("$JS.API.CONSUMER.MSG.NEXT.DIRECTIVES.factory_directives")


async def test_an_agent_cannot_read_from_the_leader_and_others_only_what_they_may_read(bus):
    """The leader's message get follows the direct get's rights, except that the agent role gets
    none at all (DESIGN §3 keeps it off `$JS.API.STREAM.`): it reads through direct gets."""
    from deskgate.bus.reader import ReadError, last_message

    factory, _ = await bus.connect(Role.FACTORY)
    staged = await factory.jetstream().publish("approvals.queue.directive.d1", b'{"staged": true}')
    await factory.close()
    agent, events = await bus.connect(Role.AGENT)
    try:
        for stream, subject in (("APPROVALS", "approvals.queue.directive.d1"), ("QUARANTINE", "quarantine.news")):
            with pytest.raises(ReadError, match=f"leader of stream {stream}"):
                await last_message(agent, stream, subject, timeout=1.0, current=True)
            assert events.refused(f"$JS.API.STREAM.MSG.GET.{stream}")
        with pytest.raises(ReadError, match="leader of stream STATUS"):  # even a stream it may read
            await last_message(agent, "STATUS", "factory.status.portfolio", timeout=1.0, current=True)
        assert events.refused("$JS.API.STREAM.MSG.GET.STATUS")
        assert await last_message(agent, "STATUS", "factory.status.portfolio") is None  # its direct get
    finally:
        await agent.close()
    observer, oevents = await bus.connect(Role.OBSERVER)
    try:
        got = await last_message(observer, "APPROVALS", "approvals.queue.directive.d1", current=True)
        assert got is not None and got.seq == staged.seq and got.data == b'{"staged": true}'
    finally:
        await observer.close()
    assert oevents.violations == []


def test_generated_permissions_match_the_design():
    agent = permissions_for(Role.AGENT)
    families = [p for p in agent["publish"]["allow"] if not p.startswith("$JS.")]
    assert sorted(families) == sorted(["consciousness.directives.>", "consciousness.insights.>", "approvals.queue.review.>"])
    for p in agent["publish"]["allow"]:
        assert not p.startswith(("factory.", "approvals.response", "approvals.queue.directive", "$KV", "$JS.API.STREAM.CREATE"))
    # The one `$JS.API.STREAM.` subject a service role is given is the leader's message get
    # (read-only), exactly on the streams it may read already; the agent gets none at all.
    for role in SERVICE_ROLES:
        allow = permissions_for(role)["publish"]["allow"]
        leader_gets = sorted(p for p in allow if p.startswith("$JS.API.STREAM."))
        expected = [] if role is Role.AGENT else sorted(f"$JS.API.STREAM.MSG.GET.{s}" for s in readable_streams(role))
        assert leader_gets == expected, role
        direct_gets = sorted(p.removeprefix("$JS.API.DIRECT.GET.") for p in allow if p.startswith("$JS.API.DIRECT.GET.") and not p.endswith(">"))
        assert direct_gets == sorted(readable_streams(role)), role
    assert "$JS.API.STREAM.MSG.GET.APPROVALS" not in agent["publish"]["allow"]
    assert "$JS.API.STREAM.MSG.GET.QUARANTINE" not in agent["publish"]["allow"]
    assert f"$KV.{BREAKER_BUCKET}.trip" in permissions_for(Role.FACTORY)["publish"]["allow"]
    assert f"$KV.{BREAKER_BUCKET}.reset" not in permissions_for(Role.FACTORY)["publish"]["allow"]
    assert f"$KV.{BREAKER_BUCKET}.reset" in permissions_for(Role.COMMAND_CENTER)["publish"]["allow"]


# -- property: whatever the agent publishes, nothing reaches execution ------------------------

PREFIXES = [
    "factory.execution.orders.",
    "factory.execution.fills.",
    "factory.status.",
    "approvals.response.",
    "approvals.queue.directive.",
    f"$KV.{BREAKER_BUCKET}.",
    "$KV.",
    "$JS.API.STREAM.",
    "$JS.API.CONSUMER.",
    "$JS.ACK.ORDERS.executor_orders.",
    "factory.",
    "approvals.",
]
token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=12)
hostile_subject = st.builds(
    lambda prefix, tokens: prefix + ".".join(tokens),
    st.sampled_from(PREFIXES),
    st.lists(token, min_size=1, max_size=4),
)


@pytest.fixture(scope="module")
def shared_bus(tmp_path_factory):
    b = start_bus(tmp_path_factory.mktemp("perm-prop"))
    asyncio.run(provision_bus(b))
    yield b
    b.server.stop()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subjects=st.lists(hostile_subject, min_size=1, max_size=40))
def test_agent_credentials_never_reach_execution(shared_bus, subjects):
    async def attempt():
        before = await stream_last_seqs(shared_bus)
        executor, _ = await shared_bus.connect(Role.EXECUTOR)
        seen: list[str] = []

        async def cb(msg):
            seen.append(msg.subject)

        await executor.subscribe("factory.execution.orders.>", cb=cb)
        await executor.flush()
        agent, events = await shared_bus.connect(Role.AGENT)
        for s in subjects:
            await agent.publish(s, json.dumps({"order_id": "evil", "venue": "binance"}).encode())
        await agent.flush()
        await asyncio.sleep(0.2)
        await agent.close()
        await executor.close()
        after = await stream_last_seqs(shared_bus)
        return before, after, seen, events

    before, after, seen, events = asyncio.run(attempt())
    assert seen == []
    assert after == before
    assert events.counts["permission_violation"] == len(subjects)


# -- reply-subject reflection: JetStream answers cannot be aimed at privileged subjects -------------

PRIVILEGED = [
    "approvals.response.d1",
    "approvals.acknowledged.r1",
    "approvals.queue.directive.d1",
    "factory.execution.orders.binance",
    "factory.execution.fills.binance",
    "factory.status.policy.d1",
    f"$KV.{BREAKER_BUCKET}.reset",
    f"$KV.{BREAKER_BUCKET}.trip",
    f"$KV.{LEASE_BUCKET}.factory",  # a standby factory's lease: no one else may take or keep it
    f"$KV.{LEASE_BUCKET}.executor",  # and an executor's
    f"$KV.{LEASE_BUCKET}.marketdata",
    f"$KV.{LEASE_BUCKET}.web",
]


@pytest.mark.parametrize("role", SERVICE_ROLES, ids=lambda r: r.value)
async def test_jetstream_replies_cannot_be_aimed_at_privileged_subjects(bus, role):
    """A role names a privileged subject as the reply of its own JetStream calls.

    Inside one account the server would deliver JetStream's answer there (a publish
    acknowledgement, or a stored message returned by a direct get) and a stream would
    store it. Each role is its own account, so the answer can only come back to it.
    """
    before = await stream_last_seqs(bus)
    nc, _ = await bus.connect(role)
    forged = json.dumps(
        {"approval_id": "evil", "directive_id": "d1", "decision": "approve", "principal": "alice", "decided_at": "2026-01-01T00:00:00Z"}
    ).encode()
    own = [f for f in SUBJECTS if role in f.publishers and not f.pattern.startswith("$KV")]
    seq = None
    if own:
        ack = await nc.jetstream().publish(SAMPLE[own[0].pattern], forged)
        seq, stream = ack.seq, ack.stream
    for target in PRIVILEGED:
        if own:
            await nc.publish(SAMPLE[own[0].pattern], forged, reply=target)  # the publish ack, reflected
            await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps({"seq": seq}).encode(), reply=target)
        for readable in ("MARKET", "STATUS", f"KV_{BREAKER_BUCKET}"):
            await nc.publish(f"$JS.API.DIRECT.GET.{readable}", json.dumps({"seq": 1}).encode(), reply=target)
            await nc.publish(f"$JS.API.STREAM.MSG.GET.{readable}", json.dumps({"seq": 1}).encode(), reply=target)
    await nc.flush()
    await asyncio.sleep(0.5)
    await nc.close()
    after = await stream_last_seqs(bus)
    changed = {s: (before[s], after[s]) for s in before if before[s] != after[s]}
    # An answer can only land where the role may publish anyway (a reply subject is
    # resolved in the role's own account); never anywhere else.
    allowed = {f.stream for f in SUBJECTS if role in f.publishers}
    assert set(changed) <= allowed, f"{role.value} reflected into {changed}"
    if role is not Role.COMMAND_CENTER:
        observer, _ = await bus.connect(Role.OBSERVER)
        from deskgate.bus.breaker import read_key

        assert await read_key(observer, "reset") is None
        await observer.close()


async def test_live_readers_can_tell_a_persisted_message_from_a_reflected_one(bus):
    """Two connections of one agent share an account: one can still aim JetStream answers at the other's
    subscriptions. What the streams republish names its stream and subject; that doesn't."""
    from deskgate.bus.live import persisted

    reader, _ = await bus.connect(Role.AGENT)
    got = []

    async def cb(msg):
        got.append(msg)

    await reader.subscribe("factory.status.policy.>", cb=cb)
    await reader.flush()
    mallory, _ = await bus.connect(Role.AGENT)
    ack = await mallory.jetstream().publish("consciousness.insights.x", b'{"decision": "staged"}')
    await mallory.publish("$JS.API.DIRECT.GET.INSIGHTS", json.dumps({"seq": ack.seq}).encode(), reply="factory.status.policy.d1")
    await mallory.publish("consciousness.insights.x", b"{}", reply="factory.status.policy.d1")
    await mallory.flush()
    factory, _ = await bus.connect(Role.FACTORY)
    await factory.jetstream().publish("factory.status.policy.d1", b'{"genuine": true}')
    await asyncio.sleep(0.5)
    for nc in (reader, mallory, factory):
        await nc.close()
    genuine = [m for m in got if persisted(m, "STATUS")]
    reflected = [m for m in got if not persisted(m, "STATUS")]
    assert [m.data for m in genuine] == [b'{"genuine": true}']
    assert len(reflected) == 2
