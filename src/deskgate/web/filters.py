"""How the Command Center writes numbers, times and units: one set of Jinja filters.

A principal compares numbers against limits, so money always has thousands
separators and never an exponent, a limit is shown exactly as configured, and a
value beside a limit gets as many decimals as it takes not to read as the limit
(a 5.004% drawdown against a 5.0% limit must not both read "5.00%").
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

DASH = "—"
MINUS = "−"  # a real minus sign: it lines up with "+" in a column

# The unit of each policy check's observed value and limit (names from policy/engine.py).
CHECK_UNITS: dict[str, str] = {
    "drawdown": "%",
    "position": "%",
    "price_band": "%",
    "order_leverage": "x",
    "portfolio_leverage": "x",
    "explicit_approval": "USD",
    "market_price": "USD",
    "confidence": "",
    "mandate_notional": "USD",
    "mandate_position": "%",
}


def _number(v: Any) -> float | None:
    """A finite float, or None for anything that is not a number to write with digits."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _special(v: Any) -> str:
    """What to write for None, bools, infinities and NaN."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else f"{MINUS}∞"
    return DASH


def money(v: Any, digits: int = 2) -> str:
    """USD amounts: `65,050.00`; never `6.505e+04`."""
    x = _number(v)
    return _special(v) if x is None else f"{x:,.{digits}f}".replace("-", MINUS)


def signed_money(v: Any) -> str:
    """A change in USD, always with its sign: `+1,204.10`, `−88.00`."""
    x = _number(v)
    if x is None:
        return _special(v)
    return ("+" if x >= 0 else MINUS) + f"{abs(x):,.2f}"


def exact(v: Any) -> str:
    """The shortest decimal that reads back as the same float, never in scientific notation (a configured limit)."""
    x = _number(v)
    if x is None:
        return _special(v)
    if x == int(x) and abs(x) < 1e15:
        text = f"{int(x)}.0" if isinstance(v, float) else str(int(x))
    else:
        text = format(Decimal(repr(x)), "f")
    return text.replace("-", MINUS)


def num(v: Any, digits: int = 4) -> str:
    """A plain number with `digits` significant digits (more if its integer part needs them), no exponent."""
    x = _number(v)
    if x is None:
        return _special(v) if v is None or isinstance(v, (bool, int, float)) else str(v)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = min(12, max(0, digits - 1 - magnitude))
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0") else text.replace("-", MINUS)


def beside(v: Any, limit: Any, digits: int = 2) -> str:
    """`v` with at least `digits` decimals, and more (up to 10) until it no longer reads as `limit`."""
    x, lim = _number(v), _number(limit)
    if x is None:
        return _special(v)
    d = digits
    while lim is not None and x != lim and d < 10 and float(f"{x:.{d}f}") == lim:
        d += 1
    return f"{x:,.{d}f}".replace("-", MINUS)


def pct(v: Any, digits: int = 2) -> str:
    x = _number(v)
    return _special(v) if x is None else f"{x:.{digits}f}%".replace("-", MINUS)


def pct_beside(v: Any, limit: Any, digits: int = 2) -> str:
    """A percentage shown against a limit: `5.004%` beside a `5.0%` limit, never `5.00%`."""
    return beside(v, limit, digits) + ("%" if _number(v) is not None else "")


def leverage(v: Any, digits: int = 3) -> str:
    x = _number(v)
    return _special(v) if x is None else f"{x:,.{digits}f}x"


def quantity(v: Any) -> str:
    """An asset quantity: six significant digits, no exponent (0.00001234 BTC stays readable)."""
    return num(v, 6)


def share(part: Any, whole: Any) -> str:
    """`part` as a signed percentage of `whole` (a position's share of equity)."""
    p, w = _number(part), _number(whole)
    if p is None or w is None or w <= 0:
        return DASH
    return pct(p / w * 100.0)


def check_value(v: Any, name: str, other: Any = None) -> str:
    """A policy check's observed value or limit, with its unit; `other` is the value it is compared with.

    Limits go through `exact` (as configured); observed values through `beside`, so
    they never read as the limit they are compared with.
    """
    unit = CHECK_UNITS.get(name)
    if _number(v) is None:
        return _special(v) if v is None or isinstance(v, (bool, float)) else str(v)
    if unit is None:
        return num(v)
    if unit == "USD":
        return f"{money(v)} USD"
    if unit == "":
        return beside(v, other, 2) if other is not None else exact(v)
    return (beside(v, other, 2 if unit == "%" else 3) if other is not None else exact(v)) + unit


def check_observed(check: Any) -> str:
    return check_value(check.observed, check.name, check.limit)


def check_limit(check: Any) -> str:
    return check_value(check.limit, check.name)


def duration(seconds: Any) -> str:
    """Time left, to the second: `4m 05s`, `2h 03m`, `1d 4h`."""
    x = _number(seconds)
    if x is None:
        return DASH
    s = max(0, int(x))
    if s >= 86_400:
        return f"{s // 86_400}d {s % 86_400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s"


def when(v: datetime | None) -> str:
    if v is None:
        return DASH
    try:
        return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError):
        return str(v)  # a time no clock shows (e.g. year 1 in another zone), written by someone else


FILTERS = {
    "money": money,
    "signed_money": signed_money,
    "exact": exact,
    "num": num,
    "pct": pct,
    "pct_beside": pct_beside,
    "leverage": leverage,
    "quantity": quantity,
    "share": share,
    "check_observed": check_observed,
    "check_limit": check_limit,
    "duration": duration,
    "when": when,
}
