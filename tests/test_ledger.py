"""The ledger's cost basis: average entry, realised and unrealised P&L, through adds, closes and flips."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deskgate.domain.execution import Fill
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.portfolio.ledger import Ledger, book_trade

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


def fill(side: str, qty: float, price: float, fee: float = 0.0, asset: str = "BTC", venue: str = "binance") -> Fill:
    return Fill(fill_id=f"f-{side}-{qty}-{price}", order_id="o", directive_id="d", venue=venue, asset=asset, side=side,
                status="filled", quantity=qty, price=price, notional_usd=qty * price, fee_usd=fee, filled_at=NOW)


def test_adding_averages_the_entry_and_reducing_realises_against_it():
    led = Ledger.opening(100_000.0)
    led.apply_fill(fill("buy", 1.0, 100.0))
    led.apply_fill(fill("buy", 3.0, 200.0))
    assert led.entries[("BTC", "binance")] == pytest.approx(175.0)  # (100 + 600) / 4
    led.mark("BTC", 180.0)
    assert led.unrealised_usd("BTC", "binance") == pytest.approx(4 * 5.0)
    led.apply_fill(fill("sell", 1.0, 195.0))  # a partial close: the rest keeps its entry
    assert led.entries[("BTC", "binance")] == pytest.approx(175.0)
    assert led.realised_pnl_usd == pytest.approx(20.0)
    assert led.holdings[("BTC", "binance")] == pytest.approx(3.0)
    led.apply_fill(fill("sell", 3.0, 170.0))  # a full close: no position, no entry
    assert led.realised_pnl_usd == pytest.approx(20.0 - 15.0)
    assert ("BTC", "binance") not in led.holdings and ("BTC", "binance") not in led.entries
    assert led.unrealised_pnl_usd == 0.0


def test_a_trade_through_zero_closes_the_long_and_opens_a_short_at_its_price():
    led = Ledger.opening(10_000.0)
    led.apply_fill(fill("buy", 2.0, 100.0, asset="ETH"))
    led.apply_fill(fill("sell", 5.0, 110.0, asset="ETH"))
    key = ("ETH", "binance")
    assert led.holdings[key] == pytest.approx(-3.0) and led.entries[key] == pytest.approx(110.0)
    assert led.realised_pnl_usd == pytest.approx(20.0)
    led.mark("ETH", 100.0)  # the short gains as the price falls
    assert led.unrealised_usd(*key) == pytest.approx(30.0)
    led.apply_fill(fill("buy", 1.0, 90.0, asset="ETH"))  # covering part of a short realises against its entry
    assert led.realised_pnl_usd == pytest.approx(40.0) and led.entries[key] == pytest.approx(110.0)


def test_venues_keep_their_own_entries():
    led = Ledger.opening(10_000.0)
    led.apply_fill(fill("buy", 1.0, 100.0, venue="binance"))
    led.apply_fill(fill("buy", 1.0, 120.0, venue="okx"))
    assert led.entries == {("BTC", "binance"): 100.0, ("BTC", "okx"): 120.0}


def test_the_snapshot_publishes_entries_and_pnl_and_old_snapshots_still_parse():
    led = Ledger.opening(10_000.0)
    led.apply_fill(fill("buy", 2.0, 100.0, fee=1.0))
    led.mark("BTC", 105.0)
    snap = led.snapshot(NOW)
    (line,) = snap.positions
    assert line.avg_entry_price == pytest.approx(100.0) and line.unrealised_pnl_usd == pytest.approx(10.0)
    assert snap.realised_pnl_usd == 0.0 and snap.unrealised_pnl_usd == pytest.approx(10.0)
    assert PortfolioSnapshot.model_validate_json(snap.to_bytes()) == snap
    # A snapshot from a factory that published no cost basis still parses; the fields are unknown.
    old = snap.model_dump(mode="json", exclude={"realised_pnl_usd", "unrealised_pnl_usd"})
    for p in old["positions"]:
        del p["avg_entry_price"], p["unrealised_pnl_usd"]
    parsed = PortfolioSnapshot.model_validate(old)
    assert parsed.realised_pnl_usd is None and parsed.positions[0].avg_entry_price is None


def test_cost_basis_survives_a_restart_and_an_older_saved_book_loads_with_unknown_entries():
    led = Ledger.opening(10_000.0)
    led.apply_fill(fill("buy", 2.0, 100.0))
    led.apply_fill(fill("sell", 1.0, 110.0))
    again = Ledger.from_state(led.to_state())
    assert again == led and again.entries == {("BTC", "binance"): 100.0} and again.realised_pnl_usd == pytest.approx(10.0)

    old_state = led.to_state()
    del old_state["entries"], old_state["realised_pnl_usd"]
    old = Ledger.from_state(old_state)
    assert old.entries == {("BTC", "binance"): None} and old.realised_pnl_usd is None
    assert old.unrealised_usd("BTC", "binance") is None and old.unrealised_pnl_usd is None
    old.mark("BTC", 120.0)
    (line,) = old.snapshot(NOW).positions
    assert line.avg_entry_price is None and line.unrealised_pnl_usd is None
    # Adding to an unknown entry keeps it unknown; a new position after it is closed is known again.
    old.apply_fill(fill("buy", 1.0, 120.0))
    assert old.entries[("BTC", "binance")] is None
    old.apply_fill(fill("sell", 2.0, 120.0))
    old.apply_fill(fill("buy", 1.0, 130.0))
    assert old.entries[("BTC", "binance")] == 130.0 and old.realised_pnl_usd is None
    assert Ledger.from_state(old.to_state()) == old


def test_book_trade_cases():
    assert book_trade(0.0, None, 2.0, 10.0) == (2.0, 10.0, 0.0)
    assert book_trade(2.0, 10.0, -2.0, 12.0) == (0.0, None, 4.0)
    assert book_trade(-2.0, 10.0, 2.0, 12.0) == (0.0, None, -4.0)
    assert book_trade(2.0, None, -1.0, 12.0) == (1.0, None, None)
    assert book_trade(2.0, None, -3.0, 12.0) == (-1.0, 12.0, None)


# -- properties --------------------------------------------------------------------------

trades = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.floats(0.001, 50.0),
        st.floats(1.0, 1_000.0),
        st.floats(0.0, 5.0),
        st.sampled_from([("BTC", "binance"), ("BTC", "okx"), ("ETH", "binance")]),
    ),
    max_size=40,
)
marks = st.dictionaries(st.sampled_from(["BTC", "ETH"]), st.floats(1.0, 1_000.0))


@settings(max_examples=300)
@given(trades=trades, marks=marks)
def test_equity_is_starting_equity_plus_realised_plus_unrealised_minus_fees(trades, marks):
    start = 1_000_000.0
    led = Ledger.opening(start)
    for side, qty, price, fee, (asset, venue) in trades:
        led.apply_fill(fill(side, qty, price, fee, asset=asset, venue=venue))
    for asset, price in marks.items():
        led.mark(asset, price)
    assert led.realised_pnl_usd is not None and led.unrealised_pnl_usd is not None
    scale = start + math.fsum(q * p for _, q, p, _, _ in trades)
    assert led.equity_usd == pytest.approx(start + led.realised_pnl_usd + led.unrealised_pnl_usd - led.fees_paid_usd, abs=1e-9 * scale)
    assert Ledger.from_state(led.to_state()) == led


@settings(max_examples=300)
@given(trades=trades)
def test_the_entry_is_the_average_price_of_the_trades_that_opened_the_open_side(trades):
    """Recomputed from scratch: the trades since the position last crossed zero.

    Without a reduction since then, the entry is their volume-weighted price; with
    one (average cost: the rest keeps its entry), it still lies between their prices.
    """
    led = Ledger.opening(1_000_000.0)
    for side, qty, price, fee, (asset, venue) in trades:
        led.apply_fill(fill(side, qty, price, fee, asset=asset, venue=venue))
    for key, held in led.holdings.items():
        signed = [(q if s == "buy" else -q, p) for s, q, p, _, k in trades if k == key]
        position, opened, reduced = 0.0, [], False
        for q, p in signed:
            before, position = position, position + q
            if abs(before) < 1e-12 or (before > 0) != (position > 0):
                opened, reduced = [(abs(position), p)], False  # opened, or crossed zero: the new side starts here
            elif abs(position) > abs(before):
                opened.append((abs(q), p))
            else:
                reduced = True
        qty = math.fsum(q for q, _ in opened)
        if abs(held) > 1e-6 * qty:  # a position left only by rounding dust has no meaningful entry
            assert min(p for _, p in opened) * (1 - 1e-12) <= led.entries[key] <= max(p for _, p in opened) * (1 + 1e-12)
            if not reduced:
                assert led.entries[key] == pytest.approx(math.fsum(q * p for q, p in opened) / qty, rel=1e-9)
