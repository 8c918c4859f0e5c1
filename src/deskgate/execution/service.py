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
import hashlib
import logging
import time
from datetime import datetime, timedelta, timezone

import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError

from deskgate.audit.keys import KeyStore
from deskgate.audit.order_chain import order_problem
from deskgate.audit.signing import Kind, SignatureStatus, Signer, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.lease import Lease, LeaseLost, holder_id
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.live import read_live
from deskgate.bus.pull import PullConsumer
from deskgate.bus.reader import ReadError, last_message
from deskgate.clock import Clock, MarketClock, clock_for
from deskgate.config import Mission
from deskgate.domain.execution import Fill, Order
from deskgate.domain.market import Bar
from deskgate.execution.paper import PaperVenue, refused
from deskgate.execution.follow import MAX_BACKOFF_S, OrderFollower, endpoint_of, follow
from deskgate.execution.reports import Answered, answers
from deskgate.execution.store import ExecutionStore
from deskgate.execution.ticket import client_order_id, symbol_for
from deskgate.domain.venue import VenueObservation
from deskgate.execution.health import assess
from deskgate.execution.venue import OrderTicket, Venue, VenueError, VenueReport
from deskgate.execution.venues import VenueBook
from deskgate.paths import DataDir
from deskgate.people.pins import Pins, enroll_everyone_once

log = logging.getLogger("deskgate.executor")

# Seconds of lease left that a venue request needs before it is signed (bus/lease.py: Lease.check);
# and, larger, that an order's one send needs before it begins (else it waits, nothing written).
LEASE_GUARD_S = 1.0
SEND_MARGIN_S = 3.0



