"""Runs an `aiohttp.web` app on 127.0.0.1 in a background thread with its own event loop,
so sync tests and tests running their own asyncio loop can both talk to it.

Also the HTTP pieces every venue shares: JSON answers, delayed or lost answers for the
`timeout`/`lost` behaviours, and the garbage body.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from .engine import Behaviour

GARBAGE = '{"code":0,"msg":"\x00\x1f<<garbage from a broken proxy'  # looks like JSON, is not
LOST_BODY = "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n</body>\r\n</html>\r\n"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(payload, separators=(",", ":")), content_type="application/json", headers=headers
    )


def garbage_response() -> web.Response:
    return web.Response(status=200, text=GARBAGE, content_type="application/json")


async def deliver(behaviour: Behaviour, response: web.Response) -> web.Response:
    """Answer as the behaviour says: late (`timeout`), as a gateway error (`lost`), or normally."""
    if behaviour.kind == "timeout":
        await asyncio.sleep(behaviour.seconds)
    if behaviour.kind == "lost":
        return web.Response(status=behaviour.status, text=LOST_BODY.format(status=behaviour.status), content_type="text/html")
    return response


class BackgroundServer:
    """One aiohttp app on a free loopback port, served from a daemon thread."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        """Start serving; returns "http://127.0.0.1:PORT" once the socket listens."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                # delayed answers (Behaviour.timeout) must not hold shutdown for aiohttp's default 60 s
                self._runner = web.AppRunner(self._app, shutdown_timeout=0.5, access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                loop.run_until_complete(site.start())
                self.url = "http://127.0.0.1:%d" % self._runner.addresses[0][1]
            except BaseException as exc:  # surface bind/setup errors in start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-exchange", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        if not self.url:
            raise RuntimeError("fake exchange did not start listening within 10 s")
        return self.url

    async def _shutdown(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # answers still sleeping for Behaviour.timeout
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self) -> None:
        """Close the listening socket and connections, then end the loop and its thread."""
        if self._loop is None or self._runner is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = self._runner = self._thread = None
