"""Mandates per agent: mission.yaml refuses any that loosens a guardrail, the engine adds
one check per key, and a mandate never makes a verdict more permissive (property tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
from conftest import directive, raw
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_policy_properties import SPELLINGS, VENUES, assert_nothing_staged_breaks_a_guardrail, directive_lines
from test_policy_properties import beliefs as any_beliefs
from test_policy_properties import guardrails as any_guardrails

from deskgate.config import Guardrails, Mandate, Mission, MissionError, load_mission, mandate_loosenings, parse_mission, render_mission_template
from deskgate.domain.directive import Directive
from deskgate.domain.evaluation import CHECK_NAMES, MANDATE_CHECK_NAMES
from deskgate.policy.beliefs import Beliefs, Reservation
from deskgate.policy.engine import evaluate, evaluate_payload, reevaluate, stage
from deskgate.policy.symbols import SymbolError, normalise_symbol, normalise_venue

G = Guardrails()
NOW = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)
TOL = 1e-6


def write(tmp_path, text: str):
    p = tmp_path / "mission.yaml"
    p.write_text(text)
    return p


def beliefs(**kw) -> Beliefs:
    kw.setdefault("equity_usd", 100_000.0)
    kw.setdefault("prices", {"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0})
    return Beliefs(**kw)


def check(ev, name):
    return next(c for c in ev.checks if c.name == name)


def run(d: dict, mandate: Mandate | None, b: Beliefs | None = None, *, now=NOW, used_today=0):
    return evaluate_payload(raw(d), b or beliefs(), G, mandate=mandate, mandate_now=now, used_today=used_today)


# -- mission.yaml ----------------------------------------------------------------------------


def test_the_templates_commented_example_is_a_valid_mandate(tmp_path):
    text = render_mission_template()
    assert load_mission(write(tmp_path, text)).mandates == {}
    start = text.index("mandates:\n")
    block = text[start:].split("\n\n")[0].replace("\n#   ", "\n  ")
    m = load_mission(write(tmp_path, block + "\n")).mandates["quant-bot"]
    assert (m.assets, m.venues, m.max_notional_usd, m.max_position_pct, m.daily_directives) == (("BTC", "ETH"), ("binance",), 20_000, 10, 50)
    assert m.expires == date(2026, 12, 31)


def test_a_mandate_is_normalised_like_the_guardrails(tmp_path):
    mission = load_mission(write(tmp_path, "mandates: {quant-bot: {assets: ['btc/usdt', ' eth ', ETHUSDT], venues: [' Binance ', OKX]}}"))
    m = mission.mandate_for("quant-bot")
    assert m.assets == ("BTC", "ETH") and m.venues == ("binance", "okx")
    assert mission.mandate_for("someone-else") is None
    assert mission == Mission.model_validate({**mission.model_dump(), "data_dir": mission.data_dir})


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "mandates: {quant-bot: {max_position_pct: 30}}",
            "mandates.quant-bot.max_position_pct: 30 is looser than guardrails.max_position_pct (25); a mandate can only tighten the desk's guardrails",
        ),
        (
            "guardrails: {max_position_pct: 10}\nmandates: {quant-bot: {max_position_pct: 10.5}}",
            "mandates.quant-bot.max_position_pct: 10.5 is looser than guardrails.max_position_pct (10)",
        ),
        (
            "mandates: {quant-bot: {assets: [BTC, luna/usdt]}}",
            "mandates.quant-bot.assets: LUNA is forbidden by guardrails.forbidden_assets (LUNA); a mandate can only tighten",
        ),
        ("mandates: {quant-bot: {assets: [DUST]}}", "mandates.quant-bot.assets: DUST is forbidden by guardrails.forbidden_assets (UST)"),
        (
            "mandates: {quant-bot: {venues: [binance, FTX]}}",
            "mandates.quant-bot.venues: ftx is not in guardrails.allowed_venues (binance, bybit, okx); a mandate can only tighten",
        ),
        (
            "guardrails: {allowed_venues: [okx]}\nmandates: {quant-bot: {venues: [binance]}}",
            "mandates.quant-bot.venues: binance is not in guardrails.allowed_venues (okx)",
        ),
    ],
)
def test_a_mandate_that_loosens_a_guardrail_is_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(MissionError) as err:
        load_mission(write(tmp_path, text))
    assert message in str(err.value)


def test_every_loosening_is_reported_at_once_and_the_model_refuses_it_too(tmp_path):
    text = "mandates:\n  a: {max_position_pct: 26}\n  b: {venues: [kraken], assets: [UST]}\n"
    with pytest.raises(MissionError) as err:
        load_mission(write(tmp_path, text))
    lines = str(err.value).splitlines()
    assert lines[0].endswith("is not a valid mission:")
    named = sorted(line.split(":")[0].strip(" -") for line in lines[1:])
    assert named == ["mandates.a.max_position_pct", "mandates.b.assets", "mandates.b.venues"]
    with pytest.raises(ValidationError, match="mandates.a.max_position_pct"):
        Mission.model_validate({"mandates": {"a": {"max_position_pct": 26}}})


def test_a_limit_equal_to_the_guardrail_tightens_nothing_and_is_allowed(tmp_path):
    m = load_mission(write(tmp_path, "mandates: {quant-bot: {max_position_pct: 25, venues: [binance, bybit, okx]}}")).mandates["quant-bot"]
    assert m.max_position_pct == 25.0


@pytest.mark.parametrize(
    "text, named, problem",
    [
        ("mandates: {quant-bot: {max_leverage: 2}}", "mandates.quant-bot.max_leverage", "unknown key (a mandate takes assets, venues, max_notional_usd"),
        ("mandates: {quant-bot: {asset: [BTC]}}", "mandates.quant-bot.asset", "unknown key"),
        ("mandates: {quant-bot: {max_notional_usd: 0}}", "mandates.quant-bot.max_notional_usd", "greater than 0"),
        ("mandates: {quant-bot: {max_notional_usd: .inf}}", "mandates.quant-bot.max_notional_usd", "finite"),
        ("mandates: {quant-bot: {max_position_pct: -1}}", "mandates.quant-bot.max_position_pct", "greater than 0"),
        ("mandates: {quant-bot: {daily_directives: -1}}", "mandates.quant-bot.daily_directives", "greater than or equal to 0"),
        ("mandates: {quant-bot: {daily_directives: true}}", "mandates.quant-bot.daily_directives", "valid integer"),
        ("mandates: {quant-bot: {daily_directives: 2.5}}", "mandates.quant-bot.daily_directives", "valid integer"),
        ("mandates: {quant-bot: {assets: []}}", "mandates.quant-bot.assets", "must not be empty: leave the key out"),
        ("mandates: {quant-bot: {venues: []}}", "mandates.quant-bot.venues", "must not be empty"),
        ("mandates: {quant-bot: {assets: [ETH/BTC]}}", "mandates.quant-bot.assets", "quoted in BTC"),
        ("mandates: {quant-bot: {assets: ['LUΝA']}}", "mandates.quant-bot.assets", "not plain ASCII"),
        ("mandates: {quant-bot: {venues: ['bin ance!']}}", "mandates.quant-bot.venues", "venue 'bin ance!'"),
        ("mandates: {quant-bot: {expires: tomorrow}}", "mandates.quant-bot.expires", "must be a date (2026-12-31"),
        ("mandates: {quant-bot: {expires: 1767225600}}", "mandates.quant-bot.expires", "must be a date"),
        ("mandates: {quant-bot: null}", "mandates.quant-bot", "valid dictionary"),
        ("mandates: [quant-bot]", "mandates", "valid dictionary"),
        ("mandates: {Quant Bot: {}}", "mandates", "agent name 'Quant Bot' is not allowed"),
        ("mandates: {agent.x: {}}", "mandates", "agent name 'agent.x' is not allowed"),
    ],
)
def test_a_bad_mandate_is_refused_naming_the_key(tmp_path, text, named, problem):
    with pytest.raises(MissionError) as err:
        load_mission(write(tmp_path, text))
    message = str(err.value)
    assert f"  - {named}: " in message
    assert problem in message


def test_expires_a_bare_date_runs_to_the_end_of_that_utc_day(tmp_path):
    def expires(value: str) -> Mandate:
        return load_mission(write(tmp_path, f"mandates: {{a: {{expires: {value}}}}}")).mandates["a"]

    day = expires("2026-12-31")
    assert day.expires == date(2026, 12, 31) and expires("'2026-12-31'").expires == date(2026, 12, 31)
    assert day.expires_at == datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone.utc)
    assert expires("2026-12-31T18:00:00+02:00").expires_at == datetime(2026, 12, 31, 16, tzinfo=timezone.utc)
    assert expires("'2026-12-31T18:00:00Z'").expires_at == datetime(2026, 12, 31, 18, tzinfo=timezone.utc)
    assert expires("2026-12-31 18:00:00").expires_at == datetime(2026, 12, 31, 18, tzinfo=timezone.utc)  # naive is UTC


# -- the checks -----------------------------------------------------------------------------


def test_without_a_mandate_nothing_changes():
    for d in (directive(), directive(asset="LUNA", venue="ftx"), directive(notional_usd=90_000)):
        plain = evaluate_payload(raw(d), beliefs(), G).to_dict()
        assert run(d, None).to_dict() == plain
        assert run(d, Mandate()).to_dict() == plain  # a mandate that sets nothing adds nothing


def test_the_mandate_checks_come_after_the_guardrails_one_per_key():
    m = Mandate(assets=("BTC",), venues=("binance",), max_notional_usd=20_000, max_position_pct=20, daily_directives=5, expires=date(2026, 12, 31))
    ev = run(directive(notional_usd=20_000), m)
    assert ev.staged
    assert [c.name for c in ev.checks] == [*CHECK_NAMES[:-1], *MANDATE_CHECK_NAMES, "explicit_approval"]
    # A directive that breaks a guardrail and the mandate is counted under the guardrail.
    assert run(directive(asset="SOL", notional_usd=30_000), m).primary_reason == "position"


def test_assets_and_venues():
    m = Mandate(assets=("BTC", "SOL"), venues=("okx",))
    ok = run(directive(asset="sol/usdt", venue=" OKX "), m)
    assert ok.staged and (check(ok, "mandate_asset").observed, check(ok, "mandate_venue").observed) == ("SOL", "okx")
    ev = run(directive(asset="ETHUSDT", venue="binance"), m)
    asset, venue = check(ev, "mandate_asset"), check(ev, "mandate_venue")
    assert (asset.passed, asset.observed, asset.limit) == (False, "ETH", ("BTC", "SOL"))
    assert asset.reason == "ETH is outside the agent's mandate (assets: BTC, SOL)"
    assert (venue.passed, venue.observed, venue.limit) == (False, "binance", ("okx",))
    assert venue.reason == "venue binance is outside the agent's mandate (venues: okx)"
    assert ev.primary_reason == "mandate_asset"
    # What the desk refused is not re-judged by the mandate, only refused again.
    refused = run(directive(asset="LUNA", venue="ftx"), m)
    assert not check(refused, "mandate_asset").passed and "desk's asset check refused it" in check(refused, "mandate_asset").reason
    assert not check(refused, "mandate_venue").passed and "desk's venue check refused it" in check(refused, "mandate_venue").reason


@pytest.mark.parametrize("notional, passed", [(20_000.0, True), (20_000.01, False)])
def test_max_notional_is_inclusive(notional, passed):
    c = check(run(directive(notional_usd=notional), Mandate(max_notional_usd=20_000)), "mandate_notional")
    assert (c.passed, c.observed, c.limit) == (passed, notional, 20_000)
    assert c.reason == ("" if passed else "notional 20,000.01 USD is above the agent's mandate of 20,000.00 USD per directive")


def test_max_position_counts_position_and_pending_like_the_desk():
    m = Mandate(max_position_pct=10)
    b = beliefs(positions={"BTC": 4_000.0})
    assert check(run(directive(notional_usd=6_000), m, b), "mandate_position").passed  # exactly 10%
    ev = run(directive("d2", notional_usd=6_000.01), m, b)
    c = check(ev, "mandate_position")
    assert (c.passed, c.limit) == (False, 10) and c.observed == pytest.approx(10.00001)
    assert c.reason == "BTC would reach 10.00% of equity; the agent's mandate allows 10%"
    assert check(ev, "position").passed  # the desk allows 25%
    sell = run(directive("d3", side="sell", notional_usd=14_000), m, b)  # 4,000 - 14,000: a 10% short
    assert check(sell, "mandate_position").passed
    broke = run(directive("d4"), m, beliefs(equity_usd=0.0))
    assert not check(broke, "mandate_position").passed and check(broke, "mandate_position").observed is None


def test_daily_budget_counts_what_came_before_today():
    m = Mandate(daily_directives=3)
    last = check(run(directive(), m, used_today=2), "mandate_budget")
    assert (last.passed, last.observed, last.limit) == (True, 3, 3)
    over = check(run(directive(), m, used_today=3), "mandate_budget")
    assert (over.passed, over.observed, over.limit) == (False, 4, 3)
    assert over.reason == "this would be the agent's directive number 4 today (UTC); its mandate allows 3 a day"
    assert not run(directive(), Mandate(daily_directives=0)).staged
    with pytest.raises(ValueError, match="used_today must be a count"):
        run(directive(), m, used_today=-1)


def test_expiry_of_a_date_and_of_an_instant():
    by_date = Mandate(expires=date(2026, 6, 30))
    end = datetime(2026, 6, 30, 23, 59, 59, 999_999, tzinfo=timezone.utc)
    assert run(directive(), by_date, now=end).staged
    late = check(run(directive(), by_date, now=end + timedelta(microseconds=1)), "mandate_expiry")
    assert (late.passed, late.observed, late.limit) == (False, "2026-07-01T00:00:00+00:00", end.isoformat())
    assert late.reason == f"the agent's mandate expired at {end.isoformat()} (the end of 2026-06-30, UTC)"
    at = Mandate(expires=NOW)
    assert run(directive(), at, now=NOW).staged  # inclusive, like every limit
    c = check(run(directive(), at, now=NOW + timedelta(seconds=1)), "mandate_expiry")
    assert not c.passed and c.reason == f"the agent's mandate expired at {NOW.isoformat()}"


def test_an_expiring_mandate_needs_the_time():
    m = Mandate(expires=date(2026, 12, 31))
    for call in (
        lambda: evaluate_payload(raw(directive()), beliefs(), G, mandate=m),
        lambda: evaluate_payload(b"{not json", beliefs(), G, mandate=m),  # refused before the bytes are read
        lambda: evaluate(Directive.model_validate(directive()), beliefs(), G, m),
    ):
        with pytest.raises(ValueError, match="this mandate expires .*pass mandate_now"):
            call()
    with pytest.raises(ValueError, match="mandate_now must be timezone-aware"):
        evaluate_payload(raw(directive()), beliefs(), G, mandate=m, mandate_now=datetime(2026, 1, 1))
    assert run(directive(), Mandate(daily_directives=1), now=None).staged  # no expiry: no time needed


def test_at_approval_time_the_mandate_applies_but_the_budget_does_not():
    staged_at = datetime(2026, 6, 30, 23, 50, tzinfo=timezone.utc)
    m = Mandate(daily_directives=0, max_position_pct=10, expires=date(2026, 6, 30))
    d = Directive.model_validate(directive(notional_usd=9_000))

    def approve(b, now):
        return reevaluate(d, b, G, price_at_staging=65_000.0, expires_at=staged_at + timedelta(minutes=15), now=now, band_pct=2.0, mandate=m)

    ok = approve(beliefs(), staged_at + timedelta(minutes=5))
    assert ok.staged and "mandate_budget" not in [c.name for c in ok.checks]
    after = approve(beliefs(), datetime(2026, 7, 1, 0, 1, tzinfo=timezone.utc))
    assert after.primary_reason == "mandate_expiry"  # the approval came after the mandate expired
    grown = approve(beliefs(positions={"BTC": 2_000.0}), staged_at + timedelta(minutes=5))
    assert grown.primary_reason == "mandate_position"  # re-checked against current beliefs


# -- properties -----------------------------------------------------------------------------


@st.composite
def mandates_within(draw, g: Guardrails):
    """Any mandate the mission would accept for these guardrails."""
    assets = draw(st.none() | st.lists(st.sampled_from(["BTC", "ETH", "SOL", "DOGE", "btc/usdt"]), min_size=1, max_size=4))
    venues = draw(st.none() | st.lists(st.sampled_from(g.allowed_venues), min_size=1, max_size=3))
    m = Mandate(
        assets=assets,
        venues=venues,
        max_notional_usd=draw(st.none() | st.floats(1, 2_000_000)),
        max_position_pct=draw(st.none() | st.floats(0.01, g.max_position_pct)),
        daily_directives=draw(st.none() | st.integers(0, 30)),
        expires=draw(st.none() | st.dates(date(2026, 6, 28), date(2026, 7, 2)) | st.datetimes(datetime(2026, 6, 29), datetime(2026, 7, 1), timezones=st.just(timezone.utc))),
    )
    assert mandate_loosenings("a", m, g) == []
    return m


@st.composite
def roomy_guardrails(draw):
    """Guardrails with room, so that the mandate, not the desk, is what refuses."""
    return Guardrails(
        max_drawdown_pct=draw(st.floats(5, 50)),
        max_position_pct=draw(st.floats(30, 150)),
        min_confidence=draw(st.floats(0, 0.8)),
        max_leverage=draw(st.floats(1.5, 5)),
        require_human_approval_above_usd=draw(st.floats(0, 1e6)),
    )


@st.composite
def calm_beliefs(draw):
    """A desk well inside its limits, so that most plausible directives stage and the mandate decides."""
    equity = draw(st.floats(10_000, 10_000_000))
    return Beliefs(
        equity_usd=equity,
        peak_equity_usd=equity * draw(st.floats(1.0, 1.01)),
        positions=draw(st.dictionaries(st.sampled_from(["BTC", "ETH", "SOL"]), st.floats(-0.1 * equity, 0.1 * equity), max_size=3)),
        pending=[
            Reservation(f"r{i}", a, side, n)
            for i, (a, side, n) in enumerate(
                draw(st.lists(st.tuples(st.sampled_from(["BTC", "ETH"]), st.sampled_from(["buy", "sell"]), st.floats(1, 0.05 * equity)), max_size=3))
            )
        ],
        prices={"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0, "DOGE": 0.1},
    )


@st.composite
def one_directive(draw, equity: float, calm: bool, m: Mandate) -> bytes:
    """Calm: plausible, so that most stage and the mandate decides (its notional now and then
    right at the mandate's limit). Otherwise hostile, now and then not a directive at all."""
    if calm:
        notional = st.floats(0.0001, 0.15).map(lambda f: f * equity)
        if m.max_notional_usd is not None:
            notional = notional | st.sampled_from([1 - 1e-3, 1.0, 1 + 1e-3]).map(lambda f: f * m.max_notional_usd)
        d = directive(
            "p1",
            asset=draw(st.sampled_from(["BTC", "ETH", "SOL", "btc/usdt", "ETHUSDT"])),
            venue=draw(st.sampled_from(["binance", "bybit", "OKX"])),
            side=draw(st.sampled_from(["buy", "sell"])),
            notional_usd=draw(notional),
            leverage=draw(st.floats(0.1, 1)),
            confidence=draw(st.floats(0.9, 1)),
        )
        return json.dumps(d).encode()
    d = directive(
        "p1",
        asset=draw(st.sampled_from(["BTC", "ETH"]) | st.sampled_from(SPELLINGS)),
        venue=draw(st.sampled_from(["binance", "BYBIT", " okx "]) | st.sampled_from(VENUES)),
        side=draw(st.sampled_from(["buy", "sell"])),
        notional_usd=draw(st.floats(0.001, 0.4).map(lambda f: f * equity) | st.floats(1, 3_000_000) | st.floats(-10, 0)),
        leverage=draw(st.floats(0.1, 2) | st.floats(0.1, 10)),
        confidence=draw(st.floats(0.6, 1) | st.floats(-0.1, 1.1)),
    )
    text = json.dumps(d)
    return text[: len(text) // 2].encode() if draw(st.integers(0, 19)) == 0 else text.encode()


NOWS = st.datetimes(datetime(2026, 6, 28), datetime(2026, 7, 3), timezones=st.just(timezone.utc))


def never_more_permissive(with_m, without_m) -> None:
    assert not with_m.staged or without_m.staged
    failed_with = {c.name for c in with_m.checks if not c.passed}
    assert {c.name for c in without_m.checks if not c.passed} <= failed_with
    # The mandate only adds checks: the desk's checks are exactly those without it.
    assert [c for c in with_m.checks if not c.name.startswith("mandate_")] == without_m.checks
    assert with_m.explicit_approval == without_m.explicit_approval


def obeys_the_mandate(ev, m: Mandate, b: Beliefs, now: datetime, used_today: int | None) -> None:
    """A staged directive keeps every key of the mandate, recomputed here from scratch."""
    if not ev.staged:
        return
    d = ev.directive
    base = normalise_symbol(d.asset).base
    assert m.assets is None or base in m.assets
    assert m.venues is None or normalise_venue(d.venue) in m.venues
    assert m.max_notional_usd is None or d.notional_usd <= m.max_notional_usd * (1 + TOL)
    assert m.daily_directives is None or used_today is None or used_today < m.daily_directives
    if m.expires is not None:
        last = datetime.combine(m.expires, datetime.max.time(), tzinfo=timezone.utc) if type(m.expires) is date else m.expires
        assert now <= last
    if m.max_position_pct is not None:
        p = b.positions.get(base, 0.0)
        buys = sum(r.notional_usd for r in b.pending.values() if r.asset == base and r.side == "buy")
        sells = sum(r.notional_usd for r in b.pending.values() if r.asset == base and r.side == "sell")
        post = p + buys + d.notional_usd if d.side == "buy" else p - sells - d.notional_usd
        assert abs(post) <= m.max_position_pct / 100 * b.equity_usd * (1 + TOL)


def a_time(draw, m: Mandate) -> datetime:
    """Often right at the mandate's expiry, to the microsecond, where an off-by-one would show."""
    if m.expires_at is None:
        return draw(NOWS)
    near = st.timedeltas(timedelta(hours=-2), timedelta(hours=2)) | st.sampled_from([timedelta(microseconds=u) for u in (-1, 0, 1)])
    return draw(NOWS | near.map(lambda dt: m.expires_at + dt))


def used_today(draw, m: Mandate, most: int = 40) -> int:
    """Often right at the edge of the budget, where an off-by-one would show."""
    daily = m.daily_directives
    edge = st.integers(max(0, daily - 1), daily + 1) if daily is not None else st.integers(0, most)
    return draw(st.integers(0, most) | edge)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calm=st.booleans(), data=st.data())
def test_a_mandate_never_makes_a_verdict_more_permissive(calm, data):
    b = data.draw(calm_beliefs() if calm else any_beliefs())
    g = data.draw(roomy_guardrails() if calm else any_guardrails())
    m = data.draw(mandates_within(g))
    now = a_time(data.draw, m)
    used = used_today(data.draw, m)
    line = data.draw(one_directive(b.equity_usd, calm, m))
    without_m = evaluate_payload(line, b, g)
    with_m = evaluate_payload(line, b, g, mandate=m, mandate_now=now, used_today=used)
    never_more_permissive(with_m, without_m)
    obeys_the_mandate(with_m, m, b, now, used)
    event(f"{with_m.decision} under the mandate, {without_m.decision} without")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calm=st.booleans(), data=st.data())
