"""Agent identities on the bus, against a real nats-server: one user per agent, each
reading only its own inbox, cut off at once by a revocation, refused its old password
after a rotation, all without restarting the server; and `deskgate agent` end to end."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import urllib.request

import bcrypt
import nats
import pytest
from conftest import directive, raw, start_bus, wait_for
from hypothesis import example, given
from hypothesis import strategies as st
from test_permissions import forbidden_publish, stream_last_seqs

from deskgate.bus.accounts import accounts_block
from deskgate.bus.connect import connect_as, connect_with
from deskgate.bus.credentials import active_agents, connect_kwargs, ensure_credentials, load_credentials
from deskgate.bus.permissions import agent_permissions, permissions_for
from deskgate.bus.reload import apply_agents
from deskgate.bus.server import read_config
from deskgate.bus.subjects import Role
from deskgate.config import Mission
from deskgate.identity.credentials import read_credentials, write_credentials
from deskgate.identity.names import AGENT_NAME_PATTERN
from deskgate.identity.registry import AgentRegistry
from deskgate.paths import DataDir
from deskgate.stack import Stack, restart_service

MAX_PAYLOAD = 1_048_576


def apply(data_dir: DataDir):
    return apply_agents(data_dir, bus_url=None, max_payload=MAX_PAYLOAD)


def add_agent(bus, name: str, tmp_path):
    """As `deskgate agent add` does: the identity, its 0600 file, the bus reloaded; read back from the file."""
    creds = AgentRegistry.open(bus.data_dir).add(name, [bus.url])
    path = write_credentials(tmp_path / f"{name}.json", creds)
    assert apply(bus.data_dir).how == "reloaded"
    return read_credentials(path)


async def connect_agent(creds):
    return await connect_with(creds.connect_kwargs(), reconnect=False)


def connections(bus) -> list[dict]:
    with urllib.request.urlopen(bus.server.monitor_url + "/connz?auth=true", timeout=5) as resp:
        return json.loads(resp.read())["connections"]


def users_on(bus) -> set[str]:
    return {c.get("authorized_user") for c in connections(bus)}


async def refused_login(kwargs) -> str:
    with pytest.raises(nats.errors.Error) as err:
        nc = await nats.connect(**kwargs, allow_reconnect=False, max_reconnect_attempts=1, connect_timeout=5)
        await nc.close()
    return str(err.value)


# -- what each agent may do ------------------------------------------------------------------


async def test_two_agents_each_publish_directives_and_nothing_privileged(bus, tmp_path):
    a, b = add_agent(bus, "alpha", tmp_path), add_agent(bus, "beta", tmp_path)
    for creds in (a, b):
        nc, events = await connect_agent(creds)
        ack = await nc.jetstream().publish("consciousness.directives.BTC", raw(directive(f"{creds.agent}-1")))
        assert ack.stream == "DIRECTIVES"
        before = await stream_last_seqs(bus)
        subjects = [*forbidden_publish(Role.AGENT), "factory.anything", "approvals.response.x", "$KV.deskgate_breaker.x", "$KV.other.key",
                    "$KV.deskgate_leases.factory"]  # no lease, whichever service's
        for subject in subjects:
            await nc.publish(subject, b'{"evil": true}')
        await nc.flush()
        await asyncio.sleep(0.3)
        assert {c["authorized_user"]: c["account"] for c in connections(bus)}[creds.user] == f"AGENT_{creds.agent.upper()}"
        await nc.close()
        missing = [s for s in subjects if not events.refused(s)]
        assert not missing, f"{creds.agent} was not refused: {missing}"
        assert await stream_last_seqs(bus) == before


async def test_an_agent_reads_only_its_own_inbox(bus, tmp_path):
    a, b = add_agent(bus, "alpha", tmp_path), add_agent(bus, "beta", tmp_path)
    spy, spy_events = await connect_agent(a)
    seen: list[str] = []

    async def cb(msg):
        seen.append(msg.subject)

    others = ["_INBOX_agent.beta.>", "_INBOX_agent.>", "_INBOX_agent.*.>", "_INBOX_agent.desk.>", "_INBOX.>", ">"]
    for subject in others:
        await spy.subscribe(subject, cb=cb)
    await spy.publish("_INBOX_agent.beta.forged", b"{}")  # nor write into another's inbox
    await spy.flush()
    # beta's JetStream calls answer into beta's inbox; alpha's own work as usual.
    victim, victim_events = await connect_agent(b)
    await victim.jetstream().publish("consciousness.directives.ETH", raw(directive("beta-2", asset="ETH")))
    await victim.jetstream().publish("consciousness.insights.intraday", b"{}")
    own = await spy.jetstream().publish("consciousness.insights.intraday", b"{}")
    await asyncio.sleep(0.3)
    await spy.close()
    await victim.close()
    assert own.stream == "INSIGHTS" and seen == []
    for subject in others:
        assert any(f'"{subject.lower()}"' in v.lower() and "subscription" in v.lower() for v in spy_events.violations), subject
    assert spy_events.refused("_INBOX_agent.beta.forged")
    assert victim_events.violations == []


async def test_an_agent_sees_what_was_stored_never_another_agents_own_publish(bus, tmp_path):
    """Each agent is an account of its own: another agent's raw publish (and the reply inbox
    it names) never reaches it, only what the stream stored and republished."""
    from deskgate.bus.live import persisted

    a, b = add_agent(bus, "alpha", tmp_path), add_agent(bus, "beta", tmp_path)
    watcher, _ = await connect_agent(a)
    got = []

    async def cb(msg):
        got.append(msg)

    for family in ("consciousness.directives.>", "consciousness.insights.>"):
        await watcher.subscribe(family, cb=cb)
    await watcher.flush()
    author, _ = await connect_agent(b)
    await author.jetstream().publish("consciousness.directives.BTC", raw(directive("beta-1")))
    await author.publish("consciousness.insights.intraday", b"{}", reply="_INBOX_agent.beta.plain")
    await author.flush()
    await wait_for(lambda: len(got) >= 2)
    await asyncio.sleep(0.3)
    await watcher.close()
    await author.close()
    assert len(got) == 2
    assert all(persisted(m, "DIRECTIVES") or persisted(m, "INSIGHTS") for m in got)
    assert not any((m.reply or "").startswith("_INBOX_agent.beta") for m in got)


async def test_an_agent_cannot_aim_jetstream_answers_at_another_agents_inbox(bus, tmp_path):
    """Knowing another agent's reply subject is not enough to answer into it: a direct get's
    answer or a publish acknowledgement goes back through the caller's own account only, so
    no agent can forge another's acknowledgements."""
    a, b = add_agent(bus, "alpha", tmp_path), add_agent(bus, "beta", tmp_path)
    victim, _ = await connect_agent(b)
    desk, _ = await connect_as(bus.data_dir, Role.AGENT)
    seen = []

    async def cb(msg):
        seen.append(msg)

    targets = {victim: "_INBOX_agent.beta.known.1", desk: "_INBOX_agent.desk.known.1"}
    for nc, subject in targets.items():
        await nc.subscribe(subject, cb=cb)
        await nc.flush()
    attacker, _ = await connect_agent(a)
    ack = await attacker.jetstream().publish("consciousness.insights.x", b'{"stream":"DIRECTIVES","seq":1}')
    for target in targets.values():
        await attacker.publish("$JS.API.DIRECT.GET.INSIGHTS", json.dumps({"seq": ack.seq}).encode(), reply=target)
        await attacker.publish("consciousness.insights.y", b"{}", reply=target)
    await attacker.flush()
    own = await attacker.request("$JS.API.DIRECT.GET.INSIGHTS", json.dumps({"seq": ack.seq}).encode(), timeout=5)
    assert own.data == b'{"stream":"DIRECTIVES","seq":1}'  # the same call answers its caller
    await asyncio.sleep(0.5)
    for nc in (attacker, victim, desk):
        await nc.close()
    assert seen == []


