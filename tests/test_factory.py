"""The factory and the paper executor on a real bus: staging, approvals, orders, fills, the book."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager

import pytest
from conftest import P, directive, provision_bus, publish_bar, raw, signed_headers, start_bus, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskgate.agents.submit import AgentClient
from deskgate.approvals.client import CommandCenter, CommandCenterError
from deskgate.audit.signing import Kind, digest
from deskgate.bus.breaker import write_key
from deskgate.bus.reader import read_stream
from deskgate.bus.subjects import Role
from deskgate.config import Mission
from deskgate.domain.approval import ApprovalOutcome, ApprovalResponse, StagedDirective
from deskgate.domain.base import utcnow
from deskgate.domain.breaker import BreakerTrip
from deskgate.execution.service import Executor
from deskgate.factory.service import Factory


def make_mission(**over) -> Mission:
    base = {
        "paper": {"starting_equity_usd": 100_000.0, "slippage_bps": 0.0, "fee_bps": 0.0},
        "marketdata": {"assets": ["BTC", "ETH", "SOL"]},
    }
    for k, v in over.items():
        base.setdefault(k, {}).update(v) if isinstance(v, dict) else base.__setitem__(k, v)
    return Mission.model_validate(base)


@asynccontextmanager
async def running(bus, mission: Mission, *, executor: bool = True, prices=None, store_url: str | None = None, clock=None):
    """The real factory and executor, in this process, on the real bus (the factory on `clock`, if given)."""
    md, _ = await bus.connect(Role.MARKETDATA)
    for asset, price in (prices if prices is not None else {"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0}).items():
        await publish_bar(md, asset, price)
    factory = Factory(mission, bus.data_dir, store_url=store_url, clock=clock)
    ready = asyncio.Event()
    tasks = [asyncio.create_task(factory.run(ready=ready))]
    factory.test_task = tasks[0]  # for a test that kills it (a standby's takeover)
    ex = None
    if executor:
        ex = Executor(mission, bus.data_dir)
        xready = asyncio.Event()
        tasks.append(asyncio.create_task(ex.run(ready=xready)))
        await asyncio.wait_for(xready.wait(), 10)
    await asyncio.wait_for(ready.wait(), 10)
    agent = await AgentClient.connect(bus.data_dir)
    cc = await CommandCenter.connect(bus.data_dir)
    try:
        yield factory, agent, cc, md
    finally:
        factory.stop()
        if ex:
            ex.stop()
        # Bounded: a service that does not stop is named, not left to pytest-timeout (a run of
        # the full suite once hung here, for reasons not yet found, in test_venues' lost answer).
        done, hung = await asyncio.wait(tasks, timeout=60)
        for t in hung:
            t.cancel()
        if hung:
            names = ["the factory" if t is tasks[0] else "the executor" for t in hung]
            raise AssertionError(f"{' and '.join(names)} did not stop within 60 s of being told to")
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception():
                raise t.exception()
        await agent.close()
        await cc.close()
        await md.close()


async def submit(agent, *ds, wait: float = 10.0):
    return await agent.submit_payloads([raw(d) if isinstance(d, dict) else d for d in ds], wait=wait)


async def staged_messages(nc) -> list[StagedDirective]:
    return [StagedDirective.model_validate_json(m.data) async for m in read_stream(nc, "APPROVALS", "approvals.queue.directive.>")]


async def test_staged_approved_ordered_filled_and_booked(bus):
    async with running(bus, make_mission()) as (factory, agent, cc, _):
        (v,) = await submit(agent, directive("a1", notional_usd=20_000))
        assert v.decision == "staged"
        item = await cc.item("a1")
        assert item.pending and item.staged.price_at_staging == 65_000.0
        assert item.staged.context.post_trade_position_pct == pytest.approx(20.0)
        outcomes = await cc.decide("a1", "approve", P["alice"])
        assert [o.outcome for o in outcomes] == ["ordered", "executed"]
        assert outcomes[0].principals == ["alice"]
        fill = outcomes[1].fill
        assert fill.price == 65_000.0 and fill.quantity == pytest.approx(20_000 / 65_000)
        snap = await wait_for(lambda: _portfolio_with_positions(cc))
        assert snap.positions[0].asset == "BTC" and snap.cash_usd == pytest.approx(80_000.0)
        assert factory.beliefs.pending == {}
        assert factory.beliefs.position("BTC") == pytest.approx(20_000.0)
        funnel = factory.funnel()
        assert (funnel.received, funnel.staged, funnel.approved, funnel.executed) == (1, 1, 1, 1)


async def _portfolio_with_positions(cc):
    snap = await cc.portfolio()
    return snap if snap and snap.positions else None


async def test_the_same_id_never_stages_twice(bus):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        verdicts = await submit(agent, *[directive("dup", notional_usd=1_000)] * 5)
        assert [v.decision for v in verdicts] == ["staged", "duplicate", "duplicate", "duplicate", "duplicate"]
        staged = await staged_messages(cc.nc)
        assert [s.directive.directive_id for s in staged] == ["dup"]
        assert factory.funnel().duplicates == 4


async def test_reservations_block_then_release_on_human_rejection(bus):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        v1, v2 = await submit(agent, directive("r1", notional_usd=20_000), directive("r2", notional_usd=10_000))
        assert v1.decision == "staged" and v2.decision == "rejected" and v2.primary_reason == "position"
        out = await cc.decide("r1", "reject", P["bob"], "thesis stale")
        assert [o.outcome for o in out] == ["rejected"] and out[0].reason == "thesis stale"
        (v3,) = await submit(agent, directive("r3", notional_usd=10_000))
        assert v3.decision == "staged"
        f = factory.funnel()
        assert f.human_rejected == 1 and f.human_rejections_by_reason == {"thesis stale": 1}


async def test_explicit_needs_single_approval_and_four_eyes_two_principals(bus):
    mission = make_mission(
        guardrails={"require_human_approval_above_usd": 5_000.0}, approvals={"four_eyes_above_usd": 15_000.0}
    )
    async with running(bus, mission) as (factory, agent, cc, _):
        v1, v2 = await submit(agent, directive("e1", notional_usd=10_000), directive("e2", asset="ETH", notional_usd=20_000))
        assert v1.evaluation.explicit_approval and v2.evaluation.explicit_approval
        refused = await cc.decide("e1", "approve", P["alice"], batch_id="batch-1")
        assert refused[0].outcome == "refused" and "one by one" in refused[0].reason
        assert [o.outcome for o in await cc.decide("e1", "approve", P["alice"])] == ["ordered", "executed"]
        first = await cc.decide("e2", "approve", P["alice"])
        assert [o.outcome for o in first] == ["awaiting_second_approval"]
        again = await cc.decide("e2", "approve", P["alice"])
        assert again[0].outcome == "refused" and "another principal" in again[0].reason
        second = await cc.decide("e2", "approve", P["carol"])
        assert [o.outcome for o in second] == ["ordered", "executed"]
        assert second[0].principals == ["alice", "carol"]


async def test_expired_items_are_expired_and_cannot_be_approved(bus):
    async with running(bus, make_mission(approvals={"expiry_seconds": 0.5}), executor=False) as (factory, agent, cc, _):
        (v,) = await submit(agent, directive("x1"))
        assert v.decision == "staged"
        item = await wait_for(lambda: _state(cc, "x1", "expired"))
        assert item.outcomes[-1].reason == "no decision before expiry"
        late = await cc.decide("x1", "approve", P["alice"])
        assert late[0].outcome == "refused" and "already expired" in late[0].reason
        assert factory.beliefs.pending == {}


async def _state(cc, did, state):
    item = await cc.item(did)
    return item if item.state == state else None


async def test_price_moved_beyond_the_band_invalidates_the_approval(bus):
    async with running(bus, make_mission()) as (factory, agent, cc, md):
        (v,) = await submit(agent, directive("p1", notional_usd=10_000))
        assert v.decision == "staged"
        await publish_bar(md, "BTC", 65_000 * 1.03)
        await wait_for(lambda: factory.beliefs.prices["BTC"] > 66_000)
        out = await cc.decide("p1", "approve", P["alice"])
        assert [o.outcome for o in out] == ["invalidated"]
        assert out[0].reason.startswith("price_band:")
        assert factory.beliefs.pending == {}
        assert factory.funnel().invalidations_by_reason == {"price_band": 1}


async def test_approval_is_rechecked_against_current_beliefs(bus):
    # ETH long, then a crash trips the breaker: a BTC directive staged before must not execute.
    async with running(bus, make_mission()) as (factory, agent, cc, md):
        await submit(agent, directive("eth", asset="ETH", notional_usd=25_000))
        await cc.decide("eth", "approve", P["alice"])
        (v,) = await submit(agent, directive("btc", notional_usd=10_000))
        assert v.decision == "staged"
        await publish_bar(md, "ETH", 3_500 * 0.3)  # -70% on 25% of equity: 17.5% drawdown
        await wait_for(lambda: factory.beliefs.breaker_tripped)
        await wait_for(lambda: _tripped_on_bus(cc))
        # The command center refuses to approve while tripped, and says why...
        with pytest.raises(CommandCenterError, match="circuit breaker is tripped"):
            await cc.decide("btc", "approve", P["alice"])
        # ...and an approval sent anyway is refused by the factory without consuming the item.
        staged = (await cc.item("btc")).staged
        resp = ApprovalResponse(approval_id=f"ap-{uuid.uuid4().hex}", directive_id="btc", decision="approve", principal="alice",
                                decided_at=utcnow(), directive_digest=digest(staged.signed_directive.data))
        out = await cc.send(resp, P["alice"], wait=5.0)
        assert [o.outcome for o in out] == ["refused"] and "circuit breaker is tripped" in out[0].reason
        assert (await cc.item("btc")).state == "staged" and "btc" in factory.beliefs.pending
        (v2,) = await submit(agent, directive("after", notional_usd=1_000))
        assert v2.decision == "rejected" and v2.primary_reason == "breaker"
        # Once a principal resets the breaker, the same directive can be approved (re-checked as ever).
        await cc.reset_breaker(P["bob"], "crash reviewed")
        await wait_for(lambda: not factory.beliefs.breaker_tripped)
        out = await cc.decide("btc", "approve", P["alice"])
        assert [o.outcome for o in out] == ["ordered", "executed"]


async def _tripped_on_bus(cc) -> bool:
    return (await cc.breaker()).state == "tripped"


def _collect(into: list):
    async def cb(msg):
        into.append(msg)

    return cb


async def test_decisions_cannot_be_replayed_or_moved_to_another_directive(bus):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        await submit(agent, directive("m1", notional_usd=1_000), directive("m2", notional_usd=1_000))
        resp = ApprovalResponse(
            approval_id="ap-fixed", directive_id="m1", decision="reject", principal="alice", decided_at=utcnow(), reason="no"
        )
        assert (await cc.send(resp, P["alice"]))[0].outcome == "rejected"
        # The same approval again: JetStream drops it as a duplicate message id...
        assert await cc.send(resp.model_copy(update={"directive_id": "m2"}), P["alice"], wait=1.0) == []
        # ...and without the message id the factory refuses the used approval id.
        replayed = resp.model_copy(update={"directive_id": "m2"})
        got = []
        sub = await cc.nc.subscribe("factory.status.approval.m2", cb=_collect(got))
        await cc.js.publish("approvals.response.m2", replayed.to_bytes())
        await wait_for(lambda: got)
        await sub.unsubscribe()
        outcome = json.loads(got[0].data)
        assert outcome["outcome"] == "refused" and "already used" in outcome["reason"]
        # A decision for m1 published on m2's subject.
        moved = ApprovalResponse(
            approval_id="ap-moved", directive_id="m1", decision="approve", principal="alice", decided_at=utcnow()
        )
        got = []
        sub = await cc.nc.subscribe("factory.status.approval.m1", cb=_collect(got))
        await cc.js.publish("approvals.response.m2", moved.to_bytes())
        await wait_for(lambda: got)
        await sub.unsubscribe()
        assert json.loads(got[0].data)["outcome"] == "refused"
        assert (await cc.item("m2")).pending


async def test_malformed_messages_get_reasons_and_the_factory_keeps_running(bus):
    mission = make_mission(max_directive_bytes=2048)
    async with running(bus, mission) as (factory, agent, cc, md):
        bad = [
            b"{not json",
            b"",
            raw(directive("n1", notional_usd=-1)),
            json.dumps(directive("n2")).replace("10000.0", "NaN").encode(),
            raw(directive("n3", confidence="high")),
            raw(directive("n4", secret_override=True)),
            raw(directive("n5", asset="LUΝA")),
            b'{"directive_id": "big", "pad": "' + b"x" * 4000 + b'"}',
        ]
        verdicts = await submit(agent, *bad)
        assert all(v is not None and v.decision == "rejected" for v in verdicts), verdicts
        for v in verdicts:
            failed = [c for c in v.evaluation.checks if not c.passed]
            assert failed and failed[0].reason
        assert verdicts[-1].evaluation.checks[0].reason.startswith("message is")
        # Bad approval responses and bad fills are refused and kept, not fatal.
        await cc.js.publish("approvals.response.zzz", b"garbage")
        ex, _ = await bus.connect(Role.EXECUTOR)
        await ex.jetstream().publish("factory.execution.fills.binance", b'{"fill_id": 1}')
        await ex.jetstream().publish(
            "factory.execution.fills.binance",
            json.dumps({"fill_id": "f", "order_id": "nope", "directive_id": "nope", "venue": "binance", "asset": "BTC",
                        "side": "buy", "status": "filled", "quantity": 1, "price": 1, "notional_usd": 1,
                        "filled_at": utcnow().isoformat()}).encode(),
        )
        await md.publish("market.data.bars.BTC", b"not a bar")
        await md.flush()
        await ex.close()
        (ok,) = await submit(agent, directive("fine", notional_usd=1_000))
        assert ok.decision == "staged"
        assert factory.stats["bad_bars"] >= 1
        from sqlalchemy import func, select

        from deskgate.factory.store import refused_messages

        with factory.store.connect() as conn:
            kept = conn.execute(select(func.count()).select_from(refused_messages)).scalar_one()
        assert kept == 3
        assert factory.funnel().policy_rejections_by_reason == {"schema": 7, "asset": 1}


async def test_a_directive_or_a_decision_that_repeats_a_key_is_refused_by_the_factory(bus):
    """Signed bytes must mean one thing to every reader; pydantic alone would keep the last key."""
    from deskgate.audit.keys import principal_signer
    from deskgate.audit.signing import digest

    def twice(did: str, once: str, repeated: str) -> bytes:
        text = json.dumps(directive(did, notional_usd=1_000))
        assert once in text
        return text.replace(once, repeated, 1).encode()

    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        cases = {
            "asset": twice("k1", '"asset": "BTC"', '"asset": "BTC", "asset": "LUNA"'),
            "directive_id": twice("k2", '"directive_id": "k2"', '"directive_id": "k2", "directive_id": "k3"'),
            "memo.position_context": twice("k4", '"flat"', '"flat", "position_context": "long 90% of equity"'),
            "side": twice("k5", '"side": "buy"', '"\\u0073ide": "sell", "side": "buy"'),
        }
        verdicts = await submit(agent, *cases.values())
        for where, v in zip(cases, verdicts):
            assert v is not None and v.decision == "rejected" and v.primary_reason == "schema", (where, v)
            assert v.evaluation.checks[0].reason.startswith(f"{where}: the key appears more than once"), v.evaluation.checks[0].reason
        assert [v.directive_id for v in verdicts] == ["k1", None, "k4", "k5"]  # two ids: neither is claimed
        assert await staged_messages(cc.nc) == []
        # A principal's decision that is a rejection to one reader and an approval to another.
        d = directive("k6", notional_usd=1_000)
        (v,) = await submit(agent, d)
        assert v.decision == "staged"
        resp = ApprovalResponse(
            approval_id="ap-two", directive_id="k6", decision="reject", reason="no", principal="alice", decided_at=utcnow(),
            directive_digest=digest(raw(d)),
        )
        payload = resp.to_bytes().replace(b'"decision":"reject"', b'"decision":"reject","decision":"approve"')
        got = []
        sub = await cc.nc.subscribe("factory.status.approval.k6", cb=_collect(got))
        headers = signed_headers(bus.data_dir, principal_signer("alice"), Kind.APPROVAL, payload)
        await cc.js.publish("approvals.response.k6", payload, headers=headers)
        await wait_for(lambda: got)
        await sub.unsubscribe()
        outcome = json.loads(got[0].data)
        assert outcome["outcome"] == "refused" and "decision: the key appears more than once" in outcome["reason"], outcome
        assert (await cc.item("k6")).pending
        assert factory.funnel().policy_rejections_by_reason == {"schema": 4}


async def test_messages_over_the_server_limit_are_refused_at_the_broker(bus):
    import nats.errors

    agent, _ = await bus.connect(Role.AGENT)
    with pytest.raises(nats.errors.MaxPayloadError):
        await agent.publish("consciousness.directives.BTC", b"x" * (2 * 1024 * 1024))
    await agent.close()


async def test_state_survives_a_factory_restart(bus):
    mission = make_mission()
    async with running(bus, mission) as (factory, agent, cc, _):
        await submit(agent, directive("s1", notional_usd=20_000))
        await cc.decide("s1", "approve", P["alice"])
        await submit(agent, directive("s2", asset="ETH", notional_usd=15_000))
        equity_before = factory.ledger.equity_usd
    async with running(bus, mission) as (factory, agent, cc, _):
        assert factory.beliefs.position("BTC") == pytest.approx(20_000.0)
        assert list(factory.beliefs.pending) == ["s2"]
        assert factory.ledger.equity_usd == pytest.approx(equity_before)
        assert (await cc.item("s2")).pending
        (v,) = await submit(agent, directive("s3", asset="ETH", notional_usd=15_000))
        assert v.decision == "rejected"  # s2 still reserves ETH exposure
        with factory.store.connect() as conn:
            assert factory.store.equity_points(conn) >= 2


# -- property, against the real broker: nothing staged violates a guardrail -----------------------


@pytest.fixture(scope="module")
def prop_bus(tmp_path_factory):
    b = start_bus(tmp_path_factory.mktemp("prop-bus"))
    asyncio.run(provision_bus(b))
    yield b
    b.server.stop()


directive_st = st.fixed_dictionaries(
    {
        "asset": st.sampled_from(["BTC", "ETH", "SOL", "btc/usdt", "LUNA", "LUNAUSDT", "ＬＵＮＡ", "DOGE"]),
        "venue": st.sampled_from(["binance", "okx", "ftx"]),
        "side": st.sampled_from(["buy", "sell"]),
        "notional_usd": st.floats(100, 40_000),
        "leverage": st.floats(0.5, 4),
        "confidence": st.floats(0.5, 1),
    }
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(directive_st, min_size=5, max_size=40), tripped=st.booleans())
def test_through_the_real_factory_nothing_staged_breaks_a_guardrail(prop_bus, batch, tripped):
    mission = make_mission()
    tag = uuid.uuid4().hex[:8]

    async def go():
        async with running(prop_bus, mission, executor=False) as (factory, agent, cc, _):
            start = len(await staged_messages(cc.nc))
            if tripped:
                # Trip it for real: a trip record in the bucket, written with the factory's rights.
                nc, _ = await prop_bus.connect(Role.FACTORY)
                trip = BreakerTrip(trip_id=f"t-{tag}", at=utcnow(), reason="test", drawdown_pct=20, limit_pct=15,
                                   equity_usd=80, peak_equity_usd=100)
                await write_key(nc.jetstream(), "trip", trip.to_bytes())
                await nc.close()
                await wait_for(lambda: factory.beliefs.breaker_tripped)
            ids = [f"h{tag}-{i}" for i in range(len(batch))]
            verdicts = await submit(agent, *[directive(i, **d) for i, d in zip(ids, batch)])
            assert all(v is not None for v in verdicts)
            staged = (await staged_messages(cc.nc))[start:]
            beliefs = factory.beliefs.copy()
            if tripped:
                await cc.reset_breaker(P["test-principal"], "end of the example")
                await wait_for(lambda: not factory.beliefs.breaker_tripped)
            return staged, beliefs, [v.decision for v in verdicts]

    staged, beliefs, decisions = asyncio.run(go())
    if tripped:
        assert staged == [] and set(decisions) == {"rejected"}
        return
    g = mission.guardrails
    equity = beliefs.equity_usd
    for s in staged:
        assert s.asset in ("BTC", "ETH", "SOL") and s.venue in g.allowed_venues
        assert s.directive.confidence >= g.min_confidence and s.directive.leverage <= g.max_leverage
    # Everything still reserved (from every example so far) fits the limits together.
    for asset in ("BTC", "ETH", "SOL"):
        buys = sum(r.notional_usd for r in beliefs.pending.values() if r.asset == asset and r.side == "buy")
        sells = sum(r.notional_usd for r in beliefs.pending.values() if r.asset == asset and r.side == "sell")
        assert buys <= g.max_position_pct / 100 * equity * (1 + 1e-9)
        assert sells <= g.max_position_pct / 100 * equity * (1 + 1e-9)


async def test_an_agent_cannot_forge_approvals_or_a_breaker_reset_by_reflection(bus):
    """The review's exploit: JetStream answers aimed at approvals.response.<id> and the reset key."""
    from deskgate.bus.breaker import read_breaker_state
    from deskgate.domain.breaker import BreakerReset

    mission = make_mission(approvals={"four_eyes_above_usd": 1_000.0}, guardrails={"require_human_approval_above_usd": 1_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        await submit(agent, directive("eth", asset="ETH", notional_usd=25_000))
        await cc.decide("eth", "approve", P["alice"])
        await cc.decide("eth", "approve", P["bob"])
        (v,) = await submit(agent, directive("x1", notional_usd=20_000))
        assert v.decision == "staged"
        await publish_bar(md, "ETH", 10.0)
        await wait_for(lambda: factory.beliefs.breaker_tripped and factory.breaker.revision)
        evil, events = await bus.connect(Role.AGENT)
        js = evil.jetstream()
        payloads = [
            ApprovalResponse(approval_id=f"evil-{who}", directive_id="x1", decision="approve", principal=who, decided_at=utcnow()).to_bytes()
            for who in ("alice", "bob")
        ]
        payloads.append(
            BreakerReset(resets_revision=factory.breaker.revision, resets_trip_id="x", at=utcnow(), principal="alice", reason="forged").to_bytes()
        )
        for payload in payloads:
            ack = await js.publish("consciousness.insights.x", payload)
            for target in ("approvals.response.x1", "$KV.deskgate_breaker.reset"):
                await evil.publish("$JS.API.DIRECT.GET.INSIGHTS", json.dumps({"seq": ack.seq}).encode(), reply=target)
                await evil.publish("consciousness.insights.x", payload, reply=target)
        await evil.flush()
        await asyncio.sleep(1.0)
        await evil.close()
        assert (await cc.item("x1")).state == "staged"
        assert factory.stats["responses"] == 2  # only the two genuine decisions above
        assert factory.beliefs.breaker_tripped
        assert (await read_breaker_state(cc.nc)).state == "tripped"
        assert [f.directive_id for f in await cc.fills()] == ["eth"]


async def test_fills_that_do_not_add_up_are_refused_and_kept(bus):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        await submit(agent, directive("f1", notional_usd=10_000))
        outcomes = await cc.decide("f1", "approve", P["alice"], until_fill=False)
        assert outcomes[0].outcome == "ordered"
        ex, _ = await bus.connect(Role.EXECUTOR)
        base = {"fill_id": "x", "order_id": "f1-o", "directive_id": "f1", "venue": "binance", "asset": "BTC", "side": "buy",
                "status": "filled", "filled_at": utcnow().isoformat()}
        bad = [
            {**base, "fill_id": "neg", "quantity": -1.0, "price": 65_000.0, "notional_usd": 10_000.0},
            {**base, "fill_id": "fee", "quantity": 10_000 / 65_000, "price": 65_000.0, "notional_usd": 10_000.0, "fee_usd": -50.0},
            {**base, "fill_id": "far", "quantity": 10_000 / 95_000, "price": 95_000.0, "notional_usd": 10_000.0},
            {**base, "fill_id": "greedy", "quantity": 10_000 / 65_000, "price": 65_000.0, "notional_usd": 10_000.0, "fee_usd": 500.0},
        ]
        def fill_headers(payload: bytes):
            return signed_headers(bus.data_dir, "executor", Kind.FILL, payload)

        for f in bad:
            await ex.jetstream().publish("factory.execution.fills.binance", json.dumps(f).encode(), headers=fill_headers(json.dumps(f).encode()))
        await wait_for(lambda: factory.stats["fills"] >= 4)
        good = {**base, "fill_id": "good", "quantity": 10_000 / 65_100, "price": 65_100.0, "notional_usd": 10_000.0}
        # The same fill unsigned, or signed by the agent's key, is refused: only the executor's key counts.
        unsigned = {**good, "fill_id": "unsigned"}
        await ex.jetstream().publish("factory.execution.fills.binance", json.dumps(unsigned).encode())
        by_agent = {**good, "fill_id": "by-agent"}
        await ex.jetstream().publish(
            "factory.execution.fills.binance",
            json.dumps(by_agent).encode(),
            headers=signed_headers(bus.data_dir, "agent:desk", Kind.FILL, json.dumps(by_agent).encode()),
        )
        await wait_for(lambda: factory.stats["fills"] >= 6)
        assert factory.beliefs.position("BTC") == 0
        await ex.jetstream().publish("factory.execution.fills.binance", json.dumps(good).encode(), headers=fill_headers(json.dumps(good).encode()))
        await wait_for(lambda: factory.beliefs.position("BTC") != 0)
        await ex.close()
        assert factory.ledger.holdings == {("BTC", "binance"): pytest.approx(10_000 / 65_100)}
        from sqlalchemy import select

        from deskgate.factory.store import refused_messages

        with factory.store.connect() as conn:
            reasons = [r[0] for r in conn.execute(select(refused_messages.c.reason))]
        assert len(reasons) == 6 and any("from the order's reference" in r for r in reasons)
        assert sum("fills must be signed by the executor" in r for r in reasons) == 2
        assert any("more than 1% of its notional" in r for r in reasons)


async def test_four_eyes_means_two_people_not_two_spellings(bus):
    mission = make_mission(guardrails={"require_human_approval_above_usd": 1_000.0}, approvals={"four_eyes_above_usd": 1_000.0})
    async with running(bus, mission, executor=False) as (factory, agent, cc, _):
        await submit(agent, directive("fe", notional_usd=5_000))
        assert (await cc.decide("fe", "approve", P["bob"]))[0].outcome == "awaiting_second_approval"
        shown = digest((await cc.item("fe")).staged.signed_directive.data)
        got = []
        sub = await cc.nc.subscribe("factory.status.approval.fe", cb=_collect(got))
        for spelling in ("Bob", "  bob "):
            # bob again, under another spelling of his own name and with his own key: one person.
            resp = ApprovalResponse(approval_id=f"sp-{uuid.uuid4().hex}", directive_id="fe", decision="approve", principal=spelling,
                                    decided_at=utcnow(), directive_digest=shown)
            await cc.js.publish("approvals.response.fe", resp.to_bytes(), headers=signed_headers(bus.data_dir, "principal:bob", Kind.APPROVAL, resp.to_bytes()))
        await wait_for(lambda: len(got) >= 2)
        assert all(ApprovalOutcome.model_validate_json(m.data).outcome == "refused" for m in got)
        for alias in ("b\u200bob", "ＢＯＢ"):
            # No account can have such a name; bob's signature on a decision naming the alias is not the alias's.
            resp = ApprovalResponse(approval_id=f"alias-{uuid.uuid4().hex}", directive_id="fe", decision="approve", principal=alias,
                                    decided_at=utcnow(), directive_digest=shown)
            await cc.js.publish("approvals.response.fe", resp.to_bytes(), headers=signed_headers(bus.data_dir, "principal:bob", Kind.APPROVAL, resp.to_bytes()))
        await wait_for(lambda: factory.stats["unsigned_decisions"] >= 2)
        await sub.unsubscribe()
        assert (await cc.item("fe")).state == "awaiting_second_approval"


async def test_a_redelivered_decision_is_not_reported_as_a_replay(bus):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        await submit(agent, directive("rd", notional_usd=1_000))
        resp = ApprovalResponse(approval_id="ap-rd", directive_id="rd", decision="reject", principal="alice", decided_at=utcnow(), reason="no")
        headers = signed_headers(bus.data_dir, "principal:alice", Kind.APPROVAL, resp.to_bytes())
        first = factory.decide(10_000, "approvals.response.rd", resp.to_bytes(), headers)
        assert first.outcome == "rejected"
        assert factory.decide(10_000, "approvals.response.rd", resp.to_bytes(), headers) is None  # same message again
        replay = factory.decide(10_001, "approvals.response.rd", resp.to_bytes(), headers)  # same id, new message
        assert replay.outcome == "refused"


async def test_a_message_that_breaks_its_handler_is_kept_and_the_rest_go_on(bus, monkeypatch):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        real_stage = factory.intake.staged_directive

        def stage(ev, evaluation, now, signed):
            if ev.directive_id == "boom":
                raise RuntimeError("injected fault while staging")
            return real_stage(ev, evaluation, now, signed)

        monkeypatch.setattr(factory.intake, "staged_directive", stage)
        verdicts = await submit(agent, directive("ok1", notional_usd=1_000), directive("boom", notional_usd=1_000),
                                directive("ok2", notional_usd=1_000), wait=5)
        assert verdicts[0].decision == "staged" and verdicts[2].decision == "staged"
        assert verdicts[1] is None  # no verdict: kept as refused for a human instead
        assert sorted(factory.beliefs.pending) == ["ok1", "ok2"]
        from sqlalchemy import select

        from deskgate.factory.store import refused_messages

        with factory.store.connect() as conn:
            rows = conn.execute(select(refused_messages.c.stream, refused_messages.c.reason)).all()
        assert rows and rows[0][0] == "DIRECTIVES" and "injected fault" in rows[0][1]
        (later,) = await submit(agent, directive("ok3", notional_usd=1_000))
        assert later.decision == "staged"


async def test_a_batch_that_could_not_be_sent_is_sent_later_not_lost(bus):
    import nats.errors

    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        real = factory.publisher._nc

        class FlakyOnce:
            failed = False

            def __getattr__(self, name):
                return getattr(real, name)

            async def publish(self, *a, **k):
                if not FlakyOnce.failed:
                    FlakyOnce.failed = True
                    raise nats.errors.OutboundBufferLimitError
                return await real.publish(*a, **k)

        factory.publisher._nc = FlakyOnce()
        (v,) = await submit(agent, directive("late", notional_usd=1_000))
        assert FlakyOnce.failed
        assert v is not None and v.decision == "staged"
        assert (await cc.item("late")).pending
        assert factory.publisher._waiting == {}


async def test_a_replay_desk_takes_the_market_bars_time_as_its_own(bus):
    """clock: market (the demo's): snapshots and equity points carry the replayed time, so the
    Command Center's charts show the replayed days, not the seconds the replay took."""
    from datetime import datetime, timezone

    from deskgate.bus.reader import last_message
    from deskgate.bus.subjects import PORTFOLIO_SUBJECT, bar_subject
    from deskgate.clock import MarketClock
    from deskgate.domain.market import Bar
    from deskgate.domain.portfolio import PortfolioSnapshot

    replayed = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
    async with running(bus, make_mission(clock="market"), executor=False, prices={}) as (factory, agent, cc, md):
        assert isinstance(factory.clock, MarketClock) and not factory.clock.known
        for asset, price in (("BTC", 65_000.0), ("ETH", 3_500.0)):
            bar = Bar(asset=asset, ts=replayed, open=price, high=price, low=price, close=price, volume=1.0, interval_seconds=60.0, source="replay")
            await md.jetstream().publish(bar_subject(asset), bar.to_bytes())
        await wait_for(lambda: factory.clock.known)
        assert factory.clock.now() == replayed
        (v,) = await submit(agent, directive("mc1", notional_usd=1_000))
        assert v.decision == "staged" and (await cc.item("mc1")).staged.staged_at == replayed
        await factory.publish_portfolio(force=True)
        snap = PortfolioSnapshot.model_validate_json((await last_message(cc.nc, "STATUS", PORTFOLIO_SUBJECT)).data)
        assert snap.at == replayed
