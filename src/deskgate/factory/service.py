"""The factory: evaluates directives, stages them for a human, turns approvals into
orders, keeps the book from fills, and trips the circuit breaker.

This module wires the components to the bus and owns their shared state
(`FactoryState`). A directive's path: `handle_directives` → `Intake.evaluate`
(factory/intake.py) → `Outbox.flush`; a principal's decision: `handle_responses` →
`Approvals.decide` (factory/approvals.py); a fill: `handle_fills` → `Book.apply_fill`
(factory/book.py) → `BreakerKeeper.check` (factory/breaker.py).

Each core does its deciding and its database write synchronously, with no await in
between, so the beliefs every check sees are never half-updated; it lists what it
changed in an `Effects`, which the shell hands on only after the commit, then
publishes and acknowledges the bus messages.
"""

from __future__ import annotations

import asyncio
import logging
import time

import nats.errors
import sqlalchemy.exc
from nats.aio.msg import Msg

from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import Signer
from deskgate.bus import subjects as S
from deskgate.bus.breaker import BREAKER_STREAM
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.lease import Lease, LeaseLost, holder_id
from deskgate.bus.live import persisted
from deskgate.bus.publish import BatchPublisher
from deskgate.bus.pull import PullConsumer
from deskgate.bus.reader import read_stream
from deskgate.clock import Clock, MarketClock, clock_for
from deskgate.config import Mission
from deskgate.domain.approval import ApprovalOutcome
from deskgate.domain.desk import DeskStatus, desk_status
from deskgate.domain.funnel import Funnel
from deskgate.factory.approvals import Approvals
from deskgate.factory.book import Book
from deskgate.factory.breaker import BreakerKeeper
from deskgate.factory.funnel import EvaluationLatency, FunnelCounter
from deskgate.factory.governor import GovernorWatch
from deskgate.factory.intake import Intake
from deskgate.factory.outbox import Effects, Outbox
from deskgate.factory.people import Verifier, follow_key_rotations
from deskgate.factory.state import FactoryState
from deskgate.factory.status import StatusBoard
from deskgate.factory.store import FactoryStore
from deskgate.factory.venues import VenueWatch
from deskgate.identity.registry import AgentRegistry
from deskgate.paths import DataDir
from deskgate.people.pins import Pins, enroll_everyone_once
from deskgate.policy.beliefs import Beliefs, Reservation
from deskgate.portfolio.ledger import Ledger

log = logging.getLogger("deskgate.factory")

BREAKER_REFRESH_EVERY_S = 5.0
# Failures of the bus or the database: not the message's fault, so not a refusal.
INFRASTRUCTURE_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                         LeaseLost)