async def test_the_desks_own_agents_connect_as_the_built_in_agent(bus):
    kwargs = connect_kwargs(bus.data_dir, Role.AGENT)
    assert (kwargs["user"], kwargs["inbox_prefix"], kwargs["servers"]) == ("agent-desk", "_INBOX_agent.desk", [bus.url])
    nc, events = await connect_as(bus.data_dir, Role.AGENT)
    assert (await nc.jetstream().publish("consciousness.insights.intraday", b"{}")).stream == "INSIGHTS"
    await nc.close()
    assert events.violations == []


# -- revocation and rotation, without restarting the server -----------------------------------


async def test_revoke_closes_the_agents_connection_and_it_cannot_come_back(bus, tmp_path):
    gone, kept = add_agent(bus, "gone", tmp_path), add_agent(bus, "kept", tmp_path)
    pid = bus.server.pid
    nc, _ = await connect_agent(gone)
    other, other_events = await connect_agent(kept)
    desk, _ = await connect_as(bus.data_dir, Role.AGENT)
    assert {"agent-gone", "agent-kept", "agent-desk"} <= users_on(bus)

    AgentRegistry.open(bus.data_dir).revoke("gone", by="test")
    applied = apply(bus.data_dir)

    assert applied.how == "reloaded" and bus.server.alive() and bus.server.pid == pid
    await wait_for(lambda: nc.is_closed, timeout=10)
    assert "agent-gone" not in users_on(bus)
    assert "authorization violation" in (await refused_login(gone.connect_kwargs())).lower()
    # The others were not disturbed.
    assert other.is_connected and desk.is_connected
    assert (await other.jetstream().publish("consciousness.directives.BTC", raw(directive("kept-1")))).stream == "DIRECTIVES"
    assert "agent-gone" not in json.dumps(read_config(bus.data_dir.nats_conf)["accounts"])
    for c in (other, desk):
        await c.close()
    assert other_events.violations == []


