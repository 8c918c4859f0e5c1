"""The bus as a 3-node nats-server cluster on loopback, streams replicated three times: kill -9
a node (the stream's leader) while directives stream through the real factory, and nothing
is lost, nothing staged twice, and the breaker's state is kept. Then the node rejoins."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import urllib.request
from collections import Counter
from dataclasses import dataclass

import nats.errors
import nats.js.errors
import pytest
from conftest import P, active_agents, add_test_people, directive, ensure_credentials, publish_bar, raw, signed_headers, wait_cluster_formed, wait_for
from test_crash import counts
from test_factory import make_mission, running

from deskgate.agents.submit import AgentClient
from deskgate.approvals.client import CommandCenter
from deskgate.audit.signing import Kind
from deskgate.bus.cluster import Cluster, node_name, start_cluster
from deskgate.bus.connect import connect_as
from deskgate.bus.reader import read_stream
from deskgate.bus.server import BusError, read_config, write_endpoint
from deskgate.bus.streams import provision
from deskgate.bus.subjects import Role
from deskgate.paths import DataDir

pytestmark = pytest.mark.slow


@dataclass
class ClusterBus:
    """What the suite's `bus` fixture gives, on a cluster: every client is given every node's address."""

    data_dir: DataDir
    cluster: Cluster

    async def connect(self, role: Role | str, **kw):
        return await connect_as(self.data_dir, role, reconnect=kw.pop("reconnect", True), **kw)

    async def leader_of(self, stream: str) -> int:
        nc, _ = await self.connect(Role.PROVISIONER)  # the role that may ask about streams
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        return int(info.cluster.leader.rsplit("n", 1)[1]) - 1


@pytest.fixture
async def cluster_bus(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    add_test_people(data_dir)
    cluster = start_cluster(data_dir, ensure_credentials(data_dir), active_agents(data_dir))
    try:
        write_endpoint(data_dir, cluster.urls, embedded=True, monitor_url=None, pid=None)
        nc, _ = await connect_as(data_dir, Role.PROVISIONER)
        try:
            await provision(nc.jetstream(), replicas=3)
        finally:
            await nc.close()
        yield ClusterBus(data_dir, cluster)
    finally:
        cluster.stop()


def test_the_nodes_share_accounts_and_guard_their_routes(tmp_path):
    """Every node has the same accounts; the routes between them take a password (a route carries every
    account's traffic); a cluster of an even size is refused with the reason."""
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    creds = ensure_credentials(data_dir)
    with pytest.raises(BusError, match="odd number of nodes, at least 3"):
        start_cluster(data_dir, creds, active_agents(data_dir), nodes=2)
    cluster = start_cluster(data_dir, creds, active_agents(data_dir))
    try:
        confs = [read_config(cluster.node_dir(i) / "nats.conf") for i in range(3)]
        assert all(c["accounts"] == confs[0]["accounts"] for c in confs)
        assert [c["server_name"] for c in confs] == [node_name(i) for i in range(3)]
        password = confs[0]["cluster"]["authorization"]["password"]
        assert len(password) >= 24 and all(len(c["cluster"]["routes"]) == 2 for c in confs)
        assert all(f":{password}@" in r for c in confs for r in c["cluster"]["routes"])
        assert oct((cluster.node_dir(0) / "nats.conf").stat().st_mode & 0o777) == "0o600"
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.ports[0].monitor}/routez", timeout=5) as r:
            assert json.loads(r.read())["num_routes"] >= 2
    finally:
        cluster.stop()


async def _publish_until_stored(js, subject: str, payload: bytes, headers: dict) -> None:
    """An agent that retries a publish the cluster did not acknowledge (a node died under it): the same
    Nats-Msg-Id, so a first attempt that was stored after all is not stored twice."""
    for _ in range(200):
        try:
            await js.publish(subject, payload, headers=headers, timeout=2)
            return
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError, nats.js.errors.APIError):
            await asyncio.sleep(0.1)
    raise AssertionError(f"{subject}: never stored")


