"""The book and the funnel as the desk sees them: snapshots published when they
changed, at most every so often, so a burst of directives costs one snapshot; and
the desk's facts (its id, guardrails, approval settings, mandates) for the agents."""

from __future__ import annotations

import asyncio
import logging
import time

import nats.errors

from deskgate.bus import subjects as S
from deskgate.bus.connect import SecurityEvents
from deskgate.clock import Clock, MarketClock
from deskgate.domain.desk import DeskStatus
from deskgate.domain.funnel import Funnel
from deskgate.domain.portfolio import PolicyView, ReservedLine
from deskgate.factory.funnel import EvaluationLatency
from deskgate.factory.outbox import Effects, Outbox
from deskgate.factory.state import FactoryState
from deskgate.policy.beliefs import Beliefs

log = logging.getLogger("deskgate.factory")

PORTFOLIO_EVERY_S = 0.5
FUNNEL_EVERY_S = 2.0
# The STATUS stream keeps 90 days: the desk's facts are said again daily, so a desk
# that runs for months still has them on the bus.
DESK_EVERY_S = 86_400.0


class StatusBoard:
    def __init__(self, state: FactoryState, latency: EvaluationLatency, events: SecurityEvents, outbox: Outbox, clock: Clock):
        self.state = state
        self.latency = latency
        self.events = events
        self.outbox = outbox
        self.clock = clock
        self.portfolio_dirty = True
        self.funnel_dirty = True
        self._last_portfolio = 0.0
        self._last_funnel = 0.0
        self._policy_flags: tuple[bool, float] | None = None  # breaker and damping in the last snapshot
        self.desk: DeskStatus | None = None
        self._last_desk = 0.0

    def note(self, effects: Effects) -> None:
        self.portfolio_dirty |= effects.portfolio_changed
        self.funnel_dirty |= effects.funnel_changed

    async def publish_portfolio(self, force: bool = False) -> None:
        b = self.state.beliefs
        if (b.breaker_tripped, b.confidence_damping) != self._policy_flags:
            self.portfolio_dirty = True  # the policy view changed without the book changing
        if not (self.portfolio_dirty or force):
            return
        if isinstance(self.clock, MarketClock) and not self.clock.known:
            return  # no market time yet: a snapshot stamped now would sit outside the replay's days
        now_m = time.monotonic()
        if not force and now_m - self._last_portfolio < PORTFOLIO_EVERY_S:
            return
        self._last_portfolio = now_m
        self.portfolio_dirty = False
        pending = self.state.beliefs.pending
        reserved = sum(r.notional_usd for r in pending.values())
        snap = self.state.ledger.snapshot(self.clock.now(), len(pending), reserved).model_copy(update={"policy": policy_view(b)})
        self._policy_flags = (b.breaker_tripped, b.confidence_damping)
        try:
            await self.outbox.publish_now(S.PORTFOLIO_SUBJECT, snap.to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            self.portfolio_dirty = True
            log.warning("could not publish portfolio: %s", exc)

    def funnel(self) -> Funnel:
        return self.state.counter.snapshot(self.clock.now()).model_copy(
            update={
                "evaluation_latency": self.latency.histogram(),
                "permission_violations": self.events.counts["permission_violation"],
            }
        )

    async def publish_funnel(self, force: bool = False) -> None:
        now_m = time.monotonic()
        if not force and not (self.funnel_dirty and now_m - self._last_funnel > FUNNEL_EVERY_S):
            return
        self._last_funnel = now_m
        self.funnel_dirty = False
        try:
            await self.outbox.publish_now(S.FUNNEL_SUBJECT, self.funnel().to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            self.funnel_dirty = True
            log.warning("could not publish funnel: %s", exc)

    async def publish_desk(self, desk: DeskStatus | None = None) -> None:
        """The desk's facts: at start (given), then again once a day."""
        if desk is not None:
            self.desk = desk
        elif self.desk is None or time.monotonic() - self._last_desk < DESK_EVERY_S:
            return
        else:
            self.desk = self.desk.model_copy(update={"at": self.clock.now()})
        await self.outbox.publish_now(S.DESK_SUBJECT, self.desk.to_bytes())
        self._last_desk = time.monotonic()


def policy_view(beliefs: Beliefs) -> PolicyView:
    """What the engine sees besides the book, with reservations summed per asset and side."""
    sums: dict[tuple[str, str], list[float]] = {}
    for r in beliefs.pending.values():
        line = sums.setdefault((r.asset, r.side), [0.0, 0])
        line[0] += r.notional_usd
        line[1] += 1
    return PolicyView(
        prices=dict(beliefs.prices or {}),
        reservations=[ReservedLine(asset=a, side=side, notional_usd=n, intentions=c) for (a, side), (n, c) in sorted(sums.items())],
        breaker_tripped=beliefs.breaker_tripped,
        confidence_damping=beliefs.confidence_damping,
    )
