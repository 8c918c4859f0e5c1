"""Running one service as its own process: `deskgate service NAME --data-dir DIR`.

Each service reads the validated mission that `deskgate up` wrote into the data
directory, logs to <data_dir>/logs/NAME.log, and marks itself ready with a file
the supervisor waits for.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal

from deskgate.config import Mission
from deskgate.logs import setup_service_logging
from deskgate.paths import DataDir

SERVICES = ("factory", "executor", "marketdata", "agents", "audit", "web")

# Where each service's class lives, imported only in the process that runs it: a
# service holds its own libraries, never another's (the factory no web framework, no
# model SDK; tests/test_forkserver.py).
SERVICE_CLASSES = {
    "factory": "deskgate.factory.service:Factory",
    "executor": "deskgate.execution.service:Executor",
    "marketdata": "deskgate.marketdata.service:MarketDataService",
    "audit": "deskgate.audit.service:AuditService",
    "agents": "deskgate.agents.service:AgentsService",
    "web": "deskgate.web.service:WebService",
}


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
    if name not in SERVICE_CLASSES:
        raise SystemExit(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    module, _, cls = SERVICE_CLASSES[name].partition(":")
    service = getattr(importlib.import_module(module), cls)(mission, data_dir)
    if name == "marketdata":
        ready.set()
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