class Factory:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, store_url: str | None = None):
        self.mission = mission
        self.data_dir = data_dir
        self.clock = clock or clock_for(mission)
        url = store_url or mission.storage.url or data_dir.store_url("factory")
        self.store = FactoryStore(url, legacy_sqlite=None if url.startswith("sqlite") else data_dir.state / "factory.db")
        self.events = SecurityEvents()
        # The factory signs all it publishes and checks the agent's and principals' signatures.
        self.keys = KeyStore.for_desk(data_dir, pins=Pins.for_service(data_dir, "factory"))
        enroll_everyone_once(self.keys.pins, self.keys.principals)  # a data directory from before pins
        self.signer = Signer(self.keys, "factory")
        self.verifier = Verifier(self.keys, mission.web.passkey_rp_id)  # who may decide now
        self.stats = {"directives": 0, "responses": 0, "fills": 0, "bars": 0, "bad_bars": 0, "bad_governor_states": 0,
                      "unsigned_directives": 0, "unsigned_decisions": 0, "unsigned_resets": 0}
        # The components, in dependency order; each writes only its own part of the state.
        self.state = FactoryState()
        self.latency = EvaluationLatency()
        self.outbox = Outbox(self.store, self.signer)
        self.status = StatusBoard(self.state, self.latency, self.events, self.outbox, self.clock)
        self.book = Book(self.store, self.state, self.keys, mission, self.clock, self.stats)
        self.governor = GovernorWatch(data_dir.state / "governor.json", self.state, self.verifier, mission, self.clock, self.outbox, self.stats)
        self.breaker = BreakerKeeper(self.store, self.state, self.book, self.verifier, self.signer, mission, self.clock, self.outbox, self.status, self.stats)
        self.intake = Intake(self.store, self.state, self.keys, mission, self.clock, self.latency, self.stats)
        self.approvals = Approvals(self.store, self.state, self.verifier, self.signer, mission, self.breaker, self.clock, self.stats)
        self.venues = VenueWatch(data_dir.state / "venues.json", self.state, self.verifier, mission, self.clock, self.outbox)
        self.nc = None
        self.js = None
        self._bars = None  # the bars subscription: its backlog says when a batch of bars is all applied
        self._stop = asyncio.Event()
        self._fatal: BaseException | None = None
        self.lease: Lease | None = None  # with standbys (standby.enabled): held while this instance is active
        self._keeping: asyncio.Task | None = None  # renewing it

    # Read-through views, for the tests and the CLI.
    @property
    def beliefs(self) -> Beliefs:
        return self.state.beliefs

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    @property
    def publisher(self) -> BatchPublisher | None:
        return self.outbox.publisher

    def funnel(self) -> Funnel:
        return self.status.funnel()

    # -- the cores, each with its effects handed on after its commit -----------------

    def evaluate_directives(self, items: list[tuple[int, bytes, dict | None]]) -> list[str | None]:
        effects = Effects()
        results = self.intake.evaluate(items, effects)
        self._apply(effects)
        return results

    def decide(self, seq: int, subject: str, data: bytes, headers: dict | None = None) -> ApprovalOutcome | None:
        effects = Effects()
        outcome = self.approvals.decide(seq, subject, data, headers, effects)
        self._apply(effects)
        return outcome

    def apply_fill(self, seq: int, data: bytes, headers: dict | None = None) -> ApprovalOutcome | None:
        effects = Effects()
        outcome = self.book.apply_fill(seq, data, headers, effects)
        self._apply(effects)
        return outcome

    def release_held(self) -> None:
        """Send the orders held for a venue that is healthy again (re-checked as ever)."""
        effects = Effects()
        self.approvals.release_held(effects)
        self._apply(effects)

    def expire_due(self) -> None:
        effects = Effects()
        self.approvals.expire_due(effects)
        self._apply(effects)

    def _apply(self, effects: Effects) -> None:
        self.outbox.add(effects.messages)
        self.status.note(effects)
        self.approvals.note(effects)

    async def publish_portfolio(self, force: bool = False) -> None:
        await self.status.publish_portfolio(force)

    # -- start-up ---------------------------------------------------------------

    def load_state(self) -> None:
        """Rebuild beliefs from the database: the book, prices, and every reserving intention."""
        counter = FunnelCounter()
        with self.store.begin() as conn:
            ledger = self.book.load(conn)
            reserving = self.store.reserving_intentions(conn)
            mirror = self.store.load_breaker(conn)
            self.store.load_funnel(conn, counter)
            self.intake.restore(conn)
            self.approvals.next_expiry = self.store.next_expiry(conn)
        # Prices are the market's, not our state: keep the latest ones we have seen.
        seen = self.state.beliefs
        for asset, price in (seen.prices.items() if seen and seen.prices else ()):
            ledger.mark(asset, price)
        tripped = self.breaker.restore(mirror)
        self.state.ledger, self.state.counter = ledger, counter
        self.state.beliefs = Beliefs(
            equity_usd=ledger.equity_usd,
            peak_equity_usd=ledger.breaker_peak_equity_usd,
            positions=ledger.positions_by_asset(),
            pending=[Reservation(r["directive_id"], r["asset"], r["side"], r["notional_usd"]) for r in reserving],
            breaker_tripped=tripped,
            prices=dict(ledger.marks),
            confidence_damping=self.governor.record.damping,
        )
        self.venues.apply_to_beliefs()  # real venues are unhealthy until the executor reports on them
        log.info(
            "state loaded",
            extra={"fields": {"equity": ledger.equity_usd, "reserving": len(reserving), "breaker": self.breaker.breaker.state}},
        )

    async def connect(self) -> None:
        self.nc, _ = await connect_as(self.data_dir, S.Role.FACTORY, events=self.events, name="deskgate-factory")
        self.js = self.nc.jetstream()
        self.outbox.attach(self.js, await BatchPublisher(self.nc).start())
        self.breaker.attach(self.nc, self.js)

    # -- running ------------------------------------------------------------------

    async def run(self, ready: asyncio.Event | None = None) -> None:
        try:
            await self._run(ready)
        finally:
            if self._keeping is not None and not self._keeping.done():  # start-up failed after the lease was taken
                self._keeping.cancel()
                await asyncio.gather(self._keeping, return_exceptions=True)

    async def _run(self, ready: asyncio.Event | None) -> None:
        if self.mission.standby.enabled:
            # One of several factories: wait for the lease, then read the state the last holder left.
            await self.connect()
            if ready is not None:
                ready.set()  # standing by is this instance's work until it holds the lease
            self.lease = Lease(self.nc, "factory", holder_id("factory", str(self.data_dir.root)))
            log.info("factory standing by for the lease")
            self._keeping = await self.lease.take(self._stop)
            if self._keeping is None:
                await self._close()
                return
            self.store.take_over(self.lease.epoch)
            log.info("factory holds the lease (epoch %d)", self.lease.epoch)
            self.load_state()
        else:
            if (epoch := self.store.fence_epoch()) > 0:
                raise SystemExit(f"this store was last written by a standby factory (lease epoch {epoch}): a factory without "
                                 "standby.enabled would write beside whichever holds the lease; set standby.enabled on every factory")
            self.load_state()
            await self.connect()
        await self.breaker.sync(startup=True)
        await self.book.load_prices(self.nc)
        await self.breaker.check()
        self.outbox.load_unpublished()
        await self.outbox.flush()
        await self.governor.start(self.nc)
        await self.governor.up_to_date()  # before the backlog: directives sent while we were down meet today's damping
        await self.governor.publish()
        await self._start_venues()
        await self.catch_up()
        bars = self._bars = await self.nc.subscribe(S.BARS, cb=self._on_bar)
        breaker_subs = [
            await self.nc.subscribe(S.breaker_kv_subject(key), cb=self._on_breaker_change)
            for key in (S.BREAKER_TRIP_KEY, S.BREAKER_RESET_KEY)
        ]
        directives = await PullConsumer(self.nc, "DIRECTIVES", "factory_directives").start()
        responses = await PullConsumer(self.nc, "RESPONSES", "factory_responses", window=16).start()
        fills = await PullConsumer(self.nc, "FILLS", "factory_fills", window=16).start()
        await self.status.publish_portfolio(force=True)
        await self.status.publish_desk(self.desk_facts())
        if ready is not None:
            ready.set()
        log.info("factory running")
        tasks = [
            asyncio.create_task(self._loop(directives, self.handle_directives, "DIRECTIVES"), name="directives"),
            asyncio.create_task(self._loop(responses, self.handle_responses, "RESPONSES"), name="responses"),
            asyncio.create_task(self._loop(fills, self.handle_fills, "FILLS"), name="fills"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        if self._keeping is not None:
            tasks.append(self._keeping)
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:  # cancelled too: no loop of this factory outlives it (nor renews its lease)
            for t in (stop, *tasks):
                t.cancel()
            await asyncio.gather(stop, *tasks, return_exceptions=True)
        for t in done:
            if t is not stop and t.exception():
                raise t.exception()
        await bars.unsubscribe()
        for sub in breaker_subs:
            await sub.unsubscribe()
        await self.governor.stop()
        self.book.save_ledger(force=True)
        self.outbox.mark_published()
        if self.lease is not None:
            await self.lease.release()  # a standby takes over now, not when the lease expires
        await self._close()

    async def _close(self) -> None:
        try:
            await self.nc.drain()
        except Exception:
            pass
        self.store.close()
        self.verifier.close()
        self.intake.authors.close()

    def stop(self) -> None:
        self._stop.set()

    def desk_facts(self) -> DeskStatus:
        """What the agents are told about this desk (factory.status.desk)."""
        registry = AgentRegistry.open(self.data_dir)
        try:
            return desk_status(self.mission, registry.desk_id(), self.clock.now())
        finally:
            registry.engine.dispose()

    def follow_key_rotations(self) -> None:
        follow_key_rotations(self.keys, self.mission.web.passkey_rp_id)

    async def _loop(self, consumer: PullConsumer, handler, stream: str) -> None:
        while not self._stop.is_set():
            msgs = await consumer.next_batch(wait=1.0)
            if not msgs:
                continue
            try:
                await handler(msgs)
            except INFRASTRUCTURE_ERRORS:
                raise  # the bus or the database, not the message: stop, restart, recover from the store
            except Exception:
                log.exception("handling %d %s messages failed; isolating the cause", len(msgs), stream)
                await self._isolate(msgs, handler, stream)

    async def _isolate(self, msgs: list[Msg], handler, stream: str) -> None:
        """Something in this batch broke its handler. Rebuild state from what was committed,
        then take the messages one at a time; one that fails on its own is kept as refused
        and acknowledged, so it cannot stop the service again on every redelivery."""
        self._reload()
        for m in msgs:
            try:
                await handler([m])
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                log.exception("%s message at seq %s cannot be handled; kept as refused", stream, m.metadata.sequence.stream)
                self._reload()
                with self.store.begin() as conn:
                    self.store.refuse(conn, stream, m.metadata.sequence.stream, f"internal error: {exc!r}"[:2000], m.data, self.clock.now())
                await m.ack()

    def _reload(self) -> None:
        """Forget everything in memory and take it again from what was committed."""
        self.load_state()
        self.outbox.forget()  # their rows still say unpublished: they go out again (deduplicated)
        self.outbox.load_unpublished()

    async def _housekeeping(self) -> None:
        last_breaker = 0.0
        while not self._stop.is_set():
            await asyncio.sleep(0.25)
            if self._fatal is not None:
                raise self._fatal
            now_m = time.monotonic()
            await self.governor.refresh_if_due()
            await self.venues.refresh_if_due()
            self.release_held()
            self.expire_due()
            if self.breaker.trip_pending:
                await self.breaker.write_trip()
            if now_m - last_breaker > BREAKER_REFRESH_EVERY_S:
                last_breaker = now_m
                await self.breaker.sync()
                self.follow_key_rotations()
            await self.status.publish_portfolio()
            self.book.save_ledger()
            await self.status.publish_funnel()
            await self.status.publish_desk()
            await self.outbox.flush()
            self.outbox.mark_published()

    # -- the bus's messages --------------------------------------------------------------

    async def handle_directives(self, msgs: list[Msg]) -> None:
        await self.governor.up_to_date()
        self.expire_due()  # what expired no longer reserves exposure (on market time, between ticks too)
        self.evaluate_directives([(m.metadata.sequence.stream, m.data, m.headers) for m in msgs])
        await self.outbox.flush()
        for m in msgs:
            await m.ack()

    async def catch_up(self) -> int:
        """Evaluate, in stream order, every directive after the last one evaluated.

        Directives in flight when the factory died come back from the consumer only
        after its ack wait, behind newer ones; taken in that order, a repeated id could
        be staged in place of the earlier directive that owns it. Reading the tail of
        the stream first keeps "the first directive with an id wins" true across
        crashes; the consumer's later deliveries of these are skipped and acknowledged.
        """
        done = 0
        batch: list[tuple[int, bytes, dict | None]] = []

        async def evaluate() -> None:
            await self.governor.up_to_date()
            self.evaluate_directives(batch)
            await self.outbox.flush()

        async for m in read_stream(self.nc, "DIRECTIVES", "consciousness.directives.>", start_seq=self.intake.max_seq + 1):
            batch.append((m.seq, m.data, m.headers))
            if len(batch) >= 256:
                done += len(batch)
                await evaluate()
                batch = []
        if batch:
            done += len(batch)
            await evaluate()
        if done:
            log.info("caught up on %d directives in stream order", done)
        return done

    async def handle_responses(self, msgs: list[Msg]) -> None:
        await self.governor.up_to_date()
        self.expire_due()
        for m in msgs:
            self.decide(m.metadata.sequence.stream, m.subject, m.data, m.headers)
        await self.outbox.flush()
        for m in msgs:
            await m.ack()

    async def _start_venues(self) -> None:
        """The venues' health before any directive: unknown (so unhealthy) until the executor reports."""
        await self.venues.start(self.nc)
        await self.venues.refresh_if_due()

    async def handle_fills(self, msgs: list[Msg]) -> None:
        for m in msgs:
            self.apply_fill(m.metadata.sequence.stream, m.data, m.headers)
        await self.outbox.flush()
        for m in msgs:
            await m.ack()
        await self.breaker.check()
        await self.status.publish_portfolio(force=True)  # the book after a fill, at once: agents size from it

    async def _on_bar(self, msg: Msg) -> None:
        if not persisted(msg, "MARKET"):
            return
        try:
            if self.book.apply_bar(msg.data):
                self.status.portfolio_dirty = True
            await self.breaker.check()
            self.book.save_ledger()
            if isinstance(self.clock, MarketClock) and self._bars is not None and self._bars.pending_msgs == 0:
                # On market time (a replay) the book the agents size from is stamped with the
                # last bar of a batch, at once, not half a wall-clock second later.
                await self.status.publish_portfolio(force=True)
        except Exception as exc:  # a callback's error would vanish in nats-py: stop the service instead
            self._fatal = exc

    async def _on_breaker_change(self, msg: Msg) -> None:
        if not persisted(msg, BREAKER_STREAM):
            return
        try:
            await self.breaker.sync()
        except Exception as exc:
            self._fatal = exc
