"""Applying a change of agent identities to the bus, without restarting the desk.

`deskgate agent add|rotate|revoke` change the registry (identity/registry.py); the
bus learns of it here. For the embedded server the accounts of its config are
rendered again from the registry and nats-server is told to reload (SIGHUP). On a
reload nats-server closes every connection whose user is gone or whose password no
longer matches: a revoked agent is cut off at once, and a rotated agent's old
password stops working, connected or not. The reload is confirmed through the
monitor endpoint (`/varz` `config_load_time` moves), never assumed.

One lock (`bus/config.lock`) orders everything that writes the embedded server's
config: this, and `deskgate up` starting or restarting nats-server (stack.py), which
renders it from the registry as well. Whoever takes the lock second sees the other's
change, so a server restart racing a reload cannot bring back a revoked agent.

For an operator-run bus (`bus.url`) the operator config is written again; reloading
those servers is the operator's part.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deskgate.bus.accounts import accounts_block
from deskgate.bus.credentials import active_agents, ensure_credentials
from deskgate.bus.server import BusError, config_text, read_config, write_operator_config
from deskgate.paths import DataDir, write_private
from deskgate.procs import alive

RELOAD_TIMEOUT = 10.0
LOCK_TIMEOUT = 60.0  # longer than a nats-server start (stack.py holds the lock through one)


@dataclass(frozen=True)
class Applied:
    """What became of a change of agents on the bus, in words for the operator."""

    how: Literal["reloaded", "partial", "not_running", "external"]
    detail: str


def agents_fingerprint(data_dir: DataDir) -> tuple[tuple[str, str], ...]:
    """What of the registry the bus's config depends on: each active agent and its password hash."""
    return tuple(sorted((a.name, a.nats_bcrypt) for a in active_agents(data_dir)))


