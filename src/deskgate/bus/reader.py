"""Read-only views of a stream through JetStream direct get.

Reading this way creates no consumer, so a role that may read a stream needs no
right to create or change consumers, which would let it meddle with the durable
consumers the factory and executor depend on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

import nats.aio.client
from nats.aio.client import Client

# Reading a stored message's headers, the server's Nats-* headers (added after the
# publisher's) must win over any a publisher set: nats-py's own parser keeps the last
# value. With `fast_mail_parser` installed nats-py uses that instead, untested here.
if getattr(nats.aio.client, "parse_email", None) is not None:
    raise ImportError("deskgate reads message headers with nats-py's own parser; uninstall fast_mail_parser (nats-py's fast_parse extra)")


class ReadError(RuntimeError):
    pass


T = TypeVar("T")


@dataclass(frozen=True)
class StoredMessage:
    stream: str
    subject: str
    seq: int
    time: str
    data: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.data)


# A 503 (no responders) to a direct get: on a cluster, while a node that held a replica has
# just died and the others have not yet taken its place. Asked again, this often, for at most
# NO_REPLICA_WAIT_S (and the read's timeout); a stream that does not exist answers 503 too,
# and is reported after that wait.
NO_REPLICA_RETRY_S = 0.1
NO_REPLICA_WAIT_S = 3.0


def _status(msg) -> str | None:
    """The server's status (204 end of batch, 404 nothing, 503...), never a `Status` header
    a publisher stored with its message: a stored message always comes back with the
    server's Nats-Sequence, a status reply never does. (Taken at its word, an agent's
    message with `Status: 404` would end every read of the stream at it.)"""
    h = msg.headers or {}
    return None if "Nats-Sequence" in h else h.get("Status")


async def read_stream(
    nc: Client,
    stream: str,
    subject: str = ">",
    *,
    start_seq: int = 1,
    start_time: datetime | None = None,
    batch: int = 256,
    timeout: float = 5.0,
) -> AsyncIterator[StoredMessage]:
    """Every message of `stream` on `subject`, from `start_seq` (or the first stored at or
    after `start_time`) on, in order."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        seq = start_seq
        first = True
        while True:
            request: dict = {"seq": seq, "next_by_subj": subject, "batch": batch}
            if first and start_time is not None:
                request = {"start_time": start_time.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
                           "next_by_subj": subject, "batch": batch}
            first = False
            await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), reply=inbox)
            got, asked_at = 0, time.monotonic()
            while True:
                try:
                    msg = await sub.next_msg(timeout)
                except asyncio.TimeoutError:
                    raise ReadError(f"no answer reading stream {stream} (is the desk's bus running?)") from None
                status = _status(msg)
                if status == "503" and got == 0 and time.monotonic() - asked_at < min(timeout, NO_REPLICA_WAIT_S):
                    await asyncio.sleep(NO_REPLICA_RETRY_S)  # see NO_REPLICA_RETRY_S
                    await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), reply=inbox)
                    continue
                if status == "204":  # end of this batch
                    break
                if status == "404":  # nothing (more) to read
                    return
                if status:
                    raise ReadError(f"reading {stream}: status {status} {msg.headers}")
                h = msg.headers or {}
                got += 1
                seq = int(h["Nats-Sequence"]) + 1
                yield StoredMessage(stream, h.get("Nats-Subject", ""), seq - 1, h.get("Nats-Time-Stamp", ""), msg.data, h)
            if got == 0 or int((msg.headers or {}).get("Nats-Num-Pending", "0") or 0) == 0:
                return
    finally:
        await sub.unsubscribe()


async def last_message(nc: Client, stream: str, subject: str, timeout: float = 5.0) -> StoredMessage | None:
    """The newest message on one exact subject, or None.

    Asked over an inbox of its own rather than `nc.request`, which takes any answer with a
    `Status: 503` header for "no responders", a header an agent may store with its message."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    asked_at = time.monotonic()
    try:
        while True:
            await nc.publish(f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", reply=inbox)
            msg = await sub.next_msg(timeout)
            if _status(msg) != "503" or time.monotonic() - asked_at >= min(timeout, NO_REPLICA_WAIT_S):
                break
            await asyncio.sleep(NO_REPLICA_RETRY_S)  # see NO_REPLICA_RETRY_S
    except asyncio.TimeoutError:
        raise ReadError(f"no answer reading {subject} from {stream}") from None
    finally:
        await sub.unsubscribe()
    status = _status(msg)
    if status == "404":
        return None
    if status:
        raise ReadError(f"reading {subject} from {stream}: status {status}")
    h = msg.headers or {}
    return StoredMessage(stream, h.get("Nats-Subject", subject), int(h["Nats-Sequence"]), h.get("Nats-Time-Stamp", ""), msg.data, h)


async def newest_accepted(
    nc: Client, stream: str, subject: str, accept: Callable[[StoredMessage], T | None], *, window: int = 64, limit: int = 4096
) -> tuple[T | None, int]:
    """What `accept` makes of the newest message on `subject` it takes (None: refused),
    walking back past the ones it refuses (a forged state published after the genuine one
    must not hide it), and how many newer ones it refused. Reads back in growing windows,
    so the usual case is one short read; gives up (None) after `limit` refusals, so a
    flood costs a bounded read."""
    last = await last_message(nc, stream, subject)
    if last is None:
        return None, 0
    if (taken := accept(last)) is not None:
        return taken, 0
    refused, upto, span = 1, last.seq - 1, window
    while upto >= 1 and refused < limit:
        start = max(1, upto - span + 1)
        best: T | None = None
        after_best = 0  # refused and newer than the best so far
        async with aclosing(read_stream(nc, stream, subject, start_seq=start)) as stored:
            async for m in stored:
                if m.seq > upto:
                    break
                if (taken := accept(m)) is not None:
                    best, after_best = taken, 0
                else:
                    after_best += 1
        refused += after_best
        if best is not None:
            return best, refused
        upto, span = start - 1, min(span * 4, limit)
    return None, refused


async def read_parsed(nc: Client, stream: str, subject: str, model, *, after: int = 0) -> AsyncIterator[tuple[int, object]]:
    """Each message `stream` stored on `subject` after sequence `after`, as (seq, parsed); parsed is None
    for one `model` cannot read, so the caller can count it and still move its position past it."""
    async for m in read_stream(nc, stream, subject, start_seq=after + 1):
        try:
            yield m.seq, model.model_validate_json(m.data)
        except ValueError:
            yield m.seq, None
