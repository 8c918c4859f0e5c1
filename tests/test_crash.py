"""kill -9 the factory mid-stream, and kill -9 nats-server: nothing lost, nothing staged twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from conftest import P, directive, principal_keys, publish_bar, raw, signed_headers, wait_for
from test_postgres import pg_url  # noqa: F401 - the fixture: a fresh schema on the machine's PostgreSQL
from sqlalchemy import func, select

from deskgate.approvals.client import CommandCenter
from deskgate.audit.signing import Kind
from deskgate.bus.connect import connect_as
from deskgate.bus.reader import read_stream
from deskgate.bus.subjects import Role
from deskgate.config import Mission
from deskgate.factory.store import FactoryStore, evaluations, intentions
from deskgate.paths import DataDir
from deskgate.stack import Stack

pytestmark = pytest.mark.slow


def crash_mission(**over) -> Mission:
    return Mission.model_validate(
        {
            "paper": {"starting_equity_usd": 10_000_000.0, "slippage_bps": 0.0, "fee_bps": 0.0},
            "marketdata": {"source": "none", "assets": ["BTC", "ETH"]},
            "approvals": {"expiry_seconds": 3600},
            **over,
        }
    )


def counts(data_dir: DataDir) -> tuple[int, int]:
    store = FactoryStore(data_dir.store_url("factory"))
    with store.connect() as conn:
        n_eval = conn.execute(select(func.count()).select_from(evaluations)).scalar_one()
        n_int = conn.execute(select(func.count()).select_from(intentions)).scalar_one()
    store.close()
    return n_eval, n_int


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_kill_the_factory_mid_stream_every_directive_evaluated_once(tmp_path, backend, pg_url):  # noqa: F811
    data_dir = DataDir.at(tmp_path / "desk")
    mission = crash_mission(storage={"url": pg_url}) if backend == "postgresql" else crash_mission()
    stack = Stack(mission, data_dir, services=("factory",), restart=False).start()
    try:
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await md.close()
        await asyncio.sleep(0.3)

        total = 3000
        payloads, expected_staged = [], set()
        for i in range(total):
            if i % 11 == 10:
                payloads.append(raw(directive(f"c{i - 5}", notional_usd=100)))  # a resubmitted id
            elif i % 7 == 6:
                payloads.append(raw(directive(f"c{i}", confidence=0.1)))  # rejected by policy
            else:
                payloads.append(raw(directive(f"c{i}", notional_usd=100)))
                expected_staged.add(f"c{i}")

        agent, _ = await connect_as(data_dir, Role.AGENT, reconnect=True)
        verdicts: Counter = Counter()

        async def on_verdict(msg):
            verdicts[json.loads(msg.data)["seq"]] += 1

        await agent.subscribe("factory.status.policy.>", cb=on_verdict)
        js = agent.jetstream()

        async def publish_all():
            for p in payloads:
                await js.publish("consciousness.directives.BTC", p, headers=signed_headers(data_dir, "agent:desk", Kind.DIRECTIVE, p))

        publisher = asyncio.create_task(publish_all())
        await wait_for(lambda: len(verdicts) >= 600, timeout=60, interval=0.002)
        assert len(verdicts) < total, "the factory finished before it could be killed; raise `total`"
        stack.kill_service("factory")
        killed_at = len(verdicts)
        await publisher
        stack._spawn("factory")
        # Ready once the backlog left by the kill is caught up: on PostgreSQL, on a loaded
        # 2-vCPU machine, that can take longer than the half-minute SQLite needs.
        stack.wait_ready(120)
        await wait_for(lambda: counts(data_dir)[0] >= total, timeout=120, interval=0.2)
        await asyncio.sleep(1.0)  # let anything extra show up, if it would

        n_eval, n_int = counts(data_dir)
        assert n_eval == total  # every stream message evaluated exactly once
        assert n_int == len(expected_staged)
        staged_subjects = Counter()
        observer = await _observer(data_dir)
        async for m in read_stream(observer, "APPROVALS", "approvals.queue.directive.>"):
            staged_subjects[m.subject] += 1
        assert set(staged_subjects.values()) == {1}, "a directive was staged twice"
        assert {s.rsplit(".", 1)[1] for s in staged_subjects} == expected_staged
        await wait_for(lambda: len(verdicts) == total, timeout=30)
        assert 0 < killed_at < total
        await observer.close()
        await agent.close()
    finally:
        stack.stop()


async def _observer(data_dir):
    nc, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False)
    return nc


async def test_kill_nats_server_pending_approvals_and_tripped_breaker_survive(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    mission = Mission.model_validate(
        {
            "paper": {"starting_equity_usd": 100_000.0, "slippage_bps": 0.0, "fee_bps": 0.0},
            "marketdata": {"source": "none", "assets": ["BTC", "ETH"]},
        }
    )
    principal_keys(data_dir)  # before the services open accounts.db
    stack = Stack(mission, data_dir, services=("factory", "executor"), restart=True).start()
    try:
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await publish_bar(md, "ETH", 3_500.0)
        await asyncio.sleep(0.3)
        from deskgate.agents.submit import AgentClient

        agent = await AgentClient.connect(data_dir)
        cc = await CommandCenter.connect(data_dir)
        v = await agent.submit_payloads([raw(directive("eth", asset="ETH", notional_usd=25_000)), raw(directive("keep", notional_usd=5_000))])
        assert [x.decision for x in v] == ["staged", "staged"]
        assert [o.outcome for o in await cc.decide("eth", "approve", P["alice"])] == ["ordered", "executed"]
        await publish_bar(md, "ETH", 3_500 * 0.2)
        await wait_for(lambda: _tripped(cc))
        for c in (agent, cc):
            await c.close()
        await md.close()

        stack.nats.kill()  # kill -9
        assert stack.supervise_once() == ["nats-server"]

        cc = await CommandCenter.connect(data_dir)
        assert (await cc.breaker()).state == "tripped"
        pending = [i.directive_id for i in await cc.pending()]
        assert pending == ["keep"]
        await cc.close()
        # The services reconnected by themselves and the factory still refuses.
        agent = await AgentClient.connect(data_dir)
        (after,) = await agent.submit_payloads([raw(directive("after-restart", notional_usd=100))], wait=20)
        await agent.close()
        assert after is not None and after.primary_reason == "breaker"
    finally:
        stack.stop()


async def _tripped(cc):
    return (await cc.breaker()).state == "tripped"


# -- the bus keeps its port ------------------------------------------------------------


def _time_wait_on(port: int) -> int:
    """Connections in TIME-WAIT on this local port (Linux /proc/net/tcp; state 06)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            n += int(local.rsplit(":", 1)[1], 16) == port and state == "06"
    return n


