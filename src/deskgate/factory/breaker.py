"""The breaker keeper: trips on drawdown, follows the bucket, and accepts only a
principal's signed reset of the trip it knows is the latest.

The rule lives in policy/breaker.py and the wire in bus/breaker.py; this is the
factory's part, and the breaker's state has this one owner. It fails closed: a trip
refuses from that instant, is persisted, then written to the bucket, and until it
lands nothing else changes the breaker.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import nats.errors
import nats.js.errors

from deskgate.audit.keys import principal_signer
from deskgate.audit.signing import Kind, SignatureStatus, Signer, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.breaker import BREAKER_STREAM, read_breaker_state, write_key
from deskgate.bus.reader import ReadError, last_message
from deskgate.clock import Clock
from deskgate.config import Mission
from deskgate.domain.breaker import BreakerReset, BreakerState, BreakerTrip
from deskgate.factory.book import Book
from deskgate.factory.outbox import Outbox
from deskgate.factory.people import Verifier
from deskgate.factory.state import FactoryState
from deskgate.factory.status import StatusBoard
from deskgate.factory.store import FactoryStore
from deskgate.policy.breaker import should_trip

log = logging.getLogger("deskgate.factory")


class BreakerKeeper:
    def __init__(
        self, store: FactoryStore, state: FactoryState, book: Book, verifier: Verifier, signer: Signer,
        mission: Mission, clock: Clock, outbox: Outbox, status: StatusBoard, stats: dict,
    ):
        self.store, self.state, self.book, self.verifier, self.signer = store, state, book, verifier, signer
        self.mission, self.g, self.clock, self.outbox, self.status, self.stats = mission, mission.guardrails, clock, outbox, status, stats
        self.nc = self.js = None
        self.breaker = BreakerState(state="armed")
        self.revision: int | None = None  # the bucket revision of the trip we know is the latest
        self.reset_applied_for: int | None = None  # the trip revision whose reset rebased the peak
        self.trip_pending = False  # tripped here, not yet written to the bucket
        self._trip_writing = False
        self._trip_generation = 0  # bumped by every trip and trip write; a bucket read across one is stale

    def attach(self, nc, js) -> None:
        self.nc, self.js = nc, js

    def restore(self, mirror: dict | None) -> bool:
        """Take the breaker from the database's mirror; True if it was tripped."""
        if not mirror:
            return False
        self.revision = mirror["trip_revision"]
        self.reset_applied_for = mirror["reset_applied_for"]
        # Tripped here but never written to the bus: write it before anything else.
        self.trip_pending = bool(mirror["tripped"] and mirror["trip_revision"] is None)
        if mirror["tripped"]:
            trip = BreakerTrip.model_validate(mirror["trip"]) if mirror["trip"] else None
            self.breaker = BreakerState(state="tripped", trip=trip, trip_revision=mirror["trip_revision"])
        return bool(mirror["tripped"])

    def refusal(self, directive_id: str) -> str:
        """Why an approval is refused while tripped: the directive stays pending."""
        trip = self.breaker.trip
        return (
            "the circuit breaker is tripped"
            + (f" ({trip.reason})" if trip else "")
            + f"; approvals are refused until a principal resets it, and {directive_id} stays pending until then or until it expires"
        )

    async def check(self) -> None:
        """Trip when drawdown exceeds the limit."""
        b, led = self.state.beliefs, self.state.ledger
        if b.breaker_tripped:
            return
        dd = led.breaker_drawdown_pct
        if not should_trip(dd, self.g.max_drawdown_pct):
            return
        now = self.clock.now()
        trip = BreakerTrip(
            trip_id=f"trip-{uuid.uuid4().hex}",
            at=now,
            reason=f"drawdown {dd:.2f}% exceeds {self.g.max_drawdown_pct}%",
            drawdown_pct=dd,
            limit_pct=self.g.max_drawdown_pct,
            equity_usd=led.equity_usd,
            peak_equity_usd=led.breaker_peak_equity_usd,
        )
        # Refuse from this instant, persist, then tell the bus.
        b.breaker_tripped = True
        self.breaker = BreakerState(state="tripped", trip=trip)
        self.revision = None
        self.trip_pending = True
        self._trip_generation += 1
        with self.store.begin() as conn:
            self.store.save_breaker(conn, True, trip.model_dump(mode="json"), None, self.reset_applied_for, now)
            self.store.save_ledger(conn, led.to_state(), now)
            self.book.record_equity(conn, now)
        log.warning("circuit breaker tripped: %s", trip.reason)
        await self.write_trip()

    def _restored_trip(self) -> BreakerTrip:
        led = self.state.ledger
        return BreakerTrip(
            trip_id=f"trip-restored-{uuid.uuid4().hex}",
            at=self.clock.now(),
            reason="trip written again: the breaker bucket did not hold the factory's trip",
            drawdown_pct=led.breaker_drawdown_pct,
            limit_pct=self.g.max_drawdown_pct,
            equity_usd=led.equity_usd,
            peak_equity_usd=led.breaker_peak_equity_usd,
        )

    async def write_trip(self) -> None:
        """Write (or write again) our trip to the bucket; until it lands, nothing else changes the breaker."""
        if self._trip_writing:
            return
        trip = self.breaker.trip
        if trip is None:
            trip = self._restored_trip()
            self.breaker = BreakerState(state="tripped", trip=trip)
        self._trip_writing = True
        try:
            payload = trip.to_bytes()
            revision = await write_key(self.js, S.BREAKER_TRIP_KEY, payload, self.signer.headers(Kind.BREAKER, payload))
        except (nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError) as exc:
            log.warning("could not write breaker trip to the bus yet: %s", exc)
            return
        finally:
            self._trip_writing = False
        self.trip_pending = False
        self._trip_generation += 1
        self.revision = revision
        self.breaker = BreakerState(state="tripped", trip=trip, trip_revision=revision)
        with self.store.begin() as conn:
            self.store.save_breaker(conn, True, trip.model_dump(mode="json"), revision, self.reset_applied_for, self.clock.now())
        await self._announce()

    async def _announce(self) -> None:
        try:
            await self.outbox.publish_now(S.BREAKER_STATUS_SUBJECT, self.breaker.to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError):
            pass  # the bucket is the record; the next change or start-up says it again

    async def _reset_is_signed(self, reset: BreakerReset) -> bool | None:
        """Only a principal resets the breaker: the reset must carry their own signature,
        from a key that is not revoked. None when it cannot be told now (the read failed,
        or a newer reset landed between the two reads): the next sync looks again. Read from the
        bucket's leader, as `sync` read the reset: a follower could still hold an older one."""
        try:
            stored = await last_message(self.nc, BREAKER_STREAM, S.breaker_kv_subject(S.BREAKER_RESET_KEY), current=True)
        except (ReadError, nats.errors.Error, asyncio.TimeoutError):
            return None
        try:
            if stored is None or BreakerReset.model_validate_json(stored.data) != reset:
                return None
            signer = principal_signer(reset.principal)
        except ValueError:
            return False
        try:
            if verify_headers(self.verifier, Kind.BREAKER, stored.data, stored.headers, expect=signer) is not SignatureStatus.VALID:
                return False
        except Exception as exc:  # noqa: BLE001 - a malformed accounts record refuses the reset, never stops the factory
            log.warning("SECURITY: the reset by %s cannot be checked (%r); the trip stands", reset.principal, exc)
            return False
        return self.verifier.passkey_problem(reset.principal, Kind.BREAKER, stored.data, stored.headers) is None

    async def sync(self, startup: bool = False) -> None:
        """Follow the bucket, failing closed.

        Tripped becomes armed only when a principal's reset names exactly the trip
        this factory knows is the latest. A bucket that lost our trip, or holds an
        older one, gets ours written again. The bucket is read from its leader
        (bus/breaker.py `read_key`), so a follower that has not stored our trip yet
        cannot make us write it again.
        """
        if self.trip_pending:
            await self.write_trip()
            return
        seen = self._trip_generation
        try:
            state = await read_breaker_state(self.nc)
        except (nats.errors.Error, ReadError, asyncio.TimeoutError) as exc:
            log.warning("could not read breaker state: %s", exc)
            return
        if self.trip_pending or self._trip_generation != seen:
            return  # a trip began (or landed) while we were reading: this read is stale
        b = self.state.beliefs
        known_tripped, known_rev = b.breaker_tripped, self.revision
        bucket_rev = state.trip_revision
        if state.state == "tripped" and state.trip is None:
            # The trip record is unreadable or deleted: tripped, but no principal could
            # name it to reset it. Write a readable one.
            log.warning("breaker trip record in the bucket is unreadable (%s); writing a readable one", state.note)
            b.breaker_tripped = True
            if self.breaker.trip is None:
                self.breaker = BreakerState(state="tripped", trip=self._restored_trip())
            self.trip_pending = True
            await self.write_trip()
            return
        if state.state == "tripped":
            b.breaker_tripped = True
            if known_rev is None or (bucket_rev is not None and bucket_rev >= known_rev):
                self.breaker, self.revision = state, bucket_rev
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
            b = self.state.beliefs  # the same object unless a reload replaced it during the read
            if not genuine_reset:
                log.warning("breaker bucket does not hold the factory's trip (bucket %s, ours %s); writing it again", bucket_rev, known_rev)
                self.trip_pending = True
                await self.write_trip()
                return
            if self.reset_applied_for != bucket_rev:
                # A principal reset this trip: drawdown is measured afresh from here.
                self.book.rebase_breaker_peak()
                self.reset_applied_for = bucket_rev
                log.warning("circuit breaker reset by %s: %s", state.reset.principal, state.reset.reason)
            b.breaker_tripped = False
            self.breaker, self.revision = state, bucket_rev
        else:
            self.breaker, self.revision = state, bucket_rev
        now = self.clock.now()
        with self.store.begin() as conn:
            self.store.save_breaker(
                conn,
                b.breaker_tripped,
                self.breaker.trip.model_dump(mode="json") if self.breaker.trip else None,
                self.revision,
                self.reset_applied_for,
                now,
            )
            self.store.save_ledger(conn, self.state.ledger.to_state(), now)
        if known_tripped != b.breaker_tripped or startup:
            self.status.portfolio_dirty = True
            await self._announce()
