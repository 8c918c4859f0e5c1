"""A standby factory (standby.enabled): one lease in the bus, one epoch fencing the store.
Two factories on one bus and one PostgreSQL store: only the lease holder stages; killed, it is
replaced by the standby within the lease's time, and nothing is lost or staged twice."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter

import pytest
from conftest import directive, publish_bar, raw, send_signed_directives, signed_headers, wait_for
from test_factory import make_mission
from test_postgres import pg_url  # noqa: F401 - the fixture: a fresh schema on the machine's PostgreSQL

from deskgate.audit.signing import Kind
from deskgate.bus.lease import LEASE_SECONDS, Lease, LeaseLost, holder_id
from deskgate.bus.reader import read_stream
from deskgate.bus.subjects import Role
from deskgate.factory.service import Factory
from deskgate.factory.store import FactoryStore
from deskgate.paths import DataDir

pytestmark = pytest.mark.slow


async def test_a_lease_has_one_holder_is_renewed_and_released(bus):
    nc, _ = await bus.connect(Role.FACTORY)
    try:
        holders = {holder_id("factory", str(bus.data_dir.root)) for _ in range(2)}
        assert len(holders) == 2  # two processes of one machine and data directory are two holders
        a, b = (Lease(nc, "factory", h) for h in sorted(holders))
        assert await a.try_acquire() and not await b.try_acquire()
        first = a.epoch
        await a.renew()
        assert a.revision > first and a.epoch == first and not await b.try_acquire()
        await a.release()
        assert await b.try_acquire() and b.epoch > first  # released: the standby need not wait
        with pytest.raises(LeaseLost, match="no lease to renew"):
            await a.renew()
    finally:
        await nc.close()


async def test_standby_needs_a_shared_store_and_a_plain_factory_keeps_off_a_fenced_one(bus, pg_url):  # noqa: F811
    from deskgate.config import MissionError, parse_mission

    with pytest.raises(MissionError, match="standby.enabled needs storage.url"):
        parse_mission({"standby": {"enabled": True}})
    fenced = FactoryStore(pg_url)
    fenced.take_over(3)
    fenced.close()
    plain = Factory(make_mission(storage={"url": pg_url}), bus.data_dir)
    with pytest.raises(SystemExit, match="last written by a standby factory \\(lease epoch 3\\)"):
        await plain.run()


async def test_a_lease_not_renewed_expires_and_a_standby_takes_it(bus):
    nc, _ = await bus.connect(Role.FACTORY)
    try:
        dead, standby = Lease(nc, "factory", "factory@dead"), Lease(nc, "factory", "factory@standby")
        assert await dead.try_acquire()
        started = time.monotonic()
        assert await asyncio.wait_for(standby.acquire(every=0.2), LEASE_SECONDS * 3)
        assert time.monotonic() - started > LEASE_SECONDS * 0.5 and standby.epoch > dead.epoch  # only once it expired
        with pytest.raises(LeaseLost, match="no longer ours"):
            await dead.renew()  # had it been frozen, not dead: it learns at its next renewal
    finally:
        await nc.close()


def test_a_write_under_an_older_epoch_is_refused_and_nothing_of_it_is_kept(pg_url):  # noqa: F811
    from sqlalchemy import func, select

    from deskgate.factory.tables import outbox

    old, new, plain = FactoryStore(pg_url), FactoryStore(pg_url), FactoryStore(pg_url)
    try:
        with plain.begin() as conn:  # a factory without standbys writes under epoch 0
            plain.enqueue(conn, [("s", "m0", b"kept")], old_time())
        old.take_over(5)
        with old.begin() as conn:
            old.enqueue(conn, [("s", "m1", b"kept")], old_time())
        new.take_over(7)  # after what the old holder wrote
        with new.begin() as conn:
            new.enqueue(conn, [("s", "m2", b"kept")], old_time())
        with pytest.raises(LeaseLost, match="epoch 7, later than ours \\(5\\)"):
            with old.begin() as conn:
                old.enqueue(conn, [("s", "m3", b"lost")], old_time())
        with pytest.raises(LeaseLost, match="a standby factory has written this store.*set standby.enabled"):
            with plain.begin() as conn:  # started beside the standbys by mistake: stopped at its next write
                plain.enqueue(conn, [("s", "m4", b"lost")], old_time())
        with new.connect() as conn:
            assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 3
    finally:
        old.close()
        new.close()
        plain.close()


def old_time():
    from datetime import datetime, timezone

    return datetime(2026, 1, 1, tzinfo=timezone.utc)


async def test_two_factories_one_stages_and_the_standby_takes_over_when_it_dies(bus, pg_url, tmp_path):  # noqa: F811
    """Each factory with its own copy of the desk's data directory (another machine), one bus, one store."""
    mission = make_mission(paper={"starting_equity_usd": 10_000_000.0}, approvals={"expiry_seconds": 3600},
                           standby={"enabled": True}, storage={"url": pg_url})
    md, _ = await bus.connect(Role.MARKETDATA)
    await publish_bar(md, "BTC", 65_000.0)
    await md.close()
    other = DataDir.at(tmp_path / "standby-machine")
    shutil.copytree(bus.data_dir.root, other.root)
    active, standby = Factory(mission, bus.data_dir), Factory(mission, other)
    ready_a, ready_b = asyncio.Event(), asyncio.Event()
    run_a = asyncio.create_task(active.run(ready=ready_a))
    await asyncio.wait_for(ready_a.wait(), 20)
    await wait_for(lambda: active.lease is not None and active.lease.valid(), timeout=20)
    run_b = asyncio.create_task(standby.run(ready=ready_b))
    await asyncio.wait_for(ready_b.wait(), 20)

    agent, _ = await bus.connect(Role.AGENT, reconnect=True)
    js = agent.jetstream()

    async def send(ids):
        await send_signed_directives(js, bus.data_dir, ids)

    observer, _ = await bus.connect(Role.OBSERVER)

    async def verdicts() -> Counter:
        return Counter([json.loads(m.data)["directive_id"] async for m in read_stream(observer, "STATUS", "factory.status.policy.>")])

    try:
        first = [f"before-{i}" for i in range(50)]
        await send(first)
        await wait_for(lambda: _has(verdicts, first), timeout=30)
        assert standby.lease is not None and not standby.lease.valid()  # it stood by: it never held the lease
        # kill -9 the active factory: its task ends with no clean stop, so its lease is never released.
        run_a.cancel()
        await asyncio.gather(run_a, return_exceptions=True)
        second = [f"after-{i}" for i in range(50)]
        await send(second)
        await wait_for(lambda: standby.lease.valid(), timeout=LEASE_SECONDS * 3)
        await wait_for(lambda: _has(verdicts, first + second), timeout=60)
        await asyncio.sleep(1.0)  # anything doubled would show by now
        counted = await verdicts()
        assert set(counted) == set(first + second) and set(counted.values()) == {1}, "a directive got two verdicts"
        staged = Counter([m.subject.rsplit(".", 1)[1] async for m in read_stream(observer, "APPROVALS", "approvals.queue.directive.>")])
        assert set(staged) == set(first + second) and set(staged.values()) == {1}, "a directive was staged twice"
        # The old instance, had it been frozen rather than killed, can no longer write to the store.
        with pytest.raises(LeaseLost):
            with active.store.begin():
                pass
    finally:
        standby.stop()
        await asyncio.gather(run_b, return_exceptions=True)
        for nc in (agent, observer):
            await nc.close()


