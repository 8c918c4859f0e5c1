"""`deskgate bus move --to cluster`: a desk's streams carried from its one nats-server to a 3-node
cluster with JetStream's snapshot and restore (bus/move.py), on real nats-server processes.

Every message keeps its sequence number and bytes, the breaker stays tripped, each durable resumes
where it stopped, and `deskgate up` as a cluster goes on from the next sequence number. A running
desk is not moved; a stream that fails its check stops the move and leaves the old store in use."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from conftest import P, add_test_people, directive, publish_bar, raw, signed_headers, wait_for
from test_cli import run
from test_crash import counts, crash_mission

from deskgate.agents.submit import AgentClient
from deskgate.approvals.client import CommandCenter
from deskgate.audit.signing import Kind
from deskgate.bus import move
from deskgate.bus import subjects as S
from deskgate.bus.breaker import read_key, write_key
from deskgate.bus.connect import connect_as, connect_with
from deskgate.bus.credentials import ensure_credentials
from deskgate.bus.move import READ_HEADERS, Entry, MoveError, compare_entries, move_to_cluster, stream_names
from deskgate.bus.reader import last_message, read_stream
from deskgate.bus.server import render_config
from deskgate.bus.subjects import Role
from deskgate.domain.base import utcnow
from deskgate.domain.breaker import BreakerState, BreakerTrip
from deskgate.paths import DataDir
from deskgate.stack import Stack, StackError

pytestmark = pytest.mark.slow

TRIP = BreakerTrip(trip_id="t-before-move", at=utcnow(), reason="drawdown", drawdown_pct=16.0, limit_pct=15.0,
                   equity_usd=84.0, peak_equity_usd=100.0).to_bytes()


def as_cluster(mission, nodes: int = 3):
    return mission.model_copy(update={"bus": mission.bus.model_copy(update={"cluster": nodes})})


async def publish_directives(data_dir: DataDir, *ids: str) -> None:
    """Directives stored while no factory runs, signed by the desk's agent, as it publishes them."""
    agent, _ = await connect_as(data_dir, Role.AGENT, reconnect=False)
    try:
        for did in ids:
            p = raw(directive(did, notional_usd=100))
            await agent.jetstream().publish(S.directive_subject("BTC"), p,
                                            headers={**signed_headers(data_dir, "agent:desk", Kind.DIRECTIVE, p), "Nats-Msg-Id": did})
    finally:
        await agent.close()


async def trip_breaker(data_dir: DataDir) -> int:
    """A trip in the bucket, written with the factory's rights; its revision."""
    nc, _ = await connect_as(data_dir, Role.FACTORY, reconnect=False)
    try:
        return await write_key(nc.jetstream(), S.BREAKER_TRIP_KEY, TRIP)
    finally:
        await nc.close()


async def contents(data_dir: DataDir) -> dict[str, list[tuple]]:
    """Every stream's every message as the provisioner reads it back: sequence, subject, time, headers, data."""
    nc, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
    try:
        out = {}
        for name in await stream_names(nc):
            out[name] = [(m.seq, m.subject, m.time, sorted((k, v) for k, v in m.headers.items() if k not in READ_HEADERS), m.data)
                         async for m in read_stream(nc, name)]
        return out
    finally:
        await nc.close()


async def js_info(data_dir: DataDir, subject: str) -> dict:
    nc, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
    try:
        return json.loads((await nc.request(subject, b"{}", timeout=5)).data)
    finally:
        await nc.close()


def kept_stores(data_dir: DataDir) -> list:
    return [p for p in data_dir.bus.glob("deskgate-n*/jetstream") if any(p.iterdir())]


