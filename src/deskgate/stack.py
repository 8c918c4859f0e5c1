"""`deskgate up`: the bus, the streams, then every service as its own process, supervised.

A service that dies is restarted (with back-off); so is the embedded nats-server,
on the same port and store. The bus is also kept in step with the agent registry:
`deskgate agent add|rotate|revoke` commits to the registry and then reloads the bus,
and should it die in between (or the reload go unconfirmed), the supervisor sees the
registry differ from what the bus was last given and applies it (`sync_agents`). SIGINT/SIGTERM stops everything in order: services
first, so they can finish their batch and close cleanly, then the bus.

On Linux the services are forked from a fork server that has the libraries they
share already imported, so those pages are shared between them (forkserver.py).
The fork server holds no credentials and no key, so a service inherits none; each
is still its own process, and this process's own child.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
import nats.js.errors

from deskgate.bus.connect import connect_as
from deskgate.bus.credentials import active_agents, ensure_credentials
from deskgate.bus.cluster import Cluster, node_name, saved_ports, start_cluster
from deskgate.bus.reload import Applied, agents_fingerprint, apply_agents, config_lock
from deskgate.bus.server import BusError, NatsServer, port_available, start_nats, write_endpoint, write_operator_config
from deskgate.bus.streams import ProvisionReport, provision
from deskgate.bus.subjects import Role
from deskgate.bus.tls import DeskTLS, TLSError, ensure_desk_tls, read_ca, tls_url
from deskgate.config import CCXT_VENUES, Mission, VenueSettings
from deskgate.forkserver import ForkedProcess, ForkServer
from deskgate.forkserver import supported as forking_supported
from deskgate.marketdata.csv_replay import load_bars
from deskgate.paths import DataDir, write_private
from deskgate.procs import die_with_parent, is_desk_process
from deskgate.services import SERVICES, ready_file

log = logging.getLogger("deskgate.stack")

PROVISION_WAIT_S = 60.0  # for the bus's streams to have leaders (a cluster started again elects them)
AGENTS_CHECK_EVERY_S = 2.0  # how soon a registry change a crashed `deskgate agent` left unapplied reaches the bus


class StackError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen | ForkedProcess
    started: float
    restarts: int = 0


def restart_pause(failures: int) -> float:
    """How long after a process died (or failed to start) it is started again: 0.5 s, doubling to 30 s."""
    return min(30.0, 0.5 * (2 ** min(failures, 6)))


@dataclass
class Retry:
    """When a bus server that failed to start again may be tried next: 0.5 s, doubling to 30 s,
    so that one that cannot start (its port taken, its store unreadable) does not hold up the
    supervision of everything else at every turn."""

    failures: int = 0
    next_at: float = 0.0
    problem: str = ""

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def failed(self, problem: str) -> None:
        self.failures += 1
        self.problem = problem
        self.next_at = time.monotonic() + restart_pause(self.failures)


@dataclass
class Stack:
    mission: Mission
    data_dir: DataDir
    services: tuple[str, ...] = SERVICES
    restart: bool = True
    # Fork the services from a fork server (Linux), rather than exec one interpreter
    # each; DESKGATE_FORKSERVER=0 in the environment turns it off.
    fork: bool = field(default_factory=lambda: os.environ.get("DESKGATE_FORKSERVER", "1") != "0")
    nats: NatsServer | None = None
    cluster: Cluster | None = None  # the embedded bus as a cluster (bus.cluster > 1): its nodes
    tls: DeskTLS | None = None  # the embedded bus's CA and certificate (bus.tls)
    url: str = ""
    children: dict[str, Child] = field(default_factory=dict)
    provisioned: ProvisionReport | None = None
    # What `deskgate up` must tell the operator before anything else (a moved bus port).
    notices: list[str] = field(default_factory=list)
    _lock_fh: object = None
    _stopping: bool = False
    _agents_given: tuple | None = None  # the registry's agents as the bus was last given them
    _agents_checked: float = 0.0
    _forkserver: ForkServer | None = None
    # Bus servers (the one server, or a cluster's nodes by name) that failed to start again.
    bus_retries: dict[str, Retry] = field(default_factory=dict)

    # -- start ----------------------------------------------------------------------

    def start(self, ready_timeout: float = 30.0) -> Stack:
        self.data_dir.ensure()
        self._lock()
        try:
            self._refuse_leftovers()
            self._preflight()
            if self.fork and forking_supported():
                # Exec'd before anything here reads a credential; its imports overlap the bus's start.
                self._forkserver = ForkServer(self.data_dir.logs / "forkserver.out", env=self.service_env("forkserver"))
                self._forkserver.start()
            write_private(self.data_dir.mission_snapshot, self.mission.model_dump_json(indent=2))
            bus = self.mission.bus
            # The config names the registry's agents as they are now; `deskgate agent` waits.
            with config_lock(self.data_dir):
                creds = ensure_credentials(self.data_dir)
                self._agents_given = agents_fingerprint(self.data_dir)
                self.tls = self._ensure_tls()
                if bus.url:
                    write_operator_config(self.data_dir, creds, active_agents(self.data_dir), bus.max_payload_bytes)
                    servers = [tls_url(s) for s in bus.servers()] if bus.tls else bus.servers()
                    self.url = servers[0]
                    write_endpoint(self.data_dir, servers, embedded=False, monitor_url=None, pid=None, tls=bus.tls, tls_ca=bus.tls_ca)
                elif bus.cluster > 1:
                    self._refuse_store_switch(cluster=True)
                    if (self.data_dir.bus / "cluster-ports.json").exists() and saved_ports(self.data_dir, bus.cluster, bus.host) is None:
                        notice = ("the bus cluster's previous ports are taken (or it had another size), so its nodes move to new ports; "
                                  "clients configured with the old addresses must fetch them again (`deskgate creds ROLE`)")
                        log.warning(notice)
                        self.notices.append(notice)
                    self.cluster = start_cluster(self.data_dir, creds, active_agents(self.data_dir), nodes=bus.cluster, host=bus.host,
                                                 max_payload=bus.max_payload_bytes, sync_interval=bus.sync_interval, tls=self.tls)
                    self.url = self.cluster.urls[0]
                    self.cluster.write_endpoint()
                else:
                    self._refuse_store_switch(cluster=False)
                    port = bus.port or self._previous_port()
                    self.nats = start_nats(
                        self.data_dir,
                        creds,
                        active_agents(self.data_dir),
                        host=bus.host,
                        port=port,
                        max_payload=bus.max_payload_bytes,
                        sync_interval=bus.sync_interval,
                        tls=self.tls,
                    )
                    self.url = self.nats.url
                    self._write_single_endpoint()
            self.provisioned = _run_sync(self._provision)
            for name in self.services:
                if name == "marketdata" and self.mission.marketdata.source == "none" and not self.mission.marketdata.news.feeds:
                    continue  # no prices and no news to publish
                self._spawn(name)
            self.wait_ready(ready_timeout)
            self._write_run_file()
        except BaseException:
            self.stop()
            raise
        return self

    def _ensure_tls(self) -> DeskTLS | None:
        """The embedded bus's CA and server certificate when bus.tls is on (the CA made once; the
        certificate made again when it nears its end or no longer fits bus.host and bus.tls_names,
        or kept with a warning while the CA's key is offline); None for plaintext or an external bus."""
        bus = self.mission.bus
        return ensure_desk_tls(self.data_dir, bus.host, bus.tls_names) if bus.tls and not bus.url else None

    def _write_single_endpoint(self) -> None:
        write_endpoint(self.data_dir, [self.url], embedded=True, monitor_url=self.nats.monitor_url, pid=self.nats.pid,
                       tls=self.tls is not None, tls_ca=self.tls.ca_cert if self.tls is not None else None)

    def _refuse_leftovers(self) -> None:
        """A previous run's processes still alive would share the store: refuse, naming them."""
        try:
            run = json.loads(self.data_dir.run_file.read_text())
        except (FileNotFoundError, ValueError):
            return
        pids = [run.get("nats", {}).get("pid"), *run.get("nats", {}).get("nodes", []), *run.get("services", {}).values()]
        left = [p for p in pids if is_desk_process(p) and p != os.getpid()]
        if left:
            raise StackError(
                f"processes of an earlier desk on {self.data_dir.root} are still running (pids {', '.join(map(str, left))}); "
                "stop them before starting it again"
            )

    def _preflight(self) -> None:
        """Refuse what would only fail later, before anything starts."""
        try:
            self.data_dir.keep_storage(self.mission.storage.url, starting=True)
        except ValueError as exc:
            raise StackError(str(exc)) from None
        if self.mission.storage.url:
            # A shared database that cannot be reached, or holds a newer schema, is named now,
            # not in a service's log; its stores are upgraded once, before the services race to.
            from deskgate.migrations import SchemaError, StoreUnreachable
            from deskgate.stores import upgrade_all

            try:
                upgrade_all(self.data_dir)
            except (SchemaError, StoreUnreachable) as exc:
                raise StackError(str(exc)) from None
        if self.mission.bus.tls_ca:
            try:
                read_ca(self.mission.bus.tls_ca, "bus.tls_ca (the CA clients trust for the bus's TLS)")
            except TLSError as exc:
                raise StackError(str(exc)) from None
        md = self.mission.marketdata
        if md.source == "csv":
            load_bars(md.csv.path)
        if "agents" in self.services and self.mission.agents.model.provider != "offline":
            from deskgate.agents.analyst import ModelError
            from deskgate.agents.llm import build_model

            try:
                build_model(self.mission.agents.model)
            except ModelError as exc:
                raise StackError(str(exc)) from None
        if "web" in self.services and self.mission.web.port:
            from deskgate.web.listen import WebError, bind

            try:
                bind(self.mission.web.host, self.mission.web.port).close()
            except WebError as exc:
                raise StackError(str(exc)) from None

    @property
    def web_url(self) -> str | None:
        """Where the Command Center serves, once it is ready."""
        from deskgate.web.listen import web_url_file

        try:
            return web_url_file(self.data_dir).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _lock(self) -> None:
        path = self.data_dir.root / "up.lock"
        fh = open(path, "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StackError(f"another `deskgate up` is already running on {self.data_dir.root}") from None
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    def _refuse_store_switch(self, *, cluster: bool) -> None:
        """A desk's streams stay where they were kept: one server's store and a cluster's are apart,
        and a bus started on the other would have empty streams, whose new sequence numbers the
        factory would take for directives it has already seen. `deskgate bus move --to cluster`
        moves one server's streams to a cluster (bus/move.py); the way back is not built."""
        single = self.data_dir.jetstream
        nodes = sorted(self.data_dir.bus.glob("deskgate-n*/jetstream"))
        both = single.is_dir() and any(single.iterdir()) and any(p.is_dir() and any(p.iterdir()) for p in nodes)
        if both:  # a move cut short: the one server's store is still the desk's (bus/move.py)
            raise StackError(f"this desk has both one server's store ({single}) and cluster stores "
                             f"({', '.join(map(str, nodes))}), perhaps from a move cut short; the one server's store is the "
                             "desk's: move the cluster stores aside, then start it on one server, or move again with "
                             "`deskgate bus move --to cluster`")
        kept = [p for p in ([single] if cluster else nodes) if p.is_dir() and any(p.iterdir())]
        if kept:
            was, now = ("one nats-server", f"a {self.mission.bus.cluster}-node cluster") if cluster else ("a cluster", "one nats-server")
            how = (f"move them first with `deskgate bus move --to cluster --nodes {self.mission.bus.cluster}` (the desk stopped), "
                   "keep bus.cluster as it was," if cluster else
                   "moving a cluster's streams back to one server is not built yet (docs/DEPLOY.md): keep bus.cluster as it was,")
            raise StackError(
                f"this desk's streams are kept by {was} ({', '.join(map(str, kept))}); started as {now}, its bus would begin empty "
                f"and the factory would skip new directives as ones it has seen. To start it as {now}: {how} "
                f"or start {now} on a new data directory"
            )

    def _previous_port(self) -> int:
        """The last embedded bus's port, so clients holding `deskgate creds` keep working; 0 (any
        free port) when there was none. Only a live listener on it moves the bus, and loudly."""
        try:
            endpoint = json.loads(self.data_dir.endpoint.read_text())
            port = int(endpoint["servers"][0].rsplit(":", 1)[1])
        except (FileNotFoundError, KeyError, ValueError, IndexError, TypeError, AttributeError):
            return 0
        if not endpoint.get("embedded", True) or not 0 < port <= 65535:
            return 0  # an external bus's port belongs to another machine
        host = self.mission.bus.host
        if port_available(host, port):
            return port
        notice = (
            f"the bus's previous port {host}:{port} is held by another process, so the bus moves to a new port; "
            "clients configured with the old address must fetch it again (`deskgate creds ROLE`), "
            "or set bus.port in mission.yaml to pin one"
        )
        log.warning(notice)
        self.notices.append(notice)
        return 0

    async def _provision(self) -> ProvisionReport:
        deadline = time.monotonic() + 15
        while True:
            try:
                nc, events = await connect_as(self.data_dir, Role.PROVISIONER, reconnect=False)
                break
            except Exception as exc:  # noqa: BLE001 - the external bus may still be starting
                if time.monotonic() > deadline:
                    hint = ""
                    if self.mission.bus.tls and self.mission.bus.url:
                        hint = (" (deskgate's clients start TLS first: the servers' tls block needs `handshake_first`, "
                                "and their certificate must come from bus.tls_ca)")
                    raise StackError(f"cannot reach the bus at {self.url} as the provisioner: {exc!r}{hint}") from None
                await asyncio.sleep(0.5)
        try:
            return await self._provision_on(nc, events)
        finally:
            await nc.close()

    async def _provision_on(self, nc, events) -> ProvisionReport:
        """`provision`, asked again while a stream or consumer has no leader to answer: a cluster
        started again on its stores (or on streams moved to it, bus/move.py), or one whose node has
        just died, elects each stream's and consumer's leader (nats-server's raft election, seconds
        later); meanwhile the API's answer is a timeout or a 503 "no leader" (10008). Anything else,
        and a timeout the server caused by refusing the request (a permissions violation), is the
        answer at once. Provisioning is idempotent."""
        deadline = time.monotonic() + PROVISION_WAIT_S
        while True:
            try:
                return await provision(nc.jetstream(), replicas=self.mission.bus.stream_replicas())
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as exc:
                no_leader = isinstance(exc, nats.errors.TimeoutError) or getattr(exc, "err_code", None) == 10008
                elects = bool(self.mission.bus.url) or self.mission.bus.cluster > 1  # one embedded server has no election
                if events.violations or not no_leader or not elects:
                    refused = f"; the bus refused: {events.violations[-1]}" if events.violations else ""
                    raise StackError(f"the bus would not set up the desk's streams: {exc!r}{refused}") from None
                if time.monotonic() > deadline:
                    where = f"see {self.data_dir.bus}/deskgate-n*/nats.log" if not self.mission.bus.url else "see the servers' logs"
                    raise StackError(f"the bus's streams had no leader to answer within {PROVISION_WAIT_S:.0f}s ({exc!r}); {where}") from None
                await asyncio.sleep(0.5)

    def service_env(self, name: str) -> dict[str, str]:
        """The environment a service starts with: a model's API key only for the service that
        calls that model (the agents' for the agents, the screen's judge's for market data)."""
        model = self.mission.agents.model
        provider_default = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}.get(model.provider)
        agents_key = model.api_key_env or provider_default
        judge = self.mission.marketdata.news.screen.judge
        judge_key = judge.api_key_env if judge is not None else None
        embedder_key = self.mission.memory.embedder.api_key_env
        keys = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"} | {k for k in (agents_key, judge_key, embedder_key) if k}
        agents = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", agents_key, embedder_key}
        if judge_key and judge_key not in (agents_key, embedder_key):
            agents.discard(judge_key)  # the judge's key is the market-data service's alone
        # Venue keys: every name a venue could read its key from, the executor's alone.
        venue_keys = {
            env
            for venue in CCXT_VENUES
            for env in (getattr(self.mission.venues, venue) or VenueSettings()).env_names(venue)
        }
        keys |= venue_keys
        allowed = {"agents": agents, "marketdata": {judge_key}, "executor": venue_keys}.get(name, set())
        return {k: v for k, v in os.environ.items() if k not in keys or k in allowed}

    def _spawn(self, name: str) -> None:
        ready_file(self.data_dir, name).unlink(missing_ok=True)
        out = self.data_dir.logs / f"{name}.out"
        proc = None
        if self._forkserver is not None:
            try:
                tracked = frozenset(c.process.pid for n, c in self.children.items() if n != name and c.process.poll() is None)
                proc = self._forkserver.spawn(name, self.data_dir.root, out, tracked=tracked, env=self.service_env(name))
            except Exception as exc:  # noqa: BLE001 - whatever went wrong with forking, the service still starts
                # Something is wrong with it beyond a crash (a dead one is simply started
                # again): every service from now on is exec'd, as before the fork server.
                notice = f"{exc}; the services are started as their own interpreters from now on"
                log.warning(notice)
                self.notices.append(notice)
                self._forkserver.stop()
                self._forkserver = None
        if proc is None:
            with open(out, "ab") as fh:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "deskgate", "service", name, "--data-dir", str(self.data_dir.root)],
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=die_with_parent,
                    env=self.service_env(name),
                )
        previous = self.children.get(name)
        self.children[name] = Child(name, proc, time.monotonic(), previous.restarts + 1 if previous else 0)

    def wait_ready(self, timeout: float = 30.0, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(names or self.children)
        while waiting:
            for name in list(waiting):
                child = self.children[name]
                if child.process.poll() is not None:
                    raise StackError(
                        f"service {name} exited with code {child.process.returncode} while starting; "
                        f"see {self.data_dir.logs / (name + '.out')} and {self.data_dir.log_file(name)}\n"
                        + _tail(self.data_dir.logs / f"{name}.out")
                    )
                if ready_file(self.data_dir, name).exists():
                    waiting.remove(name)
            if waiting and time.monotonic() > deadline:
                raise StackError(f"services not ready after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(0.05)

    def _write_run_file(self) -> None:
        write_private(
            self.data_dir.run_file,
            json.dumps(
                {
                    "supervisor_pid": os.getpid(),
                    "nats": {"url": self.url, "pid": self.nats.pid if self.nats else None,
                             "nodes": [n.pid for n in self.cluster.nodes if n is not None] if self.cluster else []},
                    "services": {n: c.process.pid for n, c in self.children.items()},
                },
                indent=2,
            ),
        )

    # -- supervise ---------------------------------------------------------------------

    def supervise_once(self) -> list[str]:
        """Restart whatever died. Returns what was restarted."""
        restarted = []
        if self._stopping:
            return restarted
        retry = self.bus_retries.get("nats-server")
        if self.nats is not None and not self.nats.alive() and (retry is None or retry.due()):
            port = int(self.url.rsplit(":", 1)[1])
            try:
                bus = self.mission.bus
                # Rendered afresh: the agents added, rotated or revoked since the last start.
                with config_lock(self.data_dir):
                    creds = ensure_credentials(self.data_dir)
                    self._agents_given = agents_fingerprint(self.data_dir)
                    self.tls = self._ensure_tls()  # a certificate near its end is made again here
                    self.nats = start_nats(
                        self.data_dir,
                        creds,
                        active_agents(self.data_dir),
                        host=bus.host,
                        port=port,
                        max_payload=bus.max_payload_bytes,
                        sync_interval=bus.sync_interval,
                        tls=self.tls,
                    )
                    self._write_single_endpoint()
                restarted.append("nats-server")
                self.bus_retries.pop("nats-server", None)
            except BusError as exc:
                log.warning("could not restart nats-server: %s", exc)
                self.bus_retries.setdefault("nats-server", Retry()).failed(str(exc))
        if self.cluster is not None:
            restarted += self._restart_dead_nodes()
        for name, child in list(self.children.items()):
            if child.process.poll() is None or not self.restart:
                continue
            if time.monotonic() - child.started < restart_pause(child.restarts):
                continue
            self._spawn(name)
            restarted.append(name)
        if restarted:
            self._write_run_file()
        return restarted

    def _restart_dead_nodes(self) -> list[str]:
        """Start each dead node of the cluster again on its ports and store; it rejoins and catches up."""
        cluster, restarted = self.cluster, []
        for i, node in enumerate(cluster.nodes):
            retry = self.bus_retries.get(node_name(i))
            if (node is not None and node.alive()) or (retry is not None and not retry.due()):
                continue
            try:
                # Rendered afresh: the agents added, rotated or revoked since the last start.
                with config_lock(self.data_dir):
                    cluster.creds = ensure_credentials(self.data_dir)
                    cluster.agents = active_agents(self.data_dir)
                    cluster.tls = self._ensure_tls()  # a certificate near its end is made again here
                    # Not marked as given: the other nodes may still have older accounts (sync_agents applies them).
                    cluster.restart(i)
                    cluster.write_endpoint()
                restarted.append(node_name(i))
                self.bus_retries.pop(node_name(i), None)
            except BusError as exc:
                log.warning("could not restart %s: %s", node_name(i), exc)
                self.bus_retries.setdefault(node_name(i), Retry()).failed(str(exc))
        return restarted

    def sync_agents(self, *, now: bool = False) -> Applied | None:
        """Apply the registry's agents to the bus if it was last given others; None when in step.

        Every `AGENTS_CHECK_EVERY_S` (or `now`). A change `deskgate agent` applied itself is
        applied once more, harmlessly: the supervisor cannot tell a reload that happened from
        one that was cut short, and the registry, not the config file, is the record."""
        if self._stopping or (not now and time.monotonic() - self._agents_checked < AGENTS_CHECK_EVERY_S):
            return None
        self._agents_checked = time.monotonic()
        try:
            wanted = agents_fingerprint(self.data_dir)
            if wanted == self._agents_given:
                return None
            bus = self.mission.bus
            applied = apply_agents(self.data_dir, bus_url=bus.url, max_payload=bus.max_payload_bytes, lock_timeout=1.0)
        except Exception as exc:  # noqa: BLE001 - a busy lock or an unreadable registry is retried, never stops the desk
            log.warning("could not bring the bus in step with the agent registry (%s); trying again", exc)
            return None
        if applied.how not in ("not_running", "partial"):  # a node down: its restart renders the registry, the rest again next time
            self._agents_given = wanted
        log.info("agents: %s", applied.detail)
        return applied

    def run_forever(self, stop: threading.Event, on_restart=None) -> None:
        while not stop.is_set():
            for name in self.supervise_once():
                if on_restart:
                    on_restart(name)
            self.sync_agents()
            stop.wait(0.5)

    # -- stop --------------------------------------------------------------------------

    def stop_service(self, name: str, timeout: float = 10.0) -> None:
        child = self.children.pop(name, None)
        if child is None:
            return
        _terminate(child.process, timeout)
        ready_file(self.data_dir, name).unlink(missing_ok=True)

    def kill_service(self, name: str) -> None:
        """kill -9 one service (crash tests); the supervisor restarts it."""
        child = self.children[name]
        child.process.kill()
        child.process.wait(5)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)
        for name in self.children:
            ready_file(self.data_dir, name).unlink(missing_ok=True)
        if self._forkserver is not None:
            self._forkserver.stop()
        if self.nats is not None:
            self.nats.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.data_dir.run_file.unlink(missing_ok=True)
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None


def restart_service(data_dir: DataDir, name: str) -> int | None:
    """Have a running desk restart one service (to pick up new credentials): it is stopped
    with SIGTERM, and its supervisor starts it again, as after a crash. Returns the pid
    stopped, or None when no desk runs that service here."""
    try:
        run = json.loads(data_dir.run_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = run.get("services", {}).get(name) if isinstance(run, dict) else None
    if not isinstance(pid, int) or pid == os.getpid() or not is_desk_process(pid):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    return pid


def _run_sync(make_coro):
    """Run a coroutine to completion from sync code, even if this thread has a loop running."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def _terminate(proc: subprocess.Popen, timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
