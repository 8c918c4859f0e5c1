"""Standbys for the audit log, market data, the agents and the Command Center (standby.enabled):
two instances of each on one real bus (and, where the service keeps state, one PostgreSQL store),
each with its own copy of the data directory as if on another machine. Exactly one works; killed
(its task ends with no clean stop, so its lease is never released), it is replaced by the other
within the lease's time, and an instance that lost its lease can no longer write."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from conftest import publish_bar, send_signed_directives, wait_for
from test_factory import make_mission
from test_postgres import pg_url  # noqa: F401 - the fixture: a fresh schema on the machine's PostgreSQL

from deskgate.audit.log import AuditLog, Record
from deskgate.audit.service import AuditService
from deskgate.bus.lease import LEASE_SECONDS, LeaseLost
from deskgate.bus.reader import read_stream
from deskgate.bus.subjects import Role
from deskgate.domain.market import Bar
from deskgate.marketdata.service import MarketDataService
from deskgate.paths import DataDir
from deskgate.web.listen import web_url_file
from deskgate.web.service import WebService

pytestmark = pytest.mark.slow


def another_machine(bus, tmp_path, name: str = "standby-machine") -> DataDir:
    other = DataDir.at(tmp_path / name)
    shutil.copytree(bus.data_dir.root, other.root)
    return other


async def kill(task: asyncio.Task) -> None:
    """As kill -9 does to a process: the task ends where it is, nothing released."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def start(service, timeout: float = 20) -> asyncio.Task:
    ready = asyncio.Event()
    task = asyncio.create_task(service.run(ready=ready))
    await asyncio.wait_for(ready.wait(), timeout)
    return task


# -- the audit log ---------------------------------------------------------------------------------


async def test_two_audit_services_one_appends_and_the_standby_goes_on_with_the_chain(bus, pg_url, tmp_path):  # noqa: F811
    mission = make_mission(standby={"enabled": True}, storage={"url": pg_url})
    active, standby = AuditService(mission, bus.data_dir, poll_seconds=0.05), AuditService(mission, another_machine(bus, tmp_path), poll_seconds=0.05)
    run_a = await start(active)
    await wait_for(lambda: active.log.lease is not None, timeout=20)
    run_b = await start(standby)
    agent, _ = await bus.connect(Role.AGENT, reconnect=True)
    js = agent.jetstream()

    async def send(ids):
        await send_signed_directives(js, bus.data_dir, ids)

    reader = AuditLog(pg_url, standby.keys)

    def logged() -> Counter:
        return Counter(e.ref for e in reader.entries() if e.kind == "directive")

    try:
        first = [f"before-{i}" for i in range(40)]
        await send(first)
        await wait_for(lambda: set(first) <= set(logged()), timeout=30)
        assert standby.log.lease is None  # it stood by: it never appended
        await kill(run_a)
        second = [f"after-{i}" for i in range(40)]
        await send(second)
        await wait_for(lambda: standby.log.lease is not None, timeout=LEASE_SECONDS * 3)
        await wait_for(lambda: set(first + second) <= set(logged()), timeout=30)
        await asyncio.sleep(0.5)  # anything doubled would show by now
        counted = logged()
        assert set(counted) == set(first + second) and set(counted.values()) == {1}, "a message was logged twice"
        assert standby.log.lease.epoch > active.log.lease.epoch
        # One chain: every entry links to the one before, whichever instance appended it.
        report = AuditLog(pg_url, standby.keys).verify()
        assert report.ok, report.problems
        # The old instance, had it been frozen rather than killed, can no longer append: the chain cannot fork.
        size = reader.count()
        with pytest.raises(LeaseLost, match="later than ours"):
            active.log.append([Record("directive", "x", "forked", "DIRECTIVES:999999", None, None, "unsigned", "{}")], active.clock.now())
        assert reader.count() == size
    finally:
        standby.stop()
        await asyncio.gather(run_b, return_exceptions=True)
        reader.close()
        await agent.close()


async def test_an_audit_service_without_standby_keeps_off_a_log_a_standby_wrote(bus, pg_url):  # noqa: F811
    fenced = AuditLog.open(bus.data_dir, pg_url)
    lease = fenced.new_lease("a standby")
    assert lease._try_acquire() and not fenced.new_lease("another")._try_acquire()  # held: no second holder
    fenced.take_over(lease)
    fenced.close()
    plain = AuditService(make_mission(storage={"url": pg_url}), bus.data_dir)
    with pytest.raises(SystemExit, match=r"last written by a standby audit service \(lease epoch 1\)"):
        await plain.run()
    # And one running without standbys when a standby takes over is refused at its next append.
    plain_log = AuditLog.open(bus.data_dir, pg_url)
    with pytest.raises(LeaseLost, match="one without standby.enabled stops"):
        plain_log.append([], datetime.now(timezone.utc))
    plain_log.close()


