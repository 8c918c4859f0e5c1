"""Standing by: with `standby.enabled`, an instance of a service waits for the service's lease
(bus/lease.py) before it does any work, and stops the moment the lease is lost. Of two
instances of a service, on two machines or in two processes, exactly one is active.

The factory and the executor keep their leases inside their own run loops, because they also
fence a store and each venue request with them. The audit log, market data, the agents and
the Command Center use this module: market data and the Command Center with a lease in the
bus, the audit log and the agents with one in their own store (store_lease.py), since their
roles may write nothing in the bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from deskgate.bus.lease import Lease, LeaseLost, holder_id

log = logging.getLogger("deskgate.standby")

T = TypeVar("T")


@dataclass
class Active:
    """This instance holds its service's lease. `keeper` renews it, and ends with LeaseLost
    when the lease is lost."""

    lease: Lease  # or a StoreLease (store_lease.py): the same interface
    keeper: asyncio.Task

    async def run(self, work: Awaitable[T]) -> T:
        """`work`, for as long as the lease is held. A lost lease cancels the work at once and
        raises LeaseLost, so nothing of this instance goes on beside the next holder's."""
        task = asyncio.ensure_future(work)
        try:
            await asyncio.wait({task, self.keeper}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if not task.done() and self.keeper.done() and not self.keeper.cancelled() and self.keeper.exception() is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise self.keeper.exception()
        return await task  # the work ended (the keeper runs on until `end`)

    def check(self, margin: float) -> None:
        """LeaseLost unless the lease is surely ours for `margin` seconds more: asked before a
        step no store can fence, such as a publish."""
        if self.keeper.done() and not self.keeper.cancelled() and self.keeper.exception() is not None:
            raise LeaseLost(str(self.keeper.exception()))
        self.lease.check(margin)

    async def end(self) -> None:
        """Stop renewing and give the lease up (a clean stop): a standby takes over now, not when
        the lease expires. A lease already lost is not written again."""
        lost = self.keeper.done() and not self.keeper.cancelled() and self.keeper.exception() is not None
        self.keeper.cancel()
        await asyncio.gather(self.keeper, return_exceptions=True)
        if not lost:
            await self.lease.release()


async def stand_by(lease: Lease, stop: asyncio.Event, ready: asyncio.Event | None = None) -> Active | None:
    """Wait for `lease` (bus/lease.py, or store_lease.py), or for `stop` (None).
    `ready` is set at once: until it holds the lease, standing by is this instance's work."""
    if ready is not None:
        ready.set()
    log.info("%s standing by for the lease", lease.service)
    if not await lease.acquire(stop):
        return None
    # Renewed until `end` (or the lease is lost), not until `stop`: work still finishing after a
    # stop is asked (a cycle, a last checkpoint) must not outlive the lease it runs under.
    keeper = asyncio.create_task(lease.keep(asyncio.Event()), name=f"{lease.service}-lease")
    log.info("%s holds the lease (epoch %d)", lease.service, lease.epoch)
    return Active(lease, keeper)


async def stand_by_on_bus(nc, service: str, root: str, stop: asyncio.Event, ready: asyncio.Event | None = None) -> Active | None:
    """`stand_by` with `service`'s lease in the bus, held by this process."""
    return await stand_by(Lease(nc, service, holder_id(service, root)), stop, ready)
