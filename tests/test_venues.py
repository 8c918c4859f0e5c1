"""Real venues: the pure parts (client ids, tickets, cumulative reports, keys, config),
then the executor against local fake exchanges that speak binance's, okx's and bybit's REST."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deskgate.config import MissionError, VenueSettings, parse_mission
from deskgate.domain.execution import ApprovalRef, Fill, Order
from deskgate.execution.credentials import CredentialsError, read_credentials
from deskgate.execution.reports import Answered, answers
from deskgate.execution.ticket import client_order_id, ticket_for
from deskgate.execution.venue import MarketRules, VenueOrderState, VenueReport

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


def order(side="buy", notional=1_000.0, ref=65_000.0, leverage=1.0, venue="binance", did="d1") -> Order:
    return Order(
        order_id=f"o-{did}", directive_id=did, venue=venue, asset="BTC", side=side, notional_usd=notional, leverage=leverage,
        reference_price=ref, created_at=NOW, approvals=[ApprovalRef(approval_id="a", principal="alice", decided_at=NOW)],
    )


BTC = MarketRules(symbol="BTC/USDT", amount_step=0.00001, price_step=0.01, min_amount=0.00001, min_cost=5.0)


# -- client ids --------------------------------------------------------------------


@given(st.text(min_size=1, max_size=16), st.text(min_size=1, max_size=64))
def test_a_directive_has_one_client_id_every_venue_accepts(desk, did):
    cid = client_order_id(desk, did)
    assert cid == client_order_id(desk, did)  # the same on every look after a timeout or restart
    assert re.fullmatch(r"[a-z][a-z0-9]{31}", cid)  # okx: alphanumeric, <=32, a letter first; binance/bybit: <=36


def test_different_directives_and_desks_get_different_client_ids():
    ids = {client_order_id("desk-a", f"d{i}") for i in range(10_000)}
    assert len(ids) == 10_000
    assert client_order_id("desk-a", "d1") != client_order_id("desk-b", "d1")  # another desk on the account


# -- tickets -----------------------------------------------------------------------


def test_a_buy_is_a_limit_at_the_band_and_never_spends_more_than_approved():
    t = ticket_for(order("buy", 1_000.0), "dgx", BTC, 2.0, derivatives=False)
    assert t.price == pytest.approx(66_300.0) and t.amount == pytest.approx(0.01508)
    assert t.amount * t.price <= 1_000.0
    assert round(t.amount / 0.00001, 6).is_integer()


def test_a_sell_is_a_limit_below_the_reference_for_the_approved_notional():
    t = ticket_for(order("sell", 1_000.0), "dgx", BTC, 2.0, derivatives=False)
    assert t.price == pytest.approx(63_700.0) and t.amount == pytest.approx(0.01538)
    assert t.amount * 65_000.0 <= 1_000.0


@given(
    notional=st.floats(1.0, 5e6),
    ref=st.floats(0.01, 2e5),
    step=st.sampled_from([1e-8, 1e-5, 0.001, 0.1, 1.0]),
    tick=st.sampled_from([1e-6, 0.0001, 0.01, 1.0]),
    band=st.floats(0.1, 10.0),
    side=st.sampled_from(["buy", "sell"]),
)
@settings(max_examples=300, deadline=None)
def test_a_ticket_never_moves_the_position_by_more_than_approved(notional, ref, step, tick, band, side):
    rules = MarketRules(symbol="X/USDT", amount_step=step, price_step=tick, min_amount=step, min_cost=5.0)
    t = ticket_for(order(side, notional, ref), "dgx", rules, band, derivatives=False)
    if isinstance(t, str):
        assert "minimum" in t or "rounds to" in t
        return
    assert t.amount * ref <= notional * (1 + 1e-9)  # at the reference price the principal saw
    assert t.amount >= step and t.amount * t.price >= 5.0
    if side == "buy":
        assert t.price <= ref * (1 + band / 100) * (1 + 1e-12)
    else:
        assert t.price >= ref * (1 - band / 100) * (1 - 1e-12)


def test_an_order_below_the_venues_minimums_is_refused_with_the_reason():
    assert ticket_for(order(notional=3.0), "dgx", BTC, 2.0, derivatives=False) == (
        "notional 2.65 is below binance BTC/USDT's minimum notional 5"
    )
    coarse = MarketRules(symbol="BTC/USDT", amount_step=0.001, min_amount=0.001)
    assert "rounds to no amount" in ticket_for(order(notional=20.0), "dgx", coarse, 2.0, derivatives=False)


BTC_PERP = MarketRules(symbol="BTC/USDT:USDT", amount_step=1.0, price_step=0.1, min_amount=1.0, min_cost=5.0, contract_size=0.01)


def test_leverage_needs_derivatives_and_a_perpetual_and_no_leverage_needs_spot():
    assert "derivatives is false" in ticket_for(order(leverage=2.0), "dgx", BTC_PERP, 2.0, derivatives=False)
    assert "is not one" in ticket_for(order(leverage=2.0), "dgx", BTC, 2.0, derivatives=True)
    assert "is a perpetual" in ticket_for(order(leverage=1.0), "dgx", BTC_PERP, 2.0, derivatives=True)


def test_a_leveraged_order_is_counted_in_contracts_at_the_leverage_rounded_down():
    t = ticket_for(order("sell", 10_000.0, leverage=2.7), "dgx", BTC_PERP, 2.0, derivatives=True)
    # 10,000 USD at 65,000 is 0.1538 BTC: 15 contracts of 0.01 (never more than approved), margin at 2x, not 3x.
    assert t.symbol == "BTC/USDT:USDT" and t.amount == 15.0 and t.leverage == 2 and t.contract_size == 0.01
    assert t.price == pytest.approx(63_700.0) and t.base_amount() == pytest.approx(0.15)
    buy = ticket_for(order("buy", 10_000.0, leverage=3.0), "dgx", BTC_PERP, 2.0, derivatives=True)
    assert buy.leverage == 3 and buy.base_amount() * buy.price <= 10_000.0
    tiny = BTC_PERP.model_copy(update={"contract_size": 0.00001, "min_amount": None})  # 4 USD is 6 contracts, 3.98 USD
    assert "minimum notional" in ticket_for(order(notional=4.0, leverage=2.0), "dgx", tiny, 2.0, derivatives=True)
    assert "rounds to no amount" in ticket_for(order(notional=500.0, leverage=2.0), "dgx", BTC_PERP, 2.0, derivatives=True)


@given(
    notional=st.floats(1.0, 5e6),
    ref=st.floats(0.01, 2e5),
    size=st.sampled_from([0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0]),
    step=st.sampled_from([0.001, 0.1, 1.0]),
    leverage=st.floats(1.01, 10.0),
    side=st.sampled_from(["buy", "sell"]),
)
@settings(max_examples=300, deadline=None)
def test_a_perpetual_ticket_never_moves_the_position_or_borrows_more_than_approved(notional, ref, size, step, leverage, side):
    rules = MarketRules(symbol="X/USDT:USDT", amount_step=step, price_step=None, min_amount=step, min_cost=5.0, contract_size=size)
    t = ticket_for(order(side, notional, ref, leverage=leverage), "dgx", rules, 1.0, derivatives=True)
    if isinstance(t, str):
        return
    assert t.base_amount() * ref <= notional * (1 + 1e-9)
    assert t.base_amount() * t.price <= notional * (1 + 1e-9) or side == "sell"
    assert 1 <= t.leverage <= leverage


# -- cumulative reports into fills -------------------------------------------------


def report(state, filled=0.0, cost=0.0, fee=0.0, reason=""):
    return VenueReport(client_id="dgx", venue_order_id="1", state=VenueOrderState(state), filled=filled, cost=cost, fee_usd=fee, reason=reason)


def test_a_partial_fill_then_the_rest():
    o = order(notional=1_000.0)
    first, acc = answers(o, report("partially_filled", 0.006, 390.0, 0.39), Answered(), NOW)
    assert [(f.status, f.final, f.quantity) for f in first] == [("filled", False, 0.006)]
    again, acc2 = answers(o, report("partially_filled", 0.006, 390.0, 0.39), acc, NOW)
    assert again == [] and acc2 == acc  # the same report read twice answers nothing twice
    rest, acc3 = answers(o, report("filled", 0.015, 975.0, 0.975), acc, NOW)
    assert [(f.status, f.final) for f in rest] == [("filled", True)]
    assert rest[0].quantity == pytest.approx(0.009) and rest[0].notional_usd == pytest.approx(585.0)
    assert rest[0].fee_usd == pytest.approx(0.585) and rest[0].fill_id == "o-d1-f2" and first[0].fill_id == "o-d1-f"
    assert acc3.ended and answers(o, report("filled", 0.015, 975.0), acc3, NOW)[0] == []


def test_a_partial_fill_then_a_cancel_answers_the_part_and_ends_the_order():
    o = order(notional=1_000.0)
    part, acc = answers(o, report("partially_filled", 0.006, 390.0), Answered(), NOW)
    end, acc = answers(o, report("cancelled", 0.006, 390.0), acc, NOW)
    assert [(f.status, f.final, f.quantity) for f in end] == [("cancelled", True, 0.0)]
    assert "0.006 of it filled" in end[0].reason and end[0].fill_id == "o-d1-end"


def test_a_venue_rejection_is_a_refused_final_answer_with_the_venues_reason():
    (f,), acc = answers(order(), report("rejected", reason="Account has insufficient balance"), Answered(), NOW)
    assert f.status == "refused" and f.final and f.quantity == 0 and "insufficient balance" in f.reason
    assert f.fill_id == "o-d1-f"


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.floats(0.9, 1.1), st.sampled_from(["filled", "cancelled", "expired"]))
@settings(max_examples=200, deadline=None)
def test_cumulative_reports_in_any_order_never_answer_more_than_the_venue_filled(steps, price_move, end):
    """However often and in whatever order the executor reads the venue (reports may repeat,
    or go back after a stale read), the parts it answers add up to what the venue filled."""
    o = order(notional=1_000.0)
    acc, fills = Answered(), []
    top = 0.0
    for fraction in steps:
        filled = round(0.015 * fraction, 8)
        top = max(top, filled)
        new, acc = answers(o, report("partially_filled", filled, filled * 65_000 * price_move), acc, NOW)
        fills += new
    total = 0.015 if end == "filled" else top
    last, acc = answers(o, report(end, total, total * 65_000 * price_move), acc, NOW)
    fills += last
    assert sum(f.quantity for f in fills) == pytest.approx(acc.filled, abs=1e-9)
    assert sum(1 for f in fills if f.final) == 1 and fills[-1].final
    assert len({f.fill_id for f in fills}) == len(fills)


# -- keys and config ---------------------------------------------------------------


def test_missing_keys_name_the_variable():
    with pytest.raises(CredentialsError, match="DESKGATE_BINANCE_API_SECRET is not set"):
        read_credentials("binance", VenueSettings(), {"DESKGATE_BINANCE_API_KEY": "k"})
    with pytest.raises(CredentialsError, match="DESKGATE_OKX_API_PASSPHRASE"):
        read_credentials("okx", VenueSettings(), {"DESKGATE_OKX_API_KEY": "k", "DESKGATE_OKX_API_SECRET": "s"})
    creds = read_credentials("binance", VenueSettings(key_env="MY_K", secret_env="MY_S"), {"MY_K": "abcdef", "MY_S": "topsecret"})
    assert "topsecret" not in repr(creds) and "abcdef" not in repr(creds)


def test_a_secrets_file_must_be_private(tmp_path):
    f = tmp_path / "binance.yaml"
    f.write_text("api_key: k\nsecret: s\n")
    os.chmod(f, 0o644)
    with pytest.raises(CredentialsError, match="readable by others.*chmod 600"):
        read_credentials("binance", VenueSettings(secrets_file=str(f)), {})
    os.chmod(f, 0o600)
    assert read_credentials("binance", VenueSettings(secrets_file=str(f)), {}).secret == "s"
    f.write_text("api_key: k\n")
    with pytest.raises(CredentialsError, match="secrets_file .*: secret is not set"):
        read_credentials("binance", VenueSettings(secrets_file=str(f)), {})


def test_mission_venues_errors_name_the_key():
    with pytest.raises(MissionError, match="unknown venue 'kraken'"):
        parse_mission({"venues": {"kraken": {}}})
    with pytest.raises(MissionError, match="venues.okx is configured but not in guardrails.allowed_venues"):
        parse_mission({"venues": {"okx": {}}, "guardrails": {"allowed_venues": ["binance"]}})
    with pytest.raises(MissionError, match="venues.binance.sandbox"):
        parse_mission({"venues": {"binance": {"sandbox": "no"}}})
    m = parse_mission({"venues": {"binance": {}}})
    assert m.venues.configured()["binance"].sandbox is True  # sandbox until a principal says otherwise
    assert parse_mission({}).venues.configured() == {}  # the demo: paper only, no keys


def test_venue_keys_go_to_the_executor_alone(tmp_path, monkeypatch):
    from deskgate.paths import DataDir
    from deskgate.stack import Stack

    monkeypatch.setenv("DESKGATE_BINANCE_API_SECRET", "binance-secret")
    monkeypatch.setenv("DESKGATE_OKX_API_KEY", "okx-key")  # not configured: still a venue key
    monkeypatch.setenv("MY_BYBIT_SECRET", "bybit-secret")
    mission = parse_mission({"marketdata": {"source": "none"}, "venues": {"binance": {}, "bybit": {"secret_env": "MY_BYBIT_SECRET"}}})
    stack = Stack(mission, DataDir.at(tmp_path / "desk"), services=(), restart=False, fork=False)
    env = stack.service_env("executor")
    assert env["DESKGATE_BINANCE_API_SECRET"] == "binance-secret" and env["MY_BYBIT_SECRET"] == "bybit-secret"
    for name in ("agents", "factory", "marketdata", "web", "audit"):
        other = stack.service_env(name)
        assert not {"DESKGATE_BINANCE_API_SECRET", "DESKGATE_OKX_API_KEY", "MY_BYBIT_SECRET"} & set(other), name


# -- the executor against fake venues on loopback ----------------------------------

from conftest import P, directive, wait_for  # noqa: E402
from fake_exchange import Behaviour, FakeExchange  # noqa: E402
from test_factory import make_mission, running, submit  # noqa: E402

from deskgate.approvals.client import CommandCenterError  # noqa: E402
from deskgate.execution.store import ExecutionStore  # noqa: E402

VENUES = ["binance", "okx", "bybit"]


@pytest.fixture
def fake(request, monkeypatch):
    """A fake venue on loopback with a BTC/USDT market at 65,000, and its keys in the environment."""
    name = getattr(request, "param", "binance")
    fx = FakeExchange(name)
    fx.add_market("BTC/USDT", price=65_000.0, amount_step=0.00001, price_tick=0.01, min_amount=0.00001, min_cost=5.0)
    fx.set_balance("USDT", 100_000.0)
    fx.start()
    prefix = f"DESKGATE_{name.upper()}_API"
    monkeypatch.setenv(f"{prefix}_KEY", fx.api_key)
    monkeypatch.setenv(f"{prefix}_SECRET", fx.secret)
    monkeypatch.setenv(f"{prefix}_PASSPHRASE", fx.passphrase)
    yield fx
    fx.stop()


def venue_mission(fx: FakeExchange, venues: dict | None = None, **venue):
    settings = {"api_url": fx.url, "poll_seconds": 0.05, "timeout_seconds": 1.0, **venue}
    return make_mission(venues={fx.venue: settings, "health_seconds": 0.2, "reconcile_seconds": 0.2, **(venues or {})},
                        agents={"venue": fx.venue})


def cid(data_dir, did: str) -> str:
    from deskgate.audit.keys import KeyStore
    from deskgate.execution.service import desk_fingerprint

    return client_order_id(desk_fingerprint(KeyStore.for_desk(data_dir)), did)


async def unhealthy(factory, venue: str, state: str, timeout: float = 15.0):
    """Until the factory holds `venue` unhealthy in `state`; the problem."""
    def seen():
        problem = factory.beliefs.venue_health.get(venue)
        return problem if problem is not None and problem.state == state else None
    return await wait_for(seen, timeout)


async def healthy(factory, venue: str, timeout: float = 15.0):
    """Until the executor's report reached the factory and the venue may take orders."""
    return await wait_for(lambda: venue in factory.beliefs.venue_health and factory.beliefs.venue_health[venue] is None or None, timeout)


