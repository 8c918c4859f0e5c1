"""Read-only views of a stream through JetStream direct get.

Reading this way creates no consumer, so a role that may read a stream needs no
right to create or change consumers, which would let it meddle with the durable
consumers the factory and executor depend on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone

from nats.aio.client import Client


class ReadError(RuntimeError):
    pass


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


def _status(msg) -> str | None:
    return (msg.headers or {}).get("Status")


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
            got = 0
            while True:
                try:
                    msg = await sub.next_msg(timeout)
                except asyncio.TimeoutError:
                    raise ReadError(f"no answer reading stream {stream} (is the desk's bus running?)") from None
                status = _status(msg)
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
    """The newest message on one exact subject, or None."""
    try:
        msg = await nc.request(f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", timeout=timeout)
    except asyncio.TimeoutError:
        raise ReadError(f"no answer reading {subject} from {stream}") from None
    status = _status(msg)
    if status == "404":
        return None
    if status:
        raise ReadError(f"reading {subject} from {stream}: status {status}")
    h = msg.headers or {}
    return StoredMessage(stream, h.get("Nats-Subject", subject), int(h["Nats-Sequence"]), h.get("Nats-Time-Stamp", ""), msg.data, h)


async def read_parsed(nc: Client, stream: str, subject: str, model, *, after: int = 0) -> AsyncIterator[tuple[int, object]]:
    """Each message `stream` stored on `subject` after sequence `after`, as (seq, parsed); parsed is None
    for one `model` cannot read, so the caller can count it and still move its position past it."""
    async for m in read_stream(nc, stream, subject, start_seq=after + 1):
        try:
            yield m.seq, model.model_validate_json(m.data)
        except ValueError:
            yield m.seq, None