# -- market data -----------------------------------------------------------------------------------


async def test_two_market_data_services_one_publishes_and_the_standby_takes_over(bus, pg_url, tmp_path):  # noqa: F811
    mission = make_mission(standby={"enabled": True}, storage={"url": pg_url},
                           marketdata={"assets": ["BTC"], "interval_seconds": 0.1, "start_prices": {"BTC": 65_000.0}})
    md, _ = await bus.connect(Role.MARKETDATA)
    await publish_bar(md, "BTC", 65_000.0)
    await md.close()
    active, standby = MarketDataService(mission, bus.data_dir), MarketDataService(mission, another_machine(bus, tmp_path))
    run_a = await start(active)
    await wait_for(lambda: active.published >= 5, timeout=20)
    run_b = await start(standby)
    observer, _ = await bus.connect(Role.OBSERVER)

    async def bars() -> list:
        return [m async for m in read_stream(observer, "MARKET", "market.data.bars.BTC")]

    try:
        await asyncio.sleep(1.0)
        assert standby.published == 0 and active.published >= 10  # one publisher at a time
        await kill(run_a)
        before = len(await bars())
        await wait_for(lambda: standby.published >= 5, timeout=LEASE_SECONDS * 3)
        await wait_for(lambda: _more(bars(), before), timeout=10)
        stored = [Bar.model_validate_json(m.data) for m in await bars()]
        # The series goes on from the last bar on the bus, not from the mission's start price again:
        # every bar opens at the one before's close, across the takeover too.
        assert all(b.open == a.close for a, b in zip(stored, stored[1:]))
        # Every bar was published by one instance at a time: their times never go back.
        assert [b.ts for b in stored] == sorted(b.ts for b in stored)
        # An instance whose lease may have lapsed (frozen past it) publishes no bar. Its keeper is
        # stopped first, so no renewal can come between.
        standby.active.keeper.cancel()
        await asyncio.gather(standby.active.keeper, return_exceptions=True)
        standby.active.lease.renewed_at -= LEASE_SECONDS
        with pytest.raises(LeaseLost):
            await standby._publish(observer, Bar.model_validate_json((await bars())[-1].data))
    finally:
        standby.stop()
        await asyncio.gather(run_b, return_exceptions=True)
        await observer.close()


# -- the Command Center ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_two_command_centers_one_serves_and_the_standby_takes_over(bus, pg_url, tmp_path):  # noqa: F811
    port_a, port_b = free_port(), free_port()
    a_mission = make_mission(standby={"enabled": True}, storage={"url": pg_url}, web={"port": port_a})
    b_mission = make_mission(standby={"enabled": True}, storage={"url": pg_url}, web={"port": port_b})
    other = another_machine(bus, tmp_path)
    active, standby = WebService(a_mission, bus.data_dir), WebService(b_mission, other)
    run_a = await start(active)
    await wait_for(lambda: web_url_file(bus.data_dir).exists(), timeout=30)
    run_b = await start(standby)

    async def answers(port: int) -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/login", timeout=2)).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert await answers(port_a)
        await asyncio.sleep(1.0)
        assert not await answers(port_b) and not web_url_file(other).exists()  # standing by: not even bound
        await kill(run_a)
        await wait_for(lambda: answers(port_b), timeout=LEASE_SECONDS * 3)
        await wait_for(lambda: web_url_file(other).exists(), timeout=10)  # written once it serves
    finally:
        standby.stop()
        await asyncio.gather(run_b, return_exceptions=True)



# -- the agents ------------------------------------------------------------------------------------