def test_at_approval_time_a_mandate_never_makes_a_verdict_more_permissive(calm, data):
    b = data.draw(calm_beliefs() if calm else any_beliefs())
    g = data.draw(roomy_guardrails() if calm else any_guardrails())
    m = data.draw(mandates_within(g))
    now = a_time(data.draw, m)
    line = data.draw(one_directive(b.equity_usd, calm, m))
    try:
        d = Directive.model_validate_json(line)
    except ValidationError:
        return  # only a valid directive is ever staged, so only one is ever re-evaluated
    try:
        price = (b.prices or {}).get(normalise_symbol(d.asset).base)
    except SymbolError:
        price = None
    staged_at_price = price * data.draw(st.floats(0.99, 1.01)) if price else data.draw(st.floats(0.01, 100_000))
    expires_at = data.draw(NOWS | st.timedeltas(timedelta(0), timedelta(hours=1)).map(lambda dt: now + dt))
    times = dict(price_at_staging=staged_at_price, expires_at=expires_at, now=now, band_pct=data.draw(st.floats(0.1, 10)))
    without_m = reevaluate(d, b, g, **times)
    with_m = reevaluate(d, b, g, **times, mandate=m)
    never_more_permissive(with_m, without_m)
    assert "mandate_budget" not in {c.name for c in with_m.checks}
    obeys_the_mandate(with_m, m, b, now, None)
    event(f"{with_m.decision} under the mandate, {without_m.decision} without")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=any_beliefs(tripped=st.just(False)), g=any_guardrails(), data=st.data())
