"""Read-only views of a stream through JetStream direct get, or from the stream's leader.

Reading this way creates no consumer, so a role that may read a stream needs no
right to create or change consumers, which would let it meddle with the durable
consumers the factory and executor depend on.

On a cluster a direct get may be answered by any replica, including a follower that
has not stored the newest message yet. A read that a decision rests on (the breaker,
the Governor's state) asks the stream's leader instead (`current=True`): see
`_ask_leader` for why its answer holds every write acknowledged before the read.
"""

from __future__ import annotations

import asyncio
import base64
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
# The same parser for the header block a leader read returns base64-encoded, so both reads
# present a message's headers alike.
_parse_header_lines = Client._parse_header_lines


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
    timeout: float | None = None,
    current: bool = False,
) -> AsyncIterator[StoredMessage]:
    """Every message of `stream` on `subject`, from `start_seq` (or the first stored at or
    after `start_time`) on, in order.

    `current`: from the stream's leader (see `last_message`), one request a message: for
    following a state a decision is made on, where a follower's missing tail would be read
    as "nothing new"."""
    if current:
        if start_time is not None:
            raise ValueError("a read from the stream's leader starts at a sequence, not at a time")
        async with aclosing(_read_at_leader(nc, stream, subject, start_seq, LEADER_WAIT_S if timeout is None else timeout)) as stored:
            async for m in stored:
                yield m
        return
    timeout = 5.0 if timeout is None else timeout
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


async def last_message(
    nc: Client, stream: str, subject: str, timeout: float | None = None, *, current: bool = False
) -> StoredMessage | None:
    """The newest message on one exact subject, or None.

    `current`: asked of the stream's leader (`_ask_leader`), so it holds every write acknowledged
    before this call, on a cluster too; waits through a leader election (LEADER_WAIT_S by
    default). Otherwise a direct get, which any replica may answer (5 s by default).

    A direct get is asked over an inbox of its own rather than `nc.request`, which takes any
    answer with a `Status: 503` header for "no responders", a header an agent may store with
    its message."""
    if current:
        found = await _ask_leader(nc, stream, {"last_by_subj": subject}, LEADER_WAIT_S if timeout is None else timeout)
        return None if found is None else _from_leader(stream, found)
    timeout = 5.0 if timeout is None else timeout
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


# -- reads from the stream's leader ------------------------------------------------------

#: How long a read from the leader waits for one: after a node dies, its streams have none
#: until the others notice and elect one (nats-server's raft election timeout, 4 to 9 s).
LEADER_WAIT_S = 15.0
#: How long one ask waits before asking again: during an election the followers that still
#: believe in the dead leader stay silent, and a new leader answers only a new ask.
LEADER_ASK_S = 1.0
# nats-server's error codes in a `$JS.API.STREAM.MSG.GET` answer.
_NO_MESSAGE = 10037  # 404 "no message found"
_UNAVAILABLE = 503  # JSClusterNotAvailErr (10008): the stream's group has no leader right now


