"""The book and the funnel as the desk sees them: snapshots published when they
changed, at most every so often, so a burst of directives costs one snapshot."""

from __future__ import annotations

import asyncio
import logging
import time

import nats.errors

from deskgate.bus import subjects as S
from deskgate.bus.connect import SecurityEvents
from deskgate.clock import Clock, MarketClock
from deskgate.domain.funnel import Funnel
from deskgate.factory.funnel import EvaluationLatency
from deskgate.factory.outbox import Effects, Outbox
from deskgate.factory.state import FactoryState

log = logging.getLogger("deskgate.factory")

PORTFOLIO_EVERY_S = 0.5
FUNNEL_EVERY_S = 2.0


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

    def note(self, effects: Effects) -> None:
        self.portfolio_dirty |= effects.portfolio_changed
        self.funnel_dirty |= effects.funnel_changed

    async def publish_portfolio(self, force: bool = False) -> None:
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
        snap = self.state.ledger.snapshot(self.clock.now(), len(pending), reserved)
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
