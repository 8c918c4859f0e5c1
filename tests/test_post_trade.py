"""Post-trade analysis and the monthly review: pure functions over fills, drafts and memory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deskgate.agents import monthly
from deskgate.agents.post_trade import Drafted, combine, execution_analysis, horizon_outcome
from deskgate.domain.execution import Fill
from deskgate.memory.store import Memory

T0 = datetime(2026, 1, 30, 23, 0, tzinfo=timezone.utc)


def fill(side="buy", price=101.0, reference=100.9, slippage=9.9):
    q = 1000.0 / price
    return Fill(fill_id="f1", order_id="o1", directive_id="d1", venue="binance", asset="BTC", side=side, status="filled",
                quantity=q, price=price, notional_usd=q * price, fee_usd=1.0, reference_price=reference, slippage_bps=slippage, filled_at=T0)


def drafted(side="buy", price=100.0):
    return Drafted(directive_id="d1", asset="BTC", side=side, notional_usd=1000.0, confidence=0.7, cycle="intraday",
                   drafted_at=T0 - timedelta(minutes=30), price_at_draft=price, expected_outcome="BTC up 2% in a day")


def test_execution_is_judged_against_the_venue_model_and_the_draft_price():
    a = execution_analysis(fill(), drafted(), model_slippage_bps=5.0)
    assert a.title == "Post-trade: d1 buy BTC"
    assert "+4.9 bps" in a.text  # 9.9 against the model's 5
    assert "the fill cost +100.0 bps against that price" in a.text  # paid 101 for a draft at 100
    assert "Expected: BTC up 2% in a day" in a.text
    assert set(a.tags) == {"post-trade", "execution", "btc", "buy", "slippage-over-model"}
    # A sell filled above the draft price cost nothing: the sign follows the directive.
    assert "cost -100.0 bps" in execution_analysis(fill("sell"), drafted("sell"), 5.0).text
    assert "slippage-within-model" in execution_analysis(fill(slippage=2.0), None, 5.0).tags
    assert "no comparison with the draft" in execution_analysis(fill(), None, 5.0).text


@pytest.mark.parametrize("side,now,hit", [("buy", 105.0, True), ("buy", 95.0, False), ("sell", 95.0, True), ("sell", 105.0, False)])
def test_the_outcome_at_the_horizon_is_the_move_in_the_directives_direction(side, now, hit):
    record = drafted(side).model_copy(update={"fill_price": 100.0, "filled_at": T0})
    a, move, was_hit = horizon_outcome(record, now, T0 + timedelta(hours=24))
    assert was_hit is hit and move == pytest.approx(500.0 if hit else -500.0)
    assert ("hit" if hit else "miss") in a.tags and "24 h later" in a.text


def test_a_month_is_reviewed_once_at_its_last_day_from_what_memory_holds(tmp_path):
    m = Memory.open(tmp_path / "memory.db")
    for day in (28, 29, 30):
        at = datetime(2026, 1, day, 23, 0, tzinfo=timezone.utc)
        m.archive(f"End-of-day review 2026-01-{day}", f"# r\n## Regime\nBTC trending day {day}\n", tags=["eod-review", "regime"], at=at)
    m.archive("Outcome at horizon: d1 buy BTC", "x", tags=["post-trade", "outcome", "btc", "hit"], at=T0)
    m.archive("Outcome at horizon: d2 sell ETH", "x", tags=["post-trade", "outcome", "eth", "miss"], at=T0)
    m.archive("Post-trade: d1 buy BTC", "x", tags=["post-trade", "execution", "btc", "buy", "slippage-over-model"], at=T0)
    m.remember("note", "Governor started damping: drift in sizing", at=T0)
    m.remember("note", "Governor cleared by alice: checked", at=T0 + timedelta(hours=1))
    assert monthly.write_due(m, datetime(2026, 1, 30, 23, 0, tzinfo=timezone.utc)) == []  # not the month's last day
    (doc_id,) = monthly.write_due(m, datetime(2026, 1, 31, 23, 0, tzinfo=timezone.utc))
    (doc,) = m.archival_search(tags=["monthly-review"])
    assert doc.id == doc_id and doc.title == "Monthly review 2026-01"
    assert "- 01-29: BTC trending day 29" in doc.text
    assert "1 of 2 executed directives judged at their horizon went their way (50%)" in doc.text
    assert "- BTC: 1 of 1" in doc.text and "- ETH: 0 of 1" in doc.text
    assert "1 fills analysed; 1 with slippage over the venue model" in doc.text
    assert "Damping started 1 time(s), cleared by a principal 1 time(s)" in doc.text
    # Once: neither the next day's review nor a later one writes it again.
    assert monthly.write_due(m, datetime(2026, 2, 1, 23, 0, tzinfo=timezone.utc)) == []
    # A month whose end the desk missed is reviewed at the first review after.
    m.archive("End-of-day review 2026-02-10", "# r\n## Regime\nquiet\n", tags=["eod-review"], at=datetime(2026, 2, 10, 23, tzinfo=timezone.utc))
    assert len(monthly.write_due(m, datetime(2026, 3, 2, 23, 0, tzinfo=timezone.utc))) == 1
    assert m.has_document("Monthly review 2026-02")


def part(fill_id, quantity, price, slippage, final=False, at=T0):
    return Fill(fill_id=fill_id, order_id="o1", directive_id="d1", venue="binance", asset="BTC", side="buy", status="filled",
                quantity=quantity, price=price, notional_usd=quantity * price, fee_usd=0.5, reference_price=100.0,
                slippage_bps=slippage, filled_at=at, final=final)


def test_the_parts_of_one_order_combine_into_one_fill_at_their_average_price():
    one, two = part("f1", 2.0, 100.0, 0.0), part("f2", 1.0, 103.0, 30.0, final=True, at=T0 + timedelta(minutes=5))
    both = combine(combine(None, one), two)
    assert both.quantity == pytest.approx(3.0) and both.notional_usd == pytest.approx(303.0)
    assert both.price == pytest.approx(101.0) and both.fee_usd == pytest.approx(1.0)
    assert both.slippage_bps == pytest.approx(30.0 * 103 / 303)  # weighted by notional
    assert both.fill_id == "f1" and both.final and both.filled_at == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError, match="only fills combine"):
        combine(one, Fill(fill_id="e", order_id="o1", directive_id="d1", venue="binance", asset="BTC", side="buy",
                          status="cancelled", filled_at=T0))
    with pytest.raises(ValueError, match="not one order"):
        combine(one, two.model_copy(update={"directive_id": "d2"}))


def test_a_partly_filled_order_is_judged_on_what_filled_and_says_how_the_rest_ended():
    filled = combine(None, part("f1", 4.0, 101.0, 9.9))
    ended = Fill(fill_id="f1-end", order_id="o1", directive_id="d1", venue="binance", asset="BTC", side="buy", status="cancelled",
                 filled_at=T0, reason="partly filled: 404.00 of 1000.00 USD")
    a = execution_analysis(filled, drafted(), 5.0, ended)
    assert "Partly filled: 404.00 USD of 1,000.00 USD drafted; the rest cancelled (partly filled: 404.00 of 1000.00 USD)." in a.text
    assert "partly-filled" in a.tags and "the fill cost +100.0 bps against that price" in a.text
    assert "partly-filled" not in execution_analysis(filled, drafted(), 5.0).tags
