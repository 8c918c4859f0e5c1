"""An agent's mandate as extra policy checks: pure functions, no clock, no state.

A mandate (mission.yaml `mandates.<agent>`, config.Mandate) only tightens the desk's
guardrails, so its checks are *added* to the guardrail checks and never replace one:
a directive staged under a mandate is staged without it (tests/test_mandates.py
proves it for any mandate and directive). Each check reports observed, limit and
reason like the others; limits are inclusive, as in the engine.

`now` and the count of directives the agent already had evaluated today are passed
in; the caller (the factory's intake, `deskgate policy check`) reads its own clock
and counts. At approval time the budget is not checked (`used_today=None`): it
counts drafting, not approving. The expiry is: an approval that arrives after the
mandate expired is invalidated.
"""

from __future__ import annotations

from datetime import datetime

from deskgate.config import Mandate
from deskgate.policy.check import Check, within

NOT_THE_DESKS = "not checked against the mandate: the desk's {what} check refused it"


def require_now(mandate: Mandate, now: datetime | None) -> None:
    """A mandate with an expiry cannot be checked without the time; refuse before any check."""
    if now is None:
        if mandate.expires is not None:
            raise ValueError(
                "this mandate expires (expires: " + mandate.expires.isoformat() + "): pass mandate_now, the current UTC time, to check it"
            )
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"mandate_now must be timezone-aware (UTC), got the naive {now.isoformat()}")


def mandate_checks(
    mandate: Mandate,
    *,
    asset: str | None,
    venue: str | None,
    notional: float,
    position_pct: float | None,
    now: datetime | None,
    used_today: int | None,
) -> list[Check]:
    """The mandate's checks, one per key it sets, in the order of the guardrail checks.

    `asset` and `venue` are the engine's normalised ones (None when the desk's own check
    refused them); `position_pct` is the post-trade position the engine computed from
    beliefs and pending intentions (None when it could not); `used_today` is how many
    directives of this agent were evaluated before this one today (UTC), or None to
    leave the daily budget out (at approval time).
    """
    require_now(mandate, now)
    checks: list[Check] = []
    if mandate.assets is not None:
        checks.append(asset_check(mandate.assets, asset))
    if mandate.venues is not None:
        checks.append(venue_check(mandate.venues, venue))
    if mandate.max_notional_usd is not None:
        checks.append(notional_check(mandate.max_notional_usd, notional))
    if mandate.max_position_pct is not None:
        checks.append(position_check(mandate.max_position_pct, asset, position_pct))
    if mandate.daily_directives is not None and used_today is not None:
        checks.append(budget_check(mandate.daily_directives, used_today))
    if mandate.expires is not None:
        assert now is not None  # require_now
        checks.append(expiry_check(mandate, now))
    return checks


def asset_check(allowed: tuple[str, ...], asset: str | None) -> Check:
    if asset is None:
        return Check("mandate_asset", False, None, allowed, NOT_THE_DESKS.format(what="asset"))
    if asset in allowed:
        return Check("mandate_asset", True, asset, allowed, "")
    return Check("mandate_asset", False, asset, allowed, f"{asset} is outside the agent's mandate (assets: {', '.join(allowed)})")


def venue_check(allowed: tuple[str, ...], venue: str | None) -> Check:
    if venue is None:
        return Check("mandate_venue", False, None, allowed, NOT_THE_DESKS.format(what="venue"))
    if venue in allowed:
        return Check("mandate_venue", True, venue, allowed, "")
    return Check("mandate_venue", False, venue, allowed, f"venue {venue} is outside the agent's mandate (venues: {', '.join(allowed)})")


def notional_check(limit: float, notional: float) -> Check:
    if within(notional, limit):
        return Check("mandate_notional", True, notional, limit, "")
    return Check(
        "mandate_notional", False, notional, limit, f"notional {notional:,.2f} USD is above the agent's mandate of {limit:,.2f} USD per directive"
    )


def position_check(limit: float, asset: str | None, pct: float | None) -> Check:
    if pct is None:
        return Check("mandate_position", False, None, limit, NOT_THE_DESKS.format(what="position"))
    if within(pct, limit):
        return Check("mandate_position", True, pct, limit, "")
    return Check(
        "mandate_position", False, pct, limit, f"{asset} would reach {pct:.2f}% of equity; the agent's mandate allows {limit:g}%"
    )


def budget_check(daily: int, used_today: int) -> Check:
    """Observed is the directive's place in the day (1 for the first): inclusive like every limit."""
    if isinstance(used_today, bool) or not isinstance(used_today, int) or used_today < 0:
        raise ValueError(f"used_today must be a count of directives (an int >= 0), got {used_today!r}")
    n = used_today + 1
    if n <= daily:
        return Check("mandate_budget", True, n, daily, "")
    return Check(
        "mandate_budget",
        False,
        n,
        daily,
        f"this would be the agent's directive number {n} today (UTC); its mandate allows {daily} a day",
    )


def expiry_check(mandate: Mandate, now: datetime) -> Check:
    until = mandate.expires_at
    assert until is not None
    if now <= until:
        return Check("mandate_expiry", True, now.isoformat(), until.isoformat(), "")
    day = "" if isinstance(mandate.expires, datetime) else f" (the end of {mandate.expires.isoformat()}, UTC)"
    return Check("mandate_expiry", False, now.isoformat(), until.isoformat(), f"the agent's mandate expired at {until.isoformat()}{day}")
