"""Publishing many messages to JetStream and waiting for every acknowledgement.

`js.publish` makes one request per message (a future, a reply token, a parsed
acknowledgement object); for the factory's batches that bookkeeping costs more
than the messages. Here one reply subscription collects the acknowledgements of a
whole batch, each matched by its own reply subject.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from nats.aio.client import Client


class PublishError(RuntimeError):
    pass


class BatchPublisher:
    def __init__(self, nc: Client, timeout: float = 5.0):
        self._nc = nc
        self._timeout = timeout
        self._prefix = nc.new_inbox()
        self._waiting: dict[str, asyncio.Future] = {}
        self._sub = None
        self._n = 0

    async def start(self) -> BatchPublisher:
        self._sub = await self._nc.subscribe(self._prefix + ".*", cb=self._on_ack, pending_msgs_limit=1_000_000)
        return self

    async def _on_ack(self, msg) -> None:
        fut = self._waiting.pop(msg.subject, None)
        if fut is None or fut.done():
            return
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            fut.set_exception(PublishError("no stream answered (503)"))
            return
        try:
            body = json.loads(msg.data)
        except ValueError:
            fut.set_exception(PublishError(f"unreadable acknowledgement {msg.data[:80]!r}"))
            return
        if "error" in body:
            fut.set_exception(PublishError(str(body["error"])))
        else:
            fut.set_result(body)

    async def publish_all(self, items: Sequence[tuple]) -> list[BaseException | None]:
        """Publish (subject, payload, msg_id[, headers]) items in order; one result per item: None or the error."""
        loop = asyncio.get_running_loop()
        futures = []
        try:
            for subject, payload, msg_id, *extra in items:
                headers = dict(extra[0]) if extra and extra[0] else {}
                if msg_id:
                    headers["Nats-Msg-Id"] = msg_id
                self._n += 1
                reply = f"{self._prefix}.{self._n}"
                fut = loop.create_future()
                self._waiting[reply] = fut
                futures.append((reply, fut))
                await self._nc.publish(subject, payload, reply=reply, headers=headers or None)
        except BaseException as exc:
            # Could not even send (closed, reconnect buffer full): nothing of this batch
            # counts as published, the caller keeps all of it.
            for reply, fut in futures:
                self._waiting.pop(reply, None)
                fut.cancel()
            error = exc if isinstance(exc, Exception) else PublishError(repr(exc))
            if not isinstance(exc, Exception):
                raise
            return [error] * len(items)
        results: list[BaseException | None] = []
        done, _ = await asyncio.wait([f for _, f in futures], timeout=self._timeout) if futures else (set(), set())
        for reply, fut in futures:
            if fut in done and fut.exception() is None:
                results.append(None)
            elif fut in done:
                results.append(fut.exception())
            else:
                self._waiting.pop(reply, None)
                fut.cancel()
                results.append(PublishError("no acknowledgement in time"))
        return results


#: How long a publish keeps asking while no stream answers at all (a cluster electing a new leader).
NO_RESPONDERS_WITHIN_S = 10.0
#: How long one try of a publish with a Nats-Msg-Id waits for its acknowledgement before asking
#: again (one sent into a route to a node that just died is never answered).
DEDUPLICATED_TRY_S = 2.0


async def publish_stored(js, subject: str, payload: bytes, headers: dict | None = None, *, within: float = NO_RESPONDERS_WITHIN_S):
    """`js.publish`, asked again for up to `within` seconds while no stream answers ("no
    responders"): on a cluster, for the seconds after a node holding the stream's leader died.
    Nothing was stored then, so asking again cannot store twice.

    A timeout may have been stored. It is asked again only for a message with a Nats-Msg-Id:
    the stream drops a copy with the same id within its duplicate window (10 minutes for the
    desk's streams, 2 for a bucket), across a change of leader too, and acknowledges the one it
    kept. Without an id a timeout is raised to the caller."""
    import nats.errors
    import nats.js.errors

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    deduplicated = within > 0 and bool((headers or {}).get("Nats-Msg-Id"))
    while True:
        try:
            if deduplicated:
                return await js.publish(subject, payload, headers=headers, timeout=DEDUPLICATED_TRY_S)
            return await js.publish(subject, payload, headers=headers)
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError):
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.1)
        except nats.errors.TimeoutError:
            if not deduplicated or loop.time() >= deadline:
                raise
