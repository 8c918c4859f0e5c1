"""Price sources, the paper venue's fill, and the ledger's arithmetic."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from deskgate.bus.subjects import Role
from deskgate.config import Mission
from deskgate.domain.execution import ApprovalRef, Fill, Order
from deskgate.domain.market import Bar
from deskgate.execution.paper import PaperVenue
from deskgate.execution.reports import Answered, answers
from deskgate.execution.venue import OrderTicket
from deskgate.marketdata.csv_replay import CsvError, load_bars
from deskgate.marketdata.service import MarketDataService
from deskgate.marketdata.simulator import Simulator
from deskgate.portfolio.ledger import Ledger

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_simulator_is_deterministic_and_well_formed():
    a = Simulator(["BTC", "ETH"], {"BTC": 65_000, "ETH": 3_500}, seed=3).bars(NOW, 50)
    b = Simulator(["BTC", "ETH"], {"BTC": 65_000, "ETH": 3_500}, seed=3).bars(NOW, 50)
    assert [x.close for x in a] == [x.close for x in b]
    assert [x.close for x in a] != [x.close for x in Simulator(["BTC", "ETH"], {"BTC": 65_000, "ETH": 3_500}, seed=4).bars(NOW, 50)]
    for bar in a:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high


def test_csv_replay_loads_in_time_order(tmp_path):
    p = tmp_path / "bars.csv"
    p.write_text("asset,timestamp,open,high,low,close,volume\nbtc,1700000060,2,3,1,2.5,10\nBTC/USDT,1700000000,1,2,1,2,5\n")
    bars = load_bars(p)
    assert [b.close for b in bars] == [2.0, 2.5]
    assert {b.asset for b in bars} == {"BTC"}


@pytest.mark.parametrize(
    "body, message",
    [
        ("timestamp,asset,open,high,low,close\n", r"missing column\(s\) volume"),
        ("timestamp,asset,open,high,low,close,volume\nnot-a-time,BTC,1,1,1,1,1\n", "line 2"),
        ("timestamp,asset,open,high,low,close,volume\n1,BTC,1,1,1,1,1\n2,BTC,5,4,1,5,1\n", "line 3: high/low"),
        ("timestamp,asset,open,high,low,close,volume\n1,BTC,1,1,1,nan,1\n", "finite"),
        ("timestamp,asset,open,high,low,close,volume\n1,LUΝA,1,1,1,1,1\n", "not plain ASCII"),
        ("timestamp,asset,open,high,low,close,volume\n1,BTC,0,0,0,0,1\n", "greater than 0"),
        ("timestamp,asset,open,high,low,close,volume\n", "no bars"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path, body, message):
    p = tmp_path / "bars.csv"
    p.write_text(body)
    with pytest.raises(CsvError, match=message):
        load_bars(p)


async def test_csv_replay_publishes_bars_on_the_bus(bus):
    mission = Mission.model_validate(
        {"marketdata": {"source": "csv", "assets": ["BTC", "ETH"], "csv": {"path": str(EXAMPLES / "bars.csv"), "speed": 6000}}}
    )
    observer, _ = await bus.connect(Role.OBSERVER)
    got: list[Bar] = []

    async def cb(msg):
        got.append(Bar.model_validate_json(msg.data))

    await observer.subscribe("market.data.bars.>", cb=cb)
    service = MarketDataService(mission, bus.data_dir)
    task = asyncio.create_task(service.run())
    for _ in range(100):
        if len(got) >= 6:
            break
        await asyncio.sleep(0.05)
    service.stop()
    await task
    await observer.close()
    assert [(b.asset, b.close) for b in got] == [
        ("BTC", 65250.0), ("ETH", 3510.0), ("BTC", 65300.0), ("ETH", 3525.0), ("BTC", 64950.0), ("ETH", 3480.0)
    ]


async def test_simulator_service_resumes_from_the_last_price(bus):
    mission = Mission.model_validate({"marketdata": {"assets": ["BTC"], "interval_seconds": 0.05, "start_prices": {"BTC": 100.0}}})
    md, _ = await bus.connect(Role.MARKETDATA)
    bar = Bar(asset="BTC", ts=NOW, open=500, high=500, low=500, close=500, volume=1, interval_seconds=1, source="t")
    await md.jetstream().publish("market.data.bars.BTC", bar.to_bytes())
    await md.close()
    observer, _ = await bus.connect(Role.OBSERVER)
    got: list[Bar] = []

    async def cb(msg):
        got.append(Bar.model_validate_json(msg.data))

    await observer.subscribe("market.data.bars.BTC", cb=cb)
    service = MarketDataService(mission, bus.data_dir)
    task = asyncio.create_task(service.run())
    while len(got) < 2:
        await asyncio.sleep(0.05)
    service.stop()
    await task
    await observer.close()
    assert got[0].open == 500.0  # continues from the bus, not from start_prices


def order(side="buy", notional=10_000.0, ref=100.0) -> Order:
    return Order(
        order_id="o1", directive_id="d1", venue="binance", asset="BTC", side=side, notional_usd=notional, leverage=1.0,
        reference_price=ref, created_at=NOW, approvals=[ApprovalRef(approval_id="a", principal="p", decided_at=NOW)],
    )


def fill_order(o: Order, price: float | None, slippage_bps: float, fee_bps: float, now) -> Fill:
    """The paper venue's answer to `o`, as the executor reads it."""
    venue = PaperVenue("paper", {} if price is None else {o.asset: price}, slippage_bps, fee_bps)
    ticket = OrderTicket(client_id="dgx", symbol=f"{o.asset}/USD", side=o.side, amount=1.0, price=o.reference_price, notional_usd=o.notional_usd)
    (fill,), _ = answers(o, asyncio.run(venue.place(ticket)), Answered(), now)
    return fill