def btc_held(fx) -> float:
    b = fx.balances.get("BTC", {})
    return b.get("free", 0.0) + b.get("used", 0.0)


def real_directive(fx, did, notional=10_000.0, **over):
    return directive(did, notional_usd=notional, venue=fx.venue, **over)


async def outcome(cc, did, *states):
    item = await cc.item(did)
    return item if item is not None and item.state in states else None


@pytest.mark.parametrize("fake", VENUES, indirect=True)
async def test_place_and_fill_on_the_venue_under_the_directives_client_id(bus, fake):
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        (v,) = await submit(agent, real_directive(fake, "v1"))
        assert v.decision == "staged" and "venue_health" in [c.name for c in v.evaluation.checks]
        out = await cc.decide("v1", "approve", P["alice"])
        assert out[0].outcome == "ordered"
        item = await wait_for(lambda: outcome(cc, "v1", "executed"))
        fill = item.outcomes[-1].fill
        client_id = cid(bus.data_dir, "v1")
        assert fill.status == "filled" and fill.final and fill.client_order_id == client_id and fill.venue == fake.venue
        (placed,) = fake.orders_for(client_id)
        assert fill.notional_usd == pytest.approx(float(placed["amount"]) * 65_000.0) and fill.notional_usd <= 10_000.0
        assert fill.quantity == pytest.approx(float(placed["amount"]), rel=1e-9)
        # The venue took its fee in BTC: the book counts it in USD, and the account holds that much less.
        assert fill.fee_usd == pytest.approx((float(placed["amount"]) - btc_held(fake)) * 65_000.0, rel=1e-6)
        assert factory.beliefs.pending == {}
        assert factory.beliefs.position("BTC") == pytest.approx(fill.quantity * 65_000.0)


@pytest.mark.parametrize("fake", VENUES, indirect=True)
async def test_a_partial_fill_books_the_part_reserves_the_rest_then_fills(bus, fake):
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        await submit(agent, real_directive(fake, "p1"))
        fake.next_orders.append(Behaviour.partial(0.4))
        await cc.decide("p1", "approve", P["alice"])
        await wait_for(lambda: factory.beliefs.position("BTC") > 0 or None)
        part = factory.beliefs.position("BTC")
        (placed,) = fake.orders_for(cid(bus.data_dir, "p1"))
        assert part == pytest.approx(0.4 * float(placed["amount"]) * 65_000.0, rel=5e-4)  # the part is rounded to the step
        assert factory.beliefs.pending["p1"].notional_usd == pytest.approx(10_000.0 - part)
        assert (await cc.item("p1")).state == "ordered"
        fake.fill_open(cid(bus.data_dir, "p1"))
        item = await wait_for(lambda: outcome(cc, "p1", "executed"))
        assert factory.beliefs.pending == {}
        assert factory.beliefs.position("BTC") == pytest.approx(float(placed["amount"]) * 65_000.0, rel=1e-6)
        assert item.outcomes[-1].fill.fill_id.endswith("-f2")


@pytest.mark.parametrize("fake", ["binance", "bybit"], indirect=True)
async def test_the_rest_of_an_order_open_too_long_is_cancelled_and_released(bus, fake):
    async with running(bus, venue_mission(fake, order_ttl_seconds=0.5)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        await submit(agent, real_directive(fake, "t1"))
        fake.next_orders.append(Behaviour.partial(0.25))
        await cc.decide("t1", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "t1", "executed"))
        last = item.outcomes[-1]
        (placed,) = fake.orders_for(cid(bus.data_dir, "t1"))
        part = factory.beliefs.position("BTC")
        assert part == pytest.approx(0.25 * float(placed["amount"]) * 65_000.0, rel=1e-3)
        assert last.fill.status == "cancelled" and last.reason.startswith(f"partly filled: {part:.2f} of 10000.00 USD")
        assert factory.beliefs.pending == {}
        assert placed["status"] in ("canceled", "CANCELED", "cancelled")


@pytest.mark.parametrize("fake", VENUES, indirect=True)
async def test_insufficient_balance_is_refused_with_the_venues_reason_and_released(bus, fake):
    fake.set_balance("USDT", 100.0)
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        await submit(agent, real_directive(fake, "r1"))
        await cc.decide("r1", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "r1", "venue_rejected"))
        last = item.outcomes[-1]
        assert last.fill.status == "refused" and "insufficient" in last.reason.lower()
        assert factory.beliefs.pending == {} and factory.beliefs.position("BTC") == 0
        assert fake.placed == []


async def test_below_the_minimum_notional_is_refused_before_sending(bus, fake):
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        await submit(agent, real_directive(fake, "m1", notional=3.0))
        await cc.decide("m1", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "m1", "venue_rejected"))
        assert "not sent: notional" in item.outcomes[-1].reason and "minimum notional 5" in item.outcomes[-1].reason
        assert fake.placed == [] and not any(m == "POST" for m, _ in fake.requests)


