"""Continuous pull from a durable JetStream consumer, one message batch at a time.

nats-py's `fetch(n)` waits for the whole batch once the first message has come,
which turns light load into latency. Here one pull request for up to `batch`
messages stays open; messages are handed over as soon as they arrive, together
with whatever else is already waiting, and a new request goes out when the old
one is used up or expires.
"""

from __future__ import annotations

import asyncio
import json
import time

from nats.aio.client import Client
from nats.aio.msg import Msg


class PullConsumer:
    def __init__(self, nc: Client, stream: str, durable: str, *, batch: int = 256, expires: float = 5.0):
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._batch = batch
        self._expires = expires
        self._inbox = nc.new_inbox()
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._sub = None
        self._credit = 0  # messages the open request may still deliver
        self._requested_at = 0.0

    async def start(self) -> PullConsumer:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)
        return self

    async def _on_msg(self, msg: Msg) -> None:
        await self._queue.put(msg)

    async def _request(self) -> None:
        body = {"batch": self._batch, "expires": int(self._expires * 1e9)}
        await self._nc.publish(self._subject, json.dumps(body).encode(), reply=self._inbox)
        self._credit = self._batch
        self._requested_at = time.monotonic()

    def _request_stale(self) -> bool:
        # The server drops open requests on restart without telling us.
        return time.monotonic() - self._requested_at > self._expires + 1.0

    async def next_batch(self, wait: float = 1.0) -> list[Msg]:
        """Messages available now, waiting up to `wait` seconds for the first."""
        if self._credit <= 0 or self._request_stale():
            await self._request()
        out: list[Msg] = []
        deadline = time.monotonic() + wait
        while not out:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                msg = await asyncio.wait_for(self._queue.get(), timeout=min(remaining, self._expires))
            except asyncio.TimeoutError:
                if self._request_stale():
                    await self._request()
                continue
            self._take(msg, out)
            while not self._queue.empty():
                self._take(self._queue.get_nowait(), out)
            if self._credit <= 0:
                await self._request()
        return out

    def _take(self, msg: Msg, out: list[Msg]) -> None:
        status = (msg.headers or {}).get("Status") if msg.headers else None
        if status:
            # 408 request expired, 409 leadership/limits, 404 nothing: the request is over.
            if status in ("408", "409", "404"):
                self._credit = 0
            return
        self._credit -= 1
        out.append(msg)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
