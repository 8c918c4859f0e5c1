"""Agent identities: `deskgate agent add | list | revoke | rotate`.

Each agent is its own NATS account and user, with the agent role's rights, and its own Ed25519
key (identity/registry.py). A change takes effect on the running desk at once: the
embedded nats-server's config is rendered again and reloaded (bus/reload.py), which
closes a revoked agent's connections and refuses a rotated agent's old password.

The built-in agent `desk` (the desk's own agents run as it) cannot be revoked: a
desk refuses to start with it revoked; run `deskgate up --no-agents` to run without
the built-in agents. It can be rotated (its file stays in the data directory, where
the desk reads it), and a running desk's agents service is restarted to pick up the
new credentials.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, err_console, fail, handle_errors, print_json, resolve
from deskgate.cli.tables import compact_table, id_column, value_column

agent_app = typer.Typer(
    help="Agent identities: each agent its own bus user and signing key, revocable at once.", no_args_is_help=True
)
app.add_typer(agent_app, name="agent")

OutOption = typer.Option(None, "--out", "-o", help="Where to write the credentials file (default: <data_dir>/agents/NAME.json).")
ServerOption = typer.Option(
    None,
    "--server",
    help="A bus URL to put in the credentials file (repeat for several); default: where the desk's bus runs.",
)

# Exit code when the registry changed but the running bus did not confirm it (as `approvals
# approve` exits 3 when the factory does not answer): the change is made, its effect unknown.
UNCONFIRMED = 3


def _registry(root):
    from deskgate.identity.registry import AgentRegistry

    root.ensure()
    return AgentRegistry.open(root)


def _servers(mission, root, given: list[str] | None) -> list[str]:
    """The bus URLs an agent is told to use: as given, else where the desk's bus was last
    (endpoint.json), else the mission's bus.url, else the mission's pinned host:port."""
    if given:
        return list(given)
    try:
        servers = root.read_endpoint().get("servers")
    except (FileNotFoundError, ValueError):
        servers = None
    if servers:
        return list(servers)
    if mission.bus.url:
        return mission.bus.servers()
    if mission.bus.port:
        from deskgate.bus.server import client_host

        return [f"{'tls' if mission.bus.tls else 'nats'}://{client_host(mission.bus.host)}:{mission.bus.port}"]
    fail(
        f"no bus address to put in the credentials: the desk in {root.root} has never run and mission.yaml sets neither "
        "bus.url nor bus.port; start it once (`deskgate up`), pin bus.port, or give --server nats://HOST:PORT"
    )
    raise AssertionError  # unreachable: fail() exits


def _tls(mission, root) -> dict:
    """What an agent's credentials file says of the bus's TLS: whether it is on, and the CA's PEM, so
    the agent trusts exactly this desk's bus. On when where the bus last ran (endpoint.json) or the
    mission says so: a desk last run in plaintext whose mission now sets bus.tls starts with TLS, and
    credentials without it would be refused there (or send the password to a plaintext impostor)."""
    from deskgate.bus.reload import config_lock
    from deskgate.bus.tls import ensure_desk_tls, read_ca

    try:
        endpoint = root.read_endpoint()
    except (FileNotFoundError, ValueError):
        endpoint = None
    if isinstance(endpoint, dict) and endpoint.get("tls"):
        return {"tls": True, "tls_ca": read_ca(endpoint["tls_ca"]) if endpoint.get("tls_ca") else None}
    if not mission.bus.tls:
        return {}
    if mission.bus.url:
        return {"tls": True, "tls_ca": read_ca(mission.bus.tls_ca, "bus.tls_ca") if mission.bus.tls_ca else None}
    # The CA the desk's bus will use, made now if it never ran with TLS: under the lock `deskgate up` writes it with.
    with config_lock(root.ensure()):
        files = ensure_desk_tls(root, mission.bus.host, mission.bus.tls_names)
    return {"tls": True, "tls_ca": read_ca(files.ca_cert)}


def _tls_servers(servers: list[str], tls: dict, given: list[str] | None) -> list[str]:
    """With TLS on, the desk's nats:// addresses (from a plaintext run) as tls://; --server as given."""
    from deskgate.bus.tls import tls_url

    if not tls or given:
        return servers
    return [tls_url(s) if s.startswith("nats://") else s for s in servers]