@pytest.mark.parametrize("fake", VENUES, indirect=True)
async def test_a_timeout_is_settled_by_a_lookup_never_a_second_order(bus, fake):
    async with running(bus, venue_mission(fake, timeout_seconds=0.3)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        await submit(agent, real_directive(fake, "to1"))
        fake.next_orders.append(Behaviour.timeout(2.0))
        await cc.decide("to1", "approve", P["alice"])
        await wait_for(lambda: outcome(cc, "to1", "executed"))
        assert len(fake.orders_for(cid(bus.data_dir, "to1"))) == 1
        assert sum(1 for m, p in fake.requests if m == "POST" and "order" in p) == 1  # one send, ever
        assert factory.beliefs.position("BTC") > 0


@pytest.mark.parametrize("fake", ["binance", "bybit"], indirect=True)
async def test_a_lost_answer_is_settled_by_a_lookup_never_a_second_order(bus, fake):
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        await submit(agent, real_directive(fake, "lost1"))
        fake.next_orders.append(Behaviour.lost())
        await cc.decide("lost1", "approve", P["alice"])
        await wait_for(lambda: outcome(cc, "lost1", "executed"))
        assert len(fake.orders_for(cid(bus.data_dir, "lost1"))) == 1


@pytest.mark.parametrize("fake", ["binance", "bybit"], indirect=True)
async def test_a_garbled_answer_is_settled_by_a_lookup_never_a_second_order(bus, fake):
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        await submit(agent, real_directive(fake, "g1"))
        fake.garbage = 1  # the venue takes the order; its answer does not parse
        await cc.decide("g1", "approve", P["alice"])
        await wait_for(lambda: outcome(cc, "g1", "executed"))
        assert len(fake.orders_for(cid(bus.data_dir, "g1"))) == 1


async def test_a_bad_key_makes_the_venue_unhealthy_and_directives_are_refused_for_it(bus, fake, monkeypatch):
    monkeypatch.setenv("DESKGATE_BINANCE_API_SECRET", "not-the-secret")
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        problem = await unhealthy(factory, "binance", "auth")
        assert "refused the API key" in problem.reason
        (v,) = await submit(agent, real_directive(fake, "k1"))
        assert v.decision == "rejected" and v.primary_reason == "venue_health"
        check = next(c for c in v.evaluation.checks if c.name == "venue_health")
        assert "refused the API key" in check.reason and "Signature" in check.reason
        assert fake.placed == []
        # The same executor still serves the paper venue.
        await submit(agent, directive("paper1", notional_usd=1_000, venue="bybit"))
        await cc.decide("paper1", "approve", P["alice"])
        await wait_for(lambda: outcome(cc, "paper1", "executed"))


async def test_a_missing_key_names_the_variable(bus, fake, monkeypatch):
    monkeypatch.delenv("DESKGATE_BINANCE_API_KEY")
    async with running(bus, venue_mission(fake)) as (factory, agent, cc, _):
        problem = await unhealthy(factory, "binance", "auth")
        assert "missing key: environment variable DESKGATE_BINANCE_API_KEY is not set" in problem.reason
        (v,) = await submit(agent, real_directive(fake, "k2"))
        assert v.primary_reason == "venue_health"
        assert fake.requests == []


async def test_the_venue_down_refuses_new_directives_and_holds_approvals_until_it_is_back(bus, fake):
    async with running(bus, venue_mission(fake, max_rate_limited=1)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        (v,) = await submit(agent, real_directive(fake, "h1"))
        assert v.decision == "staged"
        fake.down = True
        problem = await unhealthy(factory, "binance", "unreachable")
        assert "failed calls in a row" in problem.observed
        (v2,) = await submit(agent, real_directive(fake, "h2", notional=1_000.0))
        assert v2.decision == "rejected" and v2.primary_reason == "venue_health"
        out = await cc.decide("h1", "approve", P["alice"])
        assert [o.outcome for o in out] == ["held"] and out[0].reason.startswith("venue_health: binance is unreachable")
        assert (await cc.item("h1")).state == "held" and "h1" in factory.beliefs.pending  # held, still reserving
        assert fake.placed == []
        fake.down = False  # back: the held approval is ordered, re-checked as ever
        await wait_for(lambda: outcome(cc, "h1", "executed"), timeout=20)
        assert len(fake.orders_for(cid(bus.data_dir, "h1"))) == 1


async def test_rate_limits_beyond_the_budget_make_the_venue_unhealthy(bus, fake):
    async with running(bus, venue_mission(fake, max_rate_limited=1)) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        fake.rate_limited = True
        problem = await unhealthy(factory, "binance", "rate_limited")
        assert "rate-limit answers in a row" in problem.observed
        fake.rate_limited = False
        await healthy(factory, fake.venue)


async def test_a_skewed_venue_clock_makes_the_venue_unhealthy(bus, fake):
    fake.clock_skew_ms = 4_000
    async with running(bus, venue_mission(fake, max_clock_skew_ms=1_000)) as (factory, agent, cc, _):
        problem = await unhealthy(factory, "binance", "clock_skew")
        assert "clock off by +4" in problem.observed


async def test_a_reconciliation_mismatch_is_shown_held_and_lifted_only_by_a_principal(bus, fake):
    async with running(bus, venue_mission(fake, venues={"hold_above_usd": 1_000.0})) as (factory, agent, cc, _):
        await healthy(factory, fake.venue)
        fake.set_balance("BTC", 0.5)  # someone else put 0.5 BTC (32,500 USD) on the account
        problem = await unhealthy(factory, "binance", "held")
        assert "BTC +0.5" in problem.observed
        status = await wait_for(lambda: _venue_status(cc, "binance", "held"))
        assert status.review == 1 and status.mismatches[0].asset == "BTC" and status.mismatches[0].difference_usd == pytest.approx(32_500)
        (v,) = await submit(agent, real_directive(fake, "x1"))
        assert v.primary_reason == "venue_health" and "acknowledges" in next(c for c in v.evaluation.checks if c.name == "venue_health").reason
        # An acknowledgement must be a principal's own, and name the open review.
        with pytest.raises(CommandCenterError, match="open review of binance is 1"):
            await cc.acknowledge_venue("binance", 7, P["alice"], "wrong review")
        await cc.acknowledge_venue("binance", 1, P["alice"], "transfer from treasury, expected")
        await healthy(factory, fake.venue)
        assert factory.venues.records["binance"].baseline == {"BTC": 0.5}
        (v2,) = await submit(agent, real_directive(fake, "x2"))
        assert v2.decision == "staged"


async def _venue_status(cc, venue, state):
    st = await cc.venue_status(venue)
    return st if st is not None and st.state == state else None


async def test_kill_9_the_executor_between_send_and_confirmation_never_sends_twice(tmp_path, fake):
    """The venue takes the order but its answer never comes back; the executor is killed -9
    while waiting. The restarted executor only looks the order up by its client id."""
    from conftest import principal_keys, publish_bar, raw

    from deskgate.agents.submit import AgentClient
    from deskgate.approvals.client import CommandCenter
    from deskgate.bus.connect import connect_as
    from deskgate.bus.subjects import Role
    from deskgate.paths import DataDir
    from deskgate.stack import Stack

    data_dir = DataDir.at(tmp_path / "desk")
    mission = make_mission(
        venues={"binance": {"api_url": fake.url, "poll_seconds": 0.05, "timeout_seconds": 60.0}, "health_seconds": 0.2},
        marketdata={"source": "none"},
    )
    principal_keys(data_dir)
    stack = Stack(mission, data_dir, services=("factory", "executor"), restart=True).start()
    try:
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await md.close()
        agent = await AgentClient.connect(data_dir)
        cc = await CommandCenter.connect(data_dir)
        await wait_for(lambda: _venue_status(cc, "binance", "healthy"), timeout=20)
        (v,) = await agent.submit_payloads([raw(directive("crash1", notional_usd=10_000, venue="binance"))])
        assert v.decision == "staged"
        fake.next_orders.append(Behaviour.timeout(120.0))  # placed at once, answered never (for this executor)
        await cc.decide("crash1", "approve", P["alice"])
        client_id = cid(data_dir, "crash1")
        await wait_for(lambda: fake.orders_for(client_id) or None, timeout=20)
        store = ExecutionStore(make_engine_for(data_dir))
        (row,) = store.unfinished()
        assert row["state"] == "sending" and row["attempts"] == 1  # recorded before the send
        stack.kill_service("executor")  # kill -9, mid-request
        assert stack.supervise_once() == ["executor"]
        item = await wait_for(lambda: outcome(cc, "crash1", "executed"), timeout=30)
        assert len(fake.orders_for(client_id)) == 1
        assert sum(1 for m, p in fake.requests if m == "POST") == 1  # one send, ever
        assert item.outcomes[-1].fill.client_order_id == client_id
        await agent.close()
        await cc.close()
    finally:
        stack.stop()


def make_engine_for(data_dir):
    from deskgate.storage import make_engine

    return make_engine(data_dir.sqlite_url("executor"))


# -- the book's checks on fills from a real venue -----------------------------------

from deskgate.factory.book import fill_mismatch  # noqa: E402


def _order_row(side="buy", notional=1_000.0, ref=100.0):
    return {"directive_id": "d1", "venue": "binance", "asset": "BTC", "side": side, "notional_usd": notional, "reference_price": ref}


def _fill(side="buy", qty=10.0, price=100.0, fee=0.0, fid="f"):
    return Fill(fill_id=fid, order_id="o-d1", directive_id="d1", venue="binance", asset="BTC", side=side, status="filled",
                quantity=qty, price=price, notional_usd=qty * price, fee_usd=fee, filled_at=NOW)


def test_a_sell_filling_above_the_reference_is_booked_not_refused():
    assert fill_mismatch(_fill("sell", 10.0, 103.0), _order_row("sell"), 10.0) is None  # 3% better for the desk


def test_a_buy_filling_far_below_the_reference_is_booked():
    assert fill_mismatch(_fill("buy", 10.0, 50.0), _order_row("buy", 1_000.0), 10.0) is None


def test_parts_together_may_not_overspend_or_oversell_or_fill_at_a_worse_price():
    first = _fill("buy", 6.0, 100.0, fid="f").model_dump(mode="json")
    assert "above its notional" in fill_mismatch(_fill("buy", 5.0, 100.0, fid="f2"), _order_row("buy"), 10.0, [first])
    assert fill_mismatch(_fill("buy", 4.0, 100.0, fid="f2"), _order_row("buy"), 10.0, [first]) is None
    assert "against the desk" in fill_mismatch(_fill("buy", 9.0, 111.0), _order_row("buy"), 10.0)
    assert "against the desk" in fill_mismatch(_fill("sell", 10.0, 89.0), _order_row("sell"), 10.0)
    assert "what the order sold" in fill_mismatch(_fill("sell", 12.0, 100.0), _order_row("sell"), 10.0)
    assert "more than 1%" in fill_mismatch(_fill("buy", 10.0, 100.0, fee=11.0), _order_row("buy"), 10.0)


# -- deskgate venues check ------------------------------------------------------------


def test_a_fee_is_counted_in_usd_whatever_currency_the_venue_took_it_in():
    from deskgate.execution.ccxt_venue import report_from

    def answer(fee, status="closed", info=None):
        return {"id": "1", "symbol": "BTC/USDT", "status": status, "filled": 0.1, "average": 65_000.0, "cost": 6_500.0,
                "amount": 0.1, "side": "buy", "fee": fee, "info": info or {}}

    assert report_from(answer({"cost": 6.5, "currency": "USDT"}), "c", "USDT").fee_usd == pytest.approx(6.5)
    assert report_from(answer({"cost": -0.65, "currency": "USDT"}), "c", "USDT").fee_usd == 0.0  # a maker's rebate is no fee
    assert report_from(answer({"cost": 0.0001, "currency": "BTC"}), "c", "USDT").fee_usd == pytest.approx(6.5)
    bnb = answer({"cost": 0.01, "currency": "BNB"})
    assert report_from(bnb, "c", "USDT", {"BNB": 650.0}).fee_usd == pytest.approx(6.5)
    assert report_from(bnb, "c", "USDT").fee_usd == 0.0  # no price: logged, not guessed
    assert report_from(bnb, "c", "USDT", {"BNB": 65_000.0}).fee_usd == 0.0  # a price that makes it 10% of the cost is not believed
    # bybit's "partly filled, the rest cancelled" is ccxt's "closed": it is a cancel, not a fill of the whole.
    ended = report_from(answer(None, info={"orderStatus": "PartiallyFilledCanceled"}), "c", "USDT")
    assert ended.state is VenueOrderState.CANCELLED and ended.filled == pytest.approx(0.1)


def test_a_perpetuals_contracts_are_reported_in_base_at_the_average_price():
    from deskgate.execution.ccxt_venue import report_from

    # 15 contracts of 0.01 BTC, partly filled: 6 at 65,000. Whatever ccxt put in `cost` (contracts times price, on some
    # venues), the cost is the base filled at the average; the amount stays in contracts, as the ticket has it.
    swap = {"id": "9", "symbol": "BTC/USDT:USDT", "status": "open", "filled": 6.0, "amount": 15.0, "average": 65_000.0,
            "cost": 390_000.0, "side": "sell", "fee": {"cost": 1.95, "currency": "USDT"}, "info": {}}
    r = report_from(swap, "c", "USDT", contract_size=0.01)
    assert r.state is VenueOrderState.PARTIALLY_FILLED and r.filled == pytest.approx(0.06) and r.cost == pytest.approx(3_900.0)
    assert r.amount == 15.0 and r.fee_usd == pytest.approx(1.95)
    # bybit without its fee detail: a perpetual's fee is in its settle coin, counted whole (no guess, no cap).
    bybit = {**swap, "fee": None, "info": {"cumExecFee": "50"}}
    assert report_from(bybit, "c", "USDT", venue="bybit", contract_size=0.01).fee_usd == pytest.approx(50.0)


async def test_a_third_currency_fee_is_priced_from_the_venues_ticker_and_kept_a_while():
    from deskgate.execution.ccxt_venue import CcxtVenue
    from deskgate.execution.credentials import VenueCredentials

    fx = FakeExchange("binance")
    fx.add_market("BTC/USDT", price=65_000.0)
    fx.add_market("BNB/USDT", price=612.5)
    fx.start()
    venue = CcxtVenue("binance", VenueSettings(api_url=fx.url, timeout_seconds=2.0), VenueCredentials(fx.api_key, fx.secret))
    try:
        await venue.load_markets()
        bnb = {"symbol": "BTC/USDT", "fee": {"cost": 0.02, "currency": "BNB"}}
        assert await venue.fee_prices(bnb) == {"BNB": pytest.approx(612.5)}
        tickers = sum(1 for _, p in fx.requests if "ticker" in p)
        assert await venue.fee_prices(bnb) == {"BNB": pytest.approx(612.5)} and sum(1 for _, p in fx.requests if "ticker" in p) == tickers
        assert await venue.fee_prices({"symbol": "BTC/USDT", "fee": {"cost": 1.0, "currency": "XYZ"}}) == {}  # no such market
        assert await venue.fee_prices({"symbol": "BTC/USDT", "fee": {"cost": 0.0001, "currency": "BTC"}}) == {}  # the asset's own
    finally:
        await venue.close()
        fx.stop()


def _check(tmp_path, fake, monkeypatch, **venue):
    import yaml
    from typer.testing import CliRunner

    from deskgate.cli import app

    mission = tmp_path / "mission.yaml"
    mission.write_text(yaml.safe_dump({"venues": {fake.venue: {"api_url": fake.url, "timeout_seconds": 2.0, **venue}}}))
    return CliRunner().invoke(app, ["venues", "check", "--mission", str(mission)])


def test_venues_check_reports_each_step_and_places_nothing(tmp_path, fake, monkeypatch):
    result = _check(tmp_path, fake, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "binance: ready" in result.output and "ok account: key accepted" in result.output and "ok clock: off by" in result.output
    assert fake.placed == [] and not any(m == "POST" for m, _ in fake.requests)


def test_venues_check_names_a_bad_key_and_a_missing_one(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("DESKGATE_BINANCE_API_SECRET", "wrong")
    result = _check(tmp_path, fake, monkeypatch)
    assert result.exit_code == 1 and "FAILED account: binance refused the API key" in result.output
    monkeypatch.delenv("DESKGATE_BINANCE_API_KEY")
    result = _check(tmp_path, fake, monkeypatch)
    assert result.exit_code == 1 and "DESKGATE_BINANCE_API_KEY is not set" in result.output


def test_venues_check_says_a_venue_that_is_down(tmp_path, fake, monkeypatch):
    fake.down = True
    result = _check(tmp_path, fake, monkeypatch)
    assert result.exit_code == 1 and "FAILED markets" in result.output and "no usable answer" in result.output


@pytest.mark.parametrize("fake", ["bybit"], indirect=True)
def test_venues_check_passes_on_bybit(tmp_path, fake, monkeypatch):
    result = _check(tmp_path, fake, monkeypatch)
    assert result.exit_code == 0, result.output
    assert fake.placed == []


@pytest.mark.parametrize("fake", VENUES, indirect=True)
def test_venues_check_with_derivatives_lists_the_perpetuals_and_reads_the_positions(tmp_path, perp, monkeypatch):
    perp.set_position(PERP, -0.02 / CONTRACT[perp.venue])
    result = _check(tmp_path, perp, monkeypatch, derivatives=True)
    assert result.exit_code == 0, result.output
    assert "1 linear perpetuals settled in USDT" in result.output and "ok positions: BTC -0.02" in result.output
    assert perp.placed == [] and not any(m == "POST" for m, _ in perp.requests)


# -- the Venues page, in Chromium, on a desk started as a user starts it ------------------


async def test_a_principal_sees_a_held_venue_and_lifts_the_hold_in_the_command_center(tmp_path, fake):
    import signal
    import subprocess
    import sys
    import time

    import yaml
    from browser_passkeys import CHROMIUM, CHROMIUM_ARGS
    from conftest import publish_bar
    from playwright.async_api import async_playwright, expect

    from deskgate.bus.connect import connect_as
    from deskgate.bus.subjects import Role
    from deskgate.config import render_mission_template
    from deskgate.paths import DataDir

    password = "venue page password"
    deskgate = [sys.executable, "-m", "deskgate"]
    text = render_mission_template(data_dir="./data", desk_name="venue page desk").replace("source: simulator", "source: none")
    mission_data = yaml.safe_load(text)
    mission_data["venues"] = {"health_seconds": 0.3, "reconcile_seconds": 0.3, "binance": {"api_url": fake.url, "poll_seconds": 0.1}}
    mission = tmp_path / "mission.yaml"
    mission.write_text(yaml.safe_dump(mission_data))
    subprocess.run([*deskgate, "user", "add", "alice", "--role", "principal", "--password-stdin", "--mission", str(mission)],
                   input=f"{password}\n".encode(), check=True, capture_output=True, timeout=60)
    env = {**os.environ, "DESKGATE_BINANCE_API_KEY": fake.api_key, "DESKGATE_BINANCE_API_SECRET": fake.secret}
    log = open(tmp_path / "up.out", "wb")
    proc = subprocess.Popen([*deskgate, "up", "--mission", str(mission), "--web-port", "0", "--no-agents"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    data_dir = DataDir.at(tmp_path / "data")
    url_file = data_dir.root / "run" / "web.url"
    try:
        deadline = time.monotonic() + 60
        while not (url_file.exists() and b"desk running" in (tmp_path / "up.out").read_bytes()):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "up.out").read_text()
            await asyncio.sleep(0.1)
        url = url_file.read_text().strip()
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await md.close()
        fake.set_balance("BTC", 0.5)  # BTC on the account the book does not know of
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(url + "/venues")
            await page.get_by_label("Name").fill("alice")
            await page.get_by_label("Password").fill(password)
            await page.get_by_role("button", name="Log in").click()
            await page.goto(url + "/venues")
            for _ in range(100):  # the factory publishes the hold within a few reports
                if await page.locator("#venue-binance .venue-state").count() and "HELD" in await page.locator("#venue-binance .venue-state").inner_text():
                    break
                await asyncio.sleep(0.2)
                await page.reload()
            await expect(page.locator("#venue-binance .venue-state")).to_have_text("HELD")
            await expect(page.locator("#venue-binance table.mismatches")).to_contain_text("32,500.00")
            await page.get_by_label("Note").fill("treasury transfer, checked on the venue")
            await page.get_by_role("button", name="Acknowledge review 1").click()
            await expect(page.locator("#done")).to_contain_text("acknowledgement of review 1 of binance sent")
            for _ in range(100):
                await page.goto(url + "/venues")
                if "HEALTHY" in await page.locator("#venue-binance .venue-state").inner_text():
                    break
                await asyncio.sleep(0.2)
            await expect(page.locator("#venue-binance .venue-state")).to_have_text("HEALTHY")
            await expect(page.locator("#venue-binance")).to_contain_text("held outside deskgate")
            metrics = await page.request.get(url + "/metrics")
            body = await metrics.text()
            assert 'deskgate_venue_healthy{state="healthy",venue="binance"} 1.0' in body
            assert 'deskgate_venue_held{venue="binance"} 0.0' in body
            await browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# -- market data from a venue ----------------------------------------------------------


async def test_bars_and_prices_come_from_the_venue_and_a_venue_down_never_stops_the_feed(bus, fake):
    from deskgate.bus.subjects import Role
    from deskgate.domain.market import Bar
    from deskgate.marketdata.service import MarketDataService

    mission = parse_mission({
        "marketdata": {"source": "ccxt", "assets": ["BTC"], "ccxt": {"venue": "binance", "timeframe": "1m", "poll_seconds": 0.2}},
        "venues": {"binance": {"api_url": fake.url, "timeout_seconds": 1.0}},
    })
    observer, _ = await bus.connect(Role.OBSERVER)
    got: list[Bar] = []

    async def on_bar(msg):
        from deskgate.bus.live import read_live

        bar = read_live(msg, "MARKET", Bar)
        if bar is not None:
            got.append(bar)

    sub = await observer.subscribe("market.data.bars.>", cb=on_bar)
    service = MarketDataService(mission, bus.data_dir)
    task = asyncio.create_task(service.run())
    try:
        await wait_for(lambda: [b for b in got if b.source == "ccxt:binance:last"] or None)
        candles = [b for b in got if b.source == "ccxt:binance"]
        assert candles and all(b.interval_seconds == 60.0 and b.low <= b.close <= b.high for b in candles)
        assert [b.ts for b in candles] == sorted({b.ts for b in candles})  # each candle once, in order
        assert [b.close for b in got if b.source == "ccxt:binance:last"][-1] == pytest.approx(65_000.0)
        fake.down = True
        await asyncio.sleep(0.6)
        assert not task.done()  # the venue is down; the service is not
        fake.down = False
        fake.set_price("BTC/USDT", 66_000.0)
        await wait_for(lambda: any(b.close == pytest.approx(66_000.0) for b in got if b.source == "ccxt:binance:last") or None)
    finally:
        service.stop()
        await task
        await sub.unsubscribe()
        await observer.close()


def test_a_ccxt_feed_needs_its_venue_configured():
    with pytest.raises(MissionError, match="marketdata.ccxt.venue okx must be configured under venues"):
        parse_mission({"marketdata": {"source": "ccxt", "ccxt": {"venue": "okx"}}})


# -- following one order: sent at most once, whatever the venue answers -----------------

from deskgate.execution import follow as follow_mod  # noqa: E402
from deskgate.execution.follow import OrderFollower  # noqa: E402
from deskgate.execution.venue import VenueUnreachable  # noqa: E402


class ScriptedVenue:
    """A venue whose place and lookup answers a test scripts (the executor's side is real)."""

    local = False

    def __init__(self, place=None, lookups=()):
        self.place_answer, self.lookups, self.placed = place, list(lookups), 0

    async def rules(self, symbol):
        return MarketRules(symbol=symbol, amount_step=0.00001, price_step=0.01, min_amount=0.00001, min_cost=5.0)

    async def place(self, ticket):
        self.placed += 1
        if isinstance(self.place_answer, Exception):
            raise self.place_answer
        return self.place_answer

    async def lookup(self, client_id, symbol, since=None):
        self.since = since
        answer = self.lookups.pop(0) if self.lookups else None
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def cancel(self, client_id, symbol, since=None):
        self.cancelled_since = since
        return None


def _follower(tmp_path, venue, *, created_at=None, **settings):
    from deskgate.execution.store import ExecutionStore
    from deskgate.storage import make_engine

    tmp_path.mkdir(parents=True, exist_ok=True)
    store = ExecutionStore(make_engine(f"sqlite:///{tmp_path / 'executor.db'}"))
    o = order(notional=1_000.0).model_copy(update={"created_at": created_at or datetime.now(timezone.utc)})
    with store.engine.begin() as conn:
        store.take_on(conn, o, 1, "dgabc", None, "sending", NOW)
    mission = parse_mission({"venues": {"binance": {"timeout_seconds": 0.01, **settings}}})
    return OrderFollower(mission, store, venue, store.load(o.order_id), mission.venues.configured()["binance"]), store


async def _steps(f, n):
    out = []
    for _ in range(n):
        try:
            out.append(await f.step(Answered(), 0.0))
        except VenueUnreachable as exc:
            out.append(exc)
    return out


async def test_an_unconfirmed_send_is_looked_up_and_never_sent_again(tmp_path, monkeypatch):
    monkeypatch.setattr(follow_mod, "SEND_GRACE_S", 0.2)
    venue = ScriptedVenue(place=VenueUnreachable("timed out"))
    f, store = _follower(tmp_path, venue)
    steps = await _steps(f, 3)  # ticket, the send (times out), a lookup that finds nothing
    assert isinstance(steps[1], VenueUnreachable) and steps[2] is None and venue.placed == 1
    assert store.load(f.order_id)["attempts"] == 1
    # Looked for from the send (bybit's history is searched a week at a time).
    assert abs(venue.since.replace(tzinfo=None) - store.load(f.order_id)["send_started_at"].replace(tzinfo=None)).total_seconds() < 5
    await asyncio.sleep(0.25)
    (end,) = await _steps(f, 1)
    assert end.state is VenueOrderState.REJECTED and "not confirmed" in end.reason and "not sent again" in end.reason
    assert venue.placed == 1
    # A new follower (a restart) for the same row only looks: it never sends.
    again = OrderFollower(f.mission, store, venue, store.load(f.order_id), f.settings)
    await _steps(again, 2)
    assert venue.placed == 1
    with pytest.raises(RuntimeError, match="never sent twice"):
        store.begin_send(f.order_id, NOW)


async def test_a_send_waits_while_the_lease_is_not_surely_held_and_nothing_is_written(tmp_path):
    """With standbys, an order's one send begins only with the lease held a few seconds more;
    otherwise it waits, unwritten, so a short lease never turns an approved order into "not sent"."""
    placed = VenueReport(client_id="dgabc", venue_order_id="1", state=VenueOrderState.NEW, filled=0.0, cost=0.0)
    venue = ScriptedVenue(place=placed)
    f, store = _follower(tmp_path, venue)
    held = [False]
    f.may_send = lambda: held[0]
    steps = await _steps(f, 3)  # the ticket, then two steps that may not send
    assert steps == [None, None, None] and venue.placed == 0 and store.load(f.order_id)["attempts"] == 0
    held[0] = True
    (sent,) = await _steps(f, 1)
    assert sent.state is VenueOrderState.NEW and venue.placed == 1 and store.load(f.order_id)["attempts"] == 1


async def test_an_inherited_send_is_not_concluded_before_the_last_holders_lease_is_over(tmp_path, monkeypatch):
    """A standby that took over waits until `not_before` (the takeover plus the lease's time) before
    it calls an order it found `sending` "not sent": the last holder may have signed it until then."""
    from datetime import timedelta

    monkeypatch.setattr(follow_mod, "SEND_GRACE_S", 0.2)
    for waits in (False, True):
        venue = ScriptedVenue(place=VenueUnreachable("timed out"))
        f, _ = _follower(tmp_path / str(waits), venue)
        await _steps(f, 3)  # the ticket, the send (times out), a lookup that finds nothing
        f.not_before = datetime.now(timezone.utc) + timedelta(seconds=60) if waits else None
        await asyncio.sleep(0.25)
        (end,) = await _steps(f, 1)
        assert (end is None) if waits else ("not confirmed" in end.reason)
        assert venue.placed == 1


async def test_the_rest_of_an_order_open_past_its_time_is_cancelled_looked_for_from_its_send(tmp_path):
    """The cancel and the look after it search from the send (bybit's history is searched a week at a time)."""
    placed = VenueReport(client_id="dgabc", venue_order_id="1", state=VenueOrderState.NEW, filled=0.0, cost=0.0)
    venue = ScriptedVenue(place=placed, lookups=[placed])
    f, store = _follower(tmp_path, venue, order_ttl_seconds=0.05)
    steps = await _steps(f, 2)  # the ticket, then the send
    assert steps[1].state is VenueOrderState.NEW
    await asyncio.sleep(0.1)
    (still,) = await _steps(f, 1)  # open past its time: the rest is cancelled
    assert still.state is VenueOrderState.NEW and venue.cancelled_since is not None
    sent = store.load(f.order_id)["send_started_at"]
    assert abs(venue.cancelled_since.replace(tzinfo=None) - sent.replace(tzinfo=None)).total_seconds() < 5


async def test_an_order_found_under_our_id_that_is_not_ours_is_not_adopted(tmp_path):
    stranger = VenueReport(client_id="dgabc", venue_order_id="9", state=VenueOrderState.FILLED, filled=3.0, cost=195_000.0,
                           side="sell", amount=3.0)
    venue = ScriptedVenue(place=VenueUnreachable("timed out"), lookups=[stranger])
    f, _ = _follower(tmp_path, venue)
    steps = await _steps(f, 3)
    assert steps[2].state is VenueOrderState.REJECTED and "does not match what was sent" in steps[2].reason


async def test_an_approval_too_old_to_send_is_not_sent(tmp_path):
    venue = ScriptedVenue()
    f, _ = _follower(tmp_path, venue, created_at=datetime(2020, 1, 1, tzinfo=timezone.utc), max_order_age_seconds=60)
    steps = await _steps(f, 2)
    assert steps[1].state is VenueOrderState.REJECTED and "max_order_age_seconds" in steps[1].reason and venue.placed == 0


@given(
    place=st.sampled_from(["ok", "timeout", "refused"]),
    events=st.lists(st.sampled_from(["step", "restart", "found", "missing", "unreachable", "wait"]), max_size=25),
)
@settings(max_examples=120, deadline=None)
def test_whatever_the_venue_answers_and_however_often_the_executor_restarts_an_order_is_sent_at_most_once(tmp_path_factory, place, events):
    from deskgate.execution.venue import VenueRefused

    async def run():
        answers_ = {"ok": VenueReport(client_id="dgabc", venue_order_id="1", state=VenueOrderState.NEW, side="buy"),
                    "timeout": VenueUnreachable("timed out"), "refused": VenueRefused("insufficient balance")}
        venue = ScriptedVenue(place=answers_[place])
        f, store = _follower(tmp_path_factory.mktemp("o"), venue)
        found = VenueReport(client_id="dgabc", venue_order_id="1", state=VenueOrderState.NEW, side="buy")
        for e in events:
            if e == "restart":
                f = OrderFollower(f.mission, store, venue, store.load(f.order_id), f.settings)
            elif e in ("found", "missing", "unreachable"):
                venue.lookups.append({"found": found, "missing": None, "unreachable": VenueUnreachable("down")}[e])
            elif e == "wait":
                await asyncio.sleep(0.01)
            else:
                await _steps(f, 1)
            assert venue.placed <= 1
            assert store.load(f.order_id)["attempts"] <= 1

    follow_mod.SEND_GRACE_S, saved = 0.02, follow_mod.SEND_GRACE_S
    try:
        asyncio.run(run())
    finally:
        follow_mod.SEND_GRACE_S = saved


# -- the factory's fold of venue reports (pure) ------------------------------------------

from deskgate.domain.venue import VenueAck, VenueObservation  # noqa: E402
from deskgate.factory.venues import VenueRecord, fold_ack, fold_observation, verdict  # noqa: E402


def _obs(balances, unknown=(), i=0):
    return VenueObservation(venue="binance", observed_at=datetime(2026, 12, 2, 12, 0, i, tzinfo=timezone.utc), state="healthy",
                            balances=balances, unknown_orders=list(unknown))


def _fold(rec, obs, book=None):
    return fold_observation(rec, obs, book=book if book is not None else {"BTC": 1.0}, prices={"BTC": 50_000.0}, assets={"BTC"},
                            tolerance_usd=10.0, hold_above_usd=1_000.0)


def test_a_difference_counts_when_seen_twice_and_a_one_off_does_not():
    rec = _fold(VenueRecord(), _obs({"BTC": 0.0}))
    assert rec.review is None  # once: perhaps a fill on its way to the book
    rec = _fold(rec, _obs({"BTC": 1.0}, i=1))
    assert rec.review is None and rec.suspect == ()
    rec = _fold(_fold(rec, _obs({"BTC": 0.0}, i=2)), _obs({"BTC": 0.0}, i=3))
    assert rec.review == 1 and rec.held and verdict(rec, age_s=0, health_seconds=10)[0] == "held"


def test_a_persistent_difference_cannot_hide_behind_changing_strangers_or_an_asset_not_read():
    rec = VenueRecord()
    for i in range(4):  # someone keeps replacing an order on the account; BTC stays short
        rec = _fold(rec, _obs({"BTC": 0.0}, unknown=[f"x{i}"], i=i))
    assert rec.review is not None and rec.held
    rec = _fold(VenueRecord(), _obs({"BTC": 0.0}))
    rec = _fold(rec, _obs({}, i=1))  # BTC not read (an order of ours open on it): still suspect
    rec = _fold(rec, _obs({"BTC": 0.0}, i=2))
    assert rec.review == 1


def test_an_acknowledgement_accepts_only_what_the_principal_was_shown():
    rec = _fold(_fold(VenueRecord(), _obs({"BTC": 1.1})), _obs({"BTC": 1.1}, i=1))
    assert rec.review == 1 and rec.held  # 5,000 USD more than the book
    shown = rec.review_opened_at
    rec = _fold(_fold(rec, _obs({"BTC": 0.2}, i=2)), _obs({"BTC": 0.2}, i=3))  # it changed while waiting
    assert rec.review == 2 and rec.held
    stale = VenueAck(venue="binance", review=1, opened_at=shown, principal="alice", at=NOW)
    assert "open review of binance is 2" in fold_ack(rec, stale)[1]
    renumbered = VenueAck(venue="binance", review=2, opened_at=shown, principal="alice", at=NOW)  # the number, not the review
    assert fold_ack(rec, renumbered)[1] is not None
    rec, problem = fold_ack(rec, VenueAck(venue="binance", review=2, opened_at=rec.review_opened_at, principal="alice", at=NOW))
    assert problem is None and not rec.held and rec.baseline == {"BTC": pytest.approx(-0.8)}
    rec = _fold(_fold(rec, _obs({"BTC": 0.2}, i=4)), _obs({"BTC": 0.2}, i=5))
    assert rec.review is None and verdict(rec, age_s=0, health_seconds=10) == ("healthy", None)


def test_a_venue_not_reconciled_for_long_is_stale_and_one_not_reported_is_unknown():
    assert verdict(VenueRecord(), age_s=None, health_seconds=10)[0] == "unknown"
    rec = _fold(VenueRecord(), _obs({"BTC": 1.0}))
    assert verdict(rec, age_s=31, health_seconds=10)[0] == "stale"
    assert verdict(rec, age_s=1, health_seconds=10, reconciled_age_s=200, reconcile_seconds=60)[0] == "stale"
    assert verdict(rec, age_s=1, health_seconds=10, reconciled_age_s=100, reconcile_seconds=60) == ("healthy", None)


def test_the_policy_engine_checks_a_real_venues_health_and_leaves_the_paper_venue_alone():
    from deskgate.config import Guardrails
    from deskgate.policy.beliefs import Beliefs, VenueProblem
    from deskgate.policy.engine import evaluate
    from deskgate.domain.directive import Directive
    from conftest import directive as make_directive

    beliefs = Beliefs(100_000.0, prices={"BTC": 65_000.0})
    beliefs.venue_health = {"binance": VenueProblem("unreachable", "3 failed calls in a row", "an answer", "timed out")}
    d = lambda venue: Directive.model_validate(make_directive("h", notional_usd=1_000, venue=venue))  # noqa: E731
    ev = evaluate(d("binance"), beliefs, Guardrails())
    assert ev.decision == "rejected" and ev.primary_reason == "venue_health"
    check = next(c for c in ev.checks if c.name == "venue_health")
    assert check.observed == "unreachable: 3 failed calls in a row" and "binance is unreachable: timed out" in check.reason
    beliefs.venue_health["binance"] = None
    assert evaluate(d("binance"), beliefs, Guardrails()).decision == "staged"
    paper = evaluate(d("okx"), beliefs, Guardrails())  # not a real venue here: no health to check
    assert paper.decision == "staged" and "venue_health" not in [c.name for c in paper.checks]


# -- where the three venues differ: lookups, fees, reasons, listings ---------------------

import dataclasses  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402

from deskgate.execution import ccxt_venue as ccxt_venue_mod  # noqa: E402
from deskgate.execution.ccxt_venue import CcxtVenue, report_from  # noqa: E402
from deskgate.execution.credentials import VenueCredentials  # noqa: E402


def _venue_on(fx) -> CcxtVenue:
    return CcxtVenue(fx.venue, VenueSettings(api_url=fx.url, timeout_seconds=2.0), VenueCredentials(fx.api_key, fx.secret, fx.passphrase))


@pytest.mark.parametrize("fake", ["bybit"], indirect=True)
async def test_a_bybit_order_past_its_realtime_list_is_found_in_the_history_from_its_send(fake):
    """bybit's realtime list keeps only its newest finished orders, and its history is searched 7 days at a
    time (the last 7 without a start): an order is looked for from when it was sent, never taken for lost."""
    venue = _venue_on(fake)
    try:
        sent = datetime.now(timezone.utc)
        fake.place("BTC/USDT", "buy", "limit", Decimal("0.01"), Decimal("65000"), "dg-old-order")
        fake.realtime_keeps_finished = 0
        found = await venue.lookup("dg-old-order", "BTC/USDT", since=sent)
        assert found is not None and found.state is VenueOrderState.FILLED and found.filled == pytest.approx(0.01)
        assert any("/v5/order/history" in p for _, p in fake.requests)
        # Sent nine days ago (an executor that was down that long): the last 7 days do not hold it, its send's week does.
        (o,) = [o for o in fake._orders if o.client_id == "dg-old-order"]  # the venue's own record, not a copy
        o.created_ms -= 9 * 86_400_000
        assert await venue.lookup("dg-old-order", "BTC/USDT") is None
        again = await venue.lookup("dg-old-order", "BTC/USDT", since=sent - timedelta(days=9))
        assert again is not None and again.state is VenueOrderState.FILLED
        # Created a few minutes before the send on record (clocks differ): still in its week.
        assert await venue.lookup("dg-old-order", "BTC/USDT", since=sent - timedelta(days=9) + timedelta(minutes=4)) is not None
        # The store's times come back naive (UTC): read as UTC on a machine 8 hours behind it, not as local time.
        tz = os.environ.get("TZ")
        os.environ["TZ"] = "UTC+8"
        time.tzset()
        try:
            naive = (sent - timedelta(days=9)).replace(tzinfo=None)
            assert (await venue.lookup("dg-old-order", "BTC/USDT", since=naive)) is not None
        finally:
            if tz is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = tz
            time.tzset()
    finally:
        await venue.close()


@pytest.mark.parametrize("fake", ["bybit"], indirect=True)
async def test_a_bybit_account_is_taken_as_unified_without_asking(fake):
    """ccxt would ask on the first private call whether the account is unified, and keep an answer it could
    not read as "classic" for good (every balance then refused): the desk says unified and never asks."""
    venue = _venue_on(fake)
    try:
        await venue.load_markets()
        fake.garbage = 1  # an answer that cannot be read, where ccxt would have asked about the account
        with pytest.raises(VenueUnreachable):
            await venue.balances()
        assert (await venue.balances())["USDT"] == pytest.approx(100_000.0)
        assert not any("query-api" in p or "account/info" in p for _, p in fake.requests)
    finally:
        await venue.close()


def _bybit_row(**info):
    return {"id": "1", "symbol": "BTC/USDT", "side": "buy", "status": "closed", "filled": 0.01, "average": 65_000.0, "amount": 0.01,
            "cost": 650.0, "fee": None, "fees": [], "info": {"orderLinkId": "dg1", **info}}


def test_a_bybit_fee_counts_every_coin_it_names_and_falls_back_to_its_total():
    both = _bybit_row(cumFeeDetail={"BTC": "0.00001", "MNT": "0.5"})
    assert report_from(both, "dg1", "USDT", {"MNT": 0.8}, venue="bybit").fee_usd == pytest.approx(0.00001 * 65_000.0 + 0.5 * 0.8)
    # A rebate (a negative fee) is no fee, and never a positive one.
    assert report_from(_bybit_row(cumFeeDetail={"USDT": "-0.1"}), "dg1", "USDT", venue="bybit").fee_usd == 0.0
    # No detail: cumExecFee, in the coin bybit charges a spot order in (the asset on a buy, the quote on a sell).
    assert report_from(_bybit_row(cumExecFee="0.00002"), "dg1", "USDT", venue="bybit").fee_usd == pytest.approx(0.00002 * 65_000.0)
    sold = {**_bybit_row(cumExecFee="0.65"), "side": "sell"}
    assert report_from(sold, "dg1", "USDT", venue="bybit").fee_usd == pytest.approx(0.65)
    # A guess that would make the fee 6,500% of the cost (0.65 was USDT, not BTC) is not believed: the fill is booked.
    assert report_from(_bybit_row(cumExecFee="0.65"), "dg1", "USDT", venue="bybit").fee_usd == 0.0
    # Another venue's order is not read as bybit's.
    assert report_from(_bybit_row(cumExecFee="0.00002"), "dg1", "USDT", venue="okx").fee_usd == 0.0


def test_a_venues_own_reason_for_a_rejection_is_kept():
    rejected = {**_bybit_row(rejectReason="EC_PostOnlyWillTakeLiquidity"), "status": "rejected", "filled": 0.0, "cost": 0.0}
    assert report_from(rejected, "dg1", "USDT").reason == "EC_PostOnlyWillTakeLiquidity"
    no_reason = {**_bybit_row(rejectReason="EC_NoError"), "status": "rejected", "filled": 0.0, "cost": 0.0}
    assert report_from(no_reason, "dg1", "USDT").reason == ""
    okx = {**_bybit_row(), "status": "rejected", "filled": 0.0, "cost": 0.0, "info": {"sMsg": "Insufficient balance"}}
    assert report_from(okx, "dg1", "USDT").reason == "Insufficient balance"


@pytest.mark.parametrize("fake", ["okx", "bybit"], indirect=True)
async def test_every_open_order_is_listed_past_the_first_page_and_too_many_is_an_error(fake, monkeypatch):
    """okx lists 100 open orders a request, bybit 50: a list cut at a page would show our own open orders
    as gone to reconciliation. More pages than the desk reads is an error, never a shorter list."""
    for i in range(130):
        fake.place("BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal("60000"), f"dg-rest-{i}")
    venue = _venue_on(fake)
    try:
        listed = await venue.open_orders()
        assert sorted(listed) == sorted(f"dg-rest-{i}" for i in range(130))
        monkeypatch.setattr(ccxt_venue_mod, "OPEN_ORDER_PAGES", 1)
        with pytest.raises(VenueUnreachable, match=r"more open orders than the desk reads \(1 × (100|50)\)"):
            await venue.open_orders()
        if fake.venue == "okx":  # a venue that did not move to the next page: the rest is unknown, never nothing
            monkeypatch.setattr(ccxt_venue_mod, "OPEN_ORDER_PAGES", 40)
            venue.dialect = dataclasses.replace(venue.dialect, open_orders_after="not-a-parameter")
            with pytest.raises(VenueUnreachable, match="repeated the last one"):
                await venue.open_orders()
    finally:
        await venue.close()


# -- perpetuals: leverage above 1 on a venue with `derivatives: true` ----------------------

PERP = "BTC/USDT:USDT"
#: Contract sizes as the venues list BTC's linear perpetual: okx 0.01 BTC a contract; binance and bybit count in BTC.
CONTRACT = {"okx": 0.01, "binance": 1.0, "bybit": 1.0}


@pytest.fixture
def perp(fake):
    """The fake venue with BTC's linear perpetual beside its spot market."""
    if fake.venue == "okx":
        fake.add_perpetual(PERP, 65_000.0, contract_size=0.01, amount_step=1.0, price_tick=0.1, min_amount=1.0, min_cost=0.0)
    else:
        fake.add_perpetual(PERP, 65_000.0, contract_size=1.0, amount_step=0.001, price_tick=0.1, min_amount=0.001, min_cost=5.0)
    return fake


async def reconciled_after(factory, venue: str, since: datetime, timeout: float = 15.0):
    """The venue's record once it was reconciled after `since`."""
    def rec():
        r = factory.venues.records.get(venue)
        return r if r is not None and r.reconciled_at and datetime.fromisoformat(r.reconciled_at) > since else None
    return await wait_for(rec, timeout)


@pytest.mark.parametrize("fake", VENUES, indirect=True)
async def test_a_leveraged_short_goes_to_the_perpetual_on_isolated_margin_and_reconciles(bus, perp):
    fx = perp
    async with running(bus, venue_mission(fx, derivatives=True)) as (factory, agent, cc, _):
        await healthy(factory, fx.venue)
        (v,) = await submit(agent, real_directive(fx, "s1", side="sell", leverage=2.5))
        assert v.decision == "staged"
        await cc.decide("s1", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "s1", "executed"))
        fill = item.outcomes[-1].fill
        (placed,) = fx.orders_for(cid(bus.data_dir, "s1"))
        assert placed["symbol"] == PERP and placed["side"] == "sell"
        # Isolated margin at 2x: the approved 2.5 rounded down, never more borrowed than approved.
        assert fx.margin_mode[PERP] == "isolated" and fx.leverage[PERP] == 2
        assert float(fx.position(PERP).contracts) == -placed["amount"]
        base = placed["amount"] * CONTRACT[fx.venue]
        assert fill.status == "filled" and fill.final and fill.quantity == pytest.approx(base)
        assert fill.notional_usd == pytest.approx(base * 65_000.0) and fill.notional_usd <= 10_000.0
        assert fill.fee_usd == pytest.approx(base * 65_000.0 * 0.0005)  # in USDT, the settle coin
        assert factory.beliefs.position("BTC") == pytest.approx(-base * 65_000.0)  # a short: no BTC was ever held
        # The venue's position is the book's: reconciled twice after the fill, nothing differs and nothing is under review.
        done = datetime.now(timezone.utc)
        await reconciled_after(factory, fx.venue, done)
        rec = await reconciled_after(factory, fx.venue, datetime.fromisoformat((await reconciled_after(factory, fx.venue, done)).reconciled_at))
        assert rec.mismatches == () and rec.review is None
        assert rec.observation["balances"]["BTC"] == pytest.approx(-base)


@pytest.mark.parametrize("fake", ["okx"], indirect=True)
async def test_a_perpetuals_partial_fill_books_the_part_then_the_rest_in_contracts(bus, perp):
    fx = perp
    async with running(bus, venue_mission(fx, derivatives=True)) as (factory, agent, cc, _):
        await healthy(factory, fx.venue)
        await submit(agent, real_directive(fx, "s2", side="buy", leverage=3.0))
        fx.next_orders.append(Behaviour.partial(0.4))
        await cc.decide("s2", "approve", P["alice"])
        await wait_for(lambda: factory.beliefs.position("BTC") > 0 or None)
        (placed,) = fx.orders_for(cid(bus.data_dir, "s2"))
        part = float(fx.position(PERP).contracts)
        assert 0 < part < placed["amount"] and fx.leverage[PERP] == 3
        assert factory.beliefs.position("BTC") == pytest.approx(part * 0.01 * 65_000.0)
        assert factory.beliefs.pending["s2"].notional_usd == pytest.approx(10_000.0 - part * 0.01 * 65_000.0)
        fx.fill_open(cid(bus.data_dir, "s2"))
        await wait_for(lambda: outcome(cc, "s2", "executed"))
        assert factory.beliefs.pending == {}
        assert factory.beliefs.position("BTC") == pytest.approx(placed["amount"] * 0.01 * 65_000.0)


@pytest.mark.parametrize("fake", ["binance", "bybit"], indirect=True)  # okx has no switch: each order names its margin
async def test_a_position_nobody_sent_shows_in_reconciliation_and_a_cross_margin_one_refuses_the_order(bus, perp):
    fx = perp
    mission = venue_mission(fx, venues={"hold_above_usd": 1e9}, derivatives=True)
    async with running(bus, mission) as (factory, agent, cc, _):
        await healthy(factory, fx.venue)
        fx.set_position(PERP, 0.05 / CONTRACT[fx.venue])  # a 0.05 BTC long opened by hand, in cross margin
        status = await wait_for(lambda: _venue_status(cc, fx.venue, "mismatch"))
        assert status.mismatches[0].asset == "BTC" and status.mismatches[0].difference == pytest.approx(0.05)
        (v,) = await submit(agent, real_directive(fx, "s3", side="sell", leverage=2.0))
        assert v.decision == "staged"  # a difference under the hold: shown, not held
        await cc.decide("s3", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "s3", "venue_rejected"))
        fill = item.outcomes[-1].fill
        assert fill.status == "refused" and "margin mode" in fill.reason and fx.venue in fill.reason
        assert fx.orders_for(cid(bus.data_dir, "s3")) == [] and fx.margin_mode[PERP] == "cross"


@pytest.mark.parametrize("fake", ["binance"], indirect=True)
async def test_leverage_without_derivatives_is_refused_and_nothing_is_sent(bus, perp):
    fx = perp
    async with running(bus, venue_mission(fx)) as (factory, agent, cc, _):
        await healthy(factory, fx.venue)
        await submit(agent, real_directive(fx, "s4", side="sell", leverage=2.0))
        await cc.decide("s4", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "s4", "venue_rejected"))
        assert item.outcomes[-1].fill.status == "refused" and "derivatives is false" in item.outcomes[-1].fill.reason
        assert fx.placed == [] and fx.leverage[PERP] == 20


@pytest.mark.parametrize("fake", ["binance", "bybit", "okx"], indirect=True)
async def test_a_perpetual_without_the_margin_is_refused_with_the_venues_reason_and_released(bus, perp):
    fx = perp
    fx.set_balance("USDT", 100.0)  # 10,000 USD at 2x needs 5,000 of margin
    async with running(bus, venue_mission(fx, derivatives=True)) as (factory, agent, cc, _):
        await healthy(factory, fx.venue)
        await submit(agent, real_directive(fx, "m1", side="sell", leverage=2.0))
        await cc.decide("m1", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "m1", "venue_rejected"))
        last = item.outcomes[-1]
        # binance's futures code (-2019) is read as binance reads it, although its requests go to a local api_url.
        assert last.fill.status == "refused" and ("insufficient" in last.reason.lower() or "not enough" in last.reason.lower())
        assert factory.beliefs.pending == {} and factory.beliefs.position("BTC") == 0
        assert fx.placed == [] and float(fx.position(PERP).contracts) == 0


@pytest.mark.parametrize("fake", ["binance", "okx"], indirect=True)
async def test_a_perpetuals_timeout_is_settled_by_a_lookup_never_a_second_order(bus, perp):
    fx = perp
    async with running(bus, venue_mission(fx, timeout_seconds=0.3, derivatives=True)) as (factory, agent, cc, _):
        await healthy(factory, fx.venue)
        await submit(agent, real_directive(fx, "to2", side="sell", leverage=2.0))
        fx.next_orders.append(Behaviour.timeout(2.0))
        await cc.decide("to2", "approve", P["alice"])
        await wait_for(lambda: outcome(cc, "to2", "executed"))
        (placed,) = fx.orders_for(cid(bus.data_dir, "to2"))
        assert float(fx.position(PERP).contracts) == -placed["amount"]
        assert factory.beliefs.position("BTC") == pytest.approx(-placed["amount"] * CONTRACT[fx.venue] * 65_000.0)


def _ccxt_venue(fx, **settings):
    from deskgate.execution.ccxt_venue import CcxtVenue
    from deskgate.execution.credentials import VenueCredentials

    return CcxtVenue(fx.venue, VenueSettings(api_url=fx.url, derivatives=True, timeout_seconds=2.0, **settings),
                     VenueCredentials(api_key=fx.api_key, secret=fx.secret, passphrase=fx.passphrase if fx.venue == "okx" else None))


def _perp_ticket(side="buy", amount=0.05, leverage=5, cid="dgperp1"):
    from deskgate.execution.venue import OrderTicket

    return OrderTicket(client_id=cid, symbol=PERP, side=side, amount=amount, price=65_000.0, notional_usd=amount * 65_000.0,
                       leverage=leverage, contract_size=1.0)


@pytest.mark.parametrize("fake", VENUES, indirect=True)
async def test_a_positions_leverage_is_never_raised_and_a_reducing_order_sets_nothing(perp):
    fx = perp
    size = CONTRACT[fx.venue]
    venue = _ccxt_venue(fx)

    def ticket(side, btc, leverage):
        return _perp_ticket(side, amount=btc / size, leverage=leverage).model_copy(update={"contract_size": size})

    try:
        await venue.prepare(ticket("buy", 0.05, 3))
        assert fx.leverage[PERP] == 3 and (fx.venue == "okx" or fx.margin_mode[PERP] == "isolated")
        fx.margin_mode[PERP] = "isolated"  # okx: what its isolated orders would have made the position
        fx.set_position(PERP, 0.1 / size)  # a 0.1 BTC long at 3x
        await venue.prepare(ticket("buy", 0.05, 5))  # adding at 5x would shrink the long's margin
        assert fx.leverage[PERP] == 3
        requests = len(fx.requests)
        prepared = await venue.prepare(ticket("sell", 0.05, 2))  # reduces: no margin taken, nothing to set
        assert prepared.reduce_only and fx.leverage[PERP] == 3
        assert all("leverage" not in p.lower() and "margin" not in p.lower() for _, p in fx.requests[requests:])
        # Larger than the long: it opens a short, at 3x, and is no longer reduce-only (a ticket stored
        # reduce-only before a restart, whose position has since changed, is worked out again).
        larger = await venue.prepare(ticket("sell", 0.15, 5).model_copy(update={"reduce_only": True}))
        assert not larger.reduce_only and fx.leverage[PERP] == 3
        assert await venue.positions() == {"BTC": pytest.approx(0.1)}
    finally:
        await venue.close()


@pytest.mark.parametrize("fake", ["binance", "okx", "bybit"], indirect=True)
async def test_an_answer_to_a_setting_that_does_not_confirm_it_is_no_answer(perp, monkeypatch):
    from deskgate.execution.venue import VenueUnreachable

    fx = perp
    venue = _ccxt_venue(fx)
    try:
        await venue.load_markets()

        async def junk(*args, **kwargs):
            return "<html>ok</html>"

        monkeypatch.setattr(venue.exchange, "set_leverage", junk)
        monkeypatch.setattr(venue.exchange, "fetch_leverage", junk)
        with pytest.raises(VenueUnreachable, match="does not confirm"):
            await venue.prepare(_perp_ticket(leverage=4))
    finally:
        await venue.close()


@pytest.mark.parametrize("fake", ["okx"], indirect=True)
async def test_okx_leverage_is_compared_exactly_not_as_ccxt_truncates_it(perp, monkeypatch):
    fx = perp
    venue = _ccxt_venue(fx)
    try:
        await venue.load_markets()
        fx.leverage[PERP] = 7
        read = venue.exchange.fetch_leverage

        async def fractional(symbol, params=None):
            got = await read(symbol, params or {})
            got["info"] = [{**got["info"][0], "lever": "5.5"}]  # okx allows 5.5x; ccxt reads it as 5
            got["longLeverage"] = got["shortLeverage"] = 5
            return got

        monkeypatch.setattr(venue.exchange, "fetch_leverage", fractional)
        await venue.prepare(_perp_ticket(leverage=5, amount=5))
        assert fx.leverage[PERP] == 5  # set, not skipped
    finally:
        await venue.close()


@pytest.mark.parametrize("fake", ["okx", "bybit", "binance"], indirect=True)
async def test_a_position_row_that_cannot_be_read_is_an_error_never_no_position(perp, monkeypatch):
    from deskgate.execution.venue import VenueUnreachable

    fx = perp
    venue = _ccxt_venue(fx)
    try:
        await venue.load_markets()
        fx.set_position(PERP, -5.0)
        assert (await venue.positions())["BTC"] == pytest.approx(-5.0 * CONTRACT[fx.venue])
        id_field, size_field = venue.dialect.position_fields
        rows = await venue._position_rows()
        for broken in ({k: v for k, v in rows[0].items() if k != id_field}, {**rows[0], size_field: "n/a"}, {**rows[0], size_field: None}):
            async def these(broken=broken):
                return [broken]
            monkeypatch.setattr(venue, "_position_rows", these)
            with pytest.raises(VenueUnreachable):
                await venue.positions()
        fx.garbage = 1
        monkeypatch.undo()
        with pytest.raises(VenueUnreachable):
            await venue.positions()
    finally:
        await venue.close()


def test_an_order_at_leverage_1_against_a_perpetual_position_is_not_sent_to_spot():
    from deskgate.execution.ticket import leaves_perpetual_open

    assert "leave it open" in leaves_perpetual_open(order("buy"), -0.15)  # a short covered on spot stays open
    assert "leave it open" in leaves_perpetual_open(order("sell"), 0.2)
    assert leaves_perpetual_open(order("buy"), 0.2) is None and leaves_perpetual_open(order("sell"), 0.0) is None
    assert leaves_perpetual_open(order("buy", leverage=2.0), -0.15) is None  # goes to the perpetual itself
    assert "has ordered a perpetual short" in leaves_perpetual_open(order("buy"), -0.15, ordered=True)  # a short still resting


@pytest.mark.parametrize("fake", ["okx"], indirect=True)
async def test_one_perpetual_order_at_a_time_per_symbol_and_a_spot_cover_of_a_short_is_refused(bus, perp):
    fx = perp
    async with running(bus, venue_mission(fx, derivatives=True, order_ttl_seconds=60.0)) as (factory, agent, cc, _):
        await healthy(factory, fx.venue)
        await submit(agent, real_directive(fx, "q1", side="sell", leverage=2.0), real_directive(fx, "q2", side="sell", leverage=3.0))
        fx.next_orders.append(Behaviour.rest())
        await cc.decide("q1", "approve", P["alice"])
        await wait_for(lambda: fx.orders_for(cid(bus.data_dir, "q1")) or None)
        await cc.decide("q2", "approve", P["alice"])
        await asyncio.sleep(1.5)  # q2 waits its turn: q1 is open on the symbol, at 2x
        assert fx.orders_for(cid(bus.data_dir, "q2")) == [] and fx.leverage[PERP] == 2
        fx.fill_open(cid(bus.data_dir, "q1"))
        await wait_for(lambda: outcome(cc, "q2", "executed"), timeout=20)
        assert fx.leverage[PERP] == 2  # q2 adds to the short q1 opened at 2x: never raised over it
        # A buy at leverage 1 would cover the short on spot and leave the perpetual open beside it.
        await healthy(factory, fx.venue)
        (v,) = await submit(agent, real_directive(fx, "q3", side="buy", notional=1_000.0))
        assert v.decision == "staged", [c for c in v.evaluation.checks if c.name == "venue_health"]
        await cc.decide("q3", "approve", P["alice"])
        item = await wait_for(lambda: outcome(cc, "q3", "venue_rejected"))
        assert "leave it open" in item.outcomes[-1].reason and fx.orders_for(cid(bus.data_dir, "q3")) == []


def test_perpetual_orders_on_a_symbol_go_first_come_first_sent_and_another_endpoints_do_not_count(tmp_path):
    from deskgate.execution.store import ExecutionStore
    from deskgate.storage import make_engine

    store = ExecutionStore(make_engine(f"sqlite:///{tmp_path / 'executor.db'}"))
    ticket = _perp_ticket()
    for seq, did, endpoint in ((1, "old", "demo venue hosts"), (2, "a", "live venue hosts"), (3, "b", "live venue hosts"),
                               (4, "c", "live venue hosts")):
        with store.begin() as conn:
            store.take_on(conn, order(did=did, leverage=2.0), seq, f"dg{did}", ticket, "sending", NOW, endpoint=endpoint)

    def ahead(did, seq):
        return store.ahead_on("binance", "live venue hosts", PERP, order_id=f"o-{did}", seq=seq)

    # "old" was sent to another account (the desk left demo for live): it is not followed here, and holds nothing back.
    store.begin_send("o-old", NOW)
    assert ahead("a", 2) == [] and ahead("b", 3) == ["o-a"] and ahead("c", 4) == ["o-a", "o-b"]
    store.begin_send("o-a", NOW)
    assert ahead("b", 3) == ["o-a"]  # a is out there: b waits until it ends
    with store.begin() as conn:
        store.record(conn, "o-a", [], Answered(ended=True), "ended", NOW)
    assert ahead("b", 3) == [] and ahead("c", 4) == ["o-b"]
    # What our unfinished perpetual orders on BTC could still add (buys of 0.05 BTC each: old, b, c).
    assert store.perpetual_on_order("binance", "BTC") == pytest.approx(0.15) and store.perpetual_on_order("binance", "ETH") == 0.0


async def test_a_perpetual_order_left_open_when_derivatives_is_turned_off_is_stuck_with_the_reason(bus, perp):
    from deskgate.execution.follow import endpoint_of
    from deskgate.execution.service import Executor

    mission = venue_mission(perp)  # derivatives now off
    executor = Executor(mission, bus.data_dir)
    try:
        with executor.store.begin() as conn:
            executor.store.take_on(conn, order(did="st1", leverage=2.0), 1, "dgst1", _perp_ticket(), "open", NOW,
                                   endpoint=endpoint_of(mission.venues.configured()["binance"], "binance"))
        executor.store.begin_send("o-st1", NOW)  # it is out there (one not sent yet is refused, not stuck)
        await executor._follow("o-st1")
        assert "derivatives is now false" in executor.unfollowed["binance"]["o-st1"]
        assert perp.requests == []  # not looked up as a spot order, nor anything else
    finally:
        executor.store.engine.dispose()
