"""What a committed transaction announced, published signed and in order.

A core writes a state change and the messages announcing it in one transaction
(factory/store.py) and lists those messages in its `Effects`; the shell hands them
here after the commit. A crash between commit and publish leaves their rows marked
unpublished: they are loaded and sent again at start-up, and JetStream drops
repeats by message id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from deskgate.audit.signing import Signer, kind_of
from deskgate.bus import subjects as S
from deskgate.bus.publish import BatchPublisher
from deskgate.factory.store import FactoryStore, Outgoing

log = logging.getLogger("deskgate.factory")

FLUSH_BATCH = 1000


class PendingKind(StrEnum):
    """Which table records that a message went out (the stored value is the wire's)."""

    VERDICT = "verdict"  # key: the directive's DIRECTIVES stream sequence (evaluations)
    STAGED = "staged"  # key: the directive id (intentions)
    OUTBOX = "outbox"  # key: the outbox row id


@dataclass(frozen=True, slots=True)
class Pending:
    """A committed message awaiting publication."""

    kind: PendingKind
    key: object
    subject: str
    msg_id: str
    payload: bytes


def verdict_subject(directive_id: str | None) -> str:
    return S.policy_status_subject(directive_id) if directive_id else "factory.status.policy.unidentified"


@dataclass(slots=True)
class Effects:
    """What one core's transaction changed, handed to the shell only after the commit:
    the messages to publish, which status views changed, and the earliest new expiry."""

    messages: list[Pending] = field(default_factory=list)
    portfolio_changed: bool = False
    funnel_changed: bool = False
    next_expiry: datetime | None = None

    def queue(self, queued: list[Outgoing]) -> None:
        self.messages.extend(Pending(PendingKind.OUTBOX, o.id, o.subject, o.msg_id, o.payload) for o in queued)

    def expires(self, at: datetime) -> None:
        if self.next_expiry is None or at < self.next_expiry:
            self.next_expiry = at


def batch_end(outgoing: list[Pending]) -> int:
    """How many of `outgoing` go in the next batch: at most FLUSH_BATCH, and ending where staged
    items give way to anything else. Each stream stores at its own pace, so a verdict sent in the
    same batch could be stored before the staged item it announces; a sender told "staged" must
    find the item in the queue."""
    n = min(len(outgoing), FLUSH_BATCH)
    for i in range(1, n):
        if outgoing[i - 1].kind is PendingKind.STAGED and outgoing[i].kind is not PendingKind.STAGED:
            return i
    return n


class Outbox:
    def __init__(self, store: FactoryStore, signer: Signer):
        self.store = store
        self.signer = signer
        self.publisher: BatchPublisher | None = None
        self.js = None
        self._outgoing: list[Pending] = []  # committed, not yet published
        self._published: list[Pending] = []  # published, not yet marked so
        self._lock = asyncio.Lock()

    def attach(self, js, publisher: BatchPublisher) -> None:
        self.js, self.publisher = js, publisher

    def add(self, messages: list[Pending]) -> None:
        self._outgoing.extend(messages)

    async def flush(self) -> int:
        """Publish what was committed but not yet published, in order."""
        async with self._lock:
            total = 0
            while self._outgoing:
                n = batch_end(self._outgoing)
                batch, self._outgoing = self._outgoing[:n], self._outgoing[n:]
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

    async def publish_now(self, subject: str, payload: bytes):
        """A status message outside any transaction (the book, the funnel, the breaker): signed, not kept."""
        return await self.js.publish(subject, payload, headers=self.signer.headers(kind_of(subject), payload))

    def mark_published(self) -> None:
        """Record what was published; batched, since a repeat after a crash is harmless."""
        if not self._published:
            return
        done, self._published = self._published, []
        with self.store.begin() as conn:
            self.store.mark_directives_published(
                conn, [o.key for o in done if o.kind is PendingKind.VERDICT], [o.key for o in done if o.kind is PendingKind.STAGED]
            )
            self.store.mark_published(conn, [o.key for o in done if o.kind is PendingKind.OUTBOX])

    def load_unpublished(self) -> None:
        with self.store.connect() as conn:
            pending = [  # staged items before the verdicts that announce them, as intake sends them
                Pending(PendingKind.STAGED, did, S.staged_subject(did), f"staged-{did}", data)
                for did, data in self.store.unpublished_staged(conn)
            ]
            pending += [
                Pending(PendingKind.VERDICT, seq, verdict_subject(did), f"policy-{seq}", data)
                for seq, did, data in self.store.unpublished_verdicts(conn)
            ]
            pending += [
                Pending(PendingKind.OUTBOX, o.id, o.subject, o.msg_id, o.payload) for o in self.store.unpublished(conn, limit=10_000_000)
            ]
        self._outgoing = pending + self._outgoing

    def forget(self) -> None:
        """Drop what is in memory; the rows still say unpublished, so a reload sends them again (deduplicated)."""
        self._outgoing.clear()
        self._published.clear()