def _replaceable(path: Path, name: str) -> bool:
    """Whether `path` may be overwritten by NAME's new credentials: only NAME's own old file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("agent") == name


def _target(root, name: str, out: Path | None, *, rotating: bool) -> tuple[Path, bool]:
    """The credentials file to write and whether it replaces one: checked before the registry
    changes, so a refused path never leaves an agent whose secrets went nowhere."""
    from deskgate.identity.registry import default_credentials_path

    path = Path(out).expanduser().resolve() if out is not None else default_credentials_path(root, name)
    if path.is_dir():
        fail(f"--out {path} is a directory; give the credentials file's path")
    if not path.exists():
        return path, False
    if rotating and _replaceable(path, name):
        return path, True
    whose = f" and is not agent {name}'s old credentials file" if rotating else ""
    fail(f"{path} exists{whose}; refusing to overwrite it (choose another --out)")
    raise AssertionError  # unreachable


def _write(path: Path, creds, replace: bool, done: str) -> None:
    from deskgate.identity.credentials import write_credentials

    try:
        write_credentials(path, creds, replace=replace)
    except OSError as exc:
        fail(
            f"agent {creds.agent} was {done}, but its credentials could not be written to {path} ({exc.strerror or exc}); "
            f"`deskgate agent rotate {creds.agent} --out FILE` issues new ones"
        )


def _apply(mission, root, what: str) -> dict:
    """Bring the running bus in line with the registry; exit 3 if it did not confirm."""
    from deskgate.bus.reload import apply_agents
    from deskgate.bus.server import BusError

    try:
        applied = apply_agents(root, bus_url=mission.bus.url, max_payload=mission.bus.max_payload_bytes)
    except BusError as exc:
        fail(f"{what} in the registry, but the bus did not take the change: {exc}", code=UNCONFIRMED)
    return {"bus": applied.how, "bus_detail": applied.detail}


def _show_applied(result: dict) -> None:
    colour = {"reloaded": "green", "not_running": "yellow", "external": "yellow"}[result["bus"]]
    console.print(f"[{colour}]bus:[/] {escape(result['bus_detail'])}")


def _usage(path: Path) -> str:
    return (
        f"use it: `deskgate mcp --agent-credentials {path}` (an MCP server with this agent's rights), "
        "or connect from it with `deskgate.client`; keep it 0600, it is the only copy of the agent's secrets"
    )


@agent_app.command("add")
@handle_errors
def add(
    name: str = typer.Argument(..., help="The agent's name: 1-64 lower-case letters, digits, '_' or '-'."),
    out: Path = OutOption,
    server: list[str] = ServerOption,
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Make an agent identity: its own bus user and signing key, and its credentials file (0600)."""
    from deskgate.identity.names import check_agent_name
    from deskgate.identity.registry import IdentityError

    check_agent_name(name)
    mission, root = resolve(mission_path, data_dir)
    servers = _servers(mission, root, server)
    registry = _registry(root)
    if (existing := registry.get(name)) is not None:
        state = "revoked" if existing.revoked else "active"
        raise IdentityError(f"an agent named {name} exists ({state}); names are never reused, so its past stays attributable")
    path, _ = _target(root, name, out, rotating=False)
    tls = _tls(mission, root)
    servers = _tls_servers(servers, tls, server)
    creds = registry.add(name, servers).model_copy(update=tls)
    _write(path, creds, False, "added")
    result = {"agent": name, "credentials_file": str(path), "key_id": creds.key_id, "servers": servers, **_apply(mission, root, f"agent {name} was added")}
    if json_out:
        print_json(result)
        return
    console.print(f"added agent [bold]{escape(name)}[/] (bus user {creds.user}, key {creds.key_id})")
    console.print(f"credentials: [bold]{escape(str(path))}[/] (0600)")
    console.print(escape(_usage(path)))
    _show_applied(result)