@contextmanager
def config_lock(data_dir: DataDir, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Held while the embedded server's config is written and the server (re)started or reloaded."""
    data_dir.bus.mkdir(parents=True, exist_ok=True)
    path = data_dir.bus / "config.lock"
    with open(path, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BusError(f"the bus config of {data_dir.root} stayed locked for {timeout:.0f}s ({path}); is the desk stuck starting?") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def apply_agents(
    data_dir: DataDir, *, bus_url: str | None, max_payload: int, timeout: float = RELOAD_TIMEOUT, lock_timeout: float = LOCK_TIMEOUT
) -> Applied:
    """Bring the bus in line with the registry's agents: reload the embedded server if it runs,
    or write the operator config for an external bus."""
    with config_lock(data_dir, lock_timeout):
        creds = ensure_credentials(data_dir)
        agents = active_agents(data_dir)
        if bus_url:
            path = write_operator_config(data_dir, creds, agents, max_payload)
            return Applied(
                "external",
                f"the bus is operator-run ({bus_url}): {path} is written with the agents' users; "
                "reload your NATS servers with it (`nats-server --signal reload`) for the change to take effect; "
                "after adding an agent, reload twice (nats-server sets up a new account's imports only at the second)",
            )
        nodes, listed = running_nodes(data_dir), _listed_nodes(data_dir)
        if not nodes:
            return Applied("not_running", "the desk is not running; the change applies at the next `deskgate up`")
        accounts = accounts_block(creds, agents)
        reloaded = []
        for pid, monitor_url, conf_path, log_path in nodes:  # every node of a cluster has the same accounts
            conf = read_config(conf_path)
            added = set(accounts) - set(conf["accounts"])
            conf["accounts"] = accounts
            write_private(conf_path, config_text(conf))
            # nats-server sets up a service import's subscriptions for an account that is new at a
            # reload only at the next one (server.go, configureAccounts: new accounts skip it while
            # reloading, existing ones are re-subscribed): an agent added now would reach no stream.
            # A second reload of the same config makes the new accounts existing ones.
            for _ in range(2 if added else 1):
                before = _config_load_time(monitor_url)
                try:
                    os.kill(pid, signal.SIGHUP)
                except ProcessLookupError:
                    break  # died meanwhile: its restart renders the registry
                _wait_reloaded(conf_path, log_path, monitor_url, before, timeout)
            else:
                reloaded.append(pid)
        pids = ", ".join(map(str, reloaded))
        if not reloaded:
            return Applied("not_running", "the desk stopped meanwhile; the change applies at the next `deskgate up`")
        if len(reloaded) < max(listed, 1):
            # A node that is down or did not answer keeps the old accounts until it is reloaded or
            # restarted: not in effect everywhere, so the supervisor applies it again (stack.py).
            return Applied("partial", f"{len(reloaded)} of {listed} nats-server nodes (pid {pids}) reloaded their config; "
                                      "the others are down or did not answer and take the change when they restart or the desk retries")
        return Applied("reloaded", f"nats-server (pid {pids}) reloaded its config: the change is in effect")


def _listed_nodes(data_dir: DataDir) -> int:
    """How many embedded nodes endpoint.json names (1 for a single server)."""
    try:
        nodes = data_dir.read_endpoint().get("nodes")
    except (FileNotFoundError, ValueError):
        return 1
    return len(nodes) if isinstance(nodes, list) else 1


def running_nodes(data_dir: DataDir) -> list[tuple[int, str, Path, Path]]:
    """(pid, monitor URL, config, log) of each embedded nats-server of this data directory that runs:
    the one server, or each live node of a cluster (a dead node's restart renders the registry)."""
    try:
        endpoint = data_dir.read_endpoint()
    except FileNotFoundError:
        return []
    if not endpoint.get("embedded"):
        return []
    if isinstance(endpoint.get("nodes"), list):
        out = []
        for node in endpoint["nodes"]:
            pid, monitor_url, conf = (node.get(k) for k in ("pid", "monitor_url", "config")) if isinstance(node, dict) else (None,) * 3
            inside = isinstance(conf, str) and Path(conf).resolve().parent.parent == data_dir.bus.resolve()  # bus/<node>/nats.conf
            if isinstance(pid, int) and inside and monitor_url and _is_server(pid, Path(conf), monitor_url):
                out.append((pid, monitor_url, Path(conf), Path(conf).with_name("nats.log")))  # bus/cluster.py's layout
        return out
    server = running_server(data_dir)
    return [(server[0], server[1], data_dir.nats_conf, data_dir.nats_log)] if server is not None else []


def running_server(data_dir: DataDir) -> tuple[int, str] | None:
    """The pid and monitor URL of this data directory's embedded nats-server, if it runs.

    A pid from an old endpoint file may belong to anything by now, even another desk's
    server: only a process started with this directory's config counts."""
    try:
        endpoint = data_dir.read_endpoint()
    except FileNotFoundError:
        return None
    pid, monitor_url = endpoint.get("pid"), endpoint.get("monitor_url")
    if not endpoint.get("embedded") or not isinstance(pid, int) or not monitor_url:
        return None
    return (pid, monitor_url) if _is_server(pid, data_dir.nats_conf, monitor_url) else None


def _is_server(pid: int, conf: Path, monitor_url: str) -> bool:
    """Alive, started with this config, and answering on its monitor."""
    if not alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().split(b"\0")
    except FileNotFoundError:
        return False  # gone meanwhile
    except OSError:
        cmdline = None  # no /proc here: ask the monitor instead
    if cmdline is not None and str(conf).encode() not in cmdline:
        return False
    try:
        _config_load_time(monitor_url)
    except BusError:
        return False
    return True


def _config_load_time(monitor_url: str) -> str:
    try:
        with urllib.request.urlopen(monitor_url + "/varz", timeout=2) as resp:
            return json.loads(resp.read())["config_load_time"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise BusError(f"cannot read the bus's monitor at {monitor_url}/varz: {exc}") from None


def _wait_reloaded(conf: Path, log: Path, monitor_url: str, before: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _config_load_time(monitor_url) != before:
            return
        time.sleep(0.05)
    raise BusError(
        f"nats-server did not confirm a reload of {conf} within {timeout:.0f}s, so the change may not be in "
        f"effect yet; see {log}:\n{_tail(log)}"
    )


def _tail(log: Path, lines: int = 10) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