async def test_a_node_killed_mid_stream_loses_nothing_and_stages_nothing_twice(cluster_bus):
    data_dir = cluster_bus.data_dir
    mission = make_mission(paper={"starting_equity_usd": 10_000_000.0}, approvals={"expiry_seconds": 3600})
    async with running(cluster_bus, mission) as (factory, _, cc, _md):
        total = 5000  # the number: enough that the kill lands mid-stream
        items, expected_staged = [], set()
        for i in range(total):
            if i % 7 == 6:
                items.append((f"k{i}", raw(directive(f"k{i}", confidence=0.1))))  # rejected by policy
            else:
                items.append((f"k{i}", raw(directive(f"k{i}", notional_usd=100))))
                expected_staged.add(f"k{i}")
        agent, _ = await cluster_bus.connect(Role.AGENT)
        js = agent.jetstream()

        stored = [0]

        async def publish_all():
            for did, p in items:
                headers = {**signed_headers(data_dir, "agent:desk", Kind.DIRECTIVE, p), "Nats-Msg-Id": did}
                await _publish_until_stored(js, "consciousness.directives.BTC", p, headers)
                stored[0] += 1

        publisher = asyncio.create_task(publish_all())
        await wait_for(lambda: stored[0] >= total // 3, timeout=120, interval=0.005)
        victim = await cluster_bus.leader_of("DIRECTIVES")
        cluster_bus.cluster.kill(victim)  # kill -9 the directives stream's leader
        assert not publisher.done() and counts(data_dir)[0] < total, "all was sent before the node died; raise `total`"
        await publisher
        await wait_for(lambda: counts(data_dir)[0] >= total, timeout=180, interval=0.2)
        await asyncio.sleep(1.0)  # anything extra would show up by now

        n_eval, n_staged = counts(data_dir)
        assert n_eval == total and n_staged == len(expected_staged)  # each directive evaluated once
        observer, _ = await cluster_bus.connect(Role.OBSERVER)
        staged = Counter([m.subject.rsplit(".", 1)[1] async for m in read_stream(observer, "APPROVALS", "approvals.queue.directive.>")])
        assert set(staged.values()) == {1}, "a directive was staged twice"
        assert set(staged) == expected_staged
        verdicts = Counter([json.loads(m.data)["directive_id"]
                            async for m in read_stream(observer, "STATUS", "factory.status.policy.>")])
        assert set(verdicts) == {did for did, _ in items} and set(verdicts.values()) == {1}, "a directive got two verdicts"

        # The node comes back on its own store and ports, rejoins, and catches up.
        cluster_bus.cluster.restart(victim)
        cluster_bus.cluster.wait_formed()

        admin, _ = await cluster_bus.connect(Role.PROVISIONER)

        async def caught_up():
            info = await admin.jetstream().stream_info("DIRECTIVES")
            peers = [info.cluster.leader] + [p.name for p in info.cluster.replicas if p.current]
            return sorted(peers) == sorted(node_name(i) for i in range(3)) and info.state.messages == total
        await wait_for(caught_up, timeout=60, interval=0.2)
        fresh = await CommandCenter.connect(data_dir)  # the test's own may have been on the node that died
        try:
            assert len(await fresh.pending()) == len(expected_staged)  # the staged queue, read through the cluster
        finally:
            await fresh.close()
        for nc in (observer, admin, agent):
            await nc.close()


async def test_a_tripped_breaker_stays_tripped_when_its_leader_node_dies(cluster_bus):
    mission = make_mission(paper={"starting_equity_usd": 100_000.0})
    async with running(cluster_bus, mission) as (factory, agent, cc, md):
        (v,) = await agent.submit_payloads([raw(directive("eth", asset="ETH", notional_usd=25_000))])
        assert v.decision == "staged"
        assert [o.outcome for o in await cc.decide("eth", "approve", P["alice"])] == ["ordered", "executed"]
        await publish_bar(md, "ETH", 3_500 * 0.2)  # a crash: the drawdown trips the breaker

        async def tripped(client):
            return (await client.breaker()).state == "tripped"
        await wait_for(lambda: tripped(cc), timeout=20)
        victim = await cluster_bus.leader_of("KV_deskgate_breaker")
        cluster_bus.cluster.kill(victim)
        fresh = await CommandCenter.connect(cluster_bus.data_dir)  # on a node that is alive
        try:
            assert await tripped(fresh)  # read from the replicas that are left
        finally:
            await fresh.close()
        # The factory, reconnected to a live node, still refuses: the breaker it reads is the replicated one.
        again = await AgentClient.connect(cluster_bus.data_dir)  # on a node that is alive
        try:
            (after,) = await again.submit_payloads([raw(directive("after-kill", notional_usd=100))], wait=30)
        finally:
            await again.close()
        assert after is not None and after.primary_reason == "breaker"


async def test_a_publish_no_stream_answers_yet_is_asked_again_until_one_does(bus):
    """What an agent's publish meets while a cluster elects a stream's new leader: no responders.
    Nothing was stored, so it is asked again (publish_stored) until a stream answers."""
    from deskgate.bus.publish import publish_stored

    admin, _ = await bus.connect(Role.PROVISIONER)
    agent, _ = await bus.connect(Role.AGENT)
    try:
        await admin.jetstream().delete_stream("DIRECTIVES")  # no stream takes consciousness.directives.> for now

        async def leader_elected_later():
            await asyncio.sleep(0.5)
            await provision(admin.jetstream())

        later = asyncio.create_task(leader_elected_later())
        ack = await publish_stored(agent.jetstream(), "consciousness.directives.BTC", b"{}", within=10)
        await later
        assert ack.stream == "DIRECTIVES" and ack.seq == 1
        await admin.jetstream().delete_stream("DIRECTIVES")
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await publish_stored(agent.jetstream(), "consciousness.directives.BTC", b"{}", within=0.3)
    finally:
        await admin.close()
        await agent.close()


async def test_up_runs_the_bus_as_a_three_node_cluster_restarts_a_dead_node_and_reloads_agents_on_every_node(tmp_path):
    """bus.cluster: 3 (`deskgate up --cluster 3`): three nodes, streams on all three, a directive staged
    through them; a node killed is started again by the supervisor on its ports and store; an agent
    added is known to every node."""
    from test_crash import crash_mission

    from deskgate.bus.connect import connect_with
    from deskgate.bus.reload import apply_agents
    from deskgate.identity.registry import AgentRegistry
    from deskgate.stack import Stack

    data_dir = DataDir.at(tmp_path / "desk")
    add_test_people(data_dir)
    mission = crash_mission().model_copy(update={"bus": crash_mission().bus.model_copy(update={"cluster": 3})})
    stack = Stack(mission, data_dir, services=("factory",), restart=True).start()
    try:
        assert stack.cluster is not None and len(stack.cluster.alive()) == 3 and stack.nats is None
        endpoint = json.loads(data_dir.endpoint.read_text())
        assert endpoint["servers"] == stack.cluster.urls and len(endpoint["nodes"]) == 3
        admin, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
        assert (await admin.jetstream().stream_info("DIRECTIVES")).config.num_replicas == 3
        await admin.close()
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        await publish_bar(md, "BTC", 65_000.0)
        await md.close()
        await asyncio.sleep(0.3)
        agent = await AgentClient.connect(data_dir)
        (v,) = await agent.submit_payloads([raw(directive("on-cluster", notional_usd=100))], wait=20)
        await agent.close()
        assert v is not None and v.decision == "staged"

        old_pid = stack.cluster.nodes[1].pid
        stack.cluster.kill(1)
        # A change of agents while a node is down is not in effect everywhere, and says so.
        early = AgentRegistry.open(data_dir).add("early", stack.cluster.urls)
        partial = apply_agents(data_dir, bus_url=None, max_payload=mission.bus.max_payload_bytes)
        assert partial.how == "partial" and "2 of 3" in partial.detail
        assert stack.supervise_once() == [node_name(1)]
        assert len(stack.cluster.alive()) == 3 and stack.cluster.nodes[1].pid != old_pid
        assert json.loads(data_dir.endpoint.read_text())["nodes"][1]["pid"] == stack.cluster.nodes[1].pid
        stack.cluster.wait_formed()
        assert stack.sync_agents(now=True).how == "reloaded"  # the supervisor applies it again, to every node
        for url in stack.cluster.urls:
            nc, _ = await connect_with({**early.connect_kwargs(), "servers": [url]}, reconnect=False)
            await nc.close()

        creds = AgentRegistry.open(data_dir).add("newcomer", stack.cluster.urls)
        applied = apply_agents(data_dir, bus_url=None, max_payload=mission.bus.max_payload_bytes)
        assert applied.how == "reloaded" and all(str(n.pid) in applied.detail for n in stack.cluster.nodes)
        for url in stack.cluster.urls:  # every node lets the new agent in
            nc, _ = await connect_with({**creds.connect_kwargs(), "servers": [url]}, reconnect=False)
            await nc.close()

        # A node that cannot start again (its port taken) is tried again after a pause that grows,
        # not at every turn of the supervisor; once it can, it is back.
        stack.cluster.kill(2)
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((stack.cluster.host, stack.cluster.ports[2].client))
        squatter.listen()
        try:
            assert stack.supervise_once() == [] and stack.bus_retries[node_name(2)].failures == 1
            assert stack.supervise_once() == [] and stack.bus_retries[node_name(2)].failures == 1  # not yet due
        finally:
            squatter.close()
        back = []
        for _ in range(150):
            back = stack.supervise_once()
            if back:
                break
            await asyncio.sleep(0.1)
        assert back == [node_name(2)] and stack.bus_retries == {} and len(stack.cluster.alive()) == 3
    finally:
        stack.stop()
    assert not stack.cluster.alive()


def test_cluster_settings_are_checked_with_the_reason(tmp_path):
    import subprocess
    import sys

    from deskgate.config import MissionError, parse_mission

    for bad, reason in (({"cluster": 2}, "odd number of nodes"), ({"cluster": 3, "url": "nats://bus.example:4222"}, "the operator runs"),
                        ({"replicas": 3}, "more than the embedded bus's 1 node")):
        with pytest.raises(MissionError, match=reason):
            parse_mission({"bus": bad})
    assert parse_mission({}).bus.stream_replicas() == 1
    assert parse_mission({"bus": {"cluster": 3}}).bus.stream_replicas() == 3
    assert parse_mission({"bus": {"cluster": 5, "replicas": 5}}).bus.stream_replicas() == 5
    nodes = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
    assert parse_mission({"bus": {"url": nodes}}).bus.servers() == nodes
    assert parse_mission({"bus": {"url": " , ".join(nodes)}}).bus.servers() == nodes
    with pytest.raises(MissionError, match="'nats://10.0.0.1 4222' is not a NATS server address"):
        parse_mission({"bus": {"url": ["nats://10.0.0.2:4222", "nats://10.0.0.1 4222"]}})
    # Whatever nats-py takes stays accepted: no scheme, websockets, credentials in the address.
    assert parse_mission({"bus": {"url": "localhost:4222"}}).bus.servers() == ["localhost:4222"]
    assert parse_mission({"bus": {"url": "wss://u:p@bus.example:443"}}).bus.servers() == ["wss://u:p@bus.example:443"]
    with pytest.raises(MissionError, match="port pins one server's port"):
        parse_mission({"bus": {"cluster": 3, "port": 4222}})
    subprocess.run([sys.executable, "-m", "deskgate", "init", str(tmp_path)], check=True, capture_output=True)
    up = subprocess.run([sys.executable, "-m", "deskgate", "up", "--mission", str(tmp_path / "mission.yaml"), "--cluster", "4"],
                        capture_output=True, timeout=60)
    assert up.returncode == 2 and b"--cluster 4" in up.stderr and b"odd number" in up.stderr


async def test_an_operator_run_cluster_named_in_bus_url_gets_replicated_streams(tmp_path):
    """bus.url lists an operator's three nodes (here started with the desk's accounts, as `deskgate
    bus-config` gives them): `up` starts no server, gives clients every address, and creates the
    streams with bus.replicas copies."""
    from test_crash import crash_mission

    from deskgate.stack import Stack

    data_dir = DataDir.at(tmp_path / "desk")
    add_test_people(data_dir)
    theirs = start_cluster(DataDir.at(tmp_path / "operator"), ensure_credentials(data_dir), active_agents(data_dir))
    try:
        bus = crash_mission().bus.model_copy(update={"url": ",".join(theirs.urls), "replicas": 3})
        stack = Stack(crash_mission().model_copy(update={"bus": bus}), data_dir, services=("factory",)).start()
        try:
            assert stack.nats is None and stack.cluster is None
            endpoint = json.loads(data_dir.endpoint.read_text())
            assert endpoint["servers"] == theirs.urls and endpoint["embedded"] is False
            admin, _ = await connect_as(data_dir, Role.PROVISIONER, reconnect=False)
            info = await admin.jetstream().stream_info("APPROVALS")
            await admin.close()
            assert info.config.num_replicas == 3 and len(info.cluster.replicas) == 2
        finally:
            stack.stop()
        assert len(theirs.alive()) == 3  # the operator's servers, not the desk's to stop
    finally:
        theirs.stop()


def test_deskgate_up_cluster_3_from_the_command_line(tmp_path):
    """`deskgate up --cluster 3`: where each node is, clients given all three, a directive staged through
    them from the CLI, and a clean stop that leaves no node running."""
    import subprocess
    import time

    from test_cli import DESKGATE, _stop, run

    run("init", str(tmp_path))
    mission = tmp_path / "mission.yaml"
    mission.write_text(mission.read_text().replace("interval_seconds: 1.0", "interval_seconds: 0.2"))
    data = tmp_path / "deskgate-data"
    proc = subprocess.Popen([*DESKGATE, "up", "--mission", str(mission), "--web-port", "0", "--no-agents", "--cluster", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "250"})
    seen, deadline = b"", time.monotonic() + 90
    while time.monotonic() < deadline and b"desk running" not in seen and proc.poll() is None:
        seen += proc.stdout.readline()
    try:
        assert b"desk running" in seen, seen.decode()
        assert all(f"NATS node {i}".encode() in seen for i in (1, 2, 3))
        kwargs = json.loads(run("creds", "agent", "--data-dir", str(data)).stdout)
        assert len(kwargs["servers"]) == 3
        time.sleep(1.0)  # a bar or two from market data
        batch = tmp_path / "one.json"
        batch.write_text(json.dumps(directive("cli-cluster", notional_usd=1_000)))
        verdicts = json.loads(run("directive", "submit", str(batch), "--json", "--data-dir", str(data)).stdout)
        assert verdicts[0]["decision"] == "staged"
    finally:
        out = _stop(proc)  # and no process of the desk, no node among them, left running
    assert "stopping services, then the bus" in out and "stopped cleanly" in out


def test_bus_config_writes_an_operators_cluster_that_forms(tmp_path):
    """`deskgate bus-config --routes`: one config per node, each including the accounts file and routing
    to the others behind the desk's route password. Three real nats-servers started on them (with the
    operator's own `listen` and `http`) form one cluster with JetStream."""
    import subprocess

    from deskgate.bus.server import free_port, nats_server_binary
    from test_cli import run

    run("init", str(tmp_path))
    data = tmp_path / "deskgate-data"
    routes = [free_port() for _ in range(3)]
    bad = run("bus-config", "--data-dir", str(data), "--routes", "127.0.0.1:1,127.0.0.1:2", check=False)
    assert bad.returncode == 2 and b"odd number of nodes, at least 3" in bad.stderr
    run("bus-config", "--data-dir", str(data), "--routes", ",".join(f"127.0.0.1:{p}" for p in routes), "--store-dir", str(tmp_path / "js"))
    procs, monitors = [], []
    try:
        for i in range(3):
            node = data / "bus" / f"{node_name(i)}.conf"
            assert oct(node.stat().st_mode & 0o777) == "0o600"
            monitors.append(free_port())
            wrapper = data / "bus" / f"operator-{i}.conf"  # the operator's own part of the node's config
            wrapper.write_text(f'listen: "127.0.0.1:{free_port()}"\nhttp: "127.0.0.1:{monitors[-1]}"\ninclude "{node.name}"\n')
            procs.append(subprocess.Popen([str(nats_server_binary()), "-c", str(wrapper)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        wait_cluster_formed(monitors[0])
    finally:
        for p in procs:
            p.kill()
            p.wait(10)


def test_a_desk_is_not_moved_between_one_server_and_a_cluster_with_its_streams_left_behind(tmp_path):
    """A bus started on the other kind of store would be empty, and the factory would skip new directives
    whose sequence numbers it has seen: refused, with the reason, either way."""
    from test_crash import crash_mission

    from deskgate.stack import Stack, StackError

    data_dir = DataDir.at(tmp_path / "desk")
    single = crash_mission()
    Stack(single, data_dir, services=()).start().stop()
    cluster = single.model_copy(update={"bus": single.bus.model_copy(update={"cluster": 3})})
    with pytest.raises(StackError, match="kept by one nats-server .* started as a 3-node cluster, its bus would begin empty"):
        Stack(cluster, data_dir, services=()).start()
    other = DataDir.at(tmp_path / "clustered")
    Stack(cluster, other, services=()).start().stop()
    with pytest.raises(StackError, match="kept by a cluster .* started as one nats-server"):
        Stack(single, other, services=()).start()


async def test_the_web_services_command_center_moves_to_a_live_node_when_its_own_dies(cluster_bus):
    """The connection the web service opens (`CommandCenter.connect(reconnect=True)`, web/app.py)
    reconnects: the node it is on dies, and the next read is answered through another."""
    cc = await CommandCenter.connect(cluster_bus.data_dir, reconnect=True)
    try:
        before = await cc.breaker()
        own = next(i for i, url in enumerate(cluster_bus.cluster.urls) if url.endswith(f":{cc.nc.connected_url.port}"))
        cluster_bus.cluster.kill(own)
        await wait_for(lambda: cc.nc.is_connected and cc.nc.connected_url.port != cluster_bus.cluster.ports[own].client, timeout=20)
        assert await cc.pending() == []
        assert (await cc.breaker()).state == before.state  # the replicated breaker, read through a live node
    finally:
        await cc.close()


async def _on_node(cluster_bus: ClusterBus, role: Role, i: int):
    """A connection to node i only, so the node answering a direct get is that one."""
    return await connect_as(cluster_bus.data_dir, role, servers=[cluster_bus.cluster.urls[i]], reconnect=False)


async def test_reads_that_must_be_current_are_answered_by_the_stream_leader_through_every_node(cluster_bus):
    """`current=True` (bus/reader.py) asks `$JS.API.STREAM.MSG.GET`, which only a stream's leader
    answers: a write is read back right after its acknowledgement through every node; a role that
    may not read the stream is refused; the leader killed, a read waits for the new one and
    answers with the last write acknowledged before the kill."""
    from deskgate.bus.breaker import BREAKER_STREAM, read_key, write_key
    from deskgate.bus.reader import ReadError, last_message

    factory, _ = await cluster_bus.connect(Role.FACTORY)
    js = factory.jetstream()
    readers = [await _on_node(cluster_bus, Role.OBSERVER, i) for i in range(3)]
    try:
        for n in range(20):
            revision = await write_key(js, "trip", f"trip {n}".encode())
            hold = await js.publish("factory.status.governor", f"hold {n}".encode())
            for nc, _ in readers:
                record = await read_key(nc, "trip")
                assert (record.revision, record.value) == (revision, f"trip {n}".encode())
                status = await last_message(nc, "STATUS", "factory.status.governor", current=True)
                assert (status.seq, status.data) == (hold.seq, f"hold {n}".encode())
        agent, events = await _on_node(cluster_bus, Role.AGENT, 0)
        with pytest.raises(ReadError, match="leader of stream APPROVALS"):
            await last_message(agent, "APPROVALS", "approvals.queue.directive.d1", timeout=1.0, current=True)
        assert events.refused("$JS.API.STREAM.MSG.GET.APPROVALS")
        with pytest.raises(ReadError):  # not even the breaker it may read: the agent role has no leader reads
            await last_message(agent, BREAKER_STREAM, "$KV.deskgate_breaker.trip", timeout=1.0, current=True)
        assert events.refused(f"$JS.API.STREAM.MSG.GET.{BREAKER_STREAM}")
        assert (await last_message(agent, BREAKER_STREAM, "$KV.deskgate_breaker.trip")).seq == revision  # its direct get
        await agent.close()
    finally:
        for nc, _ in readers:
            await nc.close()

    victim = await cluster_bus.leader_of(BREAKER_STREAM)
    last = await write_key(js, "trip", b"the last trip before the kill")
    await factory.close()
    cluster_bus.cluster.kill(victim)
    survivor, _ = await _on_node(cluster_bus, Role.OBSERVER, (victim + 1) % 3)
    try:
        record = await read_key(survivor, "trip")  # asked while the bucket has no leader: answered by the new one
        assert (record.revision, record.value) == (last, b"the last trip before the kill")
        assert await cluster_bus.leader_of(BREAKER_STREAM) != victim
    finally:
        await survivor.close()


async def test_a_principals_decisions_published_while_their_stream_elects_a_leader_are_stored_once(cluster_bus):
    """The Command Center's publishes go through `publish_stored`: the RESPONSES stream's leader is
    killed and an approval and a Governor clear are published at once. Each is stored exactly
    once (its Nats-Msg-Id drops a copy asked again), and sending the same approval again adds nothing."""
    from deskgate.audit.keys import KeyStore
    from deskgate.bus.reader import read_stream as read
    from deskgate.domain.approval import ApprovalResponse
    from deskgate.domain.base import utcnow
    from deskgate.domain.governor import GovernorClear

    victim = await cluster_bus.leader_of("RESPONSES")
    nc, events = await _on_node(cluster_bus, Role.COMMAND_CENTER, (victim + 1) % 3)
    cc = CommandCenter(nc, events, KeyStore.for_desk(cluster_bus.data_dir))
    try:
        alice = P["alice"]
        approval = ApprovalResponse(approval_id="ap-election", directive_id="d-election", decision="approve",
                                    principal=cc.principal_of(alice), decided_at=utcnow())
        clear = GovernorClear(clear_id="gc-election", principal=cc.principal_of(alice), reason="drift reviewed", at=utcnow())
        cluster_bus.cluster.kill(victim)
        assert await cc.send(approval, alice, wait=0) == []  # no factory runs here: nothing answers it
        await cc.send_governor_clear(clear, alice)
        await cc.send(approval, alice, wait=0)  # the same decision sent again: the stream drops it
        assert await cluster_bus.leader_of("RESPONSES") != victim
        stored = [json.loads(m.data) async for m in read(nc, "RESPONSES", ">", current=True)]
        assert [s.get("approval_id") or s.get("clear_id") for s in stored] == ["ap-election", "gc-election"]
        assert events.violations == []
    finally:
        await cc.close()


async def test_an_operator_cluster_with_a_node_down_at_start_still_serves_the_desk_and_none_up_is_named(tmp_path):
    """bus.url names three nodes and one does not answer when the desk starts: clients connect
    through the others and the desk works. None answering is an error that names the bus."""
    from test_crash import crash_mission

    from deskgate.stack import Stack, StackError

    data_dir = DataDir.at(tmp_path / "desk")
    add_test_people(data_dir)
    theirs = start_cluster(DataDir.at(tmp_path / "operator"), ensure_credentials(data_dir), active_agents(data_dir))
    try:
        bus = crash_mission().bus.model_copy(update={"url": ",".join(theirs.urls), "replicas": 3})
        mission = crash_mission().model_copy(update={"bus": bus})
        Stack(mission, data_dir, services=("factory",)).start().stop()  # the streams made, on all three
        theirs.kill(0)  # the first address in bus.url, the one clients try first
        stack = Stack(mission, data_dir, services=("factory",)).start()
        try:
            md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
            await publish_bar(md, "BTC", 65_000.0)
            await md.close()
            agent = await AgentClient.connect(data_dir)
            try:
                (verdict,) = await agent.submit_payloads([raw(directive("n0-down", notional_usd=100))], wait=30)
            finally:
                await agent.close()
            assert verdict is not None and verdict.decision == "staged", verdict
        finally:
            stack.stop()
        for i in theirs.alive():
            theirs.kill(i)
        with pytest.raises(StackError, match="cannot reach the bus at .* as the provisioner"):
            Stack(mission, data_dir, services=("factory",)).start()
    finally:
        theirs.stop()
