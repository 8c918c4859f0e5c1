"""Property: for random beliefs and random directive sequences, nothing staged breaks a guardrail.

The invariants are recomputed here from scratch (plain sums over what was staged),
not read back from the engine's own running totals.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskgate.config import Guardrails
from deskgate.policy.beliefs import Beliefs, Reservation
from deskgate.policy.engine import evaluate_payload, stage
from deskgate.policy.symbols import SymbolError, forbidden_leg, normalise_symbol, normalise_venue

ASSETS = ["BTC", "ETH", "SOL", "DOGE"]
SPELLINGS = ASSETS + ["btc", " eth ", "SOL/USDT", "dogeusdt", "LUNA", "luna/usdt", "LUNAUSDT", "LUΝA", "ＬＵＮＡ", "UST", "ETH/BTC", "BTCUST", "LU\u200bNA"]
VENUES = ["binance", "BYBIT", " okx ", "ftx", "kraken", "bіnance"]
TOL = 1e-6


@st.composite
def guardrails(draw):
    return Guardrails(
        max_drawdown_pct=draw(st.floats(1, 50)),
        max_position_pct=draw(st.floats(1, 150)),
        min_confidence=draw(st.floats(0, 0.9)),
        max_leverage=draw(st.floats(0.2, 5)),
        require_human_approval_above_usd=draw(st.floats(0, 1e6)),
    )


@st.composite
def beliefs(draw, tripped=st.booleans()):
    equity = draw(st.floats(1_000, 10_000_000))
    peak = equity * draw(st.one_of(st.just(1.0), st.floats(1.0, 1.6)))
    positions = draw(
        st.dictionaries(st.sampled_from(ASSETS), st.one_of(st.floats(-0.3 * equity, 0.3 * equity), st.floats(-2 * equity, 2 * equity)), max_size=4)
    )
    pending = [
        Reservation(f"p{i}", a, side, n)
        for i, (a, side, n) in enumerate(
            draw(st.lists(st.tuples(st.sampled_from(ASSETS), st.sampled_from(["buy", "sell"]), st.floats(1, 0.3 * equity)), max_size=5))
        )
    ]
    prices = {a: draw(st.floats(0.01, 100_000)) for a in ["BTC", "ETH", *draw(st.sets(st.sampled_from(ASSETS[2:])))]}
    return Beliefs(
        equity_usd=equity,
        peak_equity_usd=peak,
        positions=positions,
        pending=pending,
        breaker_tripped=draw(tripped),
        prices=prices,
        confidence_damping=draw(st.sampled_from([1.0, 1.0, 0.8, 0.5])),
    )


@st.composite
def directive_lines(draw, equity: float):
    """Mostly plausible directives (so many stage and reservations pile up), some hostile."""
    n = draw(st.integers(1, 25))
    lines = []
    valid_venues = st.sampled_from(["binance", "BYBIT", " okx "])
    for i in range(n):
        d = {
            "directive_id": f"x{i}",
            "asset": draw(st.one_of(st.sampled_from(ASSETS[:2]), st.sampled_from(SPELLINGS))),
            "venue": draw(st.one_of(valid_venues, valid_venues, st.sampled_from(VENUES))),
            "side": draw(st.sampled_from(["buy", "sell"])),
            "notional_usd": draw(
                st.one_of(
                    st.floats(0.001, 0.6).map(lambda f: f * equity),
                    st.floats(1, 3_000_000),
                    st.floats(-10, 0),
                    st.just(float("nan")),
                )
            ),
            "leverage": draw(st.one_of(st.floats(0.1, 2), st.floats(0.1, 10))),
            "confidence": draw(st.one_of(st.floats(0.6, 1), st.floats(-0.1, 1.1))),
            "memo": {"signal_evidence": "s", "position_context": "p", "proposed_action": "a", "expected_outcome": "e"},
        }
        if draw(st.integers(0, 9)) == 0:
            d["directive_id"] = f"x{draw(st.integers(0, n))}"  # a duplicate id now and then
        text = json.dumps(d)
        if draw(st.integers(0, 14)) == 0:
            text = text[: len(text) // 2]  # truncated JSON
        lines.append(text.encode())
    return lines


def run_sequence(lines, b: Beliefs, g: Guardrails):
    """The factory's path: evaluate, refuse repeated ids, stage (which reserves)."""
    seen, staged = set(), []
    for line in lines:
        ev = evaluate_payload(line, b, g)
        if ev.directive_id is not None and ev.directive_id in seen:
            continue
        if ev.directive_id is not None:
            seen.add(ev.directive_id)
        if stage(ev, b):
            staged.append(ev)
    return staged


