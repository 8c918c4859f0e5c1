"""The embedded bus as a cluster: three (or five) nats-server nodes on this machine, routes
between them, each with its own port, monitor port and JetStream store.

Every node gets the same accounts and permissions (the same `accounts_block` as a single
server), its own `server_name`, and a `cluster` block naming the others. The routes are
password-protected: a route is a server's own link and carries every account's traffic,
so a local process that could open one would see the whole desk. The route password
lives in the data directory (bus/cluster.json, 0600), made once, like the roles' passwords.

With `bus.tls` the routes speak TLS too: each node presents the desk's server certificate
(bus/tls.py) and checks the others' against the desk's CA, in addition to the password.

Streams on a cluster are replicated (`bus.replicas`, 3 by default): JetStream keeps each
stream on that many nodes and elects a leader, so the loss of one node loses nothing
that was acknowledged.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deskgate.bus.credentials import RoleCredentials
from deskgate.bus.server import BusError, NatsServer, client_host, free_port, launch, port_available, render_config, write_endpoint
from deskgate.bus.subjects import Role
from deskgate.bus.tls import DeskTLS, OperatorTLS, client_tls_block, route_tls_block
from deskgate.paths import DataDir, write_private

if TYPE_CHECKING:
    from deskgate.identity.registry import AgentIdentity

CLUSTER_NAME = "deskgate"
ROUTE_USER = "deskgate-route"


def node_name(i: int) -> str:
    return f"deskgate-n{i + 1}"


def _route_password(data_dir: DataDir) -> str:
    path = data_dir.bus / "cluster.json"
    try:
        stored = json.loads(path.read_text())
        if isinstance(stored, dict) and isinstance(stored.get("route_password"), str) and len(stored["route_password"]) >= 24:
            return stored["route_password"]
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise BusError(f"{path} is not the cluster file deskgate wrote ({exc}); remove it and start the desk again") from None
    password = secrets.token_urlsafe(24)  # letters, digits, '-' and '_': safe inside a route URL
    write_private(path, json.dumps({"route_password": password}, indent=2))
    return password


@dataclass
class NodePorts:
    client: int
    monitor: int
    route: int


@dataclass
class Cluster:
    """The nodes we started, in order; a node that was killed is started again by `restart`."""

    data_dir: DataDir
    creds: dict[Role, RoleCredentials]
    agents: Sequence[AgentIdentity]
    host: str
    ports: list[NodePorts]
    max_payload: int
    sync_interval: str
    nodes: list[NatsServer | None] = field(default_factory=list)
    tls: DeskTLS | None = None  # TLS for clients and routes (bus.tls), from the desk's CA

    @property
    def urls(self) -> list[str]:
        scheme = "tls" if self.tls is not None else "nats"
        return [f"{scheme}://{client_host(self.host)}:{p.client}" for p in self.ports]

    def node_dir(self, i: int) -> Path:
        return self.data_dir.bus / node_name(i)

    def config(self, i: int) -> str:
        password = _route_password(self.data_dir)
        # Routes on loopback whatever bus.host says: the embedded cluster's nodes are all on this machine.
        routes = [f"nats-route://{ROUTE_USER}:{password}@127.0.0.1:{p.route}" for j, p in enumerate(self.ports) if j != i]
        block = {
            "name": CLUSTER_NAME,
            "listen": f"127.0.0.1:{self.ports[i].route}",
            "authorization": {"user": ROUTE_USER, "password": password, "timeout": 2},
            "routes": routes,
        }
        if self.tls is not None:
            block["tls"] = route_tls_block(self.tls.cert, self.tls.key, self.tls.ca_cert)
        return render_config(
            self.creds, self.agents, host=self.host, port=self.ports[i].client, monitor_port=self.ports[i].monitor,
            store_dir=self.node_dir(i) / "jetstream", max_payload=self.max_payload, sync_interval=self.sync_interval,
            server_name=node_name(i), cluster=block,
            tls=client_tls_block(self.tls.cert, self.tls.key) if self.tls is not None else None,
        )

    def start_node(self, i: int, ready_timeout: float = 20.0) -> NatsServer:
        self.node_dir(i).mkdir(parents=True, exist_ok=True)
        server = launch(self.node_dir(i) / "nats.conf", self.node_dir(i) / "nats.log", self.config(i), self.urls[i],
                        f"http://{client_host(self.host)}:{self.ports[i].monitor}", ready_timeout)
        self.nodes[i] = server
        return server

    def kill(self, i: int) -> None:
        """kill -9 node i (crash tests)."""
        node = self.nodes[i]
        if node is not None:
            node.kill()

    def restart(self, i: int, ready_timeout: float = 20.0) -> NatsServer:
        """Start node i again on its ports and store: it rejoins and catches up from the others."""
        return self.start_node(i, ready_timeout)

    def stop(self) -> None:
        for node in self.nodes:
            if node is not None:
                node.stop()

    def alive(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n is not None and n.alive()]

    def endpoint_nodes(self) -> list[dict]:
        """What endpoint.json says of each node, for the agents' reload (bus/reload.py)."""
        return [{"pid": n.pid, "monitor_url": n.monitor_url, "config": str(n.config_path)} for n in self.nodes if n is not None]

    def write_endpoint(self) -> None:
        first = next(n for n in self.nodes if n is not None)
        write_endpoint(self.data_dir, self.urls, embedded=True, monitor_url=first.monitor_url, pid=first.pid, nodes=self.endpoint_nodes(),
                       tls=self.tls is not None, tls_ca=self.tls.ca_cert if self.tls is not None else None)

    def wait_formed(self, timeout: float = 30.0) -> str:
        """Until every live node sees the same JetStream meta leader and its peers: the leader's name."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            leaders = set()
            for i in self.alive():
                try:
                    with urllib.request.urlopen(f"http://{client_host(self.host)}:{self.ports[i].monitor}/jsz", timeout=1) as r:
                        meta = json.loads(r.read()).get("meta_cluster") or {}
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    last = f"{node_name(i)}: {exc}"
                    leaders.add(None)
                    continue
                leaders.add(meta.get("leader") or None)
                if meta.get("cluster_size", 0) < len(self.ports):
                    last = f"{node_name(i)} sees {meta.get('cluster_size', 0)} of {len(self.ports)} nodes"
                    leaders.add(None)
            if len(leaders) == 1 and None not in leaders:
                return leaders.pop()
            if len(leaders) > 1:
                last = f"the nodes do not agree on a leader yet ({sorted(map(str, leaders))})"
            time.sleep(0.1)
        raise BusError(f"the {len(self.ports)}-node cluster did not form in {timeout:.0f}s: {last}; see {self.data_dir.bus}/*/nats.log")


def saved_ports(data_dir: DataDir, nodes: int, host: str) -> list[NodePorts] | None:
    """The ports the cluster had last time, so clients holding its addresses keep working; None
    if there were none, for another size, or one of them is taken now."""
    try:
        saved = json.loads((data_dir.bus / "cluster-ports.json").read_text())
        ports = [NodePorts(*map(int, p)) for p in saved]
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if len(ports) != nodes or not all(port_available(host, q) for p in ports for q in (p.client, p.monitor, p.route)):
        return None
    return ports


def save_ports(data_dir: DataDir, ports: list[NodePorts]) -> None:
    write_private(data_dir.bus / "cluster-ports.json", json.dumps([[p.client, p.monitor, p.route] for p in ports]))


def start_cluster(
    data_dir: DataDir,
    creds: dict[Role, RoleCredentials],
    agents: Sequence[AgentIdentity],
    *,
    nodes: int = 3,
    host: str = "127.0.0.1",
    ports: list[NodePorts] | None = None,
    max_payload: int = 1_048_576,
    sync_interval: str = "1s",
    ready_timeout: float = 30.0,
    tls: DeskTLS | None = None,
) -> Cluster:
    """Start `nodes` nats-server nodes routed to each other and wait until JetStream has a leader.
    With `tls` (bus/tls.py `ensure_desk_tls`), clients and routes must speak TLS."""
    if nodes < 3 or nodes % 2 == 0:
        raise BusError(f"a cluster needs an odd number of nodes, at least 3 (a majority must survive a loss): got {nodes}")
    data_dir.ensure()
    ports = ports or saved_ports(data_dir, nodes, host) or [NodePorts(free_port(host), free_port(host), free_port(host)) for _ in range(nodes)]
    save_ports(data_dir, ports)
    cluster = Cluster(data_dir, creds, agents, host, ports, max_payload, sync_interval, nodes=[None] * nodes, tls=tls)
    try:
        for i in range(nodes):
            cluster.start_node(i, ready_timeout)
        cluster.wait_formed(ready_timeout)
    except BaseException:
        for node in cluster.nodes:
            if node is not None:
                node.kill()
        raise
    return cluster


def operator_node_configs(
    data_dir: DataDir,
    routes: list[str],
    accounts_file: str,
    store_dir: str = "/var/lib/nats",
    *,
    client_tls: OperatorTLS | None = None,
    route_tls: OperatorTLS | None = None,
) -> dict[str, str]:
    """For an operator's own cluster (`deskgate bus-config --routes`): each node's config, by node name.
    Each includes the accounts file, names itself, routes to the others behind this desk's route
    password, and keeps JetStream under `store_dir`/<node>. With `client_tls`, clients must speak
    TLS to it; with `route_tls`, the routes do, each node's certificate checked against the CA.
    Listening and monitoring are the operator's to add: the file says where."""
    if len(routes) < 3 or len(routes) % 2 == 0:
        raise BusError(f"a cluster needs an odd number of nodes, at least 3: got {len(routes)} ({', '.join(routes) or 'none'})")
    for r in routes:
        host, _, port = r.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in r for c in "/@ "):
            raise BusError(f"{r!r} is not HOST:PORT of a node's route listener")
    if route_tls is not None and route_tls.ca is None:
        raise BusError("route TLS needs the CA that signed every node's certificate (each node checks the others')")
    password = _route_password(data_dir)
    out = {}
    for i, me in enumerate(routes):
        conf: dict = {
            "server_name": node_name(i),
            "jetstream": {"store_dir": f"{store_dir.rstrip('/')}/{node_name(i)}"},
            "cluster": {
                "name": CLUSTER_NAME,
                "listen": f"0.0.0.0:{me.rpartition(':')[2]}",
                "authorization": {"user": ROUTE_USER, "password": password, "timeout": 2},
                "routes": [f"nats-route://{ROUTE_USER}:{password}@{r}" for j, r in enumerate(routes) if j != i],
            },
        }
        if client_tls is not None:
            conf["tls"] = client_tls_block(client_tls.cert, client_tls.key, client_tls.ca)
        if route_tls is not None:
            conf["cluster"]["tls"] = route_tls_block(route_tls.cert, route_tls.key, route_tls.ca)
        tls_note = (
            "# TLS: the certificate, key and CA files named below must be at these paths on this node (its own certificate,\n"
            f"# valid for {me.rpartition(':')[0]}). "
            if client_tls is not None or route_tls is not None
            else "# "
        )
        out[node_name(i)] = (
            f"# deskgate: node {i + 1} of {len(routes)} ({me}). Generated by `deskgate bus-config --routes`; it holds the\n"
            "# cluster's route password: keep it 0600. Add your own `listen` (clients) and `http` (monitoring).\n"
            + tls_note + ("Clients connect with TLS only.\n" if client_tls is not None else "No TLS for clients: add your own `tls` block, or use --tls-cert.\n")
            + f'include "{accounts_file}"\n' + "".join(f"{key}: {json.dumps(value, indent=2)}\n" for key, value in conf.items())
        )
    return out
