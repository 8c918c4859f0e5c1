"""One active instance of a service, with standbys waiting: a lease in a JetStream key-value
bucket, and the epoch it was taken at as the fence on every write.

The lease is a key (`$KV.deskgate_leases.<service>`) whose value names its holder, one
process (`holder_id`). It is taken with a compare-and-set publish
(`Nats-Expected-Last-Subject-Sequence`): on nothing, or on a released lease.
The holder writes it again every third of `LEASE_SECONDS`, each time expecting its own
last write, so a lease someone else took cannot be renewed. The bucket keeps a write for
`LEASE_SECONDS` only (its max age): a holder that died stops renewing, its lease vanishes,
and a standby takes it, within `LEASE_SECONDS` plus one look.

The sequence a lease was taken at is its epoch, larger for every later holder. The service
fences each database transaction with it (factory/store.py): a holder that lost its lease
(frozen, cut off from the bus) and writes anyway finds a larger epoch in the store, and its
write is refused, not half done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors

from deskgate.bus import subjects as S
from deskgate.bus.reader import ReadError, last_message

#: How long a lease lasts without being renewed: the bound on a standby's takeover.
LEASE_SECONDS = 10.0


def lease_clock() -> float:
    """Seconds that keep running while the machine sleeps (CLOCK_BOOTTIME where there is one): a
    holder suspended and resumed must not believe its lease lasted through the pause."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


class LeaseLost(RuntimeError):
    """This instance no longer holds its lease: it must stop writing."""


log = logging.getLogger("deskgate.lease")


def holder_id(service: str, root: str) -> str:
    """Who holds a lease: this process, and only it. Named for people (host, data directory), made
    unique by a random part: two machines cloned alike, or a restart of the same instance, are
    other holders, and wait for the lease to be released or to expire."""
    return f"{service}@{socket.gethostname()}:{os.path.realpath(root)}#{uuid.uuid4().hex[:12]}"[:200]


@dataclass
class Lease:
    nc: object
    service: str
    holder: str
    seconds: float = LEASE_SECONDS
    revision: int | None = None  # our last write's sequence
    epoch: int | None = None  # the sequence we took the lease at: the fence
    renewed_at: float = field(default=0.0)  # lease_clock() before our last write the bus acknowledged

    @property
    def subject(self) -> str:
        return S.lease_subject(self.service)

    async def _write(self, payload: bytes, expected: int, headers: dict | None = None) -> int | None:
        """Publish expecting `expected` as the key's last sequence: the new sequence, or None if it was not."""
        try:
            ack = await self.nc.jetstream().publish(
                self.subject, payload, headers={**(headers or {}), "Nats-Expected-Last-Subject-Sequence": str(expected)}, timeout=2.0
            )
        except nats.js.errors.APIError as exc:
            if getattr(exc, "err_code", None) == 10071:  # wrong last sequence: someone else's write came between
                return None
            raise
        return ack.seq

    async def try_acquire(self) -> bool:
        """Take the lease if it is free (never taken, expired) or released; False if it is held."""
        last = await last_message(self.nc, f"KV_{S.LEASE_BUCKET}", self.subject)
        if last is None:
            expected = 0
        elif (last.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
            expected = last.seq
        else:
            return False
        started = lease_clock()
        seq = await self._write(self.holder.encode(), expected)
        if seq is None:
            return False
        self.revision = self.epoch = seq
        self.renewed_at = started
        return True

    async def acquire(self, stop: asyncio.Event | None = None, every: float | None = None) -> bool:
        """Wait until the lease is ours (True), or `stop` is set (False)."""
        every = every if every is not None else self.seconds / 5
        said = None
        while stop is None or not stop.is_set():
            try:
                if await self.try_acquire():
                    return True
            except (ReadError, nats.errors.Error, asyncio.TimeoutError) as exc:
                if str(exc) != said:  # the bus is away, or the lease bucket is missing: say so once, look again
                    log.warning("%s: cannot look at the lease (%s); trying again every %g s", self.service, exc, every)
                    said = str(exc)
            await asyncio.sleep(every)
        return False

    async def take(self, stop: asyncio.Event) -> asyncio.Task | None:
        """Wait for the lease (None if `stop` comes first), then keep it renewed, in a task, from
        that moment on: whatever the service does next (a long catch-up) cannot let it lapse."""
        if not await self.acquire(stop):
            return None
        return asyncio.create_task(self.keep(stop), name=f"{self.service}-lease")

    def valid(self) -> bool:
        """Whether the lease is still ours for sure: renewed within its time."""
        return self.remaining() > 0

    def remaining(self) -> float:
        """Seconds the lease is surely ours still (measured from before our last renewal was
        sent, so never longer than the bus keeps it); 0 when it is not ours."""
        if self.revision is None:
            return 0.0
        return max(0.0, self.seconds - (lease_clock() - self.renewed_at))

    def check(self, margin: float) -> None:
        """LeaseLost unless the lease is ours for at least `margin` seconds more: asked right
        before a step no store fence can stop, such as a request to a venue."""
        if self.remaining() < margin:
            raise LeaseLost(f"{self.service}: the lease is not surely ours for the next {margin:g} s; nothing more is sent")

    async def renew(self) -> None:
        """Write the lease again, expecting our own last write. LeaseLost if another took it, or if
        it could not be renewed within its time."""
        if self.revision is None:
            raise LeaseLost(f"{self.service}: no lease to renew")
        started = lease_clock()
        try:
            seq = await self._write(self.holder.encode(), self.revision)
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            if not self.valid():
                raise LeaseLost(f"{self.service}: the lease could not be renewed within {self.seconds:g} s ({exc!r})") from None
            return  # the bus is away for now: the next renewal tries again
        if seq is None:
            # Our previous renewal may have been stored though its answer timed out: then the key is ours still.
            # Asked of the bucket's leader: a follower without that renewal would make us give the lease up.
            last = await last_message(self.nc, f"KV_{S.LEASE_BUCKET}", self.subject, current=True)
            if last is not None and last.data.decode(errors="replace") == self.holder and last.seq > self.revision:
                self.revision = last.seq
                seq = await self._write(self.holder.encode(), self.revision)
            if seq is None:
                self.revision = None
                raise LeaseLost(f"{self.service}: the lease is no longer ours (expired or taken by another instance)")
        self.revision, self.renewed_at = seq, started

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew every third of the lease's time until `stop`; raises LeaseLost when it is lost."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.seconds / 3)
            except asyncio.TimeoutError:
                await self.renew()

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so a standby need not wait for it to expire."""
        if self.revision is None:
            return
        try:
            await self._write(b"", self.revision, {"KV-Operation": "DEL"})
        except (nats.errors.Error, asyncio.TimeoutError):
            pass  # it expires by itself
        self.revision = None