async def _ask_leader(nc: Client, stream: str, request: dict, timeout: float) -> dict | None:
    """The stream leader's answer to one `$JS.API.STREAM.MSG.GET.<stream>` request: the stored
    message as JSON, or None when there is none.

    Why it is current (nats-server, server/jetstream_api.go `jsMsgGetRequest`): on a cluster
    only the stream's leader answers this API; a follower stays silent. A write is
    acknowledged once a majority has it in its log, raft elects only a replica whose log
    holds every such write, and a new leader reports itself leader (raft.go `Leader()`) only
    once it has applied its log up to where it stood when elected (`switchToLeader` sets
    `aflr`; `Processed` signals when it is reached). Left open: a leader cut off from the
    others (frozen, partitioned) believes it leads until it hears of a newer term, and may
    answer from its own store meanwhile; nats-server makes no quorum round for a read.

    While no leader answers (an election), a replica may answer 503 and the others say
    nothing: asked again every LEADER_ASK_S until `timeout`."""
    subject = f"$JS.API.STREAM.MSG.GET.{stream}"
    what = f"{request} from the leader of stream {stream}"
    payload = json.dumps(request).encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        while True:
            await nc.publish(subject, payload, reply=inbox)
            try:
                msg = await sub.next_msg(max(0.01, min(LEADER_ASK_S, deadline - loop.time())))
            except asyncio.TimeoutError:
                if loop.time() >= deadline:
                    raise ReadError(f"no answer reading {what} within {timeout:g} s "
                                    "(no leader elected, the bus away, or this role may not read that stream)") from None
                continue
            if (msg.headers or {}).get("Status") == "503":  # no responders: the request reached no JetStream
                if loop.time() >= deadline:
                    raise ReadError(f"reading {what}: no responders")
                await asyncio.sleep(NO_REPLICA_RETRY_S)
                continue
            try:
                answer = json.loads(msg.data)
            except ValueError:
                raise ReadError(f"reading {what}: unreadable answer {msg.data[:80]!r}") from None
            error = answer.get("error") if isinstance(answer, dict) else {"description": "not an object"}
            if error is None:
                if not isinstance(answer.get("message"), dict):
                    raise ReadError(f"reading {what}: an answer with neither a message nor an error {msg.data[:80]!r}")
                return answer["message"]
            if not isinstance(error, dict):
                error = {"description": repr(error)[:80]}
            if error.get("err_code") == _NO_MESSAGE:
                return None
            if error.get("code") == _UNAVAILABLE and loop.time() < deadline:
                await asyncio.sleep(NO_REPLICA_RETRY_S)
                continue
            raise ReadError(f"reading {what}: {error.get('description')} (code {error.get('code')}, err_code {error.get('err_code')})")
    finally:
        await sub.unsubscribe()


def _from_leader(stream: str, m: dict) -> StoredMessage:
    """A leader's JSON answer as the StoredMessage a direct get gives (ReadError if it is not one)."""
    try:
        return _parse_leader(stream, m)
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise ReadError(f"reading {stream}: an unreadable message from its leader ({exc!r})") from None


def _parse_leader(stream: str, m: dict) -> StoredMessage:
    """The answer holds only the stored header block; the Nats-Stream/-Subject/-Sequence/-Time-Stamp
    a direct get appends after it are filled from the answer's own fields, so no publisher's
    header can stand for them."""
    headers: dict[str, str] = {}
    if m.get("hdrs"):
        block = base64.b64decode(m["hdrs"])
        # Past the first line, "NATS/1.0" (a stored status there is a publisher's, not the server's).
        headers = _parse_header_lines(block.partition(b"\r\n")[2])
    seq, subject, at = int(m["seq"]), m["subject"], m["time"]
    headers.update({"Nats-Stream": stream, "Nats-Subject": subject, "Nats-Sequence": str(seq), "Nats-Time-Stamp": at})
    return StoredMessage(stream, subject, seq, at, base64.b64decode(m.get("data") or ""), headers)


async def _read_at_leader(nc: Client, stream: str, subject: str, start_seq: int, timeout: float) -> AsyncIterator[StoredMessage]:
    """`read_stream` from the stream's leader: one request a message (this API has no batches)."""
    seq = start_seq
    while (m := await _ask_leader(nc, stream, {"seq": seq, "next_by_subj": subject}, timeout)) is not None:
        stored = _from_leader(stream, m)
        yield stored
        seq = stored.seq + 1


async def newest_accepted(
    nc: Client, stream: str, subject: str, accept: Callable[[StoredMessage], T | None], *, window: int = 64, limit: int = 4096,
    current: bool = False,
) -> tuple[T | None, int]:
    """What `accept` makes of the newest message on `subject` it takes (None: refused),
    walking back past the ones it refuses (a forged state published after the genuine one
    must not hide it), and how many newer ones it refused. Reads back in growing windows,
    so the usual case is one short read; gives up (None) after `limit` refusals, so a
    flood costs a bounded read. `current`: every read from the stream's leader (see
    `last_message`), the walk back too: a follower could lack the newest genuine one."""
    last = await last_message(nc, stream, subject, current=current)
    if last is None:
        return None, 0
    if (taken := accept(last)) is not None:
        return taken, 0
    refused, upto, span = 1, last.seq - 1, window
    while upto >= 1 and refused < limit:
        start = max(1, upto - span + 1)
        best: T | None = None
        after_best = 0  # refused and newer than the best so far
        async with aclosing(read_stream(nc, stream, subject, start_seq=start, current=current)) as stored:
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
