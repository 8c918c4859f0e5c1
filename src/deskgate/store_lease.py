"""A service's lease held in its own store, for the services whose bus role may write nothing.

Most services hold their lease as a key in the bus (bus/lease.py). Two may not: the agent role
may write no `$KV.` key at all (DESIGN §3: the process that runs the model gets no write to any
state of the bus), and the audit service connects as the read-only observer, whose credentials
are also handed to outside tools (`deskgate creds observer`), which must not be able to hold the
audit log's lease. So these two hold theirs in a row of their own store (PostgreSQL, which
standbys need): a holder, an epoch and an expiry on the database's clock, taken with one
conditional UPDATE when it is free or expired, each taking raising the epoch.

The same row fences the store: each writing transaction first locks the row where it still
names this holder and epoch (`fence`), so an instance that lost its lease (frozen, cut off) is
refused before it writes, and one without standbys (epoch 0) once a standby has held the lease.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import BigInteger, Column, DateTime, String, Table, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from deskgate.bus.lease import LEASE_SECONDS, LeaseLost, lease_clock

log = logging.getLogger("deskgate.lease")


def lease_columns() -> list[Column]:
    """The columns a lease row needs, beside whatever else its table holds."""
    return [
        Column("name", String(32), primary_key=True),
        Column("epoch", BigInteger, nullable=False),  # raised by each taking of the lease; 0: never held
        Column("holder", String(200), nullable=False),  # "" when free
        Column("lease_until", DateTime(timezone=True), nullable=True),  # on the database's clock
    ]


def shared(engine: Engine | None) -> bool:
    return engine is not None and engine.dialect.name == "postgresql"


def epoch(engine: Engine, table: Table, row: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(table.c.epoch).where(table.c.name == row)).scalar() or 0


def fence(conn: Connection, table: Table, row: str, lease: StoreLease | None, what: str) -> None:
    """Lock the lease row for this transaction if it still names `lease` (None: no standbys, epoch
    0); LeaseLost otherwise. Taken under the row's lock, a later holder's takeover waits for this
    transaction, and reads what it wrote."""
    mine = table.c.name == row
    mine &= (table.c.epoch == 0) if lease is None else (table.c.epoch == lease.epoch) & (table.c.holder == lease.holder)
    if conn.execute(update(table).where(mine).values(epoch=table.c.epoch)).rowcount:
        return
    stored = conn.execute(select(table.c.epoch).where(table.c.name == row)).scalar()
    if stored is None:
        raise RuntimeError(f"the lease row of {what} is missing from its store; run `deskgate db upgrade`")
    if lease is None:
        raise LeaseLost(f"a standby has held the lease of {what} (epoch {stored}): one without standby.enabled stops; "
                        "set standby.enabled on every instance")
    raise LeaseLost(f"the lease of {what} was taken under epoch {stored}, later than ours ({lease.epoch}): another instance is active")


class StoreLease:
    """A lease in a store's row, with bus/lease.py's `Lease` interface (standby.py)."""

    def __init__(self, engine: Engine, table: Table, row: str, service: str, holder: str, seconds: float = LEASE_SECONDS):
        self.engine = engine
        self.table = table
        self.row = row
        self.service = service
        self.holder = holder
        self.seconds = seconds
        self.epoch: int | None = None
        self.renewed_at = 0.0

    def _until(self):
        return func.now() + timedelta(seconds=self.seconds)

    def _mine(self):
        t = self.table
        return (t.c.name == self.row) & (t.c.epoch == self.epoch) & (t.c.holder == self.holder)

    def _try_acquire(self) -> bool:
        t = self.table
        started = lease_clock()
        free = (t.c.holder == "") | (t.c.lease_until < func.now())
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(t).where((t.c.name == self.row) & free)
                .values(holder=self.holder, epoch=t.c.epoch + 1, lease_until=self._until())
                .returning(t.c.epoch)
            ).scalar()
        if taken is None:
            return False
        self.epoch, self.renewed_at = taken, started
        return True

    def _renew(self) -> bool:
        started = lease_clock()
        with self.engine.begin() as conn:
            kept = conn.execute(update(self.table).where(self._mine()).values(lease_until=self._until())).rowcount
        if kept:
            self.renewed_at = started
        return bool(kept)

    async def acquire(self, stop: asyncio.Event, every: float | None = None) -> bool:
        """Wait until the lease is ours (True), or `stop` is set (False)."""
        every = every if every is not None else self.seconds / 5
        said = None
        while not stop.is_set():
            try:
                if await asyncio.to_thread(self._try_acquire):
                    return True
            except SQLAlchemyError as exc:
                if str(exc) != said:
                    log.warning("%s: cannot look at the lease in the store (%s); trying again every %g s", self.service, exc, every)
                    said = str(exc)
            try:
                await asyncio.wait_for(stop.wait(), every)
            except asyncio.TimeoutError:
                pass
        return False

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew every third of the lease's time until `stop`; LeaseLost when it is lost."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.seconds / 3)
                return
            except asyncio.TimeoutError:
                pass
            try:
                kept = await asyncio.wait_for(asyncio.to_thread(self._renew), max(self.remaining(), 0.01))
            except (SQLAlchemyError, asyncio.TimeoutError) as exc:
                if not self.valid():
                    raise LeaseLost(f"{self.service}: the lease could not be renewed within {self.seconds:g} s ({exc!r})") from None
                continue  # the store is away for now: the next renewal tries again
            if not kept:
                raise LeaseLost(f"{self.service}: the lease is no longer ours (expired and taken by another instance)")

    def remaining(self) -> float:
        """Seconds the lease is surely ours still, measured from before our last renewal was sent."""
        if self.epoch is None:
            return 0.0
        return max(0.0, self.seconds - (lease_clock() - self.renewed_at))

    def valid(self) -> bool:
        return self.remaining() > 0

    def check(self, margin: float) -> None:
        if self.remaining() < margin:
            raise LeaseLost(f"{self.service}: the lease is not surely ours for the next {margin:g} s; nothing more is sent")

    async def release(self) -> None:
        """Give the lease up (a clean stop): a standby need not wait for it to expire."""
        if self.epoch is None:
            return
        try:
            await asyncio.to_thread(self._release)
        except SQLAlchemyError:
            pass  # it expires by itself
        self.epoch = None

    def _release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(self.table).where(self._mine()).values(holder="", lease_until=None))
