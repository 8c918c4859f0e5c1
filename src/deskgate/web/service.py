"""The Command Center as a desk service: uvicorn serving the app, on the service's own loop.

`deskgate up` starts it like every other service (`deskgate service web`); it binds
its port before announcing itself ready, and writes the address it serves on to
<data_dir>/run/web.url so `up` can print it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from deskgate.bus.connect import connect_as
from deskgate.bus.subjects import Role
from deskgate.config import Mission
from deskgate.paths import DataDir, write_private
from deskgate.standby import stand_by_on_bus
from deskgate.web.app import create_app
from deskgate.web.listen import WebError, bind, web_url_file

log = logging.getLogger("deskgate.web")


class _Server(uvicorn.Server):
    """The service installs its own SIGTERM handling; uvicorn must not take it over."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class WebService:
    def __init__(self, mission: Mission, data_dir: DataDir):
        self.mission = mission
        self.data_dir = data_dir
        self.server: _Server | None = None
        self.closing: asyncio.Event | None = None  # the app's: ends its live event streams
        self.url = ""
        self._stopping: asyncio.Event | None = None  # with standbys: ends the wait for the lease

    async def run(self, ready: asyncio.Event | None = None) -> None:
        if not self.mission.standby.enabled:
            await self._serve(ready)
            return
        # One of several: only the lease holder binds its port and serves, so a load balancer (or
        # a person) finds exactly one Command Center answering. The app keeps no state of its own:
        # sessions and accounts are in the shared store, decisions on the bus.
        self._stopping = asyncio.Event()
        nc, _ = await connect_as(self.data_dir, Role.COMMAND_CENTER, name="deskgate-web-lease")
        active = None
        try:
            active = await stand_by_on_bus(nc, "web", str(self.data_dir.root), self._stopping, ready)
            if active is not None:
                await active.run(self._serve(None))
                await active.end()
        finally:
            if active is not None and not active.keeper.done():
                active.keeper.cancel()  # ended by an error: the lease expires by itself
            try:
                await nc.drain()
            except Exception:
                pass

    async def _serve(self, ready: asyncio.Event | None) -> None:
        w = self.mission.web
        sock = bind(w.host, w.port)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host if ':' not in host else '[' + host + ']'}:{port}"
        app = create_app(self.mission, self.data_dir)
        self.closing = app.state.ctx.closing
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            proxy_headers=bool(w.trusted_proxies),
            forwarded_allow_ips=list(w.trusted_proxies) or None,
        )
        self.server = _Server(config)
        serving = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if serving.done():
                serving.result()
                raise WebError("the Command Center stopped while starting")
            await asyncio.sleep(0.02)
        write_private(web_url_file(self.data_dir), self.url + "\n")
        log.info("command center serving on %s", self.url)
        if ready is not None:
            ready.set()
        try:
            await serving
        finally:
            web_url_file(self.data_dir).unlink(missing_ok=True)
            sock.close()

    def stop(self) -> None:
        """End the live event streams first: uvicorn's graceful shutdown waits for every open
        response, and cancels (with an ERROR and a traceback) those still open after 2 s."""
        if self._stopping is not None:
            self._stopping.set()
        if self.closing is not None:
            self.closing.set()
        if self.server is not None:
            self.server.should_exit = True
