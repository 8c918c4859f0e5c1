"""The executor: sends each approved order to its venue once, and answers it with fills.

Before anything it checks the order's whole chain (audit/order_chain.py): the
factory's signature, the agent's signed directive, and a principal's signed approval
of exactly that directive. An order that does not verify is never sent; the refusal
is recorded, and when the factory really sent the order it gets a signed "rejected"
answer saying why, so the exposure it reserved is released.

Venues: one named under `venues:` in mission.yaml is reached through ccxt
(execution/ccxt_venue.py); any other fills on the paper venue. A real order is
written down (execution/store.py) before each send under a client id derived from
its directive, and followed until it ends: fills are published as they come, an
unconfirmed send is looked up by client id before anything is retried, and a restart
resumes every order that had not ended.
"""

from __future__ import annotations

import asyncio
import logging
import time

import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError

from deskgate.audit.keys import KeyStore
from deskgate.audit.order_chain import order_problem
from deskgate.audit.signing import Kind, SignatureStatus, Signer, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.live import read_live
from deskgate.bus.pull import PullConsumer
from deskgate.bus.reader import ReadError, last_message
from deskgate.clock import Clock, MarketClock, clock_for
from deskgate.config import Mission
from deskgate.domain.execution import Fill, Order
from deskgate.domain.market import Bar
from deskgate.execution.paper import PaperVenue, refused
from deskgate.execution.reports import Answered, answers
from deskgate.execution.store import ExecutionStore
from deskgate.execution.ticket import client_order_id, symbol_for, ticket_for
from deskgate.execution.venue import OrderTicket, Venue, VenueAuthFailed, VenueOrderState, VenueRefused, VenueReport, VenueUnreachable
from deskgate.execution.venues import VenueBook
from deskgate.paths import DataDir
from deskgate.people.pins import Pins, enroll_everyone_once
from deskgate.storage import make_engine

log = logging.getLogger("deskgate.executor")

#: Between two looks at a venue that gave no usable answer, at most this long.
MAX_BACKOFF_S = 30.0