@agent_app.command("list")
@handle_errors
def list_(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """Every agent identity: active or revoked, its current key, when it was made and revoked."""
    _, root = resolve(mission_path, data_dir)
    agents = _registry(root).all()
    rows = [
        {
            "name": a.name,
            "state": "revoked" if a.revoked else "active",
            "current_key": a.current_key.key_id if a.current_key else None,
            "created_at": a.created_at,
            "revoked_at": a.revoked_at,
            "revoked_by": a.revoked_by,
            "keys": len(a.keys),
            "nats_user": a.nats_user,
        }
        for a in agents
    ]
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no agents yet; `deskgate init` makes the built-in one (desk), `deskgate agent add NAME` another")
        return
    t = compact_table()
    id_column(t, "name")
    value_column(t, "state")
    id_column(t, "current key")
    value_column(t, "created")
    value_column(t, "revoked")
    value_column(t, "keys", justify="right")
    for r in rows:
        t.add_row(
            escape(r["name"]),
            "[red]revoked[/]" if r["state"] == "revoked" else "active",
            r["current_key"] or "-",
            f"{r['created_at']:%Y-%m-%d %H:%M}",
            f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "-",
            str(r["keys"]),
        )
    console.print(t)
    console.print("times in UTC")


@agent_app.command("revoke")
@handle_errors
def revoke(
    name: str = typer.Argument(..., help="The agent to cut off."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Cut an agent off at once: its bus user goes (its connections are closed), its key signs no new directive.

    Its keys stay to verify what it signed before; its name is never reused."""
    from deskgate.cli import principal_name
    from deskgate.identity.names import BUILT_IN_AGENT, check_agent_name

    check_agent_name(name)
    if name == BUILT_IN_AGENT:
        fail(
            f"the built-in agent {BUILT_IN_AGENT} cannot be revoked: the desk's own agents run as it, and a desk refuses to start "
            f"without it. Run `deskgate up --no-agents` to run without them, or `deskgate agent rotate {BUILT_IN_AGENT}` if its "
            "credentials leaked"
        )
    mission, root = resolve(mission_path, data_dir)
    ident = _registry(root).revoke(name, by=principal_name(None))
    result = {"agent": name, "revoked_at": ident.revoked_at, **_apply(mission, root, f"agent {name} was revoked")}
    if json_out:
        print_json(result)
        return
    console.print(f"revoked agent [bold]{escape(name)}[/]: its directives are refused from now on, its past stays verifiable")
    _show_applied(result)


@agent_app.command("rotate")
@handle_errors
def rotate(
    name: str = typer.Argument(..., help="The agent whose key and bus password are replaced."),
    out: Path = OutOption,
    server: list[str] = ServerOption,
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """A new signing key and bus password in a new credentials file; the old file stops working.

    The old key still verifies what it signed before."""
    from deskgate.identity.names import BUILT_IN_AGENT, check_agent_name
    from deskgate.identity.registry import IdentityError
    from deskgate.stack import restart_service

    check_agent_name(name)
    mission, root = resolve(mission_path, data_dir)
    registry = _registry(root)
    if (ident := registry.get(name)) is None or ident.revoked:
        revoked = "; a revoked agent cannot be rotated back in (add a new agent)" if ident is not None else ""
        raise IdentityError(f"{registry.refusal(name)}{revoked}")
    if name == BUILT_IN_AGENT:
        if out is not None or server:
            fail(f"the built-in agent {BUILT_IN_AGENT}'s credentials stay in the data directory, where the desk reads them: no --out or --server")
        servers = []
    else:
        servers = _servers(mission, root, server)
    path, replace = _target(root, name, out, rotating=True)
    tls = _tls(mission, root) if name != BUILT_IN_AGENT else {}  # the desk's own agents read it from endpoint.json
    servers = _tls_servers(servers, tls, server)
    creds = registry.rotate(name, servers).model_copy(update=tls)
    _write(path, creds, replace, "rotated")
    result = {"agent": name, "credentials_file": str(path), "key_id": creds.key_id, "servers": servers, **_apply(mission, root, f"agent {name} was rotated")}
    restarted = restart_service(root, "agents") if name == BUILT_IN_AGENT else None
    result["restarted_service_pid"] = restarted
    if json_out:
        print_json(result)
        return
    console.print(f"rotated agent [bold]{escape(name)}[/]: new key {creds.key_id}; every copy of its old credentials is refused from now on")
    console.print(f"credentials: [bold]{escape(str(path))}[/] (0600)")
    if name != BUILT_IN_AGENT:
        console.print(escape(_usage(path)))
    _show_applied(result)
    if restarted:
        err_console.print(f"the desk's agents service (pid {restarted}) is restarting with the new credentials")
