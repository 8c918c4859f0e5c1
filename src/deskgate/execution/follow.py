"""Following one real order at its venue until it ends: send it once, look at it, cancel
what is left after its time, and say what happened in fills.

An order is sent at most once. The send is recorded before it happens
(`ExecutionStore.begin_send`), so after a timeout, an answer that does not parse, or a
kill -9 at any point, the order is only ever looked up by its client id. If the venue
never confirms it and no lookup finds it within `SEND_GRACE_S` (well past the request's
validity window, binance's `recvWindow`), it ends as not confirmed: never sent again.
That may leave a sent-but-lost order unfilled; it can never place a second one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone

from deskgate.config import Mission, VenueSettings
from deskgate.domain.execution import Order
from deskgate.execution.reports import Answered
from deskgate.execution.ticket import is_perpetual, leaves_perpetual_open, not_allowed, symbol_for, ticket_for
from deskgate.execution.venue import (
    OrderTicket,
    Venue,
    VenueAuthFailed,
    VenueError,
    VenueOrderState,
    VenueRefused,
    VenueReport,
)

log = logging.getLogger("deskgate.executor")

#: Between two looks at a venue that gave no usable answer, at most this long.
MAX_BACKOFF_S = 30.0
#: How long after the one send an order the venue does not know may still appear, at least.
SEND_GRACE_S = 30.0


def endpoint_of(settings: VenueSettings, venue: str | None = None) -> str:
    """Where orders go: a row is followed only where it was sent (binance's sandbox with
    derivatives is its demo trading, another account than its spot testnet)."""
    from deskgate.execution.ccxt_venue import DIALECTS  # noqa: PLC0415 - ccxt only where venues are real

    demo = settings.sandbox and settings.derivatives and venue is not None and DIALECTS[venue].demo_for_perpetuals
    return f"{'demo' if demo else 'sandbox' if settings.sandbox else 'live'} {settings.api_url or 'venue hosts'}"


def grace_s(settings: VenueSettings) -> float:
    return max(SEND_GRACE_S, 3 * settings.timeout_seconds)


def _wall() -> datetime:
    return datetime.now(timezone.utc)


def _age_s(since: datetime | None) -> float:
    if since is None:
        return 0.0
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return (_wall() - since).total_seconds()


def _ended(client_id: str, state: VenueOrderState, reason: str, done: Answered | None = None) -> VenueReport:
    done = done or Answered()
    return VenueReport(client_id=client_id, state=state, filled=done.filled, cost=done.cost, fee_usd=done.fee_usd, reason=reason)


def not_ours(report: VenueReport, ticket: OrderTicket) -> str | None:
    """Why an order found under our client id is not the one we sent, or None."""
    if report.side is not None and report.side != ticket.side:
        return f"side {report.side}, ours {ticket.side}"
    if report.amount is not None and abs(report.amount - ticket.amount) > 1e-9 * max(1.0, ticket.amount) + 1e-12:
        return f"amount {report.amount:g}, ours {ticket.amount:g}"
    return None


class OrderFollower:
    """One step at a time: `step` returns the venue's report on the order (or None to wait)."""

    #: With standbys: no order is concluded "not sent" before this (the takeover plus the lease's
    #: time), since the last holder may have signed a send up to its lease's end.
    not_before: datetime | None = None
    #: With standbys: whether a send may begin now (the lease held for a few seconds more). When
    #: not, the send waits for the next step: nothing is written, so nothing is lost.
    may_send: Callable[[], bool] | None = None

    @staticmethod
    def symbol_lock(symbol: str) -> asyncio.Lock:
        """The lock one venue symbol's perpetual sends take; the executor shares one per (venue, symbol)."""
        return asyncio.Lock()

    def __init__(self, mission: Mission, store, venue: Venue, row: dict, settings: VenueSettings):
        self.mission = mission
        self.store = store
        self.venue = venue
        self.settings = settings
        self.order = Order.model_validate(row["order"])
        self.order_id = row["order_id"]
        self.client_id = row["client_id"]
        self.seq = row["seq"]
        self.endpoint = row["endpoint"]  # where it goes: the executor follows it only if that is still where the venue is
        self.ticket = OrderTicket.model_validate(row["ticket"]) if row["ticket"] else None
        self.state = row["state"]
        self.sent = row["attempts"] > 0
        self.send_started_at = row["send_started_at"]
        self.taken_at = row["sent_at"]
        self.auth_failure: VenueAuthFailed | None = None  # the key was refused during the last step
        self.missing_since: float | None = None  # monotonic: an open order the venue stopped finding

    def _not_sent(self, why: str) -> VenueReport:
        return _ended(self.client_id, VenueOrderState.REJECTED, f"not sent: {why}")

    async def step(self, done: Answered, now_m: float) -> VenueReport | None:
        self.auth_failure = None
        if self.ticket is None:
            return await self._make_ticket()
        if self.state == "sending" and not self.sent:
            return await self._send_once()
        found = await self.venue.lookup(self.ticket.client_id, self.ticket.symbol, since=self.send_started_at or self.taken_at)
        if found is not None:
            self.missing_since = None
            problem = not_ours(found, self.ticket)
            if problem is not None:
                log.warning("SECURITY: the order under client id %s at %s is not ours (%s)", self.client_id, self.order.venue, problem)
                return _ended(self.client_id, VenueOrderState.REJECTED,
                              f"an order under our client id at {self.order.venue} does not match what was sent ({problem}); "
                              "not followed: check the venue", done)
            if not found.ended and _age_s(self.send_started_at) > self.settings.order_ttl_seconds:
                return await self._cancel_rest(found)
            return found
        if self.state == "sending":
            waited = _age_s(self.send_started_at)
            if self.not_before is not None:
                waited = min(waited, _age_s(self.not_before))
            if waited < grace_s(self.settings):
                return None  # the one send may still appear
            return _ended(self.client_id, VenueOrderState.REJECTED,
                          f"not confirmed: {self.order.venue} has no order under client id {self.client_id} "
                          f"{waited:.0f} s after the send; it was not sent again")
        self.missing_since = self.missing_since if self.missing_since is not None else now_m
        if now_m - self.missing_since < grace_s(self.settings):
            return None
        return _ended(self.client_id, VenueOrderState.CANCELLED,
                      f"{self.order.venue} no longer finds order {self.client_id}; ended with what was filled", done)

    async def _make_ticket(self) -> VenueReport | None:
        if (why := not_allowed(self.order, derivatives=self.settings.derivatives)) is not None:
            return self._not_sent(why)
        if (old := self._too_old()) is not None:  # a venue that kept failing here must not hold it forever
            return old
        try:
            if self.settings.derivatives and not is_perpetual(self.order):
                held = (await self.venue.positions()).get(self.order.asset, 0.0)
                ordered = self.store.perpetual_on_order(self.order.venue, self.order.asset)
                why = leaves_perpetual_open(self.order, held) or leaves_perpetual_open(self.order, ordered, ordered=True)
                if why is not None:
                    return self._not_sent(why)
            rules = await self.venue.rules(symbol_for(self.order.asset, self.settings.quote, perpetual=is_perpetual(self.order)))
        except VenueAuthFailed as exc:
            self.auth_failure = exc
            return self._not_sent(str(exc))
        except VenueRefused as exc:
            return self._not_sent(str(exc))
        made = ticket_for(self.order, self.client_id, rules, self.mission.approvals.price_band_pct, derivatives=self.settings.derivatives)
        if isinstance(made, str):
            return self._not_sent(made)
        self.ticket = made
        self.store.set_ticket(self.order_id, made)
        return None

    def _too_old(self, why: str = "") -> VenueReport | None:
        age = _age_s(self.order.created_at)
        if age <= self.settings.max_order_age_seconds:
            return None
        return self._not_sent(
            f"approved {age:.0f} s ago, longer than venues.{self.order.venue}.max_order_age_seconds "
            f"({self.settings.max_order_age_seconds:g}): the price the principal saw is too old{why}"
        )

    async def _send_once(self) -> VenueReport | None:
        if not self.ticket.perpetual:
            return await self._send_now()
        if (why := not_allowed(self.order, derivatives=self.settings.derivatives)) is not None:
            return self._not_sent(why)  # derivatives turned off before its turn came
        # A venue's leverage is the symbol's, not the order's: one perpetual order of ours at a time on a
        # symbol, so that the leverage one sets is never another's.
        async with self.symbol_lock(self.ticket.symbol):
            ahead = self.store.ahead_on(self.order.venue, self.endpoint, self.ticket.symbol, order_id=self.order_id, seq=self.seq)
            if ahead:  # first come, first sent; the next step looks again
                return self._too_old(f"; it waited its turn on {self.ticket.symbol} behind order {', '.join(ahead[:3])}")
            return await self._send_now()

    async def _send_now(self) -> VenueReport | None:
        if (old := self._too_old()) is not None:
            return old
        if self.may_send is not None and not self.may_send():
            return None  # the lease is not surely held long enough: try at the next step
        try:
            if self.ticket.perpetual:  # its margin mode and leverage, or reduce-only; nothing placed yet
                prepared = await self.venue.prepare(self.ticket)
                if prepared is not None and prepared != self.ticket:
                    self.ticket = prepared
                    self.store.set_ticket(self.order_id, prepared)
        except VenueRefused as exc:
            return self._not_sent(str(exc))
        except VenueAuthFailed as exc:
            self.auth_failure = exc
            return self._not_sent(str(exc))
        if (old := self._too_old()) is not None:  # the preparation may have taken a while
            return old
        if self.may_send is not None and not self.may_send():
            return None  # the preparation took the lease's margin: try at the next step
        self.store.begin_send(self.order_id, _wall())  # before the request leaves: never a second send
        self.sent, self.send_started_at = True, _wall()
        try:
            report = await self.venue.place(self.ticket)
        except VenueRefused as exc:
            return self._not_sent(str(exc))  # the venue said no: nothing was placed
        except VenueAuthFailed as exc:
            self.auth_failure = exc
            return self._not_sent(str(exc))  # the key was refused before anything was placed
        self.state = "open"
        return report

    async def _cancel_rest(self, found: VenueReport) -> VenueReport:
        log.info("order %s open past %.0f s: cancelling the rest", self.order_id, self.settings.order_ttl_seconds)
        after = await self.venue.cancel(self.ticket.client_id, self.ticket.symbol, since=self.send_started_at or self.taken_at)
        return after if after is not None else found  # not ended yet: cancelled again next step


async def follow(follower: OrderFollower, done: Answered, answer, saw, poll_s: float) -> Answered:
    """Step `follower` until the order ends; `answer(report, done, state)` publishes what it adds."""
    backoff = poll_s
    loop = asyncio.get_running_loop()
    while not done.ended:
        try:
            report = await follower.step(done, loop.time())
            # A step that ended in a refused key says so; only a signed call that worked
            # says the venue (and the key) work.
            if follower.auth_failure is not None:
                saw(follower.auth_failure)
            elif follower.sent:
                saw(None)  # a signed call (a send, a look, a cancel) was answered
            backoff = poll_s
        except VenueError as exc:
            saw(exc)
            log.warning("order %s at %s: %s", follower.order_id, follower.order.venue, exc)
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)
            continue
        if report is not None:
            follower.state = "ended" if report.ended else "open"
            done = await answer(report, done, follower.state)
            if done.ended:
                break
            if report.ended and not done.ended:  # the venue's numbers did not add up: look again, slowly
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
        await asyncio.sleep(poll_s)
    return done