class Executor:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, store_url: str | None = None):
        self.mission = mission
        self.data_dir = data_dir
        self.clock = clock or clock_for(mission)
        self.store = ExecutionStore(make_engine(store_url or data_dir.sqlite_url("executor")))
        self.engine = self.store.engine
        self.prices: dict[str, float] = {}
        self.events = SecurityEvents()
        self.keys = KeyStore.for_desk(data_dir, pins=Pins.for_service(data_dir, "executor"))
        enroll_everyone_once(self.keys.pins, self.keys.principals)  # a data directory from before pins
        self.signer = Signer(self.keys, "executor")
        paper = mission.paper
        self.venues = VenueBook(mission, PaperVenue("paper", self.prices, paper.slippage_bps, paper.fee_bps))
        self.refused = 0
        self._stop = asyncio.Event()
        self._driving: dict[str, asyncio.Task] = {}
        self.nc = None
        self.js = None

    async def run(self, ready: asyncio.Event | None = None) -> None:
        self.nc, _ = await connect_as(self.data_dir, S.Role.EXECUTOR, events=self.events, name="deskgate-executor")
        self.js = self.nc.jetstream()
        bars = await self.nc.subscribe(S.BARS, cb=self._on_bar)
        await self.venues.open()
        for fill in self.store.unpublished():
            await self._publish(fill)
        for row in self.store.unfinished():
            self._drive(row["order_id"])
        orders = await PullConsumer(self.nc, "ORDERS", "executor_orders", window=16).start()
        if ready is not None:
            ready.set()
        log.info("executor running (venues: %s)", self.venues.describe())
        while not self._stop.is_set():
            msgs = await orders.next_batch(wait=0.5)
            for m in msgs:
                await self.handle_order(m)
        for task in list(self._driving.values()):
            task.cancel()
        await asyncio.gather(*self._driving.values(), return_exceptions=True)
        await self.venues.close()
        await bars.unsubscribe()
        try:
            await self.nc.drain()
        except Exception:
            pass

    def stop(self) -> None:
        self._stop.set()

    async def _on_bar(self, msg: Msg) -> None:
        bar = read_live(msg, "MARKET", Bar)
        if bar is not None:
            self.prices[bar.asset] = bar.close
            if isinstance(self.clock, MarketClock):
                self.clock.observe(bar.ts)

    async def _price(self, asset: str) -> float | None:
        if asset not in self.prices:
            try:
                stored = await last_message(self.nc, "MARKET", S.bar_subject(asset))
            except (ReadError, nats.errors.Error):
                stored = None
            if stored is not None:
                try:
                    self.prices[asset] = Bar.model_validate_json(stored.data).close
                except ValidationError:
                    pass
        return self.prices.get(asset)

    # -- an order arrives -----------------------------------------------------

    async def handle_order(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        now = self.clock.now()
        try:
            order = Order.model_validate_json(msg.data)
        except ValidationError as exc:
            reason = f"invalid order: {exc.errors(include_url=False)[:3]}"
            self.store.refuse(seq, reason, msg.data, now)
            log.warning("refused order at seq %d: %s", seq, reason)
            await msg.ack()
            return
        if self.store.known(order.order_id):
            # Redelivered: whatever it was owed is in the store; the drive (if any) goes on.
            for fill in self.store.unpublished(order.order_id):
                await self._publish(fill)
            await msg.ack()
            return
        problem = order_problem(
            self.keys.deciding, order, msg.data, msg.headers,
            explicit_above_usd=self.mission.guardrails.require_human_approval_above_usd,
            four_eyes_above_usd=self.mission.approvals.four_eyes_above_usd,
        )
        if problem is None and (earlier := self.store.answered_as(order.directive_id)) is not None:
            problem = f"directive {order.directive_id} was already answered as order {earlier}; an approval is used once"
        if problem is not None:
            await self._refuse_chain(msg, seq, order, problem, now)
            return
        venue = self.venues.get(order.venue)
        client_id = client_order_id(order.directive_id)
        if venue.local:
            await self._fill_locally(venue, order, seq, client_id, now)
        else:
            await self._take_on(venue, order, seq, client_id, now)
        await msg.ack()

    async def _refuse_chain(self, msg: Msg, seq: int, order: Order, problem: str, now) -> None:
        self.refused += 1
        log.warning("SECURITY: refused order %s at seq %d: %s", order.order_id, seq, problem)
        self.store.refuse(seq, problem, msg.data, now)
        if verify_headers(self.keys, Kind.ORDER, msg.data, msg.headers, expect="factory") is not SignatureStatus.VALID:
            await msg.ack()  # not the factory's order: nothing of the factory's to release
            return
        fill = refused(order, problem, now)
        with self.engine.begin() as conn:
            self.store.take_on(conn, order, seq, "", None, "ended", now, answers_directive=False)
            self.store.record(conn, order.order_id, [fill], Answered(count=1, ended=True), "ended", now)
        await self._publish(fill)
        await msg.ack()

    async def _fill_locally(self, venue: Venue, order: Order, seq: int, client_id: str, now) -> None:
        """The paper venue: placing cannot half-happen, so order and fill are written at once."""
        await self._price(order.asset)
        ticket = OrderTicket(
            client_id=client_id, symbol=symbol_for(order.asset, "USD"), side=order.side,
            amount=order.notional_usd / order.reference_price, price=order.reference_price, notional_usd=order.notional_usd,
        )
        report = await venue.place(ticket)
        fills, account = answers(order, report, Answered(), now)
        with self.engine.begin() as conn:
            self.store.take_on(conn, order, seq, client_id, ticket, "ended", now)
            self.store.record(conn, order.order_id, fills, account, "ended", now)
        for fill in fills:
            await self._publish(fill)

    async def _take_on(self, venue: Venue, order: Order, seq: int, client_id: str, now) -> None:
        """A real venue: write the order down, then drive it at the venue in the background."""
        settings = self.mission.venues.configured()[order.venue]
        ticket: OrderTicket | str
        try:
            rules = await venue.rules(symbol_for(order.asset, settings.quote))
            ticket = ticket_for(order, client_id, rules, self.mission.approvals.price_band_pct, derivatives=settings.derivatives)
        except (VenueRefused, VenueAuthFailed) as exc:
            self.venues.saw(order.venue, exc)
            ticket = str(exc)
        except VenueUnreachable as exc:
            self.venues.saw(order.venue, exc)
            ticket = None  # not sent yet: the drive fetches the rules again
        with self.engine.begin() as conn:
            if isinstance(ticket, str):
                fill = Fill(
                    fill_id=f"{order.order_id}-f", order_id=order.order_id, directive_id=order.directive_id, venue=order.venue,
                    asset=order.asset, side=order.side, status="refused", filled_at=now, reference_price=order.reference_price,
                    reason=f"not sent: {ticket}"[:2000], client_order_id=client_id,
                )
                self.store.take_on(conn, order, seq, client_id, None, "ended", now)
                self.store.record(conn, order.order_id, [fill], Answered(count=1, ended=True), "ended", now)
            else:
                self.store.take_on(conn, order, seq, client_id, ticket, "sending", now)
        if isinstance(ticket, str):
            log.warning("order %s not sent to %s: %s", order.order_id, order.venue, ticket)
            await self._publish(fill)
            return
        self._drive(order.order_id)

    # -- following an order at its venue ---------------------------------------

    def _drive(self, order_id: str) -> None:
        if order_id not in self._driving:
            task = asyncio.create_task(self._follow(order_id), name=f"order-{order_id}")
            self._driving[order_id] = task
            task.add_done_callback(lambda _t: self._driving.pop(order_id, None))

    async def _follow(self, order_id: str) -> None:
        """Until the order ends: send it (once), look at it, publish what filled."""
        row = self.store.load(order_id)
        order = Order.model_validate(row["order"])
        venue = self.venues.get(order.venue)
        settings = self.mission.venues.configured()[order.venue]
        ticket = OrderTicket.model_validate(row["ticket"]) if row["ticket"] else None
        done = Answered(**row["answered"])
        state, attempts = row["state"], row["attempts"]
        started = time.monotonic()
        backoff = settings.poll_seconds
        cancelled = False
        while not done.ended:
            try:
                if ticket is None:
                    rules = await venue.rules(symbol_for(order.asset, settings.quote))
                    made = ticket_for(order, row["client_id"], rules, self.mission.approvals.price_band_pct, derivatives=settings.derivatives)
                    if isinstance(made, str):
                        report = VenueReport(client_id=row["client_id"], state=VenueOrderState.REJECTED, reason=f"not sent: {made}")
                    else:
                        ticket = made
                        self.store.set_ticket(order_id, ticket)
                        continue
                elif state == "sending":
                    report = await venue.lookup(ticket.client_id, ticket.symbol) if attempts else None
                    if report is None:
                        attempts = self.store.begin_send(order_id, self.clock.now())
                        report = await self._send(venue, ticket)
                else:
                    report = await venue.lookup(ticket.client_id, ticket.symbol)
                    if report is None:
                        raise VenueUnreachable(f"{order.venue} no longer finds order {ticket.client_id}")
                    if not report.ended and not cancelled and time.monotonic() - started > settings.order_ttl_seconds:
                        log.info("order %s open past %.0fs: cancelling the rest", order_id, settings.order_ttl_seconds)
                        cancelled = True
                        report = await venue.cancel(ticket.client_id, ticket.symbol) or report
                self.venues.saw(order.venue, None)
                backoff = settings.poll_seconds
            except (VenueUnreachable, VenueAuthFailed) as exc:
                self.venues.saw(order.venue, exc)
                log.warning("order %s at %s: %s", order_id, order.venue, exc)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            except VenueRefused as exc:  # a lookup or cancel the venue will not do
                log.warning("order %s at %s: %s", order_id, order.venue, exc)
                await asyncio.sleep(backoff)
                continue
            state = "ended" if report.ended else "open"
            done = await self._answer(order, report, done, state)
            if not done.ended:
                await asyncio.sleep(settings.poll_seconds)

    async def _send(self, venue: Venue, ticket: OrderTicket) -> VenueReport:
        """One send. A refusal is checked by a lookup: a duplicate client id means it is there."""
        try:
            return await venue.place(ticket)
        except VenueRefused as exc:
            found = await venue.lookup(ticket.client_id, ticket.symbol)
            if found is not None:
                return found
            return VenueReport(client_id=ticket.client_id, state=VenueOrderState.REJECTED, reason=str(exc))
        except VenueAuthFailed as exc:
            # The key was refused: the venue took nothing. Say so on the order, never retry blind.
            return VenueReport(client_id=ticket.client_id, state=VenueOrderState.REJECTED, reason=f"not sent: {exc}")

    async def _answer(self, order: Order, report: VenueReport, done: Answered, state: str) -> Answered:
        now = self.clock.now()
        try:
            fills, account = answers(order, report, done, now)
        except ValueError as exc:  # the venue's numbers do not add up: keep looking, say so
            log.warning("order %s: %s", order.order_id, exc)
            return done
        with self.engine.begin() as conn:
            self.store.record(conn, order.order_id, fills, account, state, now)
        for fill in fills:
            await self._publish(fill)
        return account

    async def _publish(self, fill: Fill) -> None:
        while True:
            try:
                payload = fill.to_bytes()
                await self.js.publish(S.fill_subject(fill.venue), payload, headers=self.signer.headers(Kind.FILL, payload, {"Nats-Msg-Id": fill.fill_id}))
                break
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("could not publish fill %s yet: %s", fill.fill_id, exc)
                await asyncio.sleep(0.5)
        self.store.published(fill.fill_id)
