"""Running one service as its own process: `deskgate service NAME --data-dir DIR`.

Each service reads the validated mission that `deskgate up` wrote into the data
directory, logs to <data_dir>/logs/NAME.log, and marks itself ready with a file
the supervisor waits for.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

from deskgate.config import Mission
from deskgate.logs import setup_service_logging
from deskgate.paths import DataDir

SERVICES = ("factory", "executor", "marketdata", "agents", "audit", "web")


def ready_file(data_dir: DataDir, name: str):
    return data_dir.root / "run" / f"{name}.ready"


def load_snapshot(data_dir: DataDir) -> Mission:
    try:
        data = json.loads(data_dir.mission_snapshot.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{data_dir.mission_snapshot} is missing; services are started by `deskgate up`") from None
    return Mission.model_validate(data)


def _mark_ready(data_dir: DataDir, name: str) -> None:
    path = ready_file(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))


async def _run(name: str, data_dir: DataDir) -> None:
    mission = load_snapshot(data_dir)
    ready = asyncio.Event()
    if name == "factory":
        from deskgate.factory.service import Factory

        service = Factory(mission, data_dir)
    elif name == "executor":
        from deskgate.execution.service import Executor

        service = Executor(mission, data_dir)
    elif name == "marketdata":
        from deskgate.marketdata.service import MarketDataService

        service = MarketDataService(mission, data_dir)
        ready.set()
    elif name == "audit":
        from deskgate.audit.service import AuditService

        service = AuditService(mission, data_dir)
    elif name == "agents":
        from deskgate.agents.service import AgentsService

        service = AgentsService(mission, data_dir)
    elif name == "web":
        from deskgate.web.service import WebService

        service = WebService(mission, data_dir)
    else:
        raise SystemExit(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.stop)

    async def announce() -> None:
        await ready.wait()
        _mark_ready(data_dir, name)

    announcer = asyncio.create_task(announce())
    try:
        if name == "marketdata":
            await service.run()
        else:
            await service.run(ready=ready)
    finally:
        announcer.cancel()
        ready_file(data_dir, name).unlink(missing_ok=True)


def run_service(name: str, data_dir: DataDir) -> None:
    setup_service_logging(data_dir.log_file(name))
    asyncio.run(_run(name, data_dir))
