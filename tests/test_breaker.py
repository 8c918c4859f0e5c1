"""The circuit breaker: trips on drawdown beyond the limit, survives restarts, reset only by a principal."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import P, directive, provision_bus, publish_bar, signed_headers, start_bus, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_factory import make_mission, running, submit

from deskgate.audit.signing import Kind
from deskgate.bus.breaker import read_breaker_state, write_key
from deskgate.bus.subjects import BREAKER_BUCKET, SERVICE_ROLES, Role
from deskgate.domain.base import utcnow
from deskgate.domain.breaker import BreakerReset, BreakerTrip
from deskgate.policy.breaker import KvRecord, breaker_state, should_trip

TRIP = BreakerTrip(
    trip_id="t1", at=utcnow(), reason="dd", drawdown_pct=16.0, limit_pct=15.0, equity_usd=84.0, peak_equity_usd=100.0
).to_bytes()


def reset_for(revision: int) -> bytes:
    return BreakerReset(resets_revision=revision, resets_trip_id="t1", at=utcnow(), principal="p", reason="ok").to_bytes()


def test_state_from_the_two_keys():
    assert breaker_state(None, None).state == "armed"
    assert breaker_state(KvRecord(3, None, TRIP), None).state == "tripped"
    assert breaker_state(KvRecord(3, None, TRIP), KvRecord(4, None, reset_for(3))).state == "armed"
    # A reset names one trip: an older or a pre-emptive one disarms nothing.
    assert breaker_state(KvRecord(5, None, TRIP), KvRecord(4, None, reset_for(3))).state == "tripped"
    assert breaker_state(KvRecord(5, None, TRIP), KvRecord(4, None, reset_for(999))).state == "tripped"
    # Fail closed on anything unreadable or deleted.
    assert breaker_state(KvRecord(3, None, b"garbage"), None).state == "tripped"
    assert breaker_state(KvRecord(3, "DEL", b""), None).state == "tripped"
    assert breaker_state(KvRecord(3, "PURGE", b""), KvRecord(4, None, reset_for(3))).state == "tripped"
    assert breaker_state(KvRecord(3, None, TRIP), KvRecord(4, None, b"garbage")).state == "tripped"
    # A reset written before the trip it names (a guessed revision) disarms nothing.
    assert breaker_state(KvRecord(5, None, TRIP), KvRecord(4, None, reset_for(5))).state == "tripped"
    # Nor does one that names the right revision but another trip.
    other = BreakerReset(resets_revision=3, resets_trip_id="not-t1", at=utcnow(), principal="p", reason="r").to_bytes()
    assert breaker_state(KvRecord(3, None, TRIP), KvRecord(4, None, other)).state == "tripped"


def test_trips_only_when_drawdown_exceeds_the_limit():
    assert not should_trip(15.0, 15.0)
    assert should_trip(15.0001, 15.0)


async def test_drawdown_trips_the_breaker_and_only_a_principal_resets_it(bus):
    mission = make_mission()
    async with running(bus, mission) as (factory, agent, cc, md):
        await submit(agent, directive("eth", asset="ETH", notional_usd=25_000))
        await cc.decide("eth", "approve", P["alice"])
        # Exactly 15% drawdown: 25% of equity falling 60% = 15.0% -> not tripped.
        await publish_bar(md, "ETH", 3_500 * 0.4)
        await wait_for(lambda: factory.ledger.marks["ETH"] == 3_500 * 0.4)
        await asyncio.sleep(0.2)
        assert not factory.beliefs.breaker_tripped
        await publish_bar(md, "ETH", 3_500 * 0.39)
        await wait_for(lambda: factory.beliefs.breaker_tripped)
        state = await wait_for(lambda: _tripped_state(cc))
        assert state.trip.drawdown_pct == pytest.approx(15.25, rel=1e-3)
        (v,) = await submit(agent, directive("blocked", notional_usd=100))
        assert v.primary_reason == "breaker"
        # No other role can write the reset key: the broker refuses it.
        for role in SERVICE_ROLES:
            if role is Role.COMMAND_CENTER:
                continue
            nc, events = await bus.connect(role)
            await nc.publish(f"$KV.{BREAKER_BUCKET}.reset", reset_for(state.trip_revision))
            await nc.flush()
            await wait_for(lambda ev=events: ev.refused(f"$KV.{BREAKER_BUCKET}.reset"))
            await nc.close()
        assert (await cc.breaker()).state == "tripped"
        # The command center's credentials alone cannot re-arm it: a reset naming the trip
        # but unsigned, signed with the agent's key, or with another principal's key, is not
        # a principal's. The factory keeps it tripped (and writes its trip again).
        for signer in (None, "agent:desk", "principal:bob"):
            state = await wait_for(lambda: _tripped_state(cc))
            forged = BreakerReset(resets_revision=state.trip_revision, resets_trip_id=state.trip.trip_id, at=utcnow(),
                                  principal="alice", reason="forged").to_bytes()
            headers = signed_headers(bus.data_dir, signer, Kind.BREAKER, forged) if signer else None
            before = factory.stats["unsigned_resets"]
            await write_key(cc.js, "reset", forged, headers)
            await wait_for(lambda b=before: factory.stats["unsigned_resets"] > b)
            assert factory.beliefs.breaker_tripped
        (v,) = await submit(agent, directive("still-blocked-after-forgery", notional_usd=100))
        assert v.primary_reason == "breaker"
        await wait_for(lambda: _tripped_state(cc))
        after = await cc.reset_breaker(P["alice"], "loss understood; positions reviewed")
        assert after.state == "armed" and after.reset.principal == "alice"
        await wait_for(lambda: not factory.beliefs.breaker_tripped)
        # Drawdown is measured afresh from the reset: trading resumes.
        assert factory.ledger.breaker_drawdown_pct == pytest.approx(0.0, abs=1e-9)
        (v2,) = await submit(agent, directive("resumed", notional_usd=100))
        assert v2.decision == "staged"


async def _tripped_state(cc):
    s = await cc.breaker()
    return s if s.state == "tripped" and s.trip_revision else None


async def crash_into_a_trip(agent, cc, md):
    """A 25% ETH long falls 80%: a 20% drawdown trips the breaker. Returns the tripped state."""
    await submit(agent, directive("eth", asset="ETH", notional_usd=25_000))
    await cc.decide("eth", "approve", P["alice"])
    await publish_bar(md, "ETH", 3_500 * 0.2)
    return await wait_for(lambda: _tripped_state(cc))


async def test_a_tripped_breaker_survives_factory_restart(bus):
    mission = make_mission()
    async with running(bus, mission) as (factory, agent, cc, md):
        await crash_into_a_trip(agent, cc, md)
    async with running(bus, mission, prices={"ETH": 3_500.0}) as (factory, agent, cc, md):
        # Even with the price back where it was, nothing but a principal re-arms it.
        assert factory.beliefs.breaker_tripped
        await asyncio.sleep(0.5)
        assert factory.beliefs.breaker_tripped
        (v,) = await submit(agent, directive("still-blocked", notional_usd=100))
        assert v.primary_reason == "breaker"


async def test_factory_restores_a_trip_the_bus_lost(bus):
    mission = make_mission()
    async with running(bus, mission) as (factory, agent, cc, md):
        await crash_into_a_trip(agent, cc, md)
    # Lose the bucket (as if the bus's store were wiped), then restart the factory.
    nc, _ = await bus.connect(Role.PROVISIONER)
    await nc.jetstream().purge_stream(f"KV_{BREAKER_BUCKET}")
    await nc.close()
    observer, _ = await bus.connect(Role.OBSERVER)
    assert (await read_breaker_state(observer)).state == "armed"
    async with running(bus, mission) as (factory, agent, cc, md):
        assert factory.beliefs.breaker_tripped
        restored = await wait_for(lambda: _tripped_state(cc))
        assert restored.state == "tripped"
    await observer.close()


# -- property: only a principal resets the breaker ------------------------------------------------


@pytest.fixture(scope="module")
def tripped_bus(tmp_path_factory):
    b = start_bus(tmp_path_factory.mktemp("breaker-prop"))

    async def trip():
        await provision_bus(b)
        nc, _ = await b.connect(Role.FACTORY)
        revision = await write_key(nc.jetstream(), "trip", TRIP)
        await nc.close()
        return revision

    revision = asyncio.run(trip())
    yield b, revision
    b.server.stop()


non_principal = st.sampled_from([r for r in SERVICE_ROLES if r is not Role.COMMAND_CENTER])
attack = st.sampled_from(["reset", "trip-delete", "trip-overwrite", "purge", "msg-delete"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=non_principal, how=attack, revision_offset=st.integers(-2, 2))
def test_no_role_but_a_principal_can_disarm_the_breaker(tripped_bus, role, how, revision_offset):
    bus, revision = tripped_bus

    async def attempt():
        nc, events = await bus.connect(role)
        target = revision + revision_offset
        if how == "reset":
            await nc.publish(f"$KV.{BREAKER_BUCKET}.reset", reset_for(max(1, target)))
        elif how == "trip-delete":
            await nc.publish(f"$KV.{BREAKER_BUCKET}.trip", b"", headers={"KV-Operation": "DEL"})
        elif how == "trip-overwrite":
            await nc.publish(f"$KV.{BREAKER_BUCKET}.trip", b'{"state": "armed"}')
        elif how == "purge":
            await nc.publish(f"$JS.API.STREAM.PURGE.KV_{BREAKER_BUCKET}", b"{}")
        else:
            await nc.publish(f"$JS.API.STREAM.MSG.DELETE.KV_{BREAKER_BUCKET}", json.dumps({"seq": revision}).encode())
        await nc.flush()
        await asyncio.sleep(0.1)
        await nc.close()
        cc, _ = await bus.connect(Role.OBSERVER)
        state = await read_breaker_state(cc)
        await cc.close()
        return state, events

    state, events = asyncio.run(attempt())
    assert state.state == "tripped"
    if role is Role.FACTORY and how in ("trip-delete", "trip-overwrite"):
        # The factory may write the trip key, but whatever it writes there fails closed.
        return
    assert events.counts["permission_violation"] == 1


async def test_a_trip_the_bus_never_took_survives_a_restart(bus, monkeypatch):
    """The review's scenario: trip, reset, trip again while the bucket write fails, restart."""
    import nats.errors

    import deskgate.factory.breaker as service

    mission = make_mission()
    async with running(bus, mission) as (factory, agent, cc, md):
        await crash_into_a_trip(agent, cc, md)
        await cc.reset_breaker(P["alice"], "reviewed")
        await wait_for(lambda: not factory.beliefs.breaker_tripped)

        async def failing(*_a, **_k):
            raise nats.errors.TimeoutError

        (v,) = await submit(agent, directive("btc", notional_usd=19_000))
        assert v.decision == "staged"
        await cc.decide("btc", "approve", P["alice"])
        monkeypatch.setattr(service, "write_key", failing)
        await publish_bar(md, "BTC", 65_000 * 0.1)
        await wait_for(lambda: factory.beliefs.breaker_tripped)
        assert factory.breaker.trip_pending
    monkeypatch.undo()
    # The price recovers a little while the factory is down: drawdown under the limit again.
    async with running(bus, mission, prices={"BTC": 65_000 * 0.5, "ETH": 700.0}) as (factory, agent, cc, md):
        assert factory.beliefs.breaker_tripped
        state = await wait_for(lambda: _tripped_state(cc))
        assert state.reset is None or state.reset.resets_revision != state.trip_revision
        (v,) = await submit(agent, directive("after", notional_usd=100))
        assert v.primary_reason == "breaker"