def assert_nothing_staged_breaks_a_guardrail(initial: Beliefs, staged, g: Guardrails, damping: float) -> None:
    equity = initial.equity_usd
    forbidden = frozenset(g.forbidden_assets)
    buys = {a: sum(r.notional_usd for r in initial.pending.values() if r.asset == a and r.side == "buy") for a in ASSETS}
    sells = {a: sum(r.notional_usd for r in initial.pending.values() if r.asset == a and r.side == "sell") for a in ASSETS}
    touched = {"buy": set(), "sell": set()}
    for ev in staged:
        d = ev.directive
        assert not initial.breaker_tripped
        assert initial.drawdown_pct <= g.max_drawdown_pct + TOL
        symbol = normalise_symbol(d.asset)  # raises if not plain ASCII
        assert forbidden_leg(symbol, forbidden) is None
        assert normalise_venue(d.venue) in g.allowed_venues
        assert d.confidence * damping >= g.min_confidence - TOL
        assert d.leverage <= g.max_leverage * (1 + TOL)
        assert math.isfinite(d.notional_usd) and d.notional_usd > 0
        assert symbol.base in initial.prices
        book = buys if d.side == "buy" else sells
        book[symbol.base] = book.get(symbol.base, 0.0) + d.notional_usd
        touched[d.side].add(symbol.base)
    limit = g.max_position_pct / 100 * equity * (1 + TOL)
    for a in touched["buy"]:
        assert abs(initial.positions.get(a, 0.0) + buys[a]) <= limit
    for a in touched["sell"]:
        assert abs(initial.positions.get(a, 0.0) - sells[a]) <= limit
    if staged:
        assets = set(initial.positions) | set(buys) | set(sells)
        gross = sum(
            max(abs(initial.positions.get(a, 0.0) + buys.get(a, 0.0)), abs(initial.positions.get(a, 0.0) - sells.get(a, 0.0)))
            for a in assets
        )
        assert gross <= g.max_leverage * equity * (1 + TOL)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=beliefs(), g=guardrails(), data=st.data())
def test_nothing_staged_ever_violates_a_guardrail(b, g, data):
    lines = data.draw(directive_lines(b.equity_usd))
    initial = b.copy()
    staged = run_sequence(lines, b, g)
    assert_nothing_staged_breaks_a_guardrail(initial, staged, g, initial.confidence_damping)


@settings(max_examples=150, deadline=None)
@given(b=beliefs(tripped=st.just(True)), g=guardrails(), data=st.data())
def test_a_tripped_breaker_stages_nothing(b, g, data):
    lines = data.draw(directive_lines(b.equity_usd))
    assert run_sequence(lines, b, g) == []


@settings(max_examples=150, deadline=None)
@given(b=beliefs(tripped=st.just(False)), g=guardrails(), data=st.data())
def test_running_totals_match_a_fresh_recount(b, g, data):
    lines = data.draw(directive_lines(b.equity_usd))
    run_sequence(lines, b, g)
    fresh = Beliefs(b.equity_usd, b.peak_equity_usd, dict(b.positions), list(b.pending.values()))
    for a in ASSETS:
        assert math.isclose(b.pending_buy(a), fresh.pending_buy(a), rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(b.pending_sell(a), fresh.pending_sell(a), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(b.gross_exposure, fresh.gross_exposure, rel_tol=1e-9, abs_tol=1e-6)


def test_releasing_every_reservation_returns_to_exactly_zero():
    b = Beliefs(100_000.0)
    for i in range(1000):
        b.reserve(Reservation(f"r{i}", "BTC", "buy", 0.1 + i * 1e-3))
    for i in range(1000):
        b.release(f"r{i}")
    assert b.pending_buy("BTC") == 0.0 and b.gross_exposure == 0.0


def test_symbol_errors_are_the_only_way_an_asset_is_refused_as_malformed():
    for s in SPELLINGS:
        try:
            normalise_symbol(s)
        except SymbolError as exc:
            assert str(exc)


@st.composite
def leverage_bound_guardrails(draw):
    """Position limits loose, leverage tight: the portfolio leverage check must do the work."""
    return Guardrails(
        max_drawdown_pct=50.0,
        max_position_pct=draw(st.floats(80, 150)),
        min_confidence=0.0,
        max_leverage=draw(st.floats(0.2, 1.0)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=beliefs(tripped=st.just(False)), g=leverage_bound_guardrails(), data=st.data())
def test_portfolio_leverage_holds_with_pending_reservations(b, g, data):
    lines = data.draw(directive_lines(b.equity_usd))
    initial = b.copy()
    staged = run_sequence(lines, b, g)
    assert_nothing_staged_breaks_a_guardrail(initial, staged, g, initial.confidence_damping)
