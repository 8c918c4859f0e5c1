"""The factory: evaluates directives, stages them for a human, turns approvals into orders,
keeps the book from fills, and trips the circuit breaker.

A thin service around pure parts (policy.engine, portfolio.ledger, policy.breaker).
Each handler does its deciding and its database write synchronously, with no
await in between, so the beliefs every check sees are never half-updated; it then
publishes what the write put in the outbox and acknowledges the bus messages.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import nats.errors
import nats.js.errors
import sqlalchemy.exc
from nats.aio.msg import Msg
from pydantic import ValidationError

from deskgate.audit.keys import KeyStore, principal_signer
from deskgate.audit.signing import Kind, SignatureStatus, SignedPayload, Signer, digest, kind_of, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.breaker import BREAKER_STREAM, read_breaker_state, write_key
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.live import persisted
from deskgate.bus.publish import BatchPublisher
from deskgate.bus.pull import PullConsumer
from deskgate.bus.reader import ReadError, last_message, read_parsed, read_stream
from deskgate.clock import Clock, MarketClock, clock_for
from deskgate.config import Mission
from deskgate.domain.approval import ApprovalOutcome, ApprovalResponse, PositionContext, StagedDirective
from deskgate.domain.breaker import BreakerReset, BreakerState, BreakerTrip
from deskgate.domain.evaluation import PolicyEvaluation, PolicyVerdict
from deskgate.domain.execution import ApprovalRef, Fill, Order
from deskgate.domain.funnel import LATENCY_BUCKETS_MS, Funnel, LatencyHistogram
from deskgate.domain.governor import GovernorClear, GovernorHold, GovernorState
from deskgate.domain.market import Bar
from deskgate.factory.funnel import FunnelCounter
from deskgate.factory.store import FactoryStore
from deskgate.paths import DataDir, write_private
from deskgate.people.pins import Pins, enroll_everyone_once
from deskgate.policy.beliefs import Beliefs, Reservation
from deskgate.policy.breaker import should_trip
from deskgate.policy.engine import Evaluation, duplicate_rejection, evaluate_payload, reevaluate, signature_rejection, stage
from deskgate.portfolio.ledger import Ledger

log = logging.getLogger("deskgate.factory")

PORTFOLIO_EVERY_S = 0.5
EQUITY_POINT_EVERY_S = 10.0
LEDGER_SAVE_EVERY_S = 2.0
FUNNEL_EVERY_S = 2.0
BREAKER_REFRESH_EVERY_S = 5.0
GOVERNOR_REFRESH_EVERY_S = 1.0  # at the latest; at once when a Governor state or clear arrives
# Failures of the bus or the database: not the message's fault, so not a refusal.
INFRASTRUCTURE_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)

# A fill further from the order's reference price than this many approval price
# bands is refused as implausible (a broken venue adapter), and kept for a human.
FILL_DEVIATION_BANDS = 5.0
# A fee above this share of the notional is refused as implausible too.
MAX_FEE_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class Pending:
    """A committed message awaiting publication; `kind` says which table records it."""

    kind: str  # verdict (key = stream seq) | staged (key = directive id) | outbox (key = row id)
    key: object
    subject: str
    msg_id: str
    payload: bytes


class Factory:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, store_url: str | None = None):
        self.mission = mission
        self.g = mission.guardrails
        self.data_dir = data_dir
        self.clock = clock or clock_for(mission)
        self.store = FactoryStore(store_url or mission.storage.url or data_dir.sqlite_url("factory"))
        self.events = SecurityEvents()
        # The factory signs all it publishes and checks the agent's and principals' signatures.
        self.keys = KeyStore.for_desk(data_dir, pins=Pins.for_service(data_dir, "factory"))
        enroll_everyone_once(self.keys.pins, self.keys.principals)  # a data directory from before pins
        self.signer = Signer(self.keys, "factory")
        # Policy evaluation time per directive, by bucket (the last: above every bound).
        self._latency = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._latency_sum_ms = 0.0
        self.nc = None
        self.js = None
        self._stop = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._dirty_portfolio = True
        self._dirty_funnel = True
        self._last_ledger_save = 0.0
        self._last_equity_point = 0.0
        self._breaker = BreakerState(state="armed")
        self._breaker_revision: int | None = None
        self._reset_applied_for: int | None = None
        self._trip_pending = False
        self._trip_writing = False
        self._trip_generation = 0  # bumped by every trip and trip write; a bucket read across one is stale
        self._fatal: BaseException | None = None
        self._peak_dirty = False
        self._outgoing: list[Pending] = []  # committed, not yet published
        self._published: list[Pending] = []  # published, not yet marked so
        self._known_ids: set[str] = set()  # every directive id ever evaluated
        self.counter = FunnelCounter()
        self._max_seq = 0  # highest DIRECTIVES sequence evaluated; anything above is new
        self._next_expiry: datetime | None = None
        self.ledger: Ledger
        self.beliefs: Beliefs
        self._governor_path = data_dir.state / "governor.json"
        self._governor: dict = self._load_governor()
        self._governor_watch: list = []  # live subscriptions that only say "the Governor changed"
        self._governor_lock = asyncio.Lock()
        self._governor_stale = True
        self._governor_reconnects = 0
        self._governor_read_at = 0.0
        self.stats = {"directives": 0, "responses": 0, "fills": 0, "bars": 0, "bad_bars": 0, "bad_governor_states": 0,
                      "unsigned_directives": 0, "unsigned_decisions": 0, "unsigned_resets": 0}

    # -- start-up ---------------------------------------------------------------

    def load_state(self) -> None:
        """Rebuild beliefs from the database: the book, prices, and every reserving intention."""
        self.counter = FunnelCounter()
        with self.store.begin() as conn:
            state = self.store.load_ledger(conn)
            self.ledger = Ledger.from_state(state) if state else Ledger.opening(self.mission.paper.starting_equity_usd)
            if state is None:
                self.store.save_ledger(conn, self.ledger.to_state(), self.clock.now())
            reserving = self.store.reserving_intentions(conn)
            mirror = self.store.load_breaker(conn)
            self.store.load_funnel(conn, self.counter)
            self._max_seq = self.store.max_evaluated_seq(conn)
            self._known_ids = self.store.known_directive_ids(conn)
            self._next_expiry = self.store.next_expiry(conn)
        # Prices are the market's, not our state: keep the latest ones we have seen.
        seen = getattr(self, "beliefs", None)
        for asset, price in (seen.prices.items() if seen and seen.prices else ()):
            self.ledger.mark(asset, price)
        self.beliefs = Beliefs(
            equity_usd=self.ledger.equity_usd,
            peak_equity_usd=self.ledger.breaker_peak_equity_usd,
            positions=self.ledger.positions_by_asset(),
            pending=[Reservation(r["directive_id"], r["asset"], r["side"], r["notional_usd"]) for r in reserving],
            breaker_tripped=bool(mirror and mirror["tripped"]),
            prices=dict(self.ledger.marks),
            confidence_damping=self._governor["hold"] or 1.0,
        )
        if mirror:
            self._breaker_revision = mirror["trip_revision"]
            self._reset_applied_for = mirror["reset_applied_for"]
            # Tripped here but never written to the bus: write it before anything else.
            self._trip_pending = bool(mirror["tripped"] and mirror["trip_revision"] is None)
            if mirror["tripped"]:
                self._breaker = BreakerState(state="tripped", trip=BreakerTrip.model_validate(mirror["trip"]) if mirror["trip"] else None, trip_revision=mirror["trip_revision"])
        log.info(
            "state loaded",
            extra={"fields": {"equity": self.ledger.equity_usd, "reserving": len(reserving), "breaker": self._breaker.state}},
        )

    async def connect(self) -> None:
        self.nc, _ = await connect_as(self.data_dir, S.Role.FACTORY, events=self.events, name="deskgate-factory")
        self.js = self.nc.jetstream()
        self.publisher = await BatchPublisher(self.nc).start()

    async def load_prices(self) -> None:
        assets = set(self.mission.marketdata.assets) | {a for a, _ in self.ledger.holdings} | {
            r.asset for r in self.beliefs.pending.values()
        }
        for asset in sorted(assets):
            try:
                stored = await last_message(self.nc, "MARKET", S.bar_subject(asset))
            except (ReadError, nats.errors.Error) as exc:
                log.warning("could not read last price for %s: %s", asset, exc)
                continue
            if stored is not None:
                self._apply_bar_bytes(stored.data)

    # -- running ------------------------------------------------------------------

    async def run(self, ready: asyncio.Event | None = None) -> None:
        self.load_state()
        await self.connect()
        await self.sync_breaker(startup=True)
        await self.load_prices()
        await self.check_breaker()
        self.load_unpublished()
        await self.flush_outbox()
        self._governor_watch = [await self.nc.subscribe(S.GOVERNOR_STATE_SUBJECT), await self.nc.subscribe(S.GOVERNOR_CLEAR_SUBJECT)]
        await self.governor_up_to_date()  # before the backlog: directives sent while we were down meet today's damping
        await self._publish_governor_hold()
        await self.catch_up()
        bars = await self.nc.subscribe(S.BARS, cb=self._on_bar)
        breaker_subs = [
            await self.nc.subscribe(S.breaker_kv_subject(key), cb=self._on_breaker_change)
            for key in (S.BREAKER_TRIP_KEY, S.BREAKER_RESET_KEY)
        ]
        directives = await PullConsumer(self.nc, "DIRECTIVES", "factory_directives").start()
        responses = await PullConsumer(self.nc, "RESPONSES", "factory_responses", window=16).start()
        fills = await PullConsumer(self.nc, "FILLS", "factory_fills", window=16).start()
        await self.publish_portfolio(force=True)
        if ready is not None:
            ready.set()
        log.info("factory running")
        tasks = [
            asyncio.create_task(self._loop(directives, self.handle_directives, "DIRECTIVES"), name="directives"),
            asyncio.create_task(self._loop(responses, self.handle_responses, "RESPONSES"), name="responses"),
            asyncio.create_task(self._loop(fills, self.handle_fills, "FILLS"), name="fills"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
        ]
        stop = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            if t is not stop and t.exception():
                raise t.exception()
        await bars.unsubscribe()
        for sub in [*breaker_subs, *self._governor_watch]:
            await sub.unsubscribe()
        self.save_ledger(force=True)
        self.mark_published()
        try:
            await self.nc.drain()
        except Exception:
            pass
        self.store.close()

    def stop(self) -> None:
        self._stop.set()

    def follow_key_rotations(self) -> None:
        """Move each pin along the certificates as soon as a rotation appears, so a key left
        behind cannot be put back as current later, and take in newly registered passkeys
        at once, so deleting one soon after cannot lift it (people/pins.py)."""
        pins, principals = self.keys.pins, self.keys.principals
        if pins is None or principals is None:
            return
        try:
            for account in principals.accounts.list():
                if pins.pinned(account.name) is not None:
                    pins.advance(account.name, principals.key_chain(account.name))
                    principals.verified_passkeys(account.name, pins, self.mission.web.passkey_rp_id)
        except Exception as exc:  # noqa: BLE001 - the accounts database is another process's file: never stop the factory for it
            log.warning("could not follow key rotations: %r", exc)

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

    async def _housekeeping(self) -> None:
        last_funnel = last_breaker = 0.0
        while not self._stop.is_set():
            await asyncio.sleep(0.25)
            if self._fatal is not None:
                raise self._fatal
            now_m = time.monotonic()
            await self.expire_due()
            if self._trip_pending:
                await self._write_trip()
            if now_m - last_breaker > BREAKER_REFRESH_EVERY_S:
                last_breaker = now_m
                await self.sync_breaker()
                self.follow_key_rotations()
            await self.publish_portfolio()
            self.save_ledger()
            if self._dirty_funnel and now_m - last_funnel > FUNNEL_EVERY_S:
                last_funnel = now_m
                await self.publish_funnel()
            await self.flush_outbox()
            self.mark_published()

    # -- publishing -----------------------------------------------------------------

    async def flush_outbox(self) -> int:
        """Publish what was committed but not yet published, in order.

        A crash between commit and publish leaves rows marked unpublished; they are
        loaded and sent again at start-up, and JetStream drops repeats by message id.
        """
        async with self._publish_lock:
            total = 0
            while self._outgoing:
                batch, self._outgoing = self._outgoing[:1000], self._outgoing[1000:]
                acks = await self.publisher.publish_all(
                    [(o.subject, o.payload, o.msg_id, self.signer.headers(kind_of(o.subject), o.payload)) for o in batch]
                )
                failed = [o for o, a in zip(batch, acks) if a is not None]
                self._published.extend(o for o, a in zip(batch, acks) if a is None)
                total += len(batch) - len(failed)
                if failed:
                    # Keep order: what failed goes back in front, to be retried.
                    self._outgoing = failed + self._outgoing
                    error = next(a for a in acks if a is not None)
                    log.warning("publish failed for %d messages (%s); will retry", len(failed), error)
                    await asyncio.sleep(0.5)
                    return total
            return total

    async def _publish_signed(self, subject: str, payload: bytes):
        return await self.js.publish(subject, payload, headers=self.signer.headers(kind_of(subject), payload))

    def mark_published(self) -> None:
        """Record what was published; batched, since a repeat after a crash is harmless."""
        if not self._published:
            return
        done, self._published = self._published, []
        with self.store.begin() as conn:
            self.store.mark_directives_published(
                conn, [o.key for o in done if o.kind == "verdict"], [o.key for o in done if o.kind == "staged"]
            )
            self.store.mark_published(conn, [o.key for o in done if o.kind == "outbox"])

    def load_unpublished(self) -> None:
        with self.store.connect() as conn:
            pending = [
                Pending(
                    "verdict", seq, S.policy_status_subject(did) if did else "factory.status.policy.unidentified", f"policy-{seq}", data
                )
                for seq, did, data in self.store.unpublished_verdicts(conn)
            ]
            pending += [
                Pending("staged", did, S.staged_subject(did), f"staged-{did}", data) for did, data in self.store.unpublished_staged(conn)
            ]
            pending += [Pending("outbox", o.id, o.subject, o.msg_id, o.payload) for o in self.store.unpublished(conn, limit=10_000_000)]
        self._outgoing = pending + self._outgoing

    def _reload(self) -> None:
        """Forget everything in memory and take it again from what was committed."""
        self.load_state()
        self._outgoing.clear()
        self._published.clear()  # their rows still say unpublished: they go out again (deduplicated)
        self.load_unpublished()

    def _queue(self, queued) -> None:
        self._outgoing.extend(Pending("outbox", o.id, o.subject, o.msg_id, o.payload) for o in queued)

    # -- directives -------------------------------------------------------------------

    async def handle_directives(self, msgs: list[Msg]) -> None:
        await self.governor_up_to_date()
        self.evaluate_directives([(m.metadata.sequence.stream, m.data, m.headers) for m in msgs])
        await self.flush_outbox()
        for m in msgs:
            await m.ack()

    async def governor_up_to_date(self) -> None:
        """Refresh the Governor's damping when something may have changed: a state or a clear arrived
        live (the broker delivers it to this connection before any directive published after it), a
        reconnect may have missed one, the last read failed, or a second has passed. One refresh at a
        time: the directive and response loops both ask."""
        async with self._governor_lock:
            watching = [s for s in self._governor_watch if s.pending_msgs]
            reconnects = self.nc.stats["reconnects"] if self.nc else 0
            if (
                not watching
                and not self._governor_stale
                and reconnects == self._governor_reconnects
                and time.monotonic() - self._governor_read_at < GOVERNOR_REFRESH_EVERY_S
            ):
                return
            for sub in watching:  # a signal only: the streams are the record, read below
                while sub.pending_msgs:
                    await sub.next_msg(timeout=0.1)
            self._governor_stale = not await self.refresh_governor()
            if not self._governor_stale:
                self._governor_reconnects = reconnects
                self._governor_read_at = time.monotonic()

    async def refresh_governor(self) -> bool:
        """Read every Governor state and clear published since the last read; False if the bus could not be read.

        The agents publish the Governor's state, but they cannot lift a damping on their
        own: the factory holds the lowest damping it sees (on disk, across restarts) until
        a principal's clear appears on approvals.governor.clear, which only the command
        center may publish. A drifting state that says it has applied every clear read so
        far (`applied_clear_seq`, stream order, no clocks) is a new drift and damps again;
        one published before the agents applied the latest clear does not. The factor is
        always in (0, 1]: it can only lower confidence. The hold is published on
        factory.status.governor, so the Command Center can offer the clear."""
        g = self._governor

        async def stored(stream: str, subject: str, model, after: int) -> list:
            return [x async for x in read_parsed(self.nc, stream, subject, model, after=after)]

        async def signed_clears(after: int) -> list:
            """Clears, each only if signed with the key of the principal it names."""
            out = []
            async for m in read_stream(self.nc, "RESPONSES", S.GOVERNOR_CLEAR_SUBJECT, start_seq=after + 1):
                try:
                    clear = GovernorClear.model_validate_json(m.data)
                    signer = principal_signer(clear.principal)
                except ValueError:
                    out.append((m.seq, None))
                    continue
                try:
                    unsigned = (
                        verify_headers(self.keys.deciding, Kind.GOVERNOR_CLEAR, m.data, m.headers, expect=signer) is not SignatureStatus.VALID
                        or self._passkey_problem(clear.principal, Kind.GOVERNOR_CLEAR, m.data, m.headers)
                    )
                except Exception as exc:  # noqa: BLE001 - a malformed accounts record refuses the clear, never stops the factory
                    log.warning("SECURITY: the Governor clear at seq %d cannot be checked (%r)", m.seq, exc)
                    unsigned = True
                if unsigned:
                    log.warning("SECURITY: a Governor clear at seq %d is not signed by %s; ignored", m.seq, clear.principal)
                    out.append((m.seq, None))
                    continue
                out.append((m.seq, clear))
            return out

        try:
            clears, states = await asyncio.gather(  # two reads, one round trip's wait
                signed_clears(g["clear_seq"]),
                stored("INSIGHTS", S.GOVERNOR_STATE_SUBJECT, GovernorState, g["state_seq"]),
            )
        except (ReadError, nats.errors.Error, asyncio.TimeoutError) as exc:
            log.warning("could not read the Governor (%s); keeping damping %g", exc, self.beliefs.confidence_damping)
            return False
        before = {**g, "seen_clears": list(g["seen_clears"])}
        for seq, clear in clears:
            g["clear_seq"] = seq
            if clear is None:
                self.stats["bad_governor_states"] += 1  # only the command center can publish here; counted, not applied
                continue
            stale = clear_refusal(clear, g)
            g["seen_clears"] = [*g["seen_clears"], clear.clear_id][-SEEN_CLEARS:]  # used, whatever came of it
            if stale:
                log.warning("SECURITY: the Governor clear %s at seq %d is not applied: %s", clear.clear_id, seq, stale)
                self.stats["bad_governor_states"] += 1
                continue
            g["counted_clear_seq"] = seq
            g["hold"], g["held_since_seq"] = None, 0
        for seq, st in states:
            g["state_seq"] = seq
            if st is None:
                self.stats["bad_governor_states"] += 1
                continue
            if st.damping >= 1.0 or st.applied_clear_seq < g["counted_clear_seq"]:
                continue  # not damping, or a drift a principal cleared that the agents had not yet applied
            if g["hold"] is None or st.damping < g["hold"]:
                g["hold"], g["held_since_seq"] = st.damping, seq
        if g != before:
            write_private(self._governor_path, json.dumps(g))
            if g["hold"] != before["hold"]:
                log.info("Governor damping %s", f"held at {g['hold']:g}" if g["hold"] else "lifted by a principal's clear")
                await self._publish_governor_hold()
        self.beliefs.confidence_damping = g["hold"] or 1.0
        return True

    async def _publish_governor_hold(self) -> None:
        g = self._governor
        hold = GovernorHold(damping=g["hold"] or 1.0, held_since_seq=g["held_since_seq"], clears_read=g["clear_seq"], at=self.clock.now())
        try:
            await self._publish_signed(S.GOVERNOR_HOLD_SUBJECT, hold.to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            log.warning("could not publish the Governor hold: %s", exc)

    def _load_governor(self) -> dict:
        fresh = {"state_seq": 0, "clear_seq": 0, "hold": None, "held_since_seq": 0, "counted_clear_seq": 0, "seen_clears": []}
        try:
            g = json.loads(self._governor_path.read_text())
            if isinstance(g, dict) and set(g) == set(fresh) - {"counted_clear_seq", "seen_clears"}:
                # Written before clears were checked for replays: every clear read so far counted.
                g = {**g, "counted_clear_seq": g["clear_seq"], "seen_clears": []}
            ok = (
                isinstance(g, dict)
                and set(g) == set(fresh)
                and all(isinstance(g[k], int) and g[k] >= 0 for k in ("state_seq", "clear_seq", "held_since_seq", "counted_clear_seq"))
                and (g["hold"] is None or (isinstance(g["hold"], (int, float)) and 0 < g["hold"] < 1))
                and isinstance(g["seen_clears"], list) and all(isinstance(c, str) for c in g["seen_clears"])
            )
            if not ok:
                raise ValueError("unexpected contents")
            return g
        except FileNotFoundError:
            return fresh
        except (ValueError, TypeError):
            # Unreadable: fail closed at the configured damping until a principal's clear is read.
            log.warning("%s is unreadable; holding the Governor's damping until a principal's clear", self._governor_path)
            return {**fresh, "hold": self.mission.agents.governor.damping}

    def evaluate_directives(self, items: list[tuple[int, bytes, dict | None]]) -> list[str | None]:
        """Evaluate, stage and record a batch in one transaction.

        Returns each item's decision (staged, rejected, duplicate), or None for a
        redelivery of something already evaluated.
        """
        now = self.clock.now()
        results: list[str | None] = []
        evaluated_rows: list[dict] = []
        intention_rows: list[dict] = []
        with self.store.begin() as conn:
            # The consumer delivers in order; only a redelivery can be at or below _max_seq.
            already = self.store.evaluated_seqs(conn, [seq for seq, _, _ in items if seq <= self._max_seq])
            for seq, data, headers in items:
                if seq in already:
                    results.append(None)
                    continue
                t0 = time.perf_counter()
                signature = verify_headers(self.keys, Kind.DIRECTIVE, data, headers, expect="agent")
                if signature is SignatureStatus.VALID:
                    ev = evaluate_payload(data, self.beliefs, self.g, self.mission.max_directive_bytes)
                else:
                    # Not the agent's: evaluated no further, and its id is not taken from the agent.
                    ev = signature_rejection(signature.value, (headers or {}).get("Deskgate-Signer"))
                    self.stats["unsigned_directives"] += 1
                ms = (time.perf_counter() - t0) * 1000.0
                self._latency[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
                self._latency_sum_ms += ms
                did = ev.directive_id
                staged = None
                if did is not None and did in self._known_ids:
                    decision, primary = "duplicate", "duplicate"
                    evaluation = duplicate_rejection(did).to_model()
                elif ev.staged:
                    decision, primary = "staged", None
                    evaluation = ev.to_model()  # built once: the verdict and the staged item share it
                    staged = self._stage(ev, evaluation, now, SignedPayload(
                        signer=headers["Deskgate-Signer"], signature=headers["Deskgate-Signature"], payload=data.decode()
                    ))
                    intention_rows.append(
                        dict(
                            directive_id=did,
                            state="staged",
                            asset=ev.asset,
                            venue=ev.venue,
                            side=ev.directive.side,
                            notional_usd=ev.directive.notional_usd,
                            explicit=staged.explicit,
                            four_eyes=staged.four_eyes,
                            price_at_staging=staged.price_at_staging,
                            staged_at=now,
                            expires_at=staged.expires_at,
                            staged=staged.to_bytes(),
                            staged_published=False,
                            outcome_reason=None,
                            updated_at=now,
                        )
                    )
                else:
                    decision, primary = "rejected", ev.primary_reason
                    evaluation = ev.to_model()
                if did is not None:
                    self._known_ids.add(did)
                verdict = PolicyVerdict(
                    directive_id=did, seq=seq, decision=decision, primary_reason=primary, evaluation=evaluation, at=now
                ).model_dump_json().encode()
                evaluated_rows.append(
                    dict(seq=seq, directive_id=did, decision=decision, primary_reason=primary, verdict=verdict, published=False, at=now)
                )
                results.append(decision)
                self.stats["directives"] += 1
                if staged is not None and (self._next_expiry is None or staged.expires_at < self._next_expiry):
                    self._next_expiry = staged.expires_at
            self.store.record_evaluations(conn, evaluated_rows)
            self.store.add_intentions(conn, intention_rows)
        for row in evaluated_rows:
            did = row["directive_id"]
            subject = S.policy_status_subject(did) if did else "factory.status.policy.unidentified"
            self._outgoing.append(Pending("verdict", row["seq"], subject, f"policy-{row['seq']}", row["verdict"]))
            self.counter.evaluated(row["decision"], row["primary_reason"])
            self._max_seq = max(self._max_seq, row["seq"])
        for row in intention_rows:
            did = row["directive_id"]
            self._outgoing.append(Pending("staged", did, S.staged_subject(did), f"staged-{did}", row["staged"]))
        self._dirty_funnel = True
        self._dirty_portfolio = True
        return results

    async def catch_up(self) -> int:
        """Evaluate, in stream order, every directive after the last one evaluated.

        Directives in flight when the factory died come back from the consumer only
        after its ack wait, behind newer ones; taken in that order, a repeated id could
        be staged in place of the earlier directive that owns it. Reading the tail of
        the stream first keeps "the first directive with an id wins" true across
        crashes; the consumer's later deliveries of these are skipped and acknowledged.
        """
        done = 0
        batch: list[tuple[int, bytes]] = []
        async for m in read_stream(self.nc, "DIRECTIVES", "consciousness.directives.>", start_seq=self._max_seq + 1):
            batch.append((m.seq, m.data, m.headers))
            if len(batch) >= 256:
                done += len(batch)
                await self.governor_up_to_date()
                self.evaluate_directives(batch)
                await self.flush_outbox()
                batch = []
        if batch:
            done += len(batch)
            await self.governor_up_to_date()
            self.evaluate_directives(batch)
            await self.flush_outbox()
        if done:
            log.info("caught up on %d directives in stream order", done)
        return done

    def _stage(self, ev: Evaluation, evaluation: PolicyEvaluation, now: datetime, signed: SignedPayload) -> StagedDirective:
        d = ev.directive
        assert d is not None and ev.asset is not None and ev.venue is not None
        b = self.beliefs
        p = b.position(ev.asset)
        same_side = b.pending_buy(ev.asset) if d.side == "buy" else -b.pending_sell(ev.asset)
        post = p + same_side + (d.notional_usd if d.side == "buy" else -d.notional_usd)
        stage_check = {c.name: c for c in ev.checks}
        context = PositionContext(
            equity_usd=b.equity_usd,
            current_position_usd=p,
            pending_same_side_usd=same_side,
            post_trade_position_usd=post,
            post_trade_position_pct=float(stage_check["position"].observed),
            gross_leverage_after=float(stage_check["portfolio_leverage"].observed),
            drawdown_pct=b.drawdown_pct,
        )
        stage(ev, b)
        four_eyes_above = self.mission.approvals.four_eyes_above_usd
        return StagedDirective(
            directive=d,
            evaluation=evaluation,
            asset=ev.asset,
            venue=ev.venue,
            explicit=ev.explicit_approval,
            four_eyes=bool(ev.explicit_approval and four_eyes_above is not None and d.notional_usd > four_eyes_above),
            price_at_staging=b.prices[ev.asset],
            staged_at=now,
            expires_at=now + timedelta(seconds=self.mission.approvals.expiry_seconds),
            context=context,
            signed_directive=signed,
        )

    # -- approvals -------------------------------------------------------------------

    async def handle_responses(self, msgs: list[Msg]) -> None:
        await self.governor_up_to_date()
        for m in msgs:
            self.decide(m.metadata.sequence.stream, m.subject, m.data, m.headers)
        await self.flush_outbox()
        for m in msgs:
            await m.ack()

    def decide(self, seq: int, subject: str, data: bytes, headers: dict | None = None) -> ApprovalOutcome | None:
        """Apply one principal's decision. Returns the outcome published, if any."""
        now = self.clock.now()
        self.stats["responses"] += 1
        with self.store.begin() as conn:
            try:
                resp = ApprovalResponse.model_validate_json(data)
            except ValidationError as exc:
                reason = "invalid approval response: " + "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
                )
                if self.store.refuse(conn, "RESPONSES", seq, reason, data, now):
                    token = _safe_token(subject.rsplit(".", 1)[-1])
                    outcome = ApprovalOutcome(directive_id=token, outcome="refused", at=now, reason=reason)
                    self._queue(
                        self.store.enqueue(conn, [(S.approval_status_subject(token), f"refused-{seq}", outcome.to_bytes())], now)
                    )
                    return outcome
                return None
            seen = self.store.response_seen(conn, seq, resp.approval_id)
            if seen == "redelivered":
                return None  # this very message was handled before a crash or a lost ack
            if seen == "replayed":
                if self.store.refuse(conn, "RESPONSES", seq, f"approval id {resp.approval_id} already used", data, now):
                    outcome = self._outcome(resp, "refused", now, f"approval {resp.approval_id} was already used; decisions cannot be replayed")
                    self._emit(conn, outcome, f"refused-{seq}", now)
                    return outcome
                return None

            def record(result: str, reason: str) -> None:
                self.store.add_decision(
                    conn,
                    approval_id=resp.approval_id,
                    seq=seq,
                    directive_id=resp.directive_id,
                    decision=resp.decision,
                    principal=resp.principal,
                    decided_at=resp.decided_at,
                    reason=resp.reason,
                    batch_id=resp.batch_id,
                    result=result,
                    result_reason=reason,
                    at=now,
                )

            def refuse(reason: str) -> ApprovalOutcome:
                record("refused", reason)
                outcome = self._outcome(resp, "refused", now, reason)
                self._emit(conn, outcome, f"refused-{seq}", now)
                return outcome

            if subject != S.response_subject(resp.directive_id):
                return refuse(f"decision for {resp.directive_id} arrived on {subject}; a decision applies only to its own directive")
            try:
                expected_signer = principal_signer(resp.principal)
                signature = verify_headers(self.keys.deciding, Kind.APPROVAL, data, headers, expect=expected_signer)
            except ValueError:
                signature = SignatureStatus.WRONG_SIGNER
            if signature is not SignatureStatus.VALID:
                self.stats["unsigned_decisions"] += 1
                why = self.keys.deciding.why_not(expected_signer) if signature is not SignatureStatus.WRONG_SIGNER else None
                return refuse(
                    f"the decision's signature is {signature.value}; a decision must be signed with {resp.principal}'s own current key"
                    + (f" ({why})" if why else "")
                )
            passkey = self._passkey_problem(resp.principal, Kind.APPROVAL, data, headers)
            if passkey:
                self.stats["unsigned_decisions"] += 1
                return refuse(passkey)
            intention = self.store.intention(conn, resp.directive_id)
            if intention is None:
                return refuse(f"no staged directive {resp.directive_id}")
            if intention["state"] not in ("staged", "awaiting_second_approval"):
                return refuse(f"directive {resp.directive_id} is already {intention['state']}")
            did = resp.directive_id
            if now > intention["expires_at"]:
                record("expired", "decision after expiry")
                return self._finish(
                    conn, did, intention["state"], "expired", now, resp, f"expired at {intention['expires_at'].isoformat()} before the decision"
                )
            if resp.decision == "reject":
                record("counted", resp.reason)
                return self._finish(conn, did, intention["state"], "rejected", now, resp, resp.reason)

            # Approve.
            if self.beliefs.breaker_tripped:
                # Not counted, and the directive stays pending: after a principal's reset it
                # can be approved again (before it expires).
                trip = self._breaker.trip
                return refuse(
                    "the circuit breaker is tripped"
                    + (f" ({trip.reason})" if trip else "")
                    + f"; approvals are refused until a principal resets it, and {did} stays pending until then or until it expires"
                )
            if intention["explicit"] and resp.batch_id is not None:
                return refuse("explicit directives are approved one by one, never in a batch")
            earlier = self.store.approvals_for(conn, did)
            principals = {_principal_key(a["principal"]) for a in earlier}
            if _principal_key(resp.principal) in principals:
                return refuse(f"{resp.principal} already approved {did}; a second approval must come from another principal")
            staged = StagedDirective.model_validate_json(intention["staged"])
            if staged.signed_directive is None or resp.directive_digest != digest(staged.signed_directive.data):
                return refuse(f"{resp.principal}'s approval does not name this directive's digest; it may have been shown another one")
            self.store.add_signed_decision(conn, resp.approval_id, did, SignedPayload(
                signer=headers["Deskgate-Signer"], signature=headers["Deskgate-Signature"], payload=data.decode()
            ))
            if intention["four_eyes"] and not earlier:
                record("counted", "first of two approvals")
                self._move(conn, did, intention["state"], "awaiting_second_approval", None, now)
                outcome = self._outcome(resp, "awaiting_second_approval", now, "needs a second principal", [resp.principal])
                self._emit(conn, outcome, f"await-{did}", now)
                return outcome

            own = self.beliefs.release(did)
            ev = reevaluate(
                staged.directive,
                self.beliefs,
                self.g,
                price_at_staging=intention["price_at_staging"],
                expires_at=intention["expires_at"],
                now=now,
                band_pct=self.mission.approvals.price_band_pct,
            )
            record("counted", "approved")
            approvers = [*earlier, {"approval_id": resp.approval_id, "principal": resp.principal, "decided_at": resp.decided_at}]
            if not ev.staged:
                failed = [c for c in ev.checks if not c.passed]
                reason = f"{failed[0].name}: {failed[0].reason}"
                self._move(conn, did, intention["state"], "invalidated", reason, now)
                outcome = self._outcome(resp, "invalidated", now, reason, [a["principal"] for a in approvers], evaluation=ev)
                self._emit(conn, outcome, f"invalidated-{did}", now)
                self._dirty_funnel = self._dirty_portfolio = True
                return outcome
            if own is not None:
                self.beliefs.reserve(own)  # an order reserves exposure until it fills
            order = Order(
                order_id=f"{did}-o",
                directive_id=did,
                venue=staged.venue,
                asset=staged.asset,
                side=staged.directive.side,
                notional_usd=staged.directive.notional_usd,
                leverage=staged.directive.leverage,
                reference_price=self.beliefs.prices[staged.asset],
                created_at=now,
                approvals=[ApprovalRef(approval_id=a["approval_id"], principal=a["principal"], decided_at=a["decided_at"]) for a in approvers],
                directive=staged.signed_directive,
                signed_approvals=self.store.signed_decisions_for(conn, did),
                staged=self.signer.signed(Kind.STAGED, intention["staged"]),
            )
            self.store.add_order(conn, order.model_dump(mode="json"), now)
            self._move(conn, did, intention["state"], "ordered", None, now)
            self._queue(
                self.store.enqueue(conn, [(S.order_subject(order.venue), f"order-{order.order_id}", order.to_bytes())], now)
            )
            outcome = self._outcome(resp, "ordered", now, "", [a["principal"] for a in approvers], order_id=order.order_id, evaluation=ev)
            self._emit(conn, outcome, f"ordered-{did}", now)
            self._dirty_funnel = True
            return outcome

    def _outcome(self, resp: ApprovalResponse, outcome: str, now: datetime, reason: str, principals=None, **kw) -> ApprovalOutcome:
        ev = kw.pop("evaluation", None)
        return ApprovalOutcome(
            directive_id=resp.directive_id,
            outcome=outcome,
            at=now,
            reason=reason,
            principals=principals if principals is not None else [resp.principal],
            approval_id=resp.approval_id,
            evaluation=ev.to_model() if ev is not None else None,
            **kw,
        )

    def _emit(self, conn, outcome: ApprovalOutcome, msg_id: str, now: datetime) -> None:
        self._queue(self.store.enqueue(conn, [(S.approval_status_subject(outcome.directive_id), msg_id, outcome.to_bytes())], now))

    def _move(self, conn, did: str, old: str, new: str, reason: str | None, now: datetime) -> None:
        self.store.set_intention_state(conn, did, new, reason, now)
        self.counter.moved(old, new, reason)

    def _finish(
        self, conn, did: str, old: str, state: str, now: datetime, resp: ApprovalResponse | None, reason: str
    ) -> ApprovalOutcome:
        """End an intention without an order, releasing what it reserved."""
        self.beliefs.release(did)
        self._move(conn, did, old, state, reason, now)
        if resp is not None:
            outcome = self._outcome(resp, state, now, reason)
        else:
            outcome = ApprovalOutcome(directive_id=did, outcome=state, at=now, reason=reason)
        self._emit(conn, outcome, f"{state}-{did}", now)
        self._dirty_funnel = self._dirty_portfolio = True
        return outcome

    async def expire_due(self) -> None:
        now = self.clock.now()
        if self._next_expiry is None or now <= self._next_expiry:
            return
        with self.store.begin() as conn:
            due = self.store.expired_intentions(conn, now)
            for did in due:
                state = self.store.intention(conn, did)["state"]
                self._finish(conn, did, state, "expired", now, None, "no decision before expiry")
            self._next_expiry = self.store.next_expiry(conn)
        if due:
            log.info("expired %d staged directives", len(due))

    # -- fills and the book ----------------------------------------------------------------

    async def handle_fills(self, msgs: list[Msg]) -> None:
        for m in msgs:
            self.apply_fill(m.metadata.sequence.stream, m.data, m.headers)
        await self.flush_outbox()
        for m in msgs:
            await m.ack()
        await self.check_breaker()
        await self.publish_portfolio(force=True)  # the book after a fill, at once: agents size from it

    def apply_fill(self, seq: int, data: bytes, headers: dict | None = None) -> ApprovalOutcome | None:
        now = self.clock.now()
        self.stats["fills"] += 1
        with self.store.begin() as conn:
            signature = verify_headers(self.keys, Kind.FILL, data, headers, expect="executor")
            if signature is not SignatureStatus.VALID:
                self.store.refuse(conn, "FILLS", seq, f"the fill's signature is {signature.value}; fills must be signed by the executor", data, now)
                log.warning("SECURITY: refused a fill at seq %d whose signature is %s", seq, signature.value)
                return None
            try:
                fill = Fill.model_validate_json(data)
            except ValidationError as exc:
                self.store.refuse(conn, "FILLS", seq, f"invalid fill: {exc.errors(include_url=False)[:3]}", data, now)
                log.warning("refused invalid fill at seq %d", seq)
                return None
            if self.store.fill_seen(conn, fill.fill_id):
                return None
            order = self.store.order(conn, fill.order_id)
            mismatch = _fill_mismatch(fill, order, FILL_DEVIATION_BANDS * self.mission.approvals.price_band_pct)
            if mismatch:
                self.store.refuse(conn, "FILLS", seq, mismatch, data, now)
                log.warning("refused fill %s: %s", fill.fill_id, mismatch)
                return None
            intention = self.store.intention(conn, fill.directive_id)
            if intention is None or intention["state"] != "ordered":
                self.store.refuse(conn, "FILLS", seq, f"fill for directive not awaiting a fill ({intention and intention['state']})", data, now)
                return None
            self.store.add_fill(conn, fill.model_dump(mode="json"), now)
            self.beliefs.release(fill.directive_id)
            if fill.status == "filled":
                self.ledger.apply_fill(fill)
                self._sync_beliefs_from_ledger(fill.asset)
                state, reason = "executed", ""
            else:
                state, reason = "venue_rejected", fill.reason
            self._move(conn, fill.directive_id, intention["state"], state, reason or None, now)
            self.store.save_ledger(conn, self.ledger.to_state(), now)
            self._record_equity(conn, now)
            outcome = ApprovalOutcome(
                directive_id=fill.directive_id, outcome=state, at=now, reason=reason, order_id=fill.order_id, fill=fill
            )
            self._emit(conn, outcome, f"{state}-{fill.directive_id}", now)
        self._dirty_funnel = self._dirty_portfolio = True
        return outcome

    def _sync_beliefs_from_ledger(self, asset: str | None = None) -> None:
        b, led = self.beliefs, self.ledger
        b.equity_usd = led.equity_usd
        b.peak_equity_usd = led.breaker_peak_equity_usd
        if asset is None:
            b.replace_positions(led.positions_by_asset())
        else:
            b.set_position(asset, led.positions_by_asset().get(asset, 0.0))

    def _record_equity(self, conn, now: datetime) -> None:
        if isinstance(self.clock, MarketClock) and not self.clock.known:
            return  # no market time yet: a point stamped now would sit outside the replay's days
        led = self.ledger
        self.store.add_equity_point(conn, now, led.equity_usd, led.cash_usd, led.gross_exposure_usd, led.drawdown_pct)
        self._last_equity_point = time.monotonic()

    def save_ledger(self, force: bool = False) -> None:
        now_m = time.monotonic()
        if not force and not self._peak_dirty and now_m - self._last_ledger_save < LEDGER_SAVE_EVERY_S:
            return
        self._last_ledger_save = now_m
        self._peak_dirty = False
        now = self.clock.now()
        with self.store.begin() as conn:
            self.store.save_ledger(conn, self.ledger.to_state(), now)
            if force or now_m - self._last_equity_point > EQUITY_POINT_EVERY_S:
                self._record_equity(conn, now)

    # -- market data -----------------------------------------------------------------

    async def _on_bar(self, msg: Msg) -> None:
        if not persisted(msg, "MARKET"):
            return
        try:
            self._apply_bar_bytes(msg.data)
            await self.check_breaker()
            self.save_ledger()
        except Exception as exc:  # a callback's error would vanish in nats-py: stop the service instead
            self._fatal = exc

    def _apply_bar_bytes(self, data: bytes) -> None:
        try:
            bar = Bar.model_validate_json(data)
        except ValidationError:
            self.stats["bad_bars"] += 1
            return
        self.stats["bars"] += 1
        if isinstance(self.clock, MarketClock):
            self.clock.observe(bar.ts)
        peak = self.ledger.breaker_peak_equity_usd
        self.beliefs.prices[bar.asset] = bar.close
        self.ledger.mark(bar.asset, bar.close)
        self._sync_beliefs_from_ledger(bar.asset)
        self._dirty_portfolio = True
        if self.ledger.breaker_peak_equity_usd > peak:
            # A new peak moves the breaker's reference: keep it, so a crash cannot understate drawdown.
            self._peak_dirty = True

    async def publish_portfolio(self, force: bool = False) -> None:
        if not (self._dirty_portfolio or force):
            return
        if isinstance(self.clock, MarketClock) and not self.clock.known:
            return  # no market time yet: a snapshot stamped now would sit outside the replay's days
        now_m = time.monotonic()
        if not force and now_m - getattr(self, "_last_portfolio", 0.0) < PORTFOLIO_EVERY_S:
            return
        self._last_portfolio = now_m
        self._dirty_portfolio = False
        reserved = sum(r.notional_usd for r in self.beliefs.pending.values())
        snap = self.ledger.snapshot(self.clock.now(), len(self.beliefs.pending), reserved)
        try:
            await self._publish_signed(S.PORTFOLIO_SUBJECT, snap.to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            self._dirty_portfolio = True
            log.warning("could not publish portfolio: %s", exc)

    def funnel(self) -> Funnel:
        return self.counter.snapshot(self.clock.now()).model_copy(
            update={
                "evaluation_latency": LatencyHistogram.from_buckets(self._latency, self._latency_sum_ms),
                "permission_violations": self.events.counts["permission_violation"],
            }
        )

    async def publish_funnel(self) -> None:
        self._dirty_funnel = False
        funnel = self.funnel()
        try:
            await self._publish_signed(S.FUNNEL_SUBJECT, funnel.to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            self._dirty_funnel = True
            log.warning("could not publish funnel: %s", exc)

    # -- the circuit breaker ------------------------------------------------------------

    async def check_breaker(self) -> None:
        if self.beliefs.breaker_tripped:
            return
        dd = self.ledger.breaker_drawdown_pct
        if not should_trip(dd, self.g.max_drawdown_pct):
            return
        now = self.clock.now()
        trip = BreakerTrip(
            trip_id=f"trip-{uuid.uuid4().hex}",
            at=now,
            reason=f"drawdown {dd:.2f}% exceeds {self.g.max_drawdown_pct}%",
            drawdown_pct=dd,
            limit_pct=self.g.max_drawdown_pct,
            equity_usd=self.ledger.equity_usd,
            peak_equity_usd=self.ledger.breaker_peak_equity_usd,
        )
        # Refuse from this instant, persist, then tell the bus.
        self.beliefs.breaker_tripped = True
        self._breaker = BreakerState(state="tripped", trip=trip)
        self._breaker_revision = None
        self._trip_pending = True
        self._trip_generation += 1
        with self.store.begin() as conn:
            self.store.save_breaker(conn, True, trip.model_dump(mode="json"), None, self._reset_applied_for, now)
            self.store.save_ledger(conn, self.ledger.to_state(), now)
            self._record_equity(conn, now)
        log.warning("circuit breaker tripped: %s", trip.reason)
        await self._write_trip()

    def _restored_trip(self) -> BreakerTrip:
        return BreakerTrip(
            trip_id=f"trip-restored-{uuid.uuid4().hex}",
            at=self.clock.now(),
            reason="trip written again: the breaker bucket did not hold the factory's trip",
            drawdown_pct=self.ledger.breaker_drawdown_pct,
            limit_pct=self.g.max_drawdown_pct,
            equity_usd=self.ledger.equity_usd,
            peak_equity_usd=self.ledger.breaker_peak_equity_usd,
        )

    async def _write_trip(self) -> None:
        """Write (or write again) our trip to the bucket; until it lands, nothing else changes the breaker."""
        if self._trip_writing:
            return
        trip = self._breaker.trip
        if trip is None:
            trip = self._restored_trip()
            self._breaker = BreakerState(state="tripped", trip=trip)
        self._trip_writing = True
        try:
            payload = trip.to_bytes()
            revision = await write_key(self.js, S.BREAKER_TRIP_KEY, payload, self.signer.headers(Kind.BREAKER, payload))
        except (nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError) as exc:
            log.warning("could not write breaker trip to the bus yet: %s", exc)
            return
        finally:
            self._trip_writing = False
        self._trip_pending = False
        self._trip_generation += 1
        self._breaker_revision = revision
        self._breaker = BreakerState(state="tripped", trip=trip, trip_revision=revision)
        with self.store.begin() as conn:
            self.store.save_breaker(conn, True, trip.model_dump(mode="json"), revision, self._reset_applied_for, self.clock.now())
        try:
            await self._publish_signed(S.BREAKER_STATUS_SUBJECT, self._breaker.to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError):
            pass

    async def _on_breaker_change(self, msg: Msg) -> None:
        if not persisted(msg, BREAKER_STREAM):
            return
        try:
            await self.sync_breaker()
        except Exception as exc:
            self._fatal = exc

    async def _reset_is_signed(self, reset: BreakerReset) -> bool | None:
        """Only a principal resets the breaker: the reset must carry their own signature,
        from a key that is not revoked. None when it cannot be told now (the read failed,
        or a newer reset landed between the two reads): the next sync looks again."""
        try:
            stored = await last_message(self.nc, BREAKER_STREAM, S.breaker_kv_subject(S.BREAKER_RESET_KEY))
        except (ReadError, nats.errors.Error, asyncio.TimeoutError):
            return None
        try:
            if stored is None or BreakerReset.model_validate_json(stored.data) != reset:
                return None
            signer = principal_signer(reset.principal)
        except ValueError:
            return False
        try:
            if verify_headers(self.keys.deciding, Kind.BREAKER, stored.data, stored.headers, expect=signer) is not SignatureStatus.VALID:
                return False
        except Exception as exc:  # noqa: BLE001 - a malformed accounts record refuses the reset, never stops the factory
            log.warning("SECURITY: the reset by %s cannot be checked (%r); the trip stands", reset.principal, exc)
            return False
        return self._passkey_problem(reset.principal, Kind.BREAKER, stored.data, stored.headers) is None

    def _passkey_problem(self, principal: str, kind: Kind, data: bytes, headers: dict | None) -> str | None:
        """A principal with a passkey decides only with its assertion over these exact bytes."""
        if self.keys.principals is None:
            return None
        try:
            return self.keys.principals.passkey_problem(principal, kind, data, headers, self.mission.web.passkey_rp_id, pins=self.keys.pins)
        except Exception as exc:  # noqa: BLE001 - a malformed record must refuse the decision, never stop the factory
            log.warning("SECURITY: the passkeys of %s cannot be checked (%r); the decision is refused", principal, exc)
            return f"{principal}'s passkeys cannot be checked; the decision is refused"

    async def sync_breaker(self, startup: bool = False) -> None:
        """Follow the bucket, failing closed.

        Tripped becomes armed only when a principal's reset names exactly the trip
        this factory knows is the latest. A bucket that lost our trip, or holds an
        older one, gets ours written again.
        """
        if self._trip_pending:
            await self._write_trip()
            return
        seen = self._trip_generation
        try:
            state = await read_breaker_state(self.nc)
        except (nats.errors.Error, ReadError, asyncio.TimeoutError) as exc:
            log.warning("could not read breaker state: %s", exc)
            return
        if self._trip_pending or self._trip_generation != seen:
            return  # a trip began (or landed) while we were reading: this read is stale
        known_tripped, known_rev = self.beliefs.breaker_tripped, self._breaker_revision
        bucket_rev = state.trip_revision
        if state.state == "tripped" and state.trip is None:
            # The trip record is unreadable or deleted: tripped, but no principal could
            # name it to reset it. Write a readable one.
            log.warning("breaker trip record in the bucket is unreadable (%s); writing a readable one", state.note)
            self.beliefs.breaker_tripped = True
            if self._breaker.trip is None:
                self._breaker = BreakerState(state="tripped", trip=self._restored_trip())
            self._trip_pending = True
            await self._write_trip()
            return
        if state.state == "tripped":
            self.beliefs.breaker_tripped = True
            if known_rev is None or (bucket_rev is not None and bucket_rev >= known_rev):
                self._breaker, self._breaker_revision = state, bucket_rev
        elif known_tripped:
            # breaker_state() armed it: a reset written after this trip names its revision
            # and id. It must also be the trip we know is the latest.
            genuine_reset = state.reset is not None and bucket_rev is not None and known_rev is not None and bucket_rev >= known_rev
            if genuine_reset:
                signed = await self._reset_is_signed(state.reset)
                if signed is None:
                    return  # cannot tell yet: stay tripped, write nothing, look again at the next sync
                if not signed:
                    log.warning("SECURITY: a breaker reset naming %s is not signed with their key; the trip stands", state.reset.principal)
                    self.stats["unsigned_resets"] += 1
                    genuine_reset = False
            if not genuine_reset:
                log.warning("breaker bucket does not hold the factory's trip (bucket %s, ours %s); writing it again", bucket_rev, known_rev)
                self._trip_pending = True
                await self._write_trip()
                return
            if self._reset_applied_for != bucket_rev:
                # A principal reset this trip: drawdown is measured afresh from here.
                self.ledger.rebase_breaker_peak()
                self._reset_applied_for = bucket_rev
                self._sync_beliefs_from_ledger()
                log.warning("circuit breaker reset by %s: %s", state.reset.principal, state.reset.reason)
            self.beliefs.breaker_tripped = False
            self._breaker, self._breaker_revision = state, bucket_rev
        else:
            self._breaker, self._breaker_revision = state, bucket_rev
        now = self.clock.now()
        with self.store.begin() as conn:
            self.store.save_breaker(
                conn,
                self.beliefs.breaker_tripped,
                self._breaker.trip.model_dump(mode="json") if self._breaker.trip else None,
                self._breaker_revision,
                self._reset_applied_for,
                now,
            )
            self.store.save_ledger(conn, self.ledger.to_state(), now)
        if known_tripped != self.beliefs.breaker_tripped or startup:
            self._dirty_portfolio = True
            try:
                await self._publish_signed(S.BREAKER_STATUS_SUBJECT, self._breaker.to_bytes())
            except (nats.errors.Error, asyncio.TimeoutError):
                pass


SEEN_CLEARS = 1000  # clear ids remembered against replays (a clear is a person's rare act)


def clear_refusal(clear: GovernorClear, g: dict) -> str | None:
    """Why a signed clear must not lift the hold: used before (a replay), or made for a
    hold other than the one held now (the principal looked at something else)."""
    if clear.clear_id in g["seen_clears"]:
        return "its id was used before (a replayed clear)"
    if g["hold"] is not None and clear.hold_seq != g["held_since_seq"]:
        return f"it clears the hold set at INSIGHTS seq {clear.hold_seq}, not the one held now (seq {g['held_since_seq']})"
    return None


def _safe_token(text: str) -> str:
    return text if _TOKEN.fullmatch(text) else "unidentified"


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _principal_key(name: str) -> str:
    """Four eyes means two people: "Bob", " bob" and "b\u200bob" are one."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Mn", "Me"))
    return " ".join(text.split()).casefold()


def _fill_mismatch(fill: Fill, order: dict | None, max_deviation_pct: float) -> str | None:
    if order is None:
        return f"fill {fill.fill_id} is for unknown order {fill.order_id}"
    for key in ("directive_id", "venue", "asset", "side"):
        if getattr(fill, key) != order[key]:
            return f"fill {fill.fill_id} {key} {getattr(fill, key)!r} does not match order {order[key]!r}"
    if fill.status == "filled":
        if abs(fill.notional_usd - order["notional_usd"]) > 1e-6 * order["notional_usd"]:
            return f"fill {fill.fill_id} notional {fill.notional_usd} does not match order {order['notional_usd']}"
        if fill.fee_usd > MAX_FEE_SHARE * fill.notional_usd:
            return f"fill {fill.fill_id} fee {fill.fee_usd} is more than {MAX_FEE_SHARE:.0%} of its notional"
        ref = order["reference_price"]
        deviation = abs(fill.price - ref) / ref * 100.0
        if deviation > max_deviation_pct:
            return f"fill {fill.fill_id} price {fill.price} is {deviation:.1f}% from the order's reference {ref}"
    return None