async def test_a_reset_written_in_advance_does_not_disarm_the_next_trip(bus):
    """The second review's scenario: a principal pre-writes resets for the next revisions."""
    from deskgate.bus.breaker import BREAKER_STREAM
    from deskgate.bus.reader import last_message

    async with running(bus, make_mission()) as (factory, agent, cc, md):
        await submit(agent, directive("eth", asset="ETH", notional_usd=25_000))
        await cc.decide("eth", "approve", P["alice"])
        latest = await last_message(cc.nc, BREAKER_STREAM, "$KV.deskgate_breaker.trip")
        base = latest.seq if latest else 0
        from deskgate.bus.breaker import write_key

        for ahead in range(1, 6):
            guess = BreakerReset(resets_revision=base + ahead, resets_trip_id="guess", at=utcnow(), principal="mallory", reason="early")
            await write_key(cc.js, "reset", guess.to_bytes())
        await publish_bar(md, "ETH", 3_500 * 0.2)
        await wait_for(lambda: _tripped_state(cc))
        await asyncio.sleep(1.0)
        assert factory.beliefs.breaker_tripped
        assert (await cc.breaker()).state == "tripped"
        (v,) = await submit(agent, directive("blocked", notional_usd=100))
        assert v.primary_reason == "breaker"
        # One trip, written once.
        from deskgate.bus.reader import read_stream

        trips = [m async for m in read_stream(cc.nc, BREAKER_STREAM, "$KV.deskgate_breaker.trip")]
        assert len(trips) == 1


async def test_an_unreadable_trip_record_is_rewritten_so_a_principal_can_reset_it(bus):
    async with running(bus, make_mission()) as (factory, agent, cc, md):
        first = await crash_into_a_trip(agent, cc, md)
        # Garble the trip record (the factory may write the key; this is what a bad write looks like).
        nc, _ = await bus.connect(Role.FACTORY)
        await write_key(nc.jetstream(), "trip", b'{"not": "a trip"}')
        await nc.close()

        async def readable_again():
            s = await cc.breaker()
            return s if s.trip is not None and s.trip_revision != first.trip_revision else None

        await wait_for(readable_again, timeout=15)
        state = await cc.reset_breaker(P["alice"], "record repaired; reviewed")
        assert state.state == "armed"


async def test_rollups_cannot_wipe_the_breakers_history(bus):
    async with running(bus, make_mission()) as (factory, agent, cc, md):
        await crash_into_a_trip(agent, cc, md)
        with pytest.raises(Exception):
            await cc.js.publish("$KV.deskgate_breaker.reset", b"", headers={"KV-Operation": "PURGE", "Nats-Rollup": "all"})
        assert (await cc.breaker()).state == "tripped"
