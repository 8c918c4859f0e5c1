"""How the Command Center writes numbers: money, percentages against limits, units in the checks table."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deskgate.domain.evaluation import CheckResult
from deskgate.web.filters import (
    beside,
    check_limit,
    check_observed,
    duration,
    exact,
    leverage,
    money,
    num,
    pct,
    pct_beside,
    quantity,
    share,
    signed_money,
    when,
)


def test_money_has_thousands_separators_and_never_an_exponent():
    assert money(65_050.0) == "65,050.00"
    assert money(1e21) == "1,000,000,000,000,000,000,000.00"
    assert money(-88.0) == "−88.00"
    assert money(None) == "—" and money(float("nan")) == "—" and money(float("inf")) == "∞"
    assert signed_money(1204.1) == "+1,204.10" and signed_money(-88) == "−88.00" and signed_money(None) == "—"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30))
def test_no_number_filter_writes_scientific_notation(v):
    for text in (money(v), num(v), quantity(v), exact(v), pct(v), leverage(v), beside(v, 5.0)):
        assert "e" not in text.lower(), text


def test_num_keeps_significant_digits_without_an_exponent():
    assert num(65_050.0) == "65,050"
    assert num(0.7234567) == "0.7235"
    assert num(0.0000123456) == "0.00001235"
    assert num(3) == "3" and num(0) == "0" and num(-2.5) == "−2.5"
    assert num(True) == "true" and num(None) == "—" and num("armed") == "armed"
    assert quantity(0.00001234) == "0.00001234" and quantity(0.123456789) == "0.123457"


def test_a_limit_is_written_exactly_as_configured():
    assert exact(5.0) == "5.0" and exact(15) == "15" and exact(2.5) == "2.5" and exact(0.1) == "0.1"
    assert exact(1e-7) == "0.0000001" and exact(0.6) == "0.6"


def test_a_value_beside_its_limit_never_reads_as_the_limit():
    assert pct_beside(5.004, 5.0) == "5.004%"
    assert pct_beside(4.9996, 5.0) == "4.9996%"
    assert pct_beside(5.0, 5.0) == "5.00%"  # it is the limit
    assert pct_beside(3.2, 5.0) == "3.20%"
    assert pct_beside(None, 5.0) == "—"


@given(v=st.floats(0, 100), limit=st.floats(0.1, 100))
def test_beside_differs_from_the_limit_whenever_the_value_does(v, limit):
    shown = float(beside(v, limit).replace(",", ""))
    if v != limit and abs(v - limit) >= 1e-9:
        assert shown != limit
        assert (shown > limit) == (v > limit)  # and on the right side of it


def test_checks_show_their_units():
    def row(name, observed, limit):
        c = CheckResult(name=name, passed=True, observed=observed, limit=limit)
        return check_observed(c), check_limit(c)

    assert row("position", 10.0, 25.0) == ("10.00%", "25.0%")
    assert row("drawdown", 15.004, 15.0) == ("15.004%", "15.0%")
    assert row("order_leverage", 1.0, 3.0) == ("1.000x", "3.0x")
    assert row("portfolio_leverage", 0.15, 3.0) == ("0.150x", "3.0x")
    assert row("explicit_approval", 65_050.0, 50_000.0) == ("65,050.00 USD", "50,000.00 USD")
    assert row("market_price", 65_050.0, "known") == ("65,050.00 USD", "known")
    assert row("confidence", 0.8, 0.6) == ("0.80", "0.6")
    assert row("price_band", 0.25, 2.0) == ("0.25%", "2.0%")
    assert row("breaker", "armed", "armed") == ("armed", "armed")
    assert row("position", None, 25.0) == ("—", "25.0%")
    assert row("asset", "BTC", "LUNA, UST") == ("BTC", "LUNA, UST")


def test_shares_durations_and_times():
    assert share(25_000, 100_000) == "25.00%" and share(-5_000, 100_000) == "−5.00%" and share(1, 0) == "—"
    assert leverage(0.15) == "0.150x" and leverage(math.inf) == "∞"
    assert duration(65) == "1m 05s" and duration(7_380) == "2h 03m" and duration(86_400 + 3_600 * 4) == "1d 4h" and duration(-3) == "0m 00s"
    assert when(datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)) == "2026-11-20 12:30:00 UTC" and when(None) == "—"


@pytest.mark.parametrize("v", [0.1 + 0.2, 1 / 3, 123456.789, 1e-300])
def test_exact_reads_back_as_the_same_float(v):
    assert float(exact(v)) == v