def test_a_sequence_under_a_mandate_keeps_its_budget_and_position_limit(b, g, data):
    """The factory's path for one agent's directives: every one evaluated counts toward its day."""
    m = data.draw(mandates_within(g))
    now = a_time(data.draw, m)
    used = used_today(data.draw, m, most=10)
    lines = data.draw(directive_lines(b.equity_usd))
    initial, staged, seen = b.copy(), [], set()
    for n, line in enumerate(lines):
        ev = evaluate_payload(line, b, g, mandate=m, mandate_now=now, used_today=used + n)
        if ev.directive_id in seen:
            continue
        seen.add(ev.directive_id)
        if stage(ev, b):
            staged.append(ev)
    if m.daily_directives is not None:
        assert len(staged) <= max(0, m.daily_directives - used)
    tighter = g if m.max_position_pct is None else g.model_copy(update={"max_position_pct": m.max_position_pct})
    assert_nothing_staged_breaks_a_guardrail(initial, staged, tighter, initial.confidence_damping)


@settings(max_examples=200, deadline=None)
@given(g=any_guardrails(), data=st.data())
def test_a_mandate_that_loosens_anything_is_refused_by_the_mission(g, data):
    key = data.draw(st.sampled_from(["max_position_pct", "assets", "venues"]))
    bad = {
        "max_position_pct": data.draw(st.floats(g.max_position_pct * (1 + 1e-9) + 1e-9, 1_000)),
        "assets": ["BTC", data.draw(st.sampled_from(["LUNA", "luna/usdt", "UST", "LUNAUSDT", "BTCUST"]))],
        "venues": ["binance", data.draw(st.sampled_from(["ftx", "kraken", "Coinbase"]))],
    }[key]
    with pytest.raises(MissionError) as err:
        parse_mission({"guardrails": g.model_dump(), "mandates": {"quant-bot": {key: bad}}})
    assert f"mandates.quant-bot.{key}: " in str(err.value) and "a mandate can only tighten the desk's guardrails" in str(err.value)