async def _has(verdicts, ids) -> bool:
    return set(ids) <= set(await verdicts())


async def test_two_executors_one_sends_and_the_standby_takes_over_when_it_dies(bus, pg_url, tmp_path):  # noqa: F811
    """Two executors (two machines' copies of the data directory), one bus, one store: only the
    lease holder takes orders; killed, the standby fills what follows, and no order is answered
    twice. The old one, frozen instead of killed, is refused by the store before it could send."""
    from conftest import P

    from deskgate.approvals.client import CommandCenter
    from deskgate.execution.service import Executor
    from deskgate.execution.store import ExecutionStore

    mission = make_mission(paper={"starting_equity_usd": 10_000_000.0}, approvals={"expiry_seconds": 3600},
                           standby={"enabled": True}, storage={"url": pg_url})
    bus.data_dir.keep_storage(pg_url)  # as `deskgate up` records it
    md, _ = await bus.connect(Role.MARKETDATA)
    await publish_bar(md, "BTC", 65_000.0)
    await md.close()
    other = DataDir.at(tmp_path / "standby-machine")
    shutil.copytree(bus.data_dir.root, other.root)
    factory = Factory(mission, bus.data_dir)
    active, standby = Executor(mission, bus.data_dir), Executor(mission, other)
    ready = [asyncio.Event() for _ in range(3)]
    run_f = asyncio.create_task(factory.run(ready=ready[0]))
    run_a = asyncio.create_task(active.run(ready=ready[1]))
    await asyncio.wait_for(asyncio.gather(ready[0].wait(), ready[1].wait()), 20)
    await wait_for(lambda: active.lease is not None and active.lease.valid(), timeout=20)
    run_b = asyncio.create_task(standby.run(ready=ready[2]))
    await asyncio.wait_for(ready[2].wait(), 20)
    agent, _ = await bus.connect(Role.AGENT, reconnect=True)
    observer, _ = await bus.connect(Role.OBSERVER)
    cc = await CommandCenter.connect(bus.data_dir)
    js = agent.jetstream()

    async def send_and_approve(ids):
        for did in ids:
            p = raw(directive(did, notional_usd=100))
            await js.publish("consciousness.directives.BTC", p, headers=signed_headers(bus.data_dir, "agent:desk", Kind.DIRECTIVE, p))
        for did in ids:
            await wait_for(lambda: _staged(observer, did), timeout=30)
            await cc.decide(did, "approve", P["alice"])

    async def fills() -> Counter:
        return Counter([json.loads(m.data)["order_id"] async for m in read_stream(observer, "FILLS", "factory.execution.fills.>")])

    try:
        first = [f"xa-{i}" for i in range(3)]
        await send_and_approve(first)
        await wait_for(lambda: _count(fills, len(first)), timeout=30)
        assert not standby.lease.valid()  # it stood by: it never held the lease
        run_a.cancel()  # kill -9: no clean stop, so its lease is never released
        await asyncio.gather(run_a, return_exceptions=True)
        second = [f"xb-{i}" for i in range(3)]
        await send_and_approve(second)
        await wait_for(lambda: standby.lease.valid(), timeout=LEASE_SECONDS * 3)
        await wait_for(lambda: _count(fills, len(first + second)), timeout=60)
        await asyncio.sleep(1.0)  # anything doubled would show by now
        counted = await fills()
        assert len(counted) == len(first + second) and set(counted.values()) == {1}, "an order was answered twice"
        with pytest.raises(LeaseLost, match="another executor is active"):
            with active.store.begin():
                pass
        plain = ExecutionStore.open(bus.data_dir)
        assert plain.fence_epoch() == standby.lease.epoch
        loner = Executor(make_mission(storage={"url": pg_url}), bus.data_dir)  # without standby.enabled
        with pytest.raises(SystemExit, match="set standby.enabled on every executor"):
            await loner.run()
    finally:
        standby.stop()
        factory.stop()
        await asyncio.gather(run_b, run_f, return_exceptions=True)
        await cc.close()
        for nc in (agent, observer):
            await nc.close()


