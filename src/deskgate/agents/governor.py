"""The Governor: watches the Dispatcher for drift and damps its confidence until a principal clears it.

Pure functions over a small state, so a test can feed it constructed sequences.

The statistic. For each directive the Dispatcher drafts, two numbers:

- *proximity*: the position it would leave in its asset, as a fraction of the
  `max_position_pct` guardrail (0.8 = four fifths of the way to the limit);
- *confidence*: the confidence it claims, before any damping.

The first `baseline` directives (after start or after a clear) set a baseline mean
and standard deviation of each (the deviation floored, so a very steady baseline
does not make every small move look huge). After that, each directive's
standardised excess `z = (x - mean) / sd` feeds a one-sided CUSUM,
`S = max(0, S + z - k)`, one for proximity and one for confidence. When either
passes `h`, the Dispatcher is *drifting*: sustained creep towards the limits, or
confidence rising without reason. A single large value moves S by at most its z,
so it takes a run of them. While drifting, every new directive's confidence is
multiplied by `damping` (the factory applies the same factor in its confidence
check) and one review request goes to the principals. Only a principal's clear
ends it; the Governor then takes a new baseline (the principal accepted the new
normal).
"""

from __future__ import annotations

import statistics
from datetime import datetime

from deskgate.config import GovernorSettings
from deskgate.domain.governor import GovernorClear, GovernorState


def proximity(position_after_usd: float, equity_usd: float, max_position_pct: float) -> float:
    """How far towards the position limit a directive would take its asset (1.0 = at the limit)."""
    if equity_usd <= 0 or max_position_pct <= 0:
        return 1.0
    return abs(position_after_usd) / equity_usd * 100.0 / max_position_pct


def observe(
    state: GovernorState, prox: float, confidence: float, at: datetime, s: GovernorSettings
) -> tuple[GovernorState, bool]:
    """The state after one more directive, and whether this one started a drift."""
    u: dict = {"observed": state.observed + 1, "updated_at": at, "threshold": s.h}
    if state.state == "baseline":
        bp = [*state.baseline_proximity, prox]
        bc = [*state.baseline_confidence, confidence]
        u.update(baseline_proximity=bp, baseline_confidence=bc)
        if len(bp) >= s.baseline:
            u.update(
                state="watching",
                mean_proximity=statistics.fmean(bp),
                sd_proximity=max(statistics.pstdev(bp), s.min_sd_proximity),
                mean_confidence=statistics.fmean(bc),
                sd_confidence=max(statistics.pstdev(bc), s.min_sd_confidence),
            )
        return state.model_copy(update=u), False
    zp = (prox - state.mean_proximity) / state.sd_proximity
    zc = (confidence - state.mean_confidence) / state.sd_confidence
    sp = max(0.0, state.cusum_proximity + zp - s.k)
    sc = max(0.0, state.cusum_confidence + zc - s.k)
    u.update(cusum_proximity=sp, cusum_confidence=sc, statistic=max(sp, sc))
    started = False
    if state.state == "drifting":
        u["damped"] = state.damped + 1
    elif max(sp, sc) > s.h:
        started = True
        u.update(state="drifting", damping=s.damping, drifting_since=at, interventions=state.interventions + 1, damped=state.damped + 1)
    return state.model_copy(update=u), started


def clear(state: GovernorState, principal: str, reason: str, at: datetime, clear_seq: int = 0) -> GovernorState:
    """A principal's clear (the clear's stream sequence): damping off, and a new baseline from the next directives."""
    return GovernorState(
        applied_clear_seq=max(clear_seq, state.applied_clear_seq),
        threshold=state.threshold,
        observed=state.observed,
        interventions=state.interventions,
        damped=state.damped,
        cleared_by=principal,
        cleared_at=at,
        clear_reason=reason,
        updated_at=at,
    )


__all__ = ["GovernorClear", "GovernorState", "clear", "observe", "proximity"]
