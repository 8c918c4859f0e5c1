"""Fixtures: a real nats-server from the wheel on free ports, provisioned exactly as `deskgate up` does."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from deskgate.audit.keys import PRINCIPAL_PREFIX, KeyStore
from deskgate.audit.signing import Signer
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.credentials import active_agents, ensure_credentials
from deskgate.bus.server import NatsServer, start_nats, write_endpoint
from deskgate.bus.streams import provision
from deskgate.bus.subjects import Role
from deskgate.config import Mission
from deskgate.paths import DataDir

# bcrypt's cost is a work factor, not a behaviour: the bus users of the suite's hundreds of
# in-process desks are hashed at bcrypt's lowest cost (4) instead of the desk's 10, which
# made each desk's credentials cost half a second and each connection 70 ms of the
# server's time. The real nats-server still checks every password against its hash, and
# every desk started as `deskgate` processes (init, up, the CLI tests) uses the desk's cost
# (tests/test_cli.py::test_a_desk_hashes_its_bus_passwords_at_its_own_cost).
import deskgate.bus.credentials as _bus_credentials  # noqa: E402
import deskgate.identity.registry as _registry  # noqa: E402

_bus_credentials.BCRYPT_ROUNDS = _registry.BCRYPT_ROUNDS = 4

MEMO = {
    "signal_evidence": "trend +1.5 sigma on 4h bars",
    "position_context": "flat",
    "proposed_action": "buy",
    "expected_outcome": "+2% in 3 days",
}


def directive(directive_id: str = "d1", **overrides) -> dict:
    d = {
        "directive_id": directive_id,
        "asset": "BTC",
        "venue": "binance",
        "side": "buy",
        "notional_usd": 10_000.0,
        "leverage": 1.0,
        "confidence": 0.8,
        "memo": dict(MEMO),
    }
    d.update(overrides)
    return d


def raw(d: dict) -> bytes:
    return json.dumps(d).encode()


@dataclass
class Bus:
    data_dir: DataDir
    server: NatsServer

    @property
    def url(self) -> str:
        return self.server.url

    async def connect(self, role: Role | str, **kw):
        return await connect_as(self.data_dir, role, reconnect=kw.pop("reconnect", False), **kw)

    def restart(self) -> None:
        """Start nats-server again on the same port and store (after a kill)."""
        port = int(self.url.rsplit(":", 1)[1])
        self.server = start_nats(self.data_dir, ensure_credentials(self.data_dir), active_agents(self.data_dir), port=port)
        write_endpoint(self.data_dir, [self.server.url], embedded=True, monitor_url=self.server.monitor_url, pid=self.server.pid)


# Principals the tests decide as: real principal accounts with real argon2id password
# hashes and sealed keys, made once (by `deskgate user add`'s own code) and copied into
# every test desk's accounts.db, so each test does not pay for the KDF again. A viewer
# and a disabled principal come with them.
TEST_PRINCIPALS = ("alice", "bob", "carol", "test-principal")
TEST_VIEWER = "vera"
TEST_DISABLED = "dora"
TEST_PASSWORD = "correct horse battery staple"
_TEMPLATE: dict[str, object] = {}


def _people_template() -> Path:
    """accounts.db with the test people, built once per test session."""
    if "db" not in _TEMPLATE:
        from deskgate.people.accounts import Accounts
        from deskgate.people.principals import Principals

        from deskgate.people.pins import enroll

        root = DataDir.at(tempfile.mkdtemp(prefix="deskgate-people-")).ensure()
        accounts = Accounts.open(root)
        principals = Principals(accounts)
        for name in (*TEST_PRINCIPALS, TEST_DISABLED):
            accounts.add(name, "principal", TEST_PASSWORD)
            enroll(root, name, principals.make_key(name, TEST_PASSWORD))  # as `deskgate user add` does
        accounts.add(TEST_VIEWER, "viewer", TEST_PASSWORD)
        accounts.disable(TEST_DISABLED)
        _TEMPLATE["signers"] = {name: principals.signer(name, TEST_PASSWORD) for name in TEST_PRINCIPALS}
        accounts.engine.dispose()
        files = [root.accounts_db, *sorted(root.state.glob("pins-*.db"))]
        for path in files:
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _TEMPLATE["db"] = files
    return _TEMPLATE["db"]  # type: ignore[return-value]


def add_test_people(data_dir: DataDir) -> None:
    """The test principals, viewer and disabled principal, in this desk's accounts.db, and
    enrolled with its factory and executor (state/pins-*.db)."""
    data_dir.state.mkdir(parents=True, exist_ok=True)
    for path in _people_template():
        target = data_dir.state / path.name
        if not target.exists():
            shutil.copyfile(path, target)
            target.chmod(0o600)
        elif path.name == data_dir.accounts_db.name:
            # Made already (the desk agent's identity lives there too): add the people to it.
            with sqlite3.connect(target) as conn:
                conn.execute("ATTACH DATABASE ? AS people", (str(path),))
                for table in ("users", "signing_keys", "passkeys"):
                    conn.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM people.{table}")
                conn.commit()
                conn.execute("DETACH DATABASE people")


# Kept for tests written before keys were sealed: the people, as `user add` makes them.
principal_keys = add_test_people


class _Principals:
    """P["alice"]: that test principal's Signer (their sealed key, opened with their password)."""

    def __getitem__(self, name: str) -> Signer:
        _people_template()
        return _TEMPLATE["signers"][name]  # type: ignore[index]


