"""kill -9 the factory mid-stream, and kill -9 nats-server: nothing lost, nothing staged twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from conftest import P, directive, principal_keys, publish_bar, raw, signed_headers, wait_for
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


def crash_mission() -> Mission:
    return Mission.model_validate(
        {
            "paper": {"starting_equity_usd": 10_000_000.0, "slippage_bps": 0.0, "fee_bps": 0.0},
            "marketdata": {"source": "none", "assets": ["BTC", "ETH"]},
            "approvals": {"expiry_seconds": 3600},
        }
    )


def counts(data_dir: DataDir) -> tuple[int, int]:
    store = FactoryStore(data_dir.sqlite_url("factory"))
    with store.connect() as conn:
        n_eval = conn.execute(select(func.count()).select_from(evaluations)).scalar_one()
        n_int = conn.execute(select(func.count()).select_from(intentions)).scalar_one()
    store.close()
    return n_eval, n_int


async def test_kill_the_factory_mid_stream_every_directive_evaluated_once(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(crash_mission(), data_dir, services=("factory",), restart=False).start()
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
                await js.publish("consciousness.directives.BTC", p, headers=signed_headers(data_dir, "agent", Kind.DIRECTIVE, p))

        publisher = asyncio.create_task(publish_all())
        await wait_for(lambda: len(verdicts) >= 600, timeout=60, interval=0.002)
        assert len(verdicts) < total, "the factory finished before it could be killed; raise `total`"
        stack.kill_service("factory")
        killed_at = len(verdicts)
        await publisher
        stack._spawn("factory")
        stack.wait_ready(30)
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
        v = await agent.submit([raw(directive("eth", asset="ETH", notional_usd=25_000)), raw(directive("keep", notional_usd=5_000))])
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
        (after,) = await agent.submit([raw(directive("after-restart", notional_usd=100))], wait=20)
        await agent.close()
        assert after is not None and after.primary_reason == "breaker"
    finally:
        stack.stop()


async def _tripped(cc):
    return (await cc.breaker()).state == "tripped"