async def test_two_agents_services_one_runs_the_cycles_and_the_standby_goes_on_from_its_saved_state(bus, pg_url, tmp_path):  # noqa: F811
    """The standby's own copy of the data directory is as old as the copy: it takes over from the
    state the last holder saved in the shared store, so no cycle is run twice."""
    from test_replay import REPLAY_START, SteppedClock, desk_mission, publish_market

    from test_factory import running

    from deskgate.agents.desk import AgentState
    from deskgate.agents.service import AgentsService

    mission = desk_mission(standby={"enabled": True}, storage={"url": pg_url})
    bus.data_dir.keep_storage(pg_url)
    t0 = REPLAY_START.replace(hour=4)
    other = another_machine(bus, tmp_path)  # copied before any cycle ran
    async with running(bus, mission, store_url=pg_url) as (factory, agent, cc, md):
        await publish_market(md, t0)
        clock = SteppedClock(t0 + timedelta(minutes=59))
        active = AgentsService(mission, bus.data_dir, clock=clock, poll_seconds=0.05)
        standby = AgentsService(mission, other, clock=clock, poll_seconds=0.05)
        run_a = await start(active)
        await wait_for(lambda: active.active is not None and active.desk is not None, timeout=30)
        run_b = await start(standby)

        async def published(kind: str) -> int:
            return len([m async for m in read_stream(cc.nc, "INSIGHTS", f"consciousness.insights.{kind}")])

        try:
            clock.t = t0 + timedelta(hours=1, minutes=31)  # 05:31: the brief and the 05:30 intraday are due
            await wait_for(lambda: _at_least(published("morning_brief"), 1), timeout=60)
            # Both 05:30 cycles done (the brief runs first, then the intraday due at the same time).
            await wait_for(lambda: (run := active.desk.state.last_runs.get("intraday")) is not None
                           and run.at == t0 + timedelta(hours=1, minutes=30), timeout=60)
            assert standby.active is None or not standby.active.lease.valid()
            briefs, intraday = await published("morning_brief"), await published("intraday")
            await kill(run_a)
            clock.t = t0 + timedelta(hours=2, minutes=1)  # 06:01: only the 06:00 intraday is new
            await wait_for(lambda: standby.desk is not None, timeout=LEASE_SECONDS * 3)
            await wait_for(lambda: standby.desk.state.last_cycle_at == t0 + timedelta(hours=2), timeout=60)
            assert await published("morning_brief") == briefs == 1, "the standby ran the morning brief again"
            assert await published("intraday") == intraday + 1
            # The state is the shared store's: the standby's own file (copied before any cycle) was not read.
            assert standby.desk.state.counts["morning_brief"] == 1
            # The old instance, had it been frozen rather than killed, can no longer save its state.
            with pytest.raises(LeaseLost, match="later than ours"):
                active.desk._save_state()
            assert AgentState.load(bus.data_dir).last_cycle_at == t0 + timedelta(hours=2)
            # The lease is in the shared store, not the bus: the agent role writes no `$KV.` key.
            assert active.desk.lease.epoch < standby.desk.lease.epoch
            plain = AgentsService(desk_mission(storage={"url": pg_url}), other, clock=clock)
            with pytest.raises(SystemExit, match="last saved by a standby agents service"):
                await plain.run()
        finally:
            standby.stop()
            await asyncio.gather(run_b, return_exceptions=True)


async def _at_least(count, n: int) -> bool:
    return (await count) >= n


async def _more(items, n: int) -> bool:
    return len(await items) > n


# -- losing the lease ------------------------------------------------------------------------------


async def test_a_lost_lease_stops_the_work_at_once(bus):
    """The keeper meets a lease someone else took (here: the key deleted and taken by another
    holder): the work it guards is cancelled, and LeaseLost comes out of `Active.run`."""
    from deskgate.bus.lease import Lease
    from deskgate.standby import stand_by

    nc, _ = await bus.connect(Role.MARKETDATA)
    other, _ = await bus.connect(Role.MARKETDATA)
    try:
        lease = Lease(nc, "marketdata", "instance-a", seconds=1.5)
        active = await stand_by(lease, asyncio.Event())
        stopped = asyncio.Event()

        async def work():
            try:
                await asyncio.Event().wait()  # works until stopped from outside
            finally:
                stopped.set()

        thief = Lease(other, "marketdata", "instance-b", seconds=1.5)
        await other.jetstream().publish("$KV.deskgate_leases.marketdata", b"", headers={"KV-Operation": "DEL"})
        assert await thief.try_acquire()
        with pytest.raises(LeaseLost, match="no longer ours"):
            await asyncio.wait_for(active.run(work()), 10)
        assert stopped.is_set()
        with pytest.raises(LeaseLost):
            active.check(0.0)
        await active.end()  # a lost lease is not written again: the thief's stays
        assert thief.valid() and (await thief.renew()) is None
    finally:
        await nc.close()
        await other.close()