P = _Principals()


_DESK_SIGNERS: dict[tuple[str, int], Signer] = {}


def agent_signer(where: DataDir | KeyStore, name: str = "desk") -> Signer:
    """An agent identity's Signer, with the key in its credentials file: `desk` is the desk's
    own agents (made as `deskgate init` makes it); any other agent is added on first use, as
    `deskgate agent add NAME` does (its file in <data_dir>/agents/NAME.json)."""
    from deskgate.identity.credentials import read_credentials, write_credentials
    from deskgate.identity.registry import AgentRegistry, default_credentials_path, ensure_desk_agent

    data_dir = DataDir.at(where.root.parent) if isinstance(where, KeyStore) else where
    path = default_credentials_path(data_dir, name)
    if name == "desk":
        # Tests sign thousands of directives in a loop: the file, once checked against the
        # registry, is trusted until it changes (a rotation rewrites it).
        try:
            seen = (str(path), path.stat().st_mtime_ns)
        except FileNotFoundError:
            seen = None
        if seen is not None and seen in _DESK_SIGNERS:
            return _DESK_SIGNERS[seen]
        creds = ensure_desk_agent(data_dir)
        signer = Signer.of(creds.signer, creds.signing_key())
        _DESK_SIGNERS[(str(path), path.stat().st_mtime_ns)] = signer
        return signer
    elif path.exists():
        creds = read_credentials(path)
    else:
        creds = AgentRegistry.open(data_dir).add(name, [])
        write_credentials(path, creds)
    return Signer.of(creds.signer, creds.signing_key())


def signed_headers(data_dir: DataDir, signer: str, kind, payload: bytes) -> dict[str, str]:
    """What a role, principal or agent (`agent:<name>`) would attach to `payload`, made with its own key."""
    if signer.startswith(PRINCIPAL_PREFIX):
        return P[signer.removeprefix(PRINCIPAL_PREFIX)].headers(kind, payload)
    if signer.startswith("agent:"):
        return agent_signer(data_dir, signer.removeprefix("agent:")).headers(kind, payload)
    return Signer(KeyStore(data_dir.keys), signer).headers(kind, payload)


def start_bus(root) -> Bus:
    data_dir = DataDir.at(root).ensure()
    add_test_people(data_dir)
    creds = ensure_credentials(data_dir)
    server = start_nats(data_dir, creds, active_agents(data_dir))
    write_endpoint(data_dir, [server.url], embedded=True, monitor_url=server.monitor_url, pid=server.pid)
    return Bus(data_dir, server)


async def provision_bus(bus: Bus) -> None:
    nc, _ = await bus.connect(Role.PROVISIONER)
    try:
        await provision(nc.jetstream())
    finally:
        await nc.close()


@pytest.fixture
def bus_dir(tmp_path):
    return tmp_path / "desk"


@pytest.fixture
async def bus(bus_dir):
    b = start_bus(bus_dir)
    try:
        await provision_bus(b)
        yield b
    finally:
        b.server.stop()


@pytest.fixture
def mission() -> Mission:
    return Mission.model_validate(
        {
            "paper": {"starting_equity_usd": 100_000.0, "slippage_bps": 0.0, "fee_bps": 0.0},
            "marketdata": {"assets": ["BTC", "ETH", "SOL"]},
        }
    )


async def publish_bar(nc, asset: str, price: float) -> None:
    from deskgate.bus.subjects import bar_subject
    from deskgate.domain.market import Bar

    await nc.jetstream().publish(bar_subject(asset), Bar.at_price(asset, price, "test").to_bytes())


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):  # bounded too: a request that never answers fails the wait, not the run
            result = await asyncio.wait_for(result, max(deadline - loop.time(), interval))
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


__all__ = [
    "signed_headers", "agent_signer", "principal_keys", "add_test_people", "P", "TEST_PASSWORD", "TEST_VIEWER", "TEST_DISABLED", "Bus",
    "SecurityEvents", "directive", "raw", "publish_bar", "wait_for", "MEMO",
]


def wait_cluster_formed(monitor_port: int, size: int = 3, timeout: float = 30.0) -> dict:
    """Until the node on `monitor_port` reports a JetStream meta leader over `size` nodes: the
    operator-run clusters the tests start from `deskgate bus-config` output."""
    import time
    import urllib.request

    deadline, meta = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/jsz", timeout=1) as r:
                meta = json.loads(r.read()).get("meta_cluster") or {}
        except OSError:
            pass
        if meta.get("leader") and meta.get("cluster_size") == size:
            return meta
        time.sleep(0.2)
    raise AssertionError(f"no {size}-node cluster formed within {timeout:g} s: {meta}")


async def send_signed_directives(js, data_dir: DataDir, ids) -> None:
    """Small BTC directives signed by the desk's own agents, each id its own Nats-Msg-Id."""
    from deskgate.audit.signing import Kind

    for did in ids:
        p = raw(directive(did, notional_usd=100))
        await js.publish("consciousness.directives.BTC", p,
                         headers={**signed_headers(data_dir, "agent:desk", Kind.DIRECTIVE, p), "Nats-Msg-Id": did})