async def _staged(observer, directive_id: str) -> bool:
    return any([True async for _ in read_stream(observer, "APPROVALS", f"approvals.queue.directive.{directive_id}")])


async def _count(fills, n: int) -> bool:
    return len(await fills()) >= n


async def test_an_executor_whose_lease_may_lapse_signs_no_request_to_a_venue():
    """The fence stops store writes, not a venue request already on its way: so with standbys the
    lease is checked as each request is signed, and a lease not surely held sends nothing."""
    from fake_exchange import FakeExchange

    from deskgate.bus.lease import lease_clock
    from deskgate.config import VenueSettings
    from deskgate.execution.ccxt_venue import CcxtVenue
    from deskgate.execution.credentials import VenueCredentials
    from deskgate.execution.venue import OrderTicket

    fx = FakeExchange("binance")
    fx.add_market("BTC/USDT", price=65_000.0)
    fx.set_balance("USDT", 100_000.0)
    fx.start()
    venue = CcxtVenue("binance", VenueSettings(api_url=fx.url, timeout_seconds=2.0), VenueCredentials(fx.api_key, fx.secret))
    lease = Lease(None, "executor", "x")
    venue.guard = lambda: lease.check(1.0)
    ticket = OrderTicket(client_id="x-lease-1", symbol="BTC/USDT", side="buy", amount=0.01, price=65_000.0, notional_usd=650.0)
    try:
        with pytest.raises(LeaseLost, match="not surely ours"):  # never held: not even the markets are asked for
            await venue.place(ticket)
        assert fx.requests == []
        lease.revision, lease.renewed_at = 7, lease_clock()  # held, renewed just now
        await venue.place(ticket)
        assert [o["client_id"] for o in fx.placed] == ["x-lease-1"]
        lease.renewed_at = lease_clock() - (LEASE_SECONDS - 0.5)  # half a second left: too little to send
        asked = len(fx.requests)
        with pytest.raises(LeaseLost):
            await venue.place(ticket.model_copy(update={"client_id": "x-lease-2"}))
        assert len(fx.requests) == asked and [o["client_id"] for o in fx.placed] == ["x-lease-1"]
    finally:
        await venue.close()
        fx.stop()


async def test_a_tripped_breaker_stays_tripped_when_the_active_factory_dies_and_the_standby_takes_over(bus, pg_url, tmp_path):  # noqa: F811
    from test_breaker import crash_into_a_trip
    from test_factory import running, submit

    mission = make_mission(standby={"enabled": True}, storage={"url": pg_url})
    async with running(bus, mission, store_url=pg_url) as (active, agent, cc, md):
        await wait_for(lambda: active.lease is not None and active.lease.valid(), timeout=20)
        tripped = await crash_into_a_trip(agent, cc, md)
        other = DataDir.at(tmp_path / "standby-machine")
        shutil.copytree(bus.data_dir.root, other.root)
        standby = Factory(mission, other)
        ready = asyncio.Event()
        run_b = asyncio.create_task(standby.run(ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 20)
            # kill -9 the active factory: no clean stop, its lease is never released.
            active.test_task.cancel()
            await asyncio.gather(active.test_task, return_exceptions=True)
            await wait_for(lambda: standby.lease is not None and standby.lease.valid(), timeout=LEASE_SECONDS * 3)
            await wait_for(lambda: standby.beliefs.breaker_tripped, timeout=20)
            (v,) = await submit(agent, directive("after-failover", notional_usd=100), wait=20)
            assert v is not None and v.primary_reason == "breaker"
            now = await cc.breaker()
            assert now.state == "tripped" and now.trip.trip_id == tripped.trip.trip_id  # the same trip, not re-armed
        finally:
            standby.stop()
            await asyncio.gather(run_b, return_exceptions=True)