async def test_a_one_server_desk_moves_to_a_cluster_with_every_message_its_breaker_and_its_durables(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    add_test_people(data_dir)
    single, cluster = crash_mission(), as_cluster(crash_mission())

    # One server: two directives staged by the real factory, then the breaker tripped.
    stack = Stack(single, data_dir, services=("factory",)).start()
    try:
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await md.close()
        agent = await AgentClient.connect(data_dir)
        verdicts = await agent.submit_payloads([raw(directive("before-1", notional_usd=100)), raw(directive("before-2", notional_usd=100))],
                                               wait=20)
        await agent.close()
        assert [(v.decision, v.seq) for v in verdicts] == [("staged", 1), ("staged", 2)]
        trip_revision = await trip_breaker(data_dir)
        cc = await CommandCenter.connect(data_dir)
        await wait_for(lambda: _state(cc, "tripped"))
        await cc.close()
    finally:
        stack.stop()
    # Two more directives while the factory is stopped: its durable is partly consumed.
    stack = Stack(single, data_dir, services=()).start()
    try:
        await publish_directives(data_dir, "while-stopped-1", "while-stopped-2")
        durable = await js_info(data_dir, "$JS.API.CONSUMER.INFO.DIRECTIVES.factory_directives")
        assert (durable["ack_floor"]["stream_seq"], durable["num_pending"]) == (2, 2)
        before = await contents(data_dir)
    finally:
        stack.stop()
    assert {"DIRECTIVES", "APPROVALS", "STATUS", "KV_deskgate_breaker", "KV_deskgate_leases"} <= set(before)

    seen: list[tuple[str, str]] = []
    report = await asyncio.to_thread(move_to_cluster, data_dir, single, nodes=3,
                                     progress=lambda stream, phase, done, total: seen.append((stream, phase)))

    assert report.nodes == 3 and report.replicas == 3 and [s.name for s in report.streams] == sorted(before)
    assert {(s, "done") for s in before} <= set(seen)
    moved = {s.name: s for s in report.streams}
    assert (moved["DIRECTIVES"].first_seq, moved["DIRECTIVES"].last_seq, moved["DIRECTIVES"].messages) == (1, 4, 4)
    assert moved["DIRECTIVES"].consumers["factory_directives"]["ack_floor.stream_seq"] == 2
    # The old store is kept, renamed; the desk is now a cluster desk.
    assert not data_dir.jetstream.exists() and report.old_store.parent == data_dir.bus and any(report.old_store.iterdir())
    assert len(kept_stores(data_dir)) == 3
    assert json.loads((data_dir.bus / "move.json").read_text())["old_store"] == str(report.old_store)
    with pytest.raises(StackError, match="kept by a cluster .* moving a cluster's streams back to one server is not built"):
        Stack(single, data_dir, services=()).start()

    # As a cluster: every stream R3, every message as it was, the breaker tripped, the durable where it stopped.
    stack = Stack(cluster, data_dir, services=()).start()
    try:
        assert stack.provisioned.created == [] and stack.provisioned.updated == []  # nothing made anew
        for name in before:
            info = await js_info(data_dir, f"$JS.API.STREAM.INFO.{name}")
            assert info["config"]["num_replicas"] == 3 and len(info["cluster"]["replicas"]) == 2, name
        assert await contents(data_dir) == before
        durable = await js_info(data_dir, "$JS.API.CONSUMER.INFO.DIRECTIVES.factory_directives")
        assert (durable["ack_floor"]["stream_seq"], durable["delivered"]["stream_seq"], durable["num_pending"]) == (2, 2, 2)
        assert len(durable["cluster"]["replicas"]) == 2  # R3, as its stream
        cc = await CommandCenter.connect(data_dir)
        try:
            assert (await cc.breaker()).state == "tripped"
            trip = await read_key(cc.nc, S.BREAKER_TRIP_KEY)
            assert trip.revision == trip_revision and trip.value == TRIP
        finally:
            await cc.close()
    finally:
        stack.stop()

    # `deskgate up` as a cluster: the factory resumes its durable after the second directive...
    stack = Stack(cluster, data_dir, services=("factory",)).start()
    try:
        await wait_for(lambda: counts(data_dir)[0] == 4, timeout=30)
        cc = await CommandCenter.connect(data_dir)
        try:
            verdicts = {json.loads(m.data)["directive_id"]: json.loads(m.data)
                        async for m in read_stream(cc.nc, "STATUS", "factory.status.policy.>")}
            assert sorted(verdicts) == ["before-1", "before-2", "while-stopped-1", "while-stopped-2"]  # none judged twice
            assert [(verdicts[d]["seq"], verdicts[d]["primary_reason"]) for d in ("while-stopped-1", "while-stopped-2")] == \
                [(3, "breaker"), (4, "breaker")]  # the breaker moved tripped, and the factory heeds it
            # ...and once a principal resets it, a new directive is staged with the next sequence number.
            await cc.reset_breaker(P["alice"], "moved to the cluster; reviewed")
            await wait_for(lambda: _announced(cc, "armed"), timeout=20)
        finally:
            await cc.close()
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await md.close()
        agent = await AgentClient.connect(data_dir)
        (v,) = await agent.submit_payloads([raw(directive("after-move", notional_usd=100))], wait=20)
        await agent.close()
        assert v is not None and (v.decision, v.seq) == ("staged", 5)
    finally:
        stack.stop()


async def _state(cc: CommandCenter, state: str) -> bool:
    return (await cc.breaker()).state == state


async def _announced(cc: CommandCenter, state: str) -> bool:
    """The factory's own word on its breaker (it says so once it has applied a change)."""
    m = await last_message(cc.nc, "STATUS", S.BREAKER_STATUS_SUBJECT)
    return m is not None and BreakerState.model_validate_json(m.data).state == state


async def test_a_running_desk_is_not_moved_and_the_refusals_name_the_way(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    single = crash_mission()
    assert "bus" in run("bus", "--help").stdout.decode()
    with pytest.raises(MoveError, match="no streams on one server to move"):
        move_to_cluster(data_dir, single)
    stack = Stack(single, data_dir, services=()).start()
    try:
        await publish_directives(data_dir, "d1")
        refused = run("bus", "move", "--to", "cluster", "--data-dir", str(data_dir.root), cwd=tmp_path, check=False)
        said = " ".join(refused.stderr.decode().split())  # as one line: the console wraps it
        assert refused.returncode == 2 and "is running" in said and "stop it first: its streams are moved with the desk stopped" in said
        with pytest.raises(MoveError, match="is running"):
            move_to_cluster(data_dir, single)
    finally:
        stack.stop()
    assert not kept_stores(data_dir) and any(data_dir.jetstream.iterdir())  # nothing started, nothing moved
    with pytest.raises(StackError, match=r"move them first with `deskgate bus move --to cluster --nodes 3`"):
        Stack(as_cluster(single), data_dir, services=()).start()
    back = run("bus", "move", "--to", "one-server", "--data-dir", str(data_dir.root), cwd=tmp_path, check=False)
    assert back.returncode == 2 and "back to one nats-server is not built yet" in " ".join(back.stderr.decode().split())
    with pytest.raises(MoveError, match="external bus"):
        move_to_cluster(data_dir, single.model_copy(update={"bus": single.bus.model_copy(update={"url": "nats://10.0.0.1:4222"})}))


async def test_a_stream_that_fails_its_check_stops_the_move_and_the_old_store_stays_in_use(tmp_path, monkeypatch):
    """On a desk whose bus speaks TLS (bus.tls): the move's servers and connections do too."""
    data_dir = DataDir.at(tmp_path / "desk")
    add_test_people(data_dir)
    single = crash_mission(bus={"tls": True})
    stack = Stack(single, data_dir, services=()).start()
    try:
        await publish_directives(data_dir, "d1", "d2", "d3")
        await trip_breaker(data_dir)
        before = await contents(data_dir)
    finally:
        stack.stop()

    real = move.stream_entries
    reads: Counter = Counter()

    async def loses_the_last_directive_on_the_cluster(nc, stream, *, direct=True):
        entries = await real(nc, stream, direct=direct)
        reads[stream] += 1  # the old server's is read first, then the cluster's
        return entries[:-1] if stream == "DIRECTIVES" and reads[stream] == 2 else entries

    monkeypatch.setattr(move, "stream_entries", loses_the_last_directive_on_the_cluster)
    with pytest.raises(MoveError, match="stream DIRECTIVES: message 3 is missing from the cluster"):
        await asyncio.to_thread(move_to_cluster, data_dir, single, nodes=3)
    # The old store is where it was, the cluster's partial copy gone: the desk starts on one server as before.
    assert any(data_dir.jetstream.iterdir()) and not list(data_dir.bus.glob("jetstream.moved-*"))
    assert not kept_stores(data_dir) and not (data_dir.bus / "move.json").exists()
    stack = Stack(single, data_dir, services=()).start()
    try:
        assert await contents(data_dir) == before
        cc = await CommandCenter.connect(data_dir)
        assert (await cc.breaker()).state == "tripped"
        await cc.close()
    finally:
        stack.stop()

    # The move can simply be run again.
    monkeypatch.setattr(move, "stream_entries", real)
    report = await asyncio.to_thread(move_to_cluster, data_dir, single, nodes=3)
    assert {s.name: s.last_seq for s in report.streams}["DIRECTIVES"] == 3 and len(kept_stores(data_dir)) == 3


async def test_a_snapshot_waits_for_its_acks_which_only_the_moves_servers_let_the_provisioner_send(tmp_path):
    """Flow control: with a window of one chunk the server sends the next only once the last is acked
    (`$JS.SNAPSHOT.ACK...`). The desk's own provisioner may not publish there; the move's servers allow it."""
    data_dir = DataDir.at(tmp_path / "desk")
    single = crash_mission()
    stack = Stack(single, data_dir, services=()).start()
    try:
        await publish_directives(data_dir, *[f"d{i}" for i in range(40)])
    finally:
        stack.stop()
    creds = ensure_credentials(data_dir)
    server = move.start_one_server(data_dir, creds, host="127.0.0.1", max_payload=1 << 20, sync_interval="1s", tls=None)
    try:
        nc, events = await connect_with(move._provisioner_kwargs(creds, [server.url], None), reconnect=False)
        try:
            chunks: list[int] = []
            snap = await move.snapshot(nc, "DIRECTIVES", tmp_path / "d.snapshot", chunk_size=1024, window_size=1024,
                                       progress=lambda stream, phase, done, total: chunks.append(done))
        finally:
            await nc.close()
    finally:
        server.stop()
    assert snap.size == (tmp_path / "d.snapshot").stat().st_size and len(chunks) > 4 and events.violations == []
    assert snap.state["last_seq"] == 40 and snap.config["name"] == "DIRECTIVES"
    desk_conf = render_config(creds, [], host="127.0.0.1", port=1, monitor_port=None, store_dir=None, max_payload=1, sync_interval="1s")
    provisioner = [u for a in json.loads(desk_conf.split("\n", 1)[1])["accounts"].values() for u in a.get("users", [])
                   if u["user"] == creds[Role.PROVISIONER].user][0]
    assert not set(move.SNAPSHOT_SUBJECTS) & set(provisioner["permissions"]["publish"]["allow"])  # the running desk's: never


def test_messages_past_the_age_limit_may_be_gone_from_either_side_and_nothing_else():
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    old, fresh = now - timedelta(days=8), now - timedelta(days=1)
    a = [Entry(1, old, "x1"), Entry(2, fresh, "x2"), Entry(3, fresh, "x3")]
    week = 7 * 86_400.0
    assert compare_entries("S", a, a[1:], max_age_s=week, now=now) is None  # expired on the cluster as it started
    assert compare_entries("S", a, a[1:], max_age_s=0, now=now) == "message 1 is missing from the cluster"
    assert compare_entries("S", a, a[:2], max_age_s=week, now=now) == "message 3 is missing from the cluster"
    assert compare_entries("S", a, [a[0], a[1], Entry(3, fresh, "other")], max_age_s=week, now=now).startswith("message 3 differs")
    assert compare_entries("S", a[:2], a, max_age_s=week, now=now) == "message 3 is on the cluster only"