def test_paper_fill_slips_against_us_and_charges_fees():
    buy = fill_order(order("buy"), 100.0, slippage_bps=10, fee_bps=5, now=NOW)
    assert buy.status == "filled" and buy.price == pytest.approx(100.1) and buy.fee_usd == pytest.approx(5.0)
    assert buy.quantity == pytest.approx(10_000 / 100.1) and buy.slippage_bps == pytest.approx(10)
    assert buy.notional_usd == 10_000.0 and buy.final and buy.fill_id == "o1-f"
    sell = fill_order(order("sell"), 100.0, slippage_bps=10, fee_bps=0, now=NOW)
    assert sell.price == pytest.approx(99.9)
    no_price = fill_order(order(), None, 0, 0, NOW)
    assert no_price.status == "refused" and no_price.final and "no price for BTC" in no_price.reason


def _fill(side, qty, price, notional, fee=0.0, asset="BTC") -> Fill:
    return Fill(fill_id=f"f{side}{qty}", order_id="o", directive_id="d", venue="binance", asset=asset, side=side,
                status="filled", quantity=qty, price=price, notional_usd=notional, fee_usd=fee, filled_at=NOW)


def test_ledger_books_fills_and_marks():
    led = Ledger.opening(100_000.0)
    led.mark("BTC", 100.0)
    led.apply_fill(_fill("buy", 100.0, 100.0, 10_000.0, fee=10.0))
    assert led.cash_usd == pytest.approx(89_990.0)
    assert led.equity_usd == pytest.approx(99_990.0)
    led.mark("BTC", 110.0)
    assert led.equity_usd == pytest.approx(100_990.0) and led.peak_equity_usd == pytest.approx(100_990.0)
    led.mark("BTC", 50.0)
    assert led.positions_by_asset() == {"BTC": pytest.approx(5_000.0)}
    assert led.drawdown_pct == pytest.approx((100_990 - 94_990) / 100_990 * 100)
    assert led.leverage == pytest.approx(5_000 / 94_990)
    led.rebase_breaker_peak()
    assert led.breaker_drawdown_pct == 0.0 and led.drawdown_pct > 5
    led.apply_fill(_fill("sell", 100.0, 50.0, 5_000.0))
    assert led.holdings == {} and led.equity_usd == pytest.approx(94_990.0)
    again = Ledger.from_state(led.to_state())
    assert again == led
    with pytest.raises(ValueError):
        led.mark("BTC", float("nan"))


def test_short_positions_count_against_equity():
    led = Ledger.opening(10_000.0)
    led.mark("ETH", 100.0)
    led.apply_fill(_fill("sell", 10.0, 100.0, 1_000.0, asset="ETH"))
    led.mark("ETH", 150.0)
    assert led.positions_by_asset() == {"ETH": pytest.approx(-1_500.0)}
    assert led.equity_usd == pytest.approx(9_500.0)


async def test_the_service_publishes_window_summaries_and_trend_signals_for_the_agents(bus):
    from deskgate.bus.reader import read_stream
    from deskgate.domain.market import MarketSummary, Signal

    mission = Mission.model_validate(
        {"marketdata": {"source": "csv", "assets": ["BTC", "ETH"], "summary_window_seconds": 60, "signal_every_bars": 2,
                        "csv": {"path": str(EXAMPLES / "bars.csv"), "speed": 100_000}}}
    )
    service = MarketDataService(mission, bus.data_dir)
    task = asyncio.create_task(service.run())
    for _ in range(200):
        if service.published >= len(load_bars(EXAMPLES / "bars.csv")):
            break
        await asyncio.sleep(0.05)
    service.stop()
    await task
    observer, _ = await bus.connect(Role.OBSERVER)
    summaries = [MarketSummary.model_validate_json(m.data) async for m in read_stream(observer, "MARKET", "market.data.aggregated.>")]
    signals = [Signal.model_validate_json(m.data) async for m in read_stream(observer, "MARKET", "market.data.signals.>")]
    await observer.close()
    assert summaries and len(summaries) == service.summaries
    assert {s.asset for s in summaries} == {"BTC", "ETH"}
    first = summaries[0]
    assert first.summary_id.startswith(f"sum:{first.asset}:") and first.window_end - first.window_start == timedelta(seconds=60)
    assert signals and all(0 <= s.probability_up <= 1 for s in signals) and len(signals) == service.signals
