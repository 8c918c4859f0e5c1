"""Moving a desk's streams from its one embedded nats-server to the embedded cluster
(`deskgate bus move --to cluster`, issue 17).

A desk keeps the kind of bus it started with (stack.py `_refuse_store_switch`): a cluster
started beside one server's store would begin with empty streams whose sequence numbers
restart at 1, and the factory would skip new directives as ones it has seen. This carries
every stream over instead, with JetStream's own snapshot and restore (what `nats stream
backup` and `restore` do), so each message keeps its sequence number, subject, headers and
timestamp, and each durable consumer its delivered and acknowledged positions:

  - `$JS.API.STREAM.SNAPSHOT.<stream>` (nats-server jetstream_api.go `jsStreamSnapshotRequest`,
    `streamSnapshot`): the answer holds the stream's config and state; the snapshot (the
    consumers included) then arrives in chunks on our deliver subject. Each full chunk names
    a `$JS.SNAPSHOT.ACK...` reply, answered for flow control; the last, partial one names
    none. An empty message ends it: no status, or `204`, when all was sent; any other status
    (`408 No Flow Response`, `500 <error>`) is the server giving up.
  - `$JS.API.STREAM.RESTORE.<stream>` (`jsStreamRestoreRequest`, `processStreamRestore`; on a
    cluster jetstream_cluster.go `jsClusteredStreamRestoreRequest`): asked with the config
    (here with `num_replicas` set for the cluster) and state, it answers with a
    `$JS.SNAPSHOT.RESTORE...` deliver subject. Each chunk is a request there, answered empty,
    or with an error; an empty request ends it and is answered with the new stream's info.
    On a cluster the receiving node then has the other replicas catch up and assigns the
    restored consumers, with their state, to raft groups of the stream's size.

Only the provisioner may use `$JS.API.>`, and even it may not publish the `$JS.SNAPSHOT.>`
acks and chunks. The running desk never needs them, so they are granted only in the
configs of the servers this move starts (`with_snapshot_rights`), not in bus/permissions.py.

Each moved stream is checked before anything is given up: the same last sequence, and
every message (sequence, subject, headers, time, data) read back from the cluster by
direct get identical to the old server's, and each durable at the same position. A stream
that fails stops the move, the cluster's partial stores are removed, and the one server's
store stays where it was. After a move the old store is renamed, never deleted.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nats.errors
from nats.aio.client import Client

from deskgate.bus.cluster import Cluster, NodePorts, node_name, save_ports, saved_ports
from deskgate.bus.connect import connect_with
from deskgate.bus.credentials import RoleCredentials, active_agents, ensure_credentials
from deskgate.bus.permissions import inbox_prefix
from deskgate.bus.reader import read_stream
from deskgate.bus.server import BusError, NatsServer, config_text, free_port, launch, render_config
from deskgate.bus.subjects import Role
from deskgate.bus.tls import DeskTLS, client_tls_block, ensure_desk_tls, read_ca
from deskgate.config import Mission
from deskgate.paths import DataDir, write_private
from deskgate.procs import is_desk_process

# What the provisioner may publish during a move, beyond `$JS.API.>`: a snapshot's flow-control
# acks, and a restore's chunks.
SNAPSHOT_SUBJECTS = ("$JS.SNAPSHOT.ACK.>", "$JS.SNAPSHOT.RESTORE.>")
CHUNK_SIZE = 128 * 1024  # nats-server's default; at most 1 MiB, and under max_payload
CHUNK_WAIT_S = 60.0  # for the next snapshot chunk, or a restore's answer to one
FINISH_WAIT_S = 600.0  # for a restore to be stored once every chunk is in
NO_INTEREST_WAIT_S = 3.0  # for a restore's chunk subject to be known on the node we talk to
SETTLE_WAIT_S = 60.0  # for a restored stream's replicas and consumers to be in place
# Headers a direct get adds to each answer that depend on the read, not on the message.
READ_HEADERS = frozenset({"Nats-Num-Pending", "Nats-Last-Sequence", "Nats-UpTo-Sequence"})
RECORD = "move.json"  # in <data_dir>/bus: what the last move did, for the operator


class MoveError(BusError):
    pass


Progress = Callable[[str, str, int, "int | None"], None]
"""Told (stream, phase, bytes done, bytes in all or None) as a stream moves; phases are
snapshot, restore, verify and done."""


# -- the protocol ---------------------------------------------------------------------------


async def api(nc: Client, subject: str, body: dict, what: str, timeout: float = 10.0) -> dict:
    """One JetStream API request; its JSON answer, or MoveError naming `what` and the server's error."""
    try:
        msg = await nc.request(subject, json.dumps(body).encode(), timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - timeouts, no responders: all say the same to the operator
        raise MoveError(f"{what}: no answer from the bus ({type(exc).__name__}: {exc})") from None
    try:
        answer = json.loads(msg.data)
    except ValueError:
        raise MoveError(f"{what}: unreadable answer {msg.data[:80]!r}") from None
    _raise_error(answer, what)
    return answer


def _raise_error(answer: dict, what: str) -> None:
    error = answer.get("error")
    if error:
        raise MoveError(f"{what}: {error.get('description')} (code {error.get('code')}, err_code {error.get('err_code')})")


async def stream_names(nc: Client) -> list[str]:
    """Every stream the desk's account holds, KV buckets' (KV_<bucket>) among them."""
    names: list[str] = []
    while True:
        page = await api(nc, "$JS.API.STREAM.NAMES", {"offset": len(names)}, "listing the streams")
        got = page.get("streams") or []
        names += got
        if not got or len(names) >= page.get("total", 0):
            return sorted(names)


async def stream_info(nc: Client, stream: str) -> dict:
    return await api(nc, f"$JS.API.STREAM.INFO.{stream}", {}, f"stream {stream}'s info")


async def consumer_infos(nc: Client, stream: str) -> dict[str, dict]:
    """The stream's consumers' infos, by name."""
    out: dict[str, dict] = {}
    while True:
        page = await api(nc, f"$JS.API.CONSUMER.LIST.{stream}", {"offset": len(out)}, f"listing stream {stream}'s consumers")
        got = page.get("consumers") or []
        out.update({c["name"]: c for c in got})
        if not got or len(out) >= page.get("total", 0):
            return out


@dataclass
class Snapshot:
    """One stream's snapshot: what the server said of it, and where its bytes are."""

    stream: str
    config: dict
    state: dict
    path: Path
    size: int = 0


async def snapshot(nc: Client, stream: str, path: Path, *, chunk_size: int = CHUNK_SIZE, window_size: int | None = None,
                   progress: Progress | None = None) -> Snapshot:
    """Snapshot `stream`, its consumers included, into the file `path`. `window_size`: how many
    bytes the server sends ahead of our acks (its default, 8 MiB, when None)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)  # before asking: the server sends to it at once
    request = {"deliver_subject": inbox, "chunk_size": chunk_size}
    if window_size is not None:
        request["window_size"] = window_size
    try:
        answer = await api(nc, f"$JS.API.STREAM.SNAPSHOT.{stream}", request, f"snapshot of stream {stream}", timeout=CHUNK_WAIT_S)
        snap = Snapshot(stream, answer["config"], answer["state"], path)
        with open(path, "wb") as fh:
            while True:
                try:
                    msg = await sub.next_msg(CHUNK_WAIT_S)
                except asyncio.TimeoutError:
                    raise MoveError(f"snapshot of stream {stream}: no chunk from the server in {CHUNK_WAIT_S:.0f}s "
                                    f"after {snap.size} bytes") from None
                if not msg.data:  # the end: the server's status says how it went
                    status = (msg.headers or {}).get("Status")
                    if status not in (None, "204"):
                        raise MoveError(f"snapshot of stream {stream}: the server stopped it with status {status} "
                                        f"{(msg.headers or {}).get('Description', '')}".rstrip())
                    break
                fh.write(msg.data)
                snap.size += len(msg.data)
                if msg.reply:  # flow control: the server sends more as chunks are acknowledged
                    await nc.publish(msg.reply, b"")
                if progress:
                    progress(stream, "snapshot", snap.size, None)
    finally:
        await sub.unsubscribe()
    return snap


async def restore(nc: Client, snap: Snapshot, *, replicas: int, chunk_size: int = CHUNK_SIZE,
                  progress: Progress | None = None) -> dict:
    """Restore a snapshot as a new stream of the same name with `replicas` copies; its info."""
    stream = snap.stream
    config = {**snap.config, "num_replicas": replicas}
    answer = await api(nc, f"$JS.API.STREAM.RESTORE.{stream}", {"config": config, "state": snap.state},
                       f"restore of stream {stream}", timeout=CHUNK_WAIT_S)
    deliver = answer.get("deliver_subject")
    if not deliver:
        raise MoveError(f"restore of stream {stream}: the server named no subject to send the snapshot to ({answer})")
    sent = 0
    with open(snap.path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            reply = await _send(nc, deliver, chunk, CHUNK_WAIT_S, f"restore of stream {stream}, after {sent} of {snap.size} bytes")
            if reply.data:  # an empty answer takes the chunk; anything else is an error
                _raise_error(_json(reply.data, f"restore of stream {stream}"), f"restore of stream {stream}")
            sent += len(chunk)
            if progress:
                progress(stream, "restore", sent, snap.size)
    done = await _send(nc, deliver, b"", FINISH_WAIT_S, f"restore of stream {stream}, once every chunk was sent")
    info = _json(done.data, f"restore of stream {stream}")
    _raise_error(info, f"restore of stream {stream}")
    return info


async def _send(nc: Client, subject: str, data: bytes, timeout: float, what: str):
    """A request to a restore's deliver subject. On a cluster the node restoring may have
    answered before the node we are connected to has heard of its subscription: "no
    responders" (nothing was delivered) is asked again for a moment, inside the 5 s the
    server waits for the first chunk (`processStreamRestore`'s activity timer)."""
    deadline = time.monotonic() + NO_INTEREST_WAIT_S
    while True:
        try:
            return await nc.request(subject, data, timeout=timeout)
        except nats.errors.NoRespondersError:
            if time.monotonic() > deadline:
                raise MoveError(f"{what}: no server takes the restore's chunks at {subject}") from None
            await asyncio.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - a timeout, a closed connection: the restore is lost either way
            raise MoveError(f"{what}: no answer ({type(exc).__name__}: {exc})") from None


def _json(data: bytes, what: str) -> dict:
    try:
        return json.loads(data)
    except ValueError:
        raise MoveError(f"{what}: unreadable answer {data[:80]!r}") from None


async def wait_settled(nc: Client, stream: str, *, replicas: int, consumers: list[str], timeout: float = SETTLE_WAIT_S) -> dict:
    """Until the restored stream has a leader and every replica is current, and each restored
    consumer is assigned (on a cluster they are given raft groups after the restore, so a read
    before would miss messages on a follower, and find no consumer); the stream's info."""
    deadline = time.monotonic() + timeout
    problem = ""
    while True:
        try:
            info = await stream_info(nc, stream)
            cluster = info.get("cluster") or {}
            peers = cluster.get("replicas") or []
            missing = [c for c in consumers if not await _consumer_assigned(nc, stream, c, replicas)]
            if replicas > 1 and not cluster.get("leader"):
                problem = "no leader yet"
            elif len(peers) + 1 < replicas or not all(p.get("current") and not p.get("lag") for p in peers):
                problem = f"replicas not caught up ({[(p.get('name'), p.get('current'), p.get('lag')) for p in peers]})"
            elif missing:
                problem = f"consumers not assigned yet: {', '.join(missing)}"
            else:
                return info
        except MoveError as exc:
            problem = str(exc)
        if time.monotonic() > deadline:
            raise MoveError(f"stream {stream} was restored but did not settle on the cluster in {timeout:.0f}s: {problem}")
        await asyncio.sleep(0.2)


async def _consumer_assigned(nc: Client, stream: str, name: str, replicas: int) -> bool:
    try:
        info = await api(nc, f"$JS.API.CONSUMER.INFO.{stream}.{name}", {}, f"consumer {stream}/{name}")
    except MoveError:
        return False
    cluster = info.get("cluster") or {}
    return replicas == 1 or (bool(cluster.get("leader")) and len(cluster.get("replicas") or []) + 1 >= _consumer_replicas(info, replicas))


def _consumer_replicas(info: dict, stream_replicas: int) -> int:
    """A consumer's copies: its own `num_replicas`, or (0) the stream's."""
    return (info.get("config") or {}).get("num_replicas") or stream_replicas


# -- verifying --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One stored message, as compared: its sequence, when it was stored, and a digest of the rest."""

    seq: int
    time: datetime
    digest: str


async def stream_entries(nc: Client, stream: str, *, direct: bool = True) -> list[Entry]:
    """Every message of `stream`, read back (by direct get, or from its leader when the stream
    does not allow direct gets), each as an Entry: subject, sequence, headers, time and data digested."""
    out: list[Entry] = []
    async with aclosing(read_stream(nc, stream, ">", batch=256, timeout=30.0, current=not direct)) as stored:
        async for m in stored:
            h = hashlib.sha256()
            for part in (m.subject.encode(), str(m.seq).encode(), m.time.encode(),
                         json.dumps(sorted((k, v) for k, v in m.headers.items() if k not in READ_HEADERS)).encode(), m.data):
                h.update(len(part).to_bytes(8, "big"))
                h.update(part)
            out.append(Entry(m.seq, _parse_time(m.time), h.hexdigest()))
    return out


def _parse_time(text: str) -> datetime:
    """nats-server's RFC 3339 time with nanoseconds, to the microsecond."""
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
    except ValueError:
        # Never "very old": that would excuse a missing message as expired.
        raise MoveError(f"a stored message's time {text!r} cannot be read; nothing was moved") from None


def compare_entries(stream: str, old: list[Entry], new: list[Entry], *, max_age_s: float, now: datetime) -> str | None:
    """What differs between the old server's messages and the cluster's, or None.

    A message on one side only is a difference, except one past the stream's age limit: a
    stream left stopped for long expires its oldest messages on either server as they start,
    and JetStream keeps the time each message was stored, so both drop the same ones."""
    olds, news = {e.seq: e for e in old}, {e.seq: e for e in new}
    cutoff = now - timedelta(seconds=max_age_s) if max_age_s > 0 else None
    for seq in sorted(olds.keys() | news.keys()):
        a, b = olds.get(seq), news.get(seq)
        if a is not None and b is not None:
            if a.digest != b.digest:
                return f"message {seq} differs (subject, headers, time or data)"
            continue
        e = a or b
        if cutoff is None or e.time > cutoff:
            return f"message {seq} is {'missing from the cluster' if b is None else 'on the cluster only'}"
    return None


def digest_of(entries: list[Entry]) -> str:
    """One digest for a stream's messages, for the record."""
    h = hashlib.sha256()
    for e in entries:
        h.update(e.digest.encode())
    return h.hexdigest()


CONSUMER_POSITION = (("delivered", "stream_seq"), ("delivered", "consumer_seq"), ("ack_floor", "stream_seq"),
                     ("ack_floor", "consumer_seq"), ("num_ack_pending",), ("num_pending",))


def _position(info: dict) -> dict[str, int]:
    out = {}
    for path in CONSUMER_POSITION:
        value = info
        for key in path:
            value = (value or {}).get(key)
        out[".".join(path)] = int(value or 0)
    return out


@dataclass
class MovedStream:
    name: str
    messages: int
    first_seq: int
    last_seq: int
    snapshot_bytes: int
    replicas: int
    digest: str
    consumers: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> position


async def verify(old_nc: Client, new_nc: Client, stream: str, *, replicas: int, old_consumers: dict[str, dict]) -> MovedStream:
    """Check the moved stream against the old one; MoveError naming what differs."""
    old_info, new_info = await stream_info(old_nc, stream), await stream_info(new_nc, stream)
    old_state, new_state = old_info["state"], new_info["state"]
    if new_info["config"].get("num_replicas", 1) != replicas:
        raise MoveError(f"stream {stream} has {new_info['config'].get('num_replicas')} replicas on the cluster, not {replicas}")
    if old_state.get("last_seq") != new_state.get("last_seq"):
        raise MoveError(f"stream {stream}: last sequence {new_state.get('last_seq')} on the cluster, {old_state.get('last_seq')} before")
    direct = bool(old_info["config"].get("allow_direct"))
    old_entries = await stream_entries(old_nc, stream, direct=direct)
    new_entries = await stream_entries(new_nc, stream, direct=direct)
    max_age_s = (old_info["config"].get("max_age") or 0) / 1e9
    problem = compare_entries(stream, old_entries, new_entries, max_age_s=max_age_s, now=datetime.now(timezone.utc))
    if problem:
        raise MoveError(f"stream {stream}: {problem}")
    positions = {}
    new_consumers = await consumer_infos(new_nc, stream)
    for name, old in old_consumers.items():
        new = new_consumers.get(name)
        if new is None:
            raise MoveError(f"stream {stream}: consumer {name} did not come along")
        if _position(new) != _position(old):
            raise MoveError(f"stream {stream}: consumer {name} is at {_position(new)} on the cluster, {_position(old)} before")
        cluster = new.get("cluster") or {}
        want = _consumer_replicas(new, replicas)
        if want != replicas or (replicas > 1 and len(cluster.get("replicas") or []) + 1 != replicas):
            raise MoveError(f"stream {stream}: consumer {name} has {len(cluster.get('replicas') or []) + 1} copies, not {replicas}")
        positions[name] = _position(new)
    return MovedStream(stream, new_state.get("messages", 0), new_state.get("first_seq", 0), new_state.get("last_seq", 0),
                       0, replicas, digest_of(new_entries), positions)


async def move_stream(old_nc: Client, new_nc: Client, stream: str, workdir: Path, *, replicas: int,
                      progress: Progress | None = None) -> MovedStream:
    """Snapshot one stream from the old server, restore it on the cluster, and verify it there."""
    old_consumers = await consumer_infos(old_nc, stream)
    snap = await snapshot(old_nc, stream, workdir / f"{stream}.snapshot", progress=progress)
    if snap.config.get("storage", "file") != "file":
        raise MoveError(f"stream {stream} is kept in memory: it has nothing on disk to move")
    for name, info in old_consumers.items():
        if (info.get("config") or {}).get("num_replicas") not in (None, 0, replicas):
            raise MoveError(f"stream {stream}: consumer {name} asks for {info['config']['num_replicas']} replicas itself; "
                            "only consumers that follow their stream's count are moved")
    await restore(new_nc, snap, replicas=replicas, progress=progress)
    durable = [n for n, info in old_consumers.items() if (info.get("config") or {}).get("durable_name")]
    await wait_settled(new_nc, stream, replicas=replicas, consumers=durable)
    if progress:
        progress(stream, "verify", snap.size, snap.size)
    moved = await verify(old_nc, new_nc, stream, replicas=replicas, old_consumers={n: old_consumers[n] for n in durable})
    moved.snapshot_bytes = snap.size
    snap.path.unlink(missing_ok=True)
    if progress:
        progress(stream, "done", snap.size, snap.size)
    return moved


# -- the servers ------------------------------------------------------------------------------


def with_snapshot_rights(text: str, provisioner: RoleCredentials) -> str:
    """A config `render_config` wrote, its provisioner also allowed to publish SNAPSHOT_SUBJECTS."""
    conf = json.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    users = [u for account in conf["accounts"].values() for u in account.get("users", []) if u.get("user") == provisioner.user]
    if len(users) != 1:
        raise MoveError(f"the bus config has {len(users)} provisioner users, not one; it is generated: see bus/accounts.py")
    allow = users[0]["permissions"]["publish"]["allow"]
    allow += [s for s in SNAPSHOT_SUBJECTS if s not in allow]
    return config_text(conf)


def start_one_server(data_dir: DataDir, creds: dict[Role, RoleCredentials], *, host: str, max_payload: int,
                     sync_interval: str, tls: DeskTLS | None) -> NatsServer:
    """The desk's one nats-server on its own store, as `start_nats` starts it, on free ports
    (no client is told of them), the provisioner able to take snapshots."""
    port, monitor = free_port(host), free_port(host)
    text = render_config(creds, active_agents(data_dir), host=host, port=port, monitor_port=monitor, store_dir=data_dir.jetstream,
                         max_payload=max_payload, sync_interval=sync_interval,
                         tls=client_tls_block(tls.cert, tls.key) if tls is not None else None)
    url = f"{'tls' if tls is not None else 'nats'}://{host}:{port}"
    # Its own config file, not the desk's nats.conf: the snapshot rights never sit where the desk's server reads.
    return launch(data_dir.bus / "nats-move.conf", data_dir.nats_log, with_snapshot_rights(text, creds[Role.PROVISIONER]), url,
                  f"http://{host}:{monitor}", 20.0)


class _MoveCluster(Cluster):
    """The desk's cluster as `start_cluster` starts it, the provisioner able to restore snapshots."""

    def config(self, i: int) -> str:
        return with_snapshot_rights(super().config(i), self.creds[Role.PROVISIONER])


def start_move_cluster(data_dir: DataDir, creds: dict[Role, RoleCredentials], *, nodes: int, host: str, max_payload: int,
                       sync_interval: str, tls: DeskTLS | None, ready_timeout: float = 30.0) -> Cluster:
    """`start_cluster`'s nodes, on the ports `deskgate up` will use next (cluster-ports.json)."""
    ports = saved_ports(data_dir, nodes, host) or [NodePorts(free_port(host), free_port(host), free_port(host)) for _ in range(nodes)]
    save_ports(data_dir, ports)
    cluster = _MoveCluster(data_dir, creds, active_agents(data_dir), host, ports, max_payload, sync_interval,
                           nodes=[None] * nodes, tls=tls)
    try:
        for i in range(nodes):
            cluster.start_node(i, ready_timeout)
        cluster.wait_formed(ready_timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _provisioner_kwargs(creds: dict[Role, RoleCredentials], servers: list[str], tls: DeskTLS | None) -> dict:
    c = creds[Role.PROVISIONER]
    kwargs = {"servers": servers, "user": c.user, "password": c.password, "inbox_prefix": inbox_prefix(Role.PROVISIONER),
              "name": "deskgate-provisioner-move"}
    if tls is not None:
        kwargs |= {"tls_handshake_first": True, "tls_ca": read_ca(tls.ca_cert)}
    return kwargs


# -- the move ----------------------------------------------------------------------------------


@contextmanager
def desk_stopped(data_dir: DataDir) -> Iterator[None]:
    """Hold the lock `deskgate up` holds while the desk runs, for the whole move: a running desk's
    streams are not moved from under its services, and no desk starts while they move."""
    data_dir.root.mkdir(parents=True, exist_ok=True)
    fh = open(data_dir.root / "up.lock", "a")  # "a": a running `up`'s pid in it is not wiped by looking
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MoveError(f"the desk in {data_dir.root} is running (`deskgate up` holds {data_dir.root / 'up.lock'}); "
                            "stop it first: its streams are moved with the desk stopped") from None
        try:
            run = json.loads(data_dir.run_file.read_text())
        except (FileNotFoundError, ValueError):
            run = {}
        nats = run.get("nats", {}) if isinstance(run, dict) else {}
        left = [p for p in [nats.get("pid"), *nats.get("nodes", []), *run.get("services", {}).values()]
                if is_desk_process(p) and p != os.getpid()] if isinstance(run, dict) else []
        if left:
            raise MoveError(f"processes of an earlier desk on {data_dir.root} are still running (pids {', '.join(map(str, left))}); "
                            "stop them first: they would share the store being moved")
        yield
    finally:
        fh.close()


def _has_files(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def node_stores(data_dir: DataDir, nodes: int) -> list[Path]:
    return [data_dir.bus / node_name(i) / "jetstream" for i in range(nodes)]


def check_stores(data_dir: DataDir, nodes: int) -> None:
    """One server's store to move, and no cluster store to overwrite; MoveError saying which is not so."""
    kept = [p for p in sorted(data_dir.bus.glob("deskgate-n*/jetstream")) if _has_files(p)]
    if not _has_files(data_dir.jetstream):
        if kept:
            raise MoveError(f"this desk's streams are on a cluster already ({', '.join(map(str, kept))}): nothing to move")
        raise MoveError(f"this desk has no streams on one server to move ({data_dir.jetstream} is empty or missing); "
                        "a new desk simply starts as a cluster (`deskgate up --cluster 3`)")
    if kept:
        raise MoveError(f"this desk has both one server's store ({data_dir.jetstream}) and cluster stores ({', '.join(map(str, kept))}), "
                        "perhaps from a move cut short; the one server's store is the desk's: move the cluster stores "
                        "aside, then move again")


def retire_old_store(data_dir: DataDir, now: datetime) -> Path:
    """Rename the one server's store out of the way (never deleted): from now on the desk's bus is the cluster."""
    target = data_dir.bus / f"jetstream.moved-to-cluster-{now:%Y%m%dT%H%M%SZ}"
    n = 1
    while target.exists():
        n += 1
        target = data_dir.bus / f"jetstream.moved-to-cluster-{now:%Y%m%dT%H%M%SZ}-{n}"
    data_dir.jetstream.rename(target)
    return target


@dataclass
class MoveReport:
    nodes: int
    replicas: int
    streams: list[MovedStream]
    old_store: Path
    at: str


def move_to_cluster(data_dir: DataDir, mission: Mission, *, nodes: int = 3, progress: Progress | None = None,
                    on_streams: Callable[[list[str]], None] | None = None) -> MoveReport:
    """Move every stream of the desk's one server to a `nodes`-node cluster on this machine (the
    desk stopped). `on_streams` is told the streams found, before the first moves."""
    from pydantic import ValidationError

    from deskgate.config import BusSettings

    bus = mission.bus
    if bus.url:
        raise MoveError("bus.url names an external bus: its streams are its operator's to move (`nats stream backup`/`restore`)")
    try:
        target = BusSettings.model_validate({**bus.model_dump(), "cluster": nodes})
    except ValidationError as exc:
        raise MoveError(f"a {nodes}-node cluster: {exc.errors(include_url=False)[0]['msg']}") from None
    if nodes < 3:
        raise MoveError(f"a cluster has 3, 5 or 7 nodes, not {nodes}")
    replicas = target.stream_replicas()
    with desk_stopped(data_dir):
        check_stores(data_dir, nodes)
        creds = ensure_credentials(data_dir)
        tls = ensure_desk_tls(data_dir, bus.host, bus.tls_names) if bus.tls else None
        old: NatsServer | None = None
        cluster: Cluster | None = None
        try:
            old = start_one_server(data_dir, creds, host=bus.host, max_payload=bus.max_payload_bytes,
                                   sync_interval=bus.sync_interval, tls=tls)
            cluster = start_move_cluster(data_dir, creds, nodes=nodes, host=bus.host, max_payload=bus.max_payload_bytes,
                                         sync_interval=bus.sync_interval, tls=tls)
            with tempfile.TemporaryDirectory(prefix="move-", dir=data_dir.bus) as work:
                moved = _run(_move_all(_provisioner_kwargs(creds, [old.url], tls), _provisioner_kwargs(creds, cluster.urls, tls),
                                       Path(work), replicas, progress, on_streams))
        except BaseException:
            _stop(old, cluster)
            for store in node_stores(data_dir, nodes):  # the partial copy; the one server's store is untouched
                shutil.rmtree(store, ignore_errors=True)
            raise
        _stop(old, cluster)
        now = datetime.now(timezone.utc)
        report = MoveReport(nodes, replicas, moved, retire_old_store(data_dir, now), now.isoformat())
        write_private(data_dir.bus / RECORD, json.dumps({"from": "one nats-server", "to": f"a {nodes}-node cluster", **asdict(report),
                                                         "old_store": str(report.old_store)}, indent=2))
        return report


async def _move_all(old_kwargs: dict, new_kwargs: dict, workdir: Path, replicas: int, progress: Progress | None,
                    on_streams: Callable[[list[str]], None] | None) -> list[MovedStream]:
    old_nc, _ = await connect_with(old_kwargs, reconnect=False)
    try:
        new_nc, _ = await connect_with(new_kwargs, reconnect=False)
        try:
            names = await stream_names(old_nc)
            if on_streams:
                on_streams(names)
            return [await move_stream(old_nc, new_nc, name, workdir, replicas=replicas, progress=progress) for name in names]
        finally:
            await new_nc.close()
    finally:
        await old_nc.close()


def _run(coro):
    """Run a coroutine to its end from sync code, even from a thread whose loop is running (a test's).
    Not waited for when interrupted (Ctrl-C): the servers are stopped next, which ends it."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(asyncio.run, coro).result()
    finally:
        pool.shutdown(wait=False)


def _stop(old: NatsServer | None, cluster: Cluster | None) -> None:
    if old is not None:
        old.stop()
    if cluster is not None:
        cluster.stop()
