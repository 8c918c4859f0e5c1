"""The agents as a service: the desk's cycles against the live clock (`deskgate up` / `deskgate run`).

Every few seconds it asks the schedule what is due and runs it. After a long
stop it does not replay every missed cycle against today's market: cycles older
than `MAX_CATCH_UP` are skipped, and the skip is written to recall.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from deskgate.agents.analyst import build_analyst
from deskgate.agents.desk import AgentDesk
from deskgate.agents.schedule import due, first_due
from deskgate.agents.submit import AgentClient, desk_signer
from deskgate.bus import subjects as S
from deskgate.bus.connect import connect_as
from deskgate.clock import Clock, SystemClock
from deskgate.config import Mission
from deskgate.memory.embedding import embedder_from
from deskgate.memory.store import Memory
from deskgate.paths import DataDir

log = logging.getLogger("deskgate.agents")

MAX_CATCH_UP = timedelta(hours=2)
POLL_SECONDS = 5.0


class AgentsService:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, poll_seconds: float = POLL_SECONDS):
        self.mission = mission
        self.data_dir = data_dir
        self.clock = clock or SystemClock()
        self.poll_seconds = poll_seconds
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        analyst = build_analyst(self.mission.agents.model)
        # The built-in agents are the `desk` identity: its key, read after the fork (forkserver.py).
        signer = desk_signer(self.data_dir)
        nc, events = await connect_as(self.data_dir, S.Role.AGENT, name="deskgate-agents")
        memory = Memory.for_desk(
            self.data_dir, core_limits=self.mission.memory.core_limits, clock=self.clock.now,
            embedder=embedder_from(self.mission.memory.embedder),
        )
        desk = AgentDesk(self.mission, self.data_dir, AgentClient(nc, events, signer), analyst, memory)
        log.info("agents running with the %s", analyst.label)
        try:
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
        finally:
            memory.engine.dispose()
            try:
                await nc.drain()
            except Exception:
                pass
