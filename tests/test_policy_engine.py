"""The policy engine, check by check, with the limits at their edges."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import directive, raw

from deskgate.config import Guardrails
from deskgate.domain.directive import Directive
from deskgate.policy.beliefs import Beliefs, BeliefsFile, Reservation
from deskgate.policy.engine import evaluate, evaluate_payload, price_band_check, reevaluate, stage

G = Guardrails()


def beliefs(**kw) -> Beliefs:
    kw.setdefault("equity_usd", 100_000.0)
    kw.setdefault("prices", {"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0})
    return Beliefs(**kw)


def check(ev, name):
    return next(c for c in ev.checks if c.name == name)


def run(d: dict, b: Beliefs | None = None, g: Guardrails = G):
    return evaluate_payload(raw(d), b or beliefs(), g)


def test_a_clean_directive_is_staged_and_every_check_reported():
    ev = run(directive(notional_usd=20_000))
    assert ev.decision == "staged"
    names = [c.name for c in ev.checks]
    assert names == [
        "schema", "breaker", "drawdown", "asset", "venue", "confidence", "position",
        "order_leverage", "portfolio_leverage", "market_price", "explicit_approval",
    ]
    pos = check(ev, "position")
    assert (pos.observed, pos.limit, pos.passed) == (20.0, 25.0, True)


def test_all_failures_are_reported_not_just_the_first():
    ev = run(directive(asset="LUNA", venue="ftx", confidence=0.1, leverage=10))
    failed = {c.name for c in ev.checks if not c.passed}
    assert {"asset", "venue", "confidence", "order_leverage"} <= failed
    assert ev.primary_reason == "asset"
    for c in ev.checks:
        if not c.passed:
            assert c.reason and c.limit is not None


@pytest.mark.parametrize(
    "notional, staged",
    [(25_000.0, True), (25_000.01, False)],
)
def test_position_limit_is_inclusive(notional, staged):
    assert run(directive(notional_usd=notional)).staged is staged


def test_confidence_limit_is_inclusive():
    assert run(directive(confidence=0.65)).staged
    assert not run(directive(confidence=0.6499)).staged


def test_leverage_limit_is_inclusive():
    assert run(directive(leverage=3.0)).staged
    ev = run(directive(leverage=3.01))
    assert not check(ev, "order_leverage").passed


def test_explicit_approval_strictly_above_the_threshold():
    b = beliefs(equity_usd=1_000_000.0)
    assert not run(directive(notional_usd=50_000), b).explicit_approval
    ev = run(directive(notional_usd=50_000.01), b)
    assert ev.staged and ev.explicit_approval
    assert check(ev, "explicit_approval").passed


def test_position_counts_existing_position_and_pending_intentions():
    b = beliefs(positions={"BTC": 10_000.0})
    b.reserve(Reservation("p1", "BTC", "buy", 10_000.0))
    ev = run(directive(notional_usd=5_000.01), b)
    assert not ev.staged
    assert check(ev, "position").observed == pytest.approx(25.00001)
    assert run(directive(notional_usd=5_000.0), b).staged


def test_five_directives_of_twenty_percent_never_pass_together():
    b = beliefs()
    staged = []
    for i in range(5):
        ev = run(directive(f"d{i}", notional_usd=20_000), b)
        staged.append(stage(ev, b))
    assert staged == [True, False, False, False, False]


def test_a_reducing_trade_is_allowed_even_when_over_the_limit():
    # Equity fell so the long is now 30%: a sell that brings it to 20% passes.
    b = beliefs(positions={"BTC": 30_000.0})
    assert run(directive(side="sell", notional_usd=10_000), b).staged
    assert not run(directive(side="buy", notional_usd=1), b).staged


def test_the_agents_own_position_figure_is_refused():
    ev = run(directive(position_pct=1.0))
    assert not ev.staged
    assert "unknown field" in check(ev, "schema").reason


def test_portfolio_leverage_counts_every_asset_and_pending():
    g = Guardrails(max_position_pct=100.0, max_leverage=1.0)
    b = beliefs(positions={"BTC": 50_000.0, "ETH": 40_000.0})
    ev = run(directive(asset="SOL", notional_usd=10_000), b, g)
    assert ev.staged and check(ev, "portfolio_leverage").observed == pytest.approx(1.0)
    b.reserve(Reservation("p", "SOL", "buy", 5_000.0))
    ev = run(directive(asset="SOL", notional_usd=5_000.01), b, g)
    assert not check(ev, "portfolio_leverage").passed


def test_breaker_tripped_rejects_everything():
    ev = run(directive(), beliefs(breaker_tripped=True))
    assert not ev.staged and ev.primary_reason == "breaker"


def test_drawdown_beyond_the_limit_rejects_before_the_breaker_trips():
    assert run(directive(), beliefs(equity_usd=85_000.0, peak_equity_usd=100_000.0)).staged  # exactly 15%
    ev = run(directive(), beliefs(equity_usd=84_999.0, peak_equity_usd=100_000.0))
    assert not ev.staged and ev.primary_reason == "drawdown"


def test_governor_damping_applies_before_the_confidence_check():
    ev = run(directive(confidence=0.8), beliefs(confidence_damping=0.5))
    c = check(ev, "confidence")
    assert not c.passed and c.observed == 0.4 and "Governor" in c.reason


def test_no_market_price_means_no_staging_in_the_factory_but_not_offline():
    assert not check(run(directive(asset="DOGE")), "market_price").passed
    offline = Beliefs(equity_usd=100_000.0)
    ev = run(directive(asset="DOGE"), offline)
    assert ev.staged and "market_price" not in [c.name for c in ev.checks]


def test_non_positive_equity_refuses_positions():
    ev = run(directive(), beliefs(equity_usd=0.0, peak_equity_usd=1.0))
    assert not check(ev, "position").passed


# -- bad input: each gets a rejection with a reason ---------------------------------------


@pytest.mark.parametrize(
    "payload, expect",
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1,2]", "should be an object"),
        (raw(directive(notional_usd="1000")), "notional_usd: Input should be a valid number"),
        (raw(directive(notional_usd=-5)), "notional_usd: Input should be greater than 0"),
        (raw(directive(notional_usd=0)), "notional_usd: Input should be greater than 0"),
        (raw(directive(confidence=1.5)), "confidence: Input should be less than or equal to 1"),
        (raw(directive(side="BUY")), "side"),
        (raw(directive(directive_id="a.b")), "directive_id"),
        (raw(directive(memo={})), "memo.signal_evidence: Field required"),
        (raw({k: v for k, v in directive().items() if k != "venue"}), "venue: Field required"),
        (raw(directive(extra_field=1)), "extra_field: unknown field"),
        (raw(directive(leverage=True)), "leverage: Input should be a valid number"),
        (json.dumps(directive()).replace("10000.0", "NaN").encode(), "finite number"),
        (json.dumps(directive()).replace("10000.0", "Infinity").encode(), "finite number"),
        (json.dumps(directive()).replace("10000.0", "1e999").encode(), "finite number"),
        (b'{"directive_id": "x"}' + b" " * 70_000, "limited to 65536"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_bad_input_is_rejected_with_a_schema_reason(payload, expect):
    ev = evaluate_payload(payload, beliefs(), G)
    assert ev.decision == "rejected"
    schema = check(ev, "schema")
    assert not schema.passed
    assert expect in schema.reason


def test_invalid_directive_keeps_its_id_when_it_has_a_usable_one():
    assert evaluate_payload(raw(directive("keep-me", confidence=2)), beliefs(), G).directive_id == "keep-me"
    assert evaluate_payload(raw(directive("bad id!", confidence=0.9)), beliefs(), G).directive_id is None


@pytest.mark.parametrize("asset", ["LUΝA", "ＬＵＮＡ", "LUNAUSDT", "luna/usdt", "LU\u200bNA"])
def test_lookalike_symbols_are_rejected_with_the_asset_reason(asset):
    ev = run(directive(asset=asset))
    a = check(ev, "asset")
    assert not a.passed and "LUNA" in a.reason


# -- time of use ----------------------------------------------------------------------------


def test_reevaluate_checks_expiry_and_price_band_with_a_given_now():
    d = Directive.model_validate(directive())
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    b = beliefs(prices={"BTC": 66_300.0})  # +2.0% from 65,000: exactly on the band
    ev = reevaluate(d, b, G, price_at_staging=65_000.0, expires_at=now, now=now, band_pct=2.0)
    assert ev.staged
    late = reevaluate(d, b, G, price_at_staging=65_000.0, expires_at=now, now=now + timedelta(seconds=1), band_pct=2.0)
    assert not check(late, "expiry").passed
    moved = reevaluate(d, beliefs(prices={"BTC": 66_400.0}), G, price_at_staging=65_000.0, expires_at=now, now=now, band_pct=2.0)
    assert not check(moved, "price_band").passed


def test_price_band_without_a_price_fails_closed():
    assert not price_band_check(100.0, None, 2.0).passed


def test_beliefs_file_normalises_and_validates():
    bf = BeliefsFile.model_validate(
        {
            "equity_usd": 100_000,
            "peak_equity_usd": 120_000,
            "positions": {"btc": 5_000, "BTC/USDT": 5_000},
            "pending": [{"directive_id": "p", "asset": "eth", "side": "sell", "notional_usd": 1_000}],
            "breaker": "tripped",
        }
    )
    b = bf.to_beliefs()
    assert b.positions == {"BTC": 10_000.0}
    assert b.pending_sell("ETH") == 1_000.0
    assert b.breaker_tripped
    with pytest.raises(ValueError):
        BeliefsFile.model_validate({"equity_usd": 1, "peak_equity_usd": 1, "positions": {"LUΝA": 1}})


def test_evaluate_has_no_side_effects_on_beliefs():
    b = beliefs()
    before = (dict(b.positions), dict(b.pending), b.gross_exposure)
    evaluate(Directive.model_validate(directive()), b, G)
    assert before == (dict(b.positions), dict(b.pending), b.gross_exposure)