def _plain_bind_fails(port: int) -> bool:
    """What the old probe did: bind without SO_REUSEADDR."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def test_after_nats_server_is_killed_and_restarted_the_next_up_keeps_its_port(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(crash_mission(), data_dir, services=()).start()
    port = int(stack.url.rsplit(":", 1)[1])
    clients = [(await connect_as(data_dir, Role.OBSERVER, reconnect=True))[0] for _ in range(3)]
    try:
        stack.nats.kill()  # kill -9 with clients connected
        assert stack.supervise_once() == ["nats-server"] and stack.url.endswith(f":{port}")
        await wait_for(lambda: all(c.is_connected for c in clients), timeout=20)
    finally:
        stack.stop()  # the server closes the clients' connections: they stay in TIME-WAIT on its port
    await wait_for(lambda: _time_wait_on(port) > 0, timeout=10)
    assert _plain_bind_fails(port), "no TIME-WAIT left on the port; the test would prove nothing"

    again = Stack(crash_mission(), data_dir, services=()).start()  # the next `deskgate up`
    try:
        assert again.url == f"nats://127.0.0.1:{port}" and again.notices == []
        assert json.loads(data_dir.endpoint.read_text())["servers"] == [again.url]
        # Clients that kept the old address reconnect by themselves.
        await wait_for(lambda: all(c.is_connected for c in clients), timeout=20)
    finally:
        for c in clients:
            await c.close()
        again.stop()


async def test_a_port_taken_by_another_listener_moves_the_bus_and_says_so(tmp_path):
    import socket

    data_dir = DataDir.at(tmp_path / "desk")
    first = Stack(crash_mission(), data_dir, services=()).start()
    port = int(first.url.rsplit(":", 1)[1])
    first.stop()
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        moved = Stack(crash_mission(), data_dir, services=()).start()
        try:
            assert moved.url != first.url
            (notice,) = moved.notices
            assert f"127.0.0.1:{port}" in notice and "deskgate creds" in notice
            assert json.loads(data_dir.endpoint.read_text())["servers"] == [moved.url]
        finally:
            moved.stop()
    finally:
        squatter.close()


# -- the Command Center stops quietly after a bus restart ---------------------------------


def _log_problems(data_dir: DataDir, name: str) -> list[str]:
    """ERROR (or worse) records and tracebacks a service wrote, in its JSON log and its stdout."""
    found = []
    for line in data_dir.log_file(name).read_text().splitlines():
        record = json.loads(line)
        if record["level"] in ("error", "critical") or "exc" in record or "Traceback" in record["msg"]:
            found.append(line[:300])
    out = (data_dir.logs / f"{name}.out").read_text()
    if "Traceback" in out:
        found.append(out[-300:])
    return found


async def test_the_command_center_stops_quietly_after_a_bus_restart(tmp_path):
    import httpx

    from deskgate.people.accounts import Accounts

    data_dir = DataDir.at(tmp_path / "desk").ensure()
    Accounts.open(data_dir).add("alice", "principal", "a long enough password")
    mission = crash_mission().model_copy(update={"web": crash_mission().web.model_copy(update={"port": 0})})
    stack = Stack(mission, data_dir, services=("web",)).start()
    stream: list[bytes] = []
    ended: list[str] = []
    try:
        client = httpx.AsyncClient(base_url=stack.web_url, timeout=30)
        assert (await client.post("/api/login", json={"name": "alice", "password": "a long enough password"})).status_code == 200

        async def follow() -> None:  # a browser on the approvals page holds this stream open
            try:
                async with client.stream("GET", "/events") as resp:
                    async for chunk in resp.aiter_bytes():
                        stream.append(chunk)
                ended.append("complete")
            except httpx.HTTPError as exc:
                ended.append(repr(exc))

        follower = asyncio.create_task(follow())
        await wait_for(lambda: stream)
        stack.nats.kill()  # the bus crashes under the running Command Center...
        assert stack.supervise_once() == ["nats-server"]  # ...and the supervisor restarts it
        await wait_for(lambda: (data_dir.root / "run" / "web.url").exists())
        await asyncio.sleep(1.0)  # the web's connection has noticed the bus went away
    finally:
        stack.stop()
    await asyncio.wait_for(follower, 10)
    await client.aclose()
    assert _log_problems(data_dir, "web") == []
    assert ended == ["complete"]  # the stream was ended by the server, not cut off
    assert stack.children["web"].process.returncode == 0


async def test_closing_a_command_center_whose_bus_went_away_is_quiet(bus):
    from deskgate.audit.keys import KeyStore

    closed_cc = await CommandCenter.connect(bus.data_dir)  # does not reconnect
    nc, events = await connect_as(bus.data_dir, Role.COMMAND_CENTER, reconnect=True)
    reconnecting_cc = CommandCenter(nc, events, KeyStore(bus.data_dir.keys))
    bus.server.kill()
    await wait_for(lambda: closed_cc.nc.is_closed and reconnecting_cc.nc.is_reconnecting)
    await closed_cc.close()
    await reconnecting_cc.close()  # stops reconnecting, closes
    assert reconnecting_cc.nc.is_closed
    bus.restart()
    async with await CommandCenter.connect(bus.data_dir) as live:  # an open one still drains
        await live.pending()
    assert live.nc.is_closed
