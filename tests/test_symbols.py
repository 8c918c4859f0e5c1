"""Symbol normalisation: no spelling of a forbidden asset gets through."""

from __future__ import annotations

import pytest

from deskgate.policy.symbols import SymbolError, forbidden_leg, normalise_symbol, normalise_venue

FORBIDDEN = frozenset({"LUNA", "UST"})


@pytest.mark.parametrize(
    "raw",
    [
        "LUNA", "luna", " Luna ", "LUNA/USDT", "luna-usdt", "LUNA_USD", "LUNA:USDC", "LUNAUSDT", "LUNAUSD",
        "USDT/LUNA", "USDTLUNA", "BTC/UST", "BTCUST", "UST", "ＬＵＮＡ", "LU\u200bNA", "L\u2060UNA", "LUNA\ufeff",
        "\u202eLUNA", "LUNA\u00a0/USDT", "L\tUNA",
    ],
)
def test_forbidden_in_any_notation(raw):
    assert forbidden_leg(normalise_symbol(raw), FORBIDDEN) is not None


@pytest.mark.parametrize("raw", ["LUΝA", "LUNА", "ＬUΝA", "ᒪUNA", "LUNA\u0301"[:-1] + "Ä"])
def test_non_ascii_after_normalisation_is_refused(raw):
    with pytest.raises(SymbolError, match="not plain ASCII"):
        normalise_symbol(raw)


def test_lookalike_is_named():
    with pytest.raises(SymbolError) as err:
        normalise_symbol("LUΝA")  # Greek capital Nu
    assert err.value.lookalike == "LUNA"
    assert "GREEK CAPITAL LETTER NU" in str(err.value)


@pytest.mark.parametrize(
    "raw, base, quote",
    [("BTC", "BTC", None), ("btc/usdt", "BTC", "USDT"), ("BTCUSDT", "BTC", "USDT"), ("ETH-USD", "ETH", "USD"), ("SOL", "SOL", None)],
)
def test_allowed_symbols_normalise_to_their_base(raw, base, quote):
    s = normalise_symbol(raw)
    assert (s.base, s.quote) == (base, quote)
    assert forbidden_leg(s, FORBIDDEN) is None


@pytest.mark.parametrize("raw", ["", "   ", "\u200b", "BTC/ETH/SOL", "BTC/", "B$C", "A" * 40])
def test_malformed_symbols(raw):
    with pytest.raises(SymbolError):
        normalise_symbol(raw)


def test_distinct_tickers_sharing_a_prefix_are_not_matched():
    assert forbidden_leg(normalise_symbol("LUNC"), FORBIDDEN) is None


def test_venues():
    assert normalise_venue(" Binance ") == "binance"
    assert normalise_venue("OKX\u200b") == "okx"
    with pytest.raises(SymbolError, match="not plain ASCII"):
        normalise_venue("bіnance")  # Cyrillic i
    with pytest.raises(SymbolError):
        normalise_venue("bin ance/x")
