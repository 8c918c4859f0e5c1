"""A venue's health from what the executor last saw of it. Pure: the executor's watch
calls it, tests drive it."""

from __future__ import annotations

from deskgate.config import VenueSettings
from deskgate.execution.venues import Seen


def assess(seen: Seen, skew_ms: float | None, settings: VenueSettings) -> tuple[str, str, str, str]:
    """(state, observed, limit, reason): "healthy" or why not, most serious first."""
    if seen.auth_failed:
        return "auth", "key refused", "a working key", seen.problem or "the venue refused the API key"
    only_rate_limits = seen.failures_in_a_row and seen.failures_in_a_row == seen.rate_limited_in_a_row
    if only_rate_limits and seen.rate_limited_in_a_row > settings.max_rate_limited:
        return (
            "rate_limited",
            f"{seen.rate_limited_in_a_row} rate-limit answers in a row",
            f"at most {settings.max_rate_limited}",
            seen.problem,
        )
    if not seen.ok and not only_rate_limits:
        return "unreachable", f"{seen.failures_in_a_row} failed calls in a row", "an answer", seen.problem
    if skew_ms is not None and abs(skew_ms) > settings.max_clock_skew_ms:
        return (
            "clock_skew",
            f"clock off by {skew_ms:+.0f} ms",
            f"within {settings.max_clock_skew_ms:g} ms",
            "the venue's clock and ours disagree: signed requests may be refused",
        )
    return "healthy", "answering" + (f", clock off by {skew_ms:+.0f} ms" if skew_ms is not None else ""), "", ""
