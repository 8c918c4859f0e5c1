"""The agents as a service: the desk's cycles against the live clock (`deskgate up` / `deskgate run`).

Every few seconds it asks the schedule what is due and runs it. After a long
stop it does not replay every missed cycle against today's market: cycles older
than `MAX_CATCH_UP` are skipped, and the skip is written to recall.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from deskgate.agents import shared_state
from deskgate.agents.analyst import build_analyst
from deskgate.agents.desk import AgentDesk
from deskgate.agents.schedule import due, first_due
from deskgate.agents.submit import AgentClient, desk_signer
from deskgate.bus import subjects as S
from deskgate.bus.connect import connect_as
from deskgate.bus.lease import holder_id
from deskgate.clock import Clock, SystemClock
from deskgate.config import Mission
from deskgate.memory.embedding import embedder_from
from deskgate.memory.store import Memory
from deskgate.paths import DataDir
from deskgate.standby import Active, stand_by
from deskgate.store_lease import epoch as lease_epoch
from deskgate.store_lease import shared

log = logging.getLogger("deskgate.agents")

MAX_CATCH_UP = timedelta(hours=2)
POLL_SECONDS = 5.0
# Seconds of lease a publish needs left (standby.py): more than a publish takes.
PUBLISH_MARGIN_S = 1.0


class AgentsService:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, poll_seconds: float = POLL_SECONDS):
        self.mission = mission
        self.data_dir = data_dir
        self.clock = clock or SystemClock()
        self.poll_seconds = poll_seconds
        self._stop = asyncio.Event()
        self.active: Active | None = None  # with standbys (standby.enabled): held while this instance runs the cycles
        self.desk: AgentDesk | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        analyst = build_analyst(self.mission.agents.model)
        # The built-in agents are the `desk` identity: its key, read after the fork (forkserver.py).
        signer = desk_signer(self.data_dir)
        nc, events = await connect_as(self.data_dir, S.Role.AGENT, name="deskgate-agents")
        memory = None
        active = None
        try:
            memory = Memory.for_desk(
                self.data_dir, core_limits=self.mission.memory.core_limits, clock=self.clock.now,
                embedder=embedder_from(self.mission.memory.embedder),
            )
            if self.mission.standby.enabled:
                # One of several: only the lease holder runs the cycles, from the state the last one
                # saved. Held in the shared store, not the bus: the agent role writes no `$KV.` key.
                if not shared(memory.engine):
                    raise SystemExit("standby.enabled needs the agents' memory in the shared store (storage.url)")
                lease = shared_state.lease(memory.engine, holder_id("agents", str(self.data_dir.root)))
                active = self.active = await stand_by(lease, self._stop, ready)
                if active is None:
                    return
            elif shared(memory.engine) and (epoch := lease_epoch(memory.engine, shared_state.agents_state, shared_state.ROW)) > 0:
                raise SystemExit(f"the agents' state was last saved by a standby agents service (lease epoch {epoch}): one "
                                 "without standby.enabled would run the cycles beside whichever holds the lease; set "
                                 "standby.enabled on every agents service")
            client = AgentClient(nc, events, signer)
            desk = self.desk = AgentDesk(self.mission, self.data_dir, client, analyst, memory)
            if active is not None:
                desk.lease = active.lease
                client.guard = lambda: active.check(PUBLISH_MARGIN_S)
                await active.run(self._cycles(desk, memory, analyst, ready))
                await active.end()
            else:
                await self._cycles(desk, memory, analyst, ready)
        finally:
            if active is not None and not active.keeper.done():
                active.keeper.cancel()  # ended by an error: the lease expires by itself
            if memory is not None:
                memory.engine.dispose()
            try:
                await nc.drain()
            except Exception:
                pass

    async def _cycles(self, desk: AgentDesk, memory: Memory, analyst, ready: asyncio.Event | None) -> None:
        log.info("agents running with the %s", analyst.label)
        now = self.clock.now()
        last = desk.state.last_cycle_at
        if last is not None and last > now:
            # A replay ran ahead of today on this data directory: start the live cycles from now.
            desk.state.last_cycle_at = now
            memory.remember("note", f"the agents' clock was at {last:%Y-%m-%d %H:%M} UTC, ahead of now (a replay): cycles start from now")
            log.warning("agents' clock %s is ahead of now; starting from now", last)
        elif last is not None and now - last > MAX_CATCH_UP:
            skipped = len(due(self.mission.agents.schedule, last, now - MAX_CATCH_UP))
            desk.state.last_cycle_at = now - MAX_CATCH_UP
            memory.remember("note", f"agents were stopped since {last:%Y-%m-%d %H:%M} UTC: {skipped} cycles skipped, not replayed")
            log.warning("skipped %d cycles missed since %s", skipped, last)
        if self.mission.agents.model.check_at_start and hasattr(analyst, "check"):
            desk.endpoint_problem = await analyst.check()
            if desk.endpoint_problem:
                log.error("model endpoint %s: %s", getattr(analyst, "endpoint", None), desk.endpoint_problem)
            await desk._publish_status(now)
        kind, at = first_due(self.mission.agents.schedule, max(self.clock.now(), desk.state.last_cycle_at or self.clock.now()))
        log.info("first cycle due: %s at %s UTC (analyst: %s)", kind, f"{at:%Y-%m-%d %H:%M}", analyst.label)
        if ready is not None:
            ready.set()
        while not self._stop.is_set():
            for result in await desk.run_due(self.clock.now()):
                log.info("%s cycle at %s done", result.kind, result.at)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.poll_seconds)
            except asyncio.TimeoutError:
                pass
