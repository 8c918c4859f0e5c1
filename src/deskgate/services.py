"""Running one service as its own process: `deskgate service NAME --data-dir DIR`.

Each service reads the validated mission that `deskgate up` wrote into the data
directory, logs to <data_dir>/logs/NAME.log, and marks itself ready with a file
the supervisor waits for.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import threading

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


# A service asked to stop is gone within this, whatever it was waiting on (a bus
# that died with the supervisor, a thread in a library): the supervisor kills a
# lingering service after 10 s on `down`, but when it was killed itself (its
# children get SIGTERM from the kernel) no one would.
STOP_GRACE_SECONDS = 8.0

log = logging.getLogger("deskgate.services")


def stop_on_signal(loop: asyncio.AbstractEventLoop, name: str, stop, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGINT/SIGTERM call `stop` (a clean shutdown) and start a timer that ends the process if that takes
    longer than `grace` seconds. A thread, so a blocked event loop cannot hold it up."""
    timer: list[threading.Timer] = []

    def give_up() -> None:
        log.error("%s did not stop within %g s of being asked; exiting without finishing its shutdown", name, grace)
        logging.shutdown()
        os._exit(1)

    def on_signal() -> None:
        stop()
        if not timer:
            timer.append(threading.Timer(grace, give_up))
            timer[0].daemon = True
            timer[0].start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


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
    stop_on_signal(asyncio.get_running_loop(), name, service.stop)

    async def announce() -> None:
        await ready.wait()
        _mark_ready(data_dir, name)

    announcer = asyncio.create_task(announce())
    try:
        await service.run(ready=ready)
    finally:
        announcer.cancel()
        ready_file(data_dir, name).unlink(missing_ok=True)


def run_service(name: str, data_dir: DataDir) -> None:
    setup_service_logging(data_dir.log_file(name))
    asyncio.run(_run(name, data_dir))
