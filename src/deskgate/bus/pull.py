"""Continuous pull from a durable JetStream consumer in the DESK account.

The consumer lives in another account, so every pull request crosses a service
import and its messages come back through the import's response mapping. nats-
server ends such a mapping when a response has neither payload nor headers, and
an agent can publish exactly that. So each request asks for one message only: an
empty message then ends nothing but its own request. A window of requests stays
open, topped up as messages arrive; messages are handed over as soon as they come,
together with whatever else is already waiting.

(nats-py's `fetch(n)` is not used: it also waits for the whole batch once the
first message has come, which turns light load into latency.)
"""

from __future__ import annotations

import asyncio
import json
import time

from nats.aio.client import Client
from nats.aio.msg import Msg


class PullConsumer:
    def __init__(self, nc: Client, stream: str, durable: str, *, window: int = 64, expires: float = 5.0):
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._window = window
        self._expires = expires
        self._request = json.dumps({"batch": 1, "expires": int(expires * 1e9)}).encode()
        self._inbox = nc.new_inbox()
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._sub = None
        self._open = 0  # requests that have not yet answered with a message or a status
        self._last_heard = time.monotonic()

    async def start(self) -> PullConsumer:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=1_000_000)
        return self

    async def _on_msg(self, msg: Msg) -> None:
        self._last_heard = time.monotonic()
        await self._queue.put(msg)

    async def _top_up(self) -> None:
        # The server forgets open requests when it restarts, without telling us: if
        # nothing at all came back for longer than a request lives, they are gone.
        if self._open and self._queue.empty() and time.monotonic() - self._last_heard > self._expires + 1.0:
            self._open = 0
        missing = self._window - self._open
        if missing > self._window // 2 or self._open == 0:
            for _ in range(missing):
                await self._nc.publish(self._subject, self._request, reply=self._inbox)
            self._open = self._window
            self._last_heard = time.monotonic()

    async def next_batch(self, wait: float = 1.0) -> list[Msg]:
        """Messages available now, waiting up to `wait` seconds for the first."""
        await self._top_up()
        out: list[Msg] = []
        deadline = time.monotonic() + wait
        while not out:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                msg = await asyncio.wait_for(self._queue.get(), timeout=min(remaining, self._expires))
            except asyncio.TimeoutError:
                await self._top_up()
                continue
            self._take(msg, out)
            while not self._queue.empty():
                self._take(self._queue.get_nowait(), out)
            await self._top_up()
        return out

    def _take(self, msg: Msg, out: list[Msg]) -> None:
        self._open = max(0, self._open - 1)
        headers = msg.headers or {}
        if headers.get("Status") and not (msg.reply or "").startswith("$JS.ACK."):
            # 408 expired, 404 nothing, 409 limits: the request is over. A delivered message
            # (it has an ack subject) is never a status, whatever headers its publisher set.
            return
        out.append(msg)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
