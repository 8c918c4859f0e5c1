"""A dry run: the policy engine's verdict on a directive against the beliefs the factory
published, staging nothing.

The factory publishes its book with what the engine sees besides it (prices,
reservations by asset and side, the breaker, the Governor's damping:
`PortfolioSnapshot.policy`), so the beliefs rebuilt here are the factory's as of its
last snapshot (at most about half a second old). The same `evaluate_payload` runs, so
a dry run and the factory cannot disagree on the same beliefs; they can disagree when
the book moves in between, and on the signature, which only the factory checks.
"""

from __future__ import annotations

from datetime import datetime, timezone

from deskgate.config import Mandate
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.policy.beliefs import Beliefs, Reservation
from deskgate.policy.engine import Evaluation, duplicate_rejection, evaluate_payload


def beliefs_from_book(book: PortfolioSnapshot) -> Beliefs:
    """The factory's beliefs as its snapshot states them. The engine measures drawdown from
    the breaker's peak (the peak since the last reset), so that is the peak here too."""
    if book.policy is None:
        raise ValueError("this portfolio snapshot carries no policy view (a factory older than the dry run)")
    positions: dict[str, float] = {}
    for line in book.positions:
        positions[line.asset] = positions.get(line.asset, 0.0) + line.notional_usd
    view = book.policy
    return Beliefs(
        equity_usd=book.equity_usd,
        peak_equity_usd=book.breaker_peak_equity_usd,
        positions={a: v for a, v in positions.items() if v != 0.0},
        # One reservation per asset and side: the engine only ever sums them.
        pending=[Reservation(f"reserved-{r.asset}-{r.side}", r.asset, r.side, r.notional_usd) for r in view.reservations],
        breaker_tripped=view.breaker_tripped,
        prices=dict(view.prices),
        confidence_damping=view.confidence_damping,
    )


def dry_run(
    payload: bytes, book: PortfolioSnapshot, guardrails, *, max_bytes: int, already_evaluated: str | None = None,
    mandate: Mandate | None = None, now: datetime | None = None,
) -> Evaluation:
    """What the factory would decide on `payload` now; `already_evaluated` is the directive's
    id when the factory has evaluated that id before (it then refuses it as a duplicate).
    The agent's `mandate` is checked as of `now` (the current time unless given), its daily
    budget as if nothing were drafted today: only the factory counts that."""
    if already_evaluated is not None:
        return duplicate_rejection(already_evaluated)
    now = now or datetime.now(timezone.utc)
    return evaluate_payload(payload, beliefs_from_book(book), guardrails, max_bytes, mandate, now, 0)