async def test_rotate_refuses_the_old_password_and_the_new_file_works(bus, tmp_path):
    old = add_agent(bus, "rot", tmp_path)
    nc, _ = await connect_agent(old)
    new = AgentRegistry.open(bus.data_dir).rotate("rot", [bus.url])
    assert apply(bus.data_dir).how == "reloaded"
    await wait_for(lambda: nc.is_closed, timeout=10)  # the old password no longer holds a connection either
    assert "authorization violation" in (await refused_login(old.connect_kwargs())).lower()
    fresh, events = await connect_with(new.connect_kwargs(), reconnect=False)
    assert (await fresh.jetstream().publish("consciousness.directives.BTC", raw(directive("rot-2")))).stream == "DIRECTIVES"
    await fresh.close()
    assert events.violations == []


async def test_no_shared_agent_user_remains(tmp_path):
    """A data directory from before agent identities: its shared `agent` user is dropped."""
    root = DataDir.at(tmp_path / "old").ensure()
    ensure_credentials(root)
    stored = json.loads(root.credentials.read_text())
    password = "the-old-shared-agent-password"
    stored["agent"] = {"user": "agent", "password": password, "bcrypt": bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}
    root.credentials.write_text(json.dumps(stored))
    bus = start_bus(root.root)
    try:
        assert "agent" not in json.loads(root.credentials.read_text())
        users = [u["user"] for acc in read_config(root.nats_conf)["accounts"].values() for u in acc["users"]]
        assert "agent" not in users and "agent-desk" in users
        refused = await refused_login({"servers": [bus.url], "user": "agent", "password": password})
        assert "authorization violation" in refused.lower()
        with pytest.raises(KeyError, match="no shared credentials"):
            load_credentials(root, Role.AGENT)
    finally:
        bus.server.stop()


# -- the stack: a restarted nats-server names the agents as they are now --------------------------


def quiet_mission() -> Mission:
    return Mission.model_validate({"marketdata": {"source": "none", "assets": ["BTC"]}})