def desk_fingerprint(keys: KeyStore) -> str:
    """This desk, for client order ids: its factory's public key, made when the desk was set up."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = keys.public_keys("factory")[0].public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Executor:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, store_url: str | None = None):
        self.mission = mission
        self.data_dir = data_dir
        self.clock = clock or clock_for(mission)
        self.store = ExecutionStore.open(data_dir, store_url)
        self.engine = self.store.engine
        self.prices: dict[str, float] = {}
        self.events = SecurityEvents()
        self.keys = KeyStore.for_desk(data_dir, pins=Pins.for_service(data_dir, "executor"))
        enroll_everyone_once(self.keys.pins, self.keys.principals)  # a data directory from before pins
        self.signer = Signer(self.keys, "executor")
        self.desk_id = desk_fingerprint(self.keys)  # in every client order id: no other desk's orders are ours
        paper = mission.paper
        self.venues = VenueBook(mission, PaperVenue("paper", self.prices, paper.slippage_bps, paper.fee_bps))
        self.refused = 0
        self._stop = asyncio.Event()
        self._driving: dict[str, asyncio.Task] = {}
        self._symbol_locks: dict[tuple[str, str], asyncio.Lock] = {}  # one perpetual send at a time per venue symbol
        self.unfollowed: dict[str, dict[str, str]] = {}  # venue -> order id -> why it is not followed
        self.nc = None
        self.js = None
        self.lease: Lease | None = None  # with standbys (standby.enabled): held while this instance is active
        self.not_before: datetime | None = None  # with standbys: see OrderFollower.not_before
        self._lease_lost: asyncio.Future | None = None  # set by any task that meets LeaseLost (see _lost)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        self.nc, _ = await connect_as(self.data_dir, S.Role.EXECUTOR, events=self.events, name="deskgate-executor")
        self.js = self.nc.jetstream()
        keeping = None
        if self.mission.standby.enabled:
            # One of several executors: only the lease holder takes orders or speaks to venues.
            if ready is not None:
                ready.set()  # standing by is this instance's work until it holds the lease
            self.lease = Lease(self.nc, "executor", holder_id("executor", str(self.data_dir.root)))
            log.info("executor standing by for the lease")
            keeping = await self.lease.take(self._stop)
            if keeping is None:
                await self._drain()
                return
            try:
                self.store.take_over(self.lease.epoch)
            except BaseException:
                keeping.cancel()
                raise
            # An order the last holder began sending is not concluded "not sent" before its lease is surely over.
            self.not_before = datetime.now(timezone.utc) + timedelta(seconds=self.lease.seconds)
            log.info("executor holds the lease (epoch %d)", self.lease.epoch)
        elif (epoch := self.store.fence_epoch()) > 0:
            await self._drain()
            raise SystemExit(f"this store was last written by a standby executor (lease epoch {epoch}): an executor without "
                             "standby.enabled would send beside whichever holds the lease; set standby.enabled on every executor")
        try:
            await self._work(ready, keeping)
        finally:
            if keeping is not None:
                keeping.cancel()
                await asyncio.gather(keeping, return_exceptions=True)

    async def _work(self, ready: asyncio.Event | None, keeping: asyncio.Task | None) -> None:
        bars = await self.nc.subscribe(S.BARS, cb=self._on_bar)
        await self.venues.open()
        if self.lease is not None:
            for venue in self.venues.real():
                venue.guard = self._lease_guard
        watch = taking = None
        self._lease_lost = asyncio.get_running_loop().create_future()
        try:
            for fill in self.store.unpublished():
                await self._publish(fill)
            for row in self.store.unfinished():
                self._drive(row["order_id"])
            orders = await PullConsumer(self.nc, "ORDERS", "executor_orders", window=16).start()
            watch = asyncio.create_task(self._watch(), name="venue-watch") if self.mission.venues.configured() else None
            if ready is not None:
                ready.set()
            log.info("executor running (venues: %s)", self.venues.describe())
            taking = asyncio.create_task(self._take_orders(orders), name="orders")
            # The orders' loop ends on stop; a lost lease ends everything at once, whether the keeper,
            # the orders, a follower or the venue watch met it.
            done, _ = await asyncio.wait([t for t in (taking, keeping, self._lease_lost) if t is not None],
                                         return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
        finally:  # a lost lease too: nothing of this executor outlives it, no follower, no look at a venue
            for task in [t for t in (taking, watch) if t is not None] + list(self._driving.values()):
                task.cancel()
            await asyncio.gather(*[t for t in (taking, watch) if t is not None], *self._driving.values(), return_exceptions=True)
            await self.venues.close()
            try:
                await bars.unsubscribe()
            except Exception:  # noqa: BLE001 - the bus may be gone; the error that ended the work is the one to see
                pass
        if self.lease is not None:
            await self.lease.release()  # a standby takes over now, not when the lease expires
        await self._drain()

    async def _take_orders(self, orders: PullConsumer) -> None:
        while not self._stop.is_set():
            for m in await orders.next_batch(wait=0.5):
                await self.handle_order(m)

    async def _drain(self) -> None:
        try:
            await self.nc.drain()
        except Exception:
            pass

    def stop(self) -> None:
        self._stop.set()

    def _lease_guard(self) -> None:
        """Asked as each venue request is signed: only while the lease is surely ours. A request
        signed then reaches the venue within its receive window (binance and bybit 5 s, set in
        ccxt_venue.make_exchange; okx 30 s) or is refused there, and a standby that takes over
        concludes nothing about an order before `not_before` plus the send grace (at least 40 s
        after the takeover)."""
        self.lease.check(LEASE_GUARD_S)

    def _lost(self, exc: LeaseLost) -> None:
        """A follower or the venue watch met a lost lease (or, without standbys, a standby's
        fence): the whole executor stops, not that task alone."""
        if self._lease_lost is not None and not self._lease_lost.done():
            self._lease_lost.set_exception(exc)

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
            # Redelivered: whatever it was owed is in the store; an unfinished order is followed.
            for fill in self.store.unpublished(order.order_id):
                await self._publish(fill)
            if self.store.load(order.order_id)["state"] != "ended":
                self._drive(order.order_id)
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
        if venue.local:
            # The paper venue's ids name the directive alone: a replay on another desk answers the same.
            await self._fill_locally(venue, order, seq, client_order_id("paper", order.directive_id), now)
        else:
            await self._take_on(order, seq, client_order_id(self.desk_id, order.directive_id), now)
        await msg.ack()

    async def _refuse_chain(self, msg: Msg, seq: int, order: Order, problem: str, now) -> None:
        self.refused += 1
        log.warning("SECURITY: refused order %s at seq %d: %s", order.order_id, seq, problem)
        self.store.refuse(seq, problem, msg.data, now)
        if verify_headers(self.keys, Kind.ORDER, msg.data, msg.headers, expect="factory") is not SignatureStatus.VALID:
            await msg.ack()  # not the factory's order: nothing of the factory's to release
            return
        fill = refused(order, problem, now)
        with self.store.begin() as conn:
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
        with self.store.begin() as conn:
            self.store.take_on(conn, order, seq, client_id, ticket, "ended", now)
            self.store.record(conn, order.order_id, fills, account, "ended", now)
        for fill in fills:
            await self._publish(fill)

    async def _take_on(self, order: Order, seq: int, client_id: str, now) -> None:
        """A real venue: write the order down, then follow it at the venue in the background."""
        settings = self.mission.venues.configured()[order.venue]
        with self.store.begin() as conn:
            self.store.take_on(conn, order, seq, client_id, None, "sending", now, endpoint=endpoint_of(settings, order.venue))
        self._drive(order.order_id)

    # -- each real venue's health, balances and open orders ------------------------

    async def _watch(self) -> None:
        """Every `venues.health_seconds`, look at each real venue and tell the factory."""
        venues = self.mission.venues
        last_reconcile: dict[str, float] = {}
        while True:
            for name in venues.configured():
                try:
                    due = time.monotonic() - last_reconcile.get(name, -1e9) >= venues.reconcile_seconds
                    if await self._observe(name, reconcile=due) and due:
                        last_reconcile[name] = time.monotonic()
                except asyncio.CancelledError:
                    raise
                except LeaseLost as exc:
                    self._lost(exc)
                    return
                except Exception as exc:  # noqa: BLE001 - a bad look at one venue never stops the executor
                    log.warning("could not report on %s: %r", name, exc)
            await asyncio.sleep(venues.health_seconds)

    async def _observe(self, name: str, *, reconcile: bool) -> bool:
        """Publish one observation of `name`; True when it carried the balances."""
        venue, settings = self.venues.get(name), self.mission.venues.configured()[name]
        skew = None
        try:
            skew = await venue.clock_skew_ms()
            self.venues.saw(name, None, private=False)
        except VenueError as exc:
            self.venues.saw(name, exc)
        balances, ours, unknown = None, [], []
        if reconcile and (self.venues.seen[name].ok or self.venues.seen[name].auth_failed):
            try:
                busy = self.store.unfinished_assets(name)
                held, open_ids = await venue.balances(), await venue.open_orders()
                # A perpetual's position counts with the spot balance: the book holds one quantity per asset.
                perps = await venue.positions() if settings.derivatives else {}
                self.venues.saw(name, None)
                # Every asset the desk trades or ever sent here, zero included: a position the
                # venue no longer holds must show as a difference, not as "not read". Other
                # currencies on the account (fee tokens, a testnet's presets) are not the book's.
                assets = set(self.mission.marketdata.assets) | self.store.assets(name)
                balances = {a: held.get(a, 0.0) + perps.get(a, 0.0) for a in assets if a not in busy and a != settings.quote}
                mine = self.store.client_ids(name, unfinished=True)  # an ended order open at the venue is not ours any more
                ours = [c for c in open_ids if c in mine]
                unknown = [c for c in open_ids if c not in mine]
            except VenueError as exc:
                self.venues.saw(name, exc)
                balances = None
        state, observed, limit, reason = assess(self.venues.seen[name], skew, settings)
        stuck = self.unfollowed.get(name)
        if state == "healthy" and stuck:
            state, observed, limit, reason = ("stuck", f"{len(stuck)} orders not followed", "every open order followed",
                                              f"orders {', '.join(sorted(stuck)[:5])} at {name} are not followed: {next(iter(stuck.values()))}")
        observation = VenueObservation(
            venue=name, observed_at=self.clock.now(), state=state, observed=observed[:200], limit=limit[:200], reason=reason[:1000],
            clock_skew_ms=skew, balances=balances, open_orders=ours[:10_000], unknown_orders=unknown[:10_000],
        )
        if self.lease is not None and not self.lease.valid():
            return False  # a look taken by an executor that no longer holds the lease is not the desk's
        payload = observation.to_bytes()
        subject = S.venue_observation_subject(name)
        try:
            await self.js.publish(subject, payload, headers=self.signer.headers(Kind.STATUS, payload))
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            log.warning("could not publish the look at %s: %s", name, exc)
            return False
        return balances is not None

    # -- following an order at its venue ---------------------------------------

    def _drive(self, order_id: str) -> None:
        if order_id not in self._driving:
            task = asyncio.create_task(self._supervise(order_id), name=f"order-{order_id}")
            self._driving[order_id] = task
            task.add_done_callback(lambda _t: self._driving.pop(order_id, None))

    async def _supervise(self, order_id: str) -> None:
        """Follow an order until it ends; whatever goes wrong, start following it again."""
        backoff = 1.0
        while True:
            try:
                await self._follow(order_id)
                return
            except asyncio.CancelledError:
                raise
            except LeaseLost as exc:
                self._lost(exc)  # the executor stops; the lease's next holder follows the order
                return
            except Exception:  # noqa: BLE001 - a bug or a database error must not orphan an order
                log.exception("following order %s failed; trying again in %.0f s", order_id, backoff)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def _follow(self, order_id: str) -> None:
        row = self.store.load(order_id)
        if row["state"] == "ended":
            return
        venue_name = row["venue"]
        settings = self.mission.venues.configured().get(venue_name)
        why = None
        if settings is None:
            why = "the venue is no longer under venues: in mission.yaml; configure it again to finish the order"
        elif row["endpoint"] and row["endpoint"] != endpoint_of(settings, venue_name):
            why = f"it was sent to {row['endpoint']}, and the venue is now configured as {endpoint_of(settings, venue_name)}"
        elif (row["ticket"] or {}).get("leverage") and row["attempts"] > 0 and not settings.derivatives:
            why = f"it is a perpetual order, and venues.{venue_name}.derivatives is now false; set it back to finish the order"
        if why is not None:
            log.error("order %s at %s is not followed: %s", order_id, venue_name, why)
            self.unfollowed.setdefault(venue_name, {})[order_id] = why
            return
        follower = OrderFollower(self.mission, self.store, self.venues.get(venue_name), row, settings)
        follower.not_before = self.not_before
        follower.symbol_lock = lambda symbol: self._symbol_locks.setdefault((venue_name, symbol), asyncio.Lock())
        if self.lease is not None:
            follower.may_send = lambda: self.lease.remaining() >= SEND_MARGIN_S
        order = follower.order

        async def answer(report: VenueReport, done: Answered, state: str) -> Answered:
            return await self._answer(order, report, done, state)

        await follow(follower, Answered(**row["answered"]), answer, lambda exc: self.venues.saw(venue_name, exc), settings.poll_seconds)

    async def _answer(self, order: Order, report: VenueReport, done: Answered, state: str) -> Answered:
        now = self.clock.now()
        try:
            fills, account = answers(order, report, done, now)
        except ValueError as exc:  # the venue's numbers do not add up: keep looking, say so
            log.warning("order %s: %s", order.order_id, exc)
            return done
        with self.store.begin() as conn:
            self.store.record(conn, order.order_id, fills, account, state, now)
        for fill in fills:
            await self._publish(fill)
        return account

    async def _publish(self, fill: Fill) -> None:
        while True:
            try:
                payload = fill.to_bytes()
                await self.js.publish(
                    S.fill_subject(fill.venue), payload, headers=self.signer.headers(Kind.FILL, payload, {"Nats-Msg-Id": fill.fill_id})
                )
                break
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("could not publish fill %s yet: %s", fill.fill_id, exc)
                await asyncio.sleep(0.5)
        self.store.published(fill.fill_id)