def test_the_spellings_used_above_are_what_the_engine_sees():
    """The strategies' symbols exercise normalisation, not only clean tickers."""
    refused = 0
    for s in SPELLINGS:
        try:
            normalise_symbol(s)
        except SymbolError:
            refused += 1
    assert 0 < refused < len(SPELLINGS)


# -- deskgate policy check --agent -------------------------------------------------------------

MISSION = """\
mandates:
  quant-bot:
    assets: [BTC]
    max_notional_usd: 20000
    daily_directives: 4
  retired-bot:
    expires: 2020-01-31
"""


def policy_check(tmp_path, lines, *args):
    (tmp_path / "mission.yaml").write_text(MISSION)
    (tmp_path / "beliefs.json").write_text(json.dumps({"equity_usd": 1_000_000, "peak_equity_usd": 1_000_000}))
    return subprocess.run(
        [sys.executable, "-m", "deskgate", "policy", "check", "--mission", str(tmp_path / "mission.yaml"), "--beliefs", str(tmp_path / "beliefs.json"), *args],
        input=("\n".join(json.dumps(x) for x in lines) + "\n").encode(),
        capture_output=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def verdicts(proc) -> list[tuple[str, list[str]]]:
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    return [(r["decision"], [c["name"] for c in r["checks"] if not c["passed"]]) for r in rows]


def test_policy_check_applies_an_agents_mandate(tmp_path):
    lines = [
        directive("a"),
        directive("b", asset="ETH"),
        directive("a", notional_usd=1),  # a repeated id is not evaluated, so it does not count
        directive("c", notional_usd=20_000.01),
        directive("d"),  # the 5th of the day after --used-today 1: over the budget of 4
    ]
    assert verdicts(policy_check(tmp_path, lines, "--agent", "quant-bot", "--used-today", "1")) == [
        ("staged", []),
        ("rejected", ["mandate_asset"]),
        ("rejected", ["duplicate"]),
        ("rejected", ["mandate_notional"]),
        ("rejected", ["mandate_budget"]),
    ]
    plain = verdicts(policy_check(tmp_path, lines))
    assert [v for v, _ in plain] == ["staged", "staged", "rejected", "staged", "staged"]
    expired = policy_check(tmp_path, [directive("a")], "--agent", "retired-bot")
    assert verdicts(expired) == [("rejected", ["mandate_expiry"])]
    row = json.loads(expired.stdout)
    assert next(c for c in row["checks"] if c["name"] == "mandate_expiry")["limit"] == "2020-01-31T23:59:59.999999+00:00"


def test_policy_check_agent_without_a_mandate_or_with_a_bad_name(tmp_path):
    lines = [directive("a"), directive("b", asset="ETH")]
    free = policy_check(tmp_path, lines, "--agent", "free-bot")
    assert verdicts(free) == verdicts(policy_check(tmp_path, lines))
    assert "agent free-bot has no mandate" in free.stderr.decode()
    bad = policy_check(tmp_path, lines, "--agent", "Quant Bot")
    assert bad.returncode == 2 and "--agent: agent name 'Quant Bot' is not allowed" in bad.stderr.decode() and not bad.stdout
    alone = policy_check(tmp_path, lines, "--used-today", "3")
    assert alone.returncode == 2 and "--used-today counts an agent's directives" in alone.stderr.decode()
    negative = policy_check(tmp_path, lines, "--agent", "quant-bot", "--used-today", "-1")
    assert negative.returncode == 2 and "--used-today" in negative.stderr.decode()