async def test_a_restarted_bus_names_the_current_agents_and_a_service_restarts_on_request(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(quiet_mission(), data_dir, services=("executor",), restart=True, fork=False).start()
    try:
        registry = AgentRegistry.open(data_dir)
        early = registry.add("early", [stack.url])
        assert apply(data_dir).how == "reloaded"
        stack.nats.kill()
        # Changed while the bus is down: nothing to reload, the restart renders them.
        registry.revoke("early")
        late = registry.add("late", [stack.url])
        assert apply(data_dir).how == "not_running"
        assert stack.supervise_once() == ["nats-server"]
        assert "authorization violation" in (await refused_login(early.connect_kwargs())).lower()
        nc, _ = await connect_with(late.connect_kwargs(), reconnect=False)
        await nc.close()

        old_pid = stack.children["executor"].process.pid
        assert restart_service(data_dir, "executor") == old_pid
        await wait_for(lambda: stack.children["executor"].process.poll() is not None, timeout=15)
        assert stack.supervise_once() == ["executor"]  # as `deskgate up`'s supervisor does
        assert stack.children["executor"].process.pid != old_pid
        stack.wait_ready(30, ["executor"])
        assert restart_service(data_dir, "no-such-service") is None

        # A bus that cannot start again (its port taken) is tried again after a pause, not at every turn.
        port = int(stack.url.rsplit(":", 1)[1])
        stack.nats.kill()
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            assert "nats-server" not in stack.supervise_once() and stack.bus_retries["nats-server"].failures == 1
            assert "nats-server" not in stack.supervise_once() and stack.bus_retries["nats-server"].failures == 1
        finally:
            squatter.close()
        await wait_for(lambda: "nats-server" in stack.supervise_once() or None, timeout=15, interval=0.1)
        assert stack.bus_retries == {} and stack.nats.alive() and stack.url.endswith(f":{port}")
    finally:
        stack.stop()
    assert apply(data_dir).how == "not_running"


async def test_the_supervisor_applies_a_registry_change_a_crashed_command_left_unapplied(tmp_path):
    """`deskgate agent` commits to the registry, then reloads the bus; killed in between, the
    revoked agent would stay connected and the added one could not connect. `deskgate up`'s
    supervisor sees the registry differ from what the bus was given and applies it."""
    data_dir = DataDir.at(tmp_path / "desk")
    stack = Stack(quiet_mission(), data_dir, services=("executor",), restart=True, fork=False).start()
    try:
        assert stack.sync_agents(now=True) is None  # in step: nothing to do
        registry = AgentRegistry.open(data_dir)
        gone = registry.add("gone", [stack.url])
        assert stack.sync_agents(now=True).how == "reloaded"
        nc, _ = await connect_with(gone.connect_kwargs(), reconnect=False)
        assert (await nc.jetstream().publish("consciousness.insights.intraday", b"{}")).stream == "INSIGHTS"
        # The command's commits, and then it dies before reloading anything.
        registry.revoke("gone")
        fresh = registry.add("fresh", [stack.url])
        assert "authorization violation" in (await refused_login(fresh.connect_kwargs())).lower()
        assert nc.is_connected
        applied = stack.sync_agents(now=True)
        assert applied is not None and applied.how == "reloaded"
        await wait_for(lambda: not nc.is_connected, timeout=10)
        assert "authorization violation" in (await refused_login(gone.connect_kwargs())).lower()
        late, _ = await connect_with(fresh.connect_kwargs(), reconnect=False)
        assert (await late.jetstream().publish("consciousness.insights.intraday", b"{}")).stream == "INSIGHTS"
        await late.close()
        assert stack.sync_agents(now=True) is None
    finally:
        stack.stop()


def test_an_external_bus_gets_the_agents_in_its_operator_config(tmp_path):
    root = DataDir.at(tmp_path / "ext").ensure()
    ensure_credentials(root)
    registry = AgentRegistry.open(root)
    registry.add("outside", ["nats://bus.example:4222"])
    registry.add("former", ["nats://bus.example:4222"])
    registry.revoke("former")
    applied = apply_agents(root, bus_url="nats://bus.example:4222", max_payload=MAX_PAYLOAD)
    assert applied.how == "external" and str(root.operator_conf) in applied.detail and "reload" in applied.detail
    text = root.operator_conf.read_text()
    assert '"agent-outside"' in text and '"agent-desk"' in text and "agent-former" not in text
    assert os.stat(root.operator_conf).st_mode & 0o777 == 0o600


# -- properties of the generated config ---------------------------------------------------------


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` one or more at the end."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


agent_name = st.from_regex(AGENT_NAME_PATTERN, fullmatch=True)
inbox_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=22)


@given(mine=agent_name, theirs=agent_name, tokens=st.lists(inbox_token, min_size=1, max_size=3))
@example(mine="desk", theirs="alpha", tokens=["x"])
def test_an_agent_may_subscribe_to_its_own_inbox_and_no_other(mine, theirs, tokens):
    perms = agent_permissions(mine)
    allow, deny = perms["subscribe"]["allow"], perms["subscribe"]["deny"]
    rest = ".".join(tokens)
    own = f"_INBOX_agent.{mine}.{rest}"
    assert any(matches(p, own) for p in allow) and not any(matches(p, own) for p in deny)
    if theirs != mine:
        other = f"_INBOX_agent.{theirs}.{rest}"
        assert not any(matches(p, other) for p in allow)
    # Everything else is exactly the agent role's, but only the desk's own agents publish the Governor's state.
    role = permissions_for(Role.AGENT)
    assert perms["publish"]["allow"] == role["publish"]["allow"] and perms["subscribe"]["deny"] == role["subscribe"]["deny"]
    added = set(perms["publish"]["deny"]) - set(role["publish"]["deny"])
    assert added == (set() if mine == "desk" else {"consciousness.insights.governor"})
    assert set(role["publish"]["deny"]) <= set(perms["publish"]["deny"])
    assert set(allow) - {f"_INBOX_agent.{mine}.>"} == set(role["subscribe"]["allow"]) - {"_INBOX_agent.>"}


@given(names=st.lists(agent_name, min_size=0, max_size=6, unique=True), revoked=st.sets(st.integers(0, 5)))
def test_the_agent_account_holds_exactly_the_active_agents(names, revoked):
    from datetime import datetime, timezone

    from deskgate.identity.registry import AgentIdentity

    now = datetime.now(timezone.utc)
    agents = [
        AgentIdentity(n, f"agent-{n}", f"$2b$04$hash-of-{n}", now, now if i in revoked else None, None, ())
        for i, n in enumerate(names)
    ]
    creds = {r: load_credentials_stub(r) for r in Role if r is not Role.AGENT}
    block = accounts_block(creds, agents)
    active = sorted(n for i, n in enumerate(names) if i not in revoked)
    mine = {acc: body for acc, body in block.items() if acc.startswith("AGENT")}
    assert sorted(mine) == sorted(f"AGENT_{n.upper()}" for n in active)
    for n in active:
        (user,) = mine[f"AGENT_{n.upper()}"]["users"]
        assert user["user"] == f"agent-{n}" and user["password"] == f"$2b$04$hash-of-{n}"
    for acc, body in block.items():
        if acc not in mine:
            assert not any(u["user"].startswith("agent") for u in body["users"]), acc
    # Every export names its importers: one without a list would be open to any account.
    exports = block["DESK"]["exports"]
    assert exports and all(e["accounts"] for e in exports)
    named = {a for e in exports for a in e["accounts"]}
    assert named <= set(block) and set(mine) <= named


def load_credentials_stub(role: Role):
    from deskgate.bus.credentials import RoleCredentials

    return RoleCredentials(role, role.value, "not-a-real-password", "$2b$04$" + role.value)


# -- `deskgate agent`, as an operator runs it ----------------------------------------------------


def deskgate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deskgate", *args], capture_output=True, timeout=120, env={**os.environ, "COLUMNS": "200"}
    )


async def in_thread(*args: str) -> subprocess.CompletedProcess:
    """Off the event loop, so the bus connections this test holds keep being served."""
    return await asyncio.to_thread(deskgate, *args)


async def test_agent_commands_end_to_end(bus, tmp_path):
    d = ["--data-dir", str(bus.data_dir.root)]
    added = await in_thread("agent", "add", "quant", "--json", *d)
    assert added.returncode == 0, added.stderr.decode()
    result = json.loads(added.stdout)
    path = bus.data_dir.root / "agents" / "quant.json"
    assert (result["bus"], result["servers"], result["credentials_file"]) == ("reloaded", [bus.url], str(path))
    assert os.stat(path).st_mode & 0o777 == 0o600
    first = read_credentials(path)
    nc, _ = await connect_agent(first)
    assert (await nc.jetstream().publish("consciousness.directives.BTC", raw(directive("quant-1")))).stream == "DIRECTIVES"

    shown = await in_thread("agent", "add", "helper", "--out", str(tmp_path / "helper.json"), *d)
    assert shown.returncode == 0 and b"deskgate mcp --agent-credentials" in shown.stdout and b"in effect" in shown.stdout

    listed = {a["name"]: a for a in json.loads((await in_thread("agent", "list", "--json", *d)).stdout)}
    assert set(listed) == {"desk", "quant", "helper"} and listed["quant"]["state"] == "active" and listed["quant"]["keys"] == 1
    table = (await in_thread("agent", "list", *d)).stdout.decode()
    assert "quant" in table and first.key_id in table

    rotated = await in_thread("agent", "rotate", "quant", "--json", *d)
    assert rotated.returncode == 0, rotated.stderr.decode()
    second = read_credentials(path)  # the same file, new secrets
    assert json.loads(rotated.stdout)["key_id"] == second.key_id != first.key_id
    await wait_for(lambda: nc.is_closed, timeout=10)
    assert "authorization violation" in (await refused_login(first.connect_kwargs())).lower()
    nc, _ = await connect_agent(second)

    revoked = await in_thread("agent", "revoke", "quant", *d)
    assert revoked.returncode == 0 and b"revoked agent quant" in revoked.stdout, revoked.stderr.decode()
    await wait_for(lambda: nc.is_closed, timeout=10)
    assert "authorization violation" in (await refused_login(second.connect_kwargs())).lower()
    listed = {a["name"]: a for a in json.loads((await in_thread("agent", "list", "--json", *d)).stdout)}
    assert listed["quant"]["state"] == "revoked" and listed["quant"]["keys"] == 2 and listed["quant"]["revoked_at"]

    creds = json.loads((await in_thread("creds", "agent", *d)).stdout)
    assert creds["user"] == "agent-desk" and creds["inbox_prefix"] == "_INBOX_agent.desk"

    # Errors: one line naming what is wrong, exit code 2, nothing changed.
    taken = tmp_path / "taken.json"
    taken.write_text("mine")
    for args, says in [
        (("agent", "revoke", "quant"), b"already revoked"),
        (("agent", "revoke", "nobody"), b"no agent named nobody"),
        (("agent", "rotate", "nobody"), b"no agent named nobody"),
        (("agent", "rotate", "quant"), b"revoked"),
        (("agent", "add", "Bad.Name"), b"is not allowed"),
        (("agent", "add", "quant"), b"exists"),
        (("agent", "revoke", "desk"), b"cannot be revoked"),
        (("agent", "rotate", "desk", "--out", str(tmp_path / "x.json")), b"no --out"),
        (("agent", "add", "other", "--out", str(taken)), b"refusing to overwrite"),
        (("agent", "rotate", "helper", "--out", str(taken)), b"refusing to overwrite"),
    ]:
        failed = await in_thread(*args, *d)
        assert failed.returncode == 2 and says in failed.stderr and b"Traceback" not in failed.stderr, (args, failed.stderr)
    assert AgentRegistry.open(bus.data_dir).get("other") is None and taken.read_text() == "mine"
    assert [a.name for a in active_agents(bus.data_dir)] == ["desk", "helper"]
    await nc.close()


def test_agent_add_on_a_desk_that_is_not_running(tmp_path):
    d = ["--data-dir", str(tmp_path / "cold")]
    nowhere = deskgate("agent", "add", "early", *d)
    assert nowhere.returncode == 2 and b"--server" in nowhere.stderr and b"Traceback" not in nowhere.stderr
    assert not AgentRegistry.open(DataDir.at(tmp_path / "cold").ensure()).get("early")
    added = deskgate("agent", "add", "early", "--server", "nats://10.0.0.5:4222", "--json", *d)
    assert added.returncode == 0, added.stderr.decode()
    result = json.loads(added.stdout)
    assert result["bus"] == "not_running" and "next `deskgate up`" in result["bus_detail"]
    assert read_credentials(result["credentials_file"]).servers == ("nats://10.0.0.5:4222",)
    rotated = deskgate("agent", "rotate", "desk", "--json", *d)
    assert rotated.returncode == 0 and json.loads(rotated.stdout)["restarted_service_pid"] is None, rotated.stderr.decode()
    desk = read_credentials(tmp_path / "cold" / "agents" / "desk.json")
    assert desk.servers == () and desk.key_id == AgentRegistry.open(DataDir.at(tmp_path / "cold")).get("desk").current_key.key_id
