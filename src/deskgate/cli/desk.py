"""Setting up and running the desk: init, up, creds, schema, service, demo."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from deskgate.cli import (
    DataDirOption,
    MissionOption,
    app,
    console,
    err_console,
    fail,
    handle_errors,
    print_json,
    resolve,
    resolve_data_dir,
)
from deskgate.config import load_mission, render_mission_template


@app.command()
@handle_errors
def init(
    directory: Path = typer.Argument(Path("."), help="Where to write mission.yaml."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing mission.yaml."),
) -> None:
    """Write a commented mission.yaml with the article's guardrails, and make the desk's credentials."""
    from deskgate.bus.credentials import ensure_credentials
    from deskgate.paths import DataDir
    from deskgate.web.metrics import metrics_token

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "mission.yaml"
    if path.exists() and not force:
        fail(f"{path} already exists (use --force to overwrite it)")
    path.write_text(render_mission_template())
    mission = load_mission(path)  # proves the template valid
    data_dir = DataDir.at(mission.data_dir)
    ensure_credentials(data_dir)
    metrics_token(data_dir)  # so a Prometheus scrape can be configured before the first `deskgate up`
    console.print(
        f"wrote [bold]{path}[/]; data directory [bold]{data_dir.root}[/] "
        "(credentials, a signing key for each role, and the metrics scrape token made)"
    )
    console.print("next: review the guardrails, then `deskgate up`")


def first_cycle_line(mission, root, now=None) -> str:
    """When the agents next run, so a quiet desk is not mistaken for a dead one."""
    from sqlalchemy.exc import SQLAlchemyError

    from deskgate.agents.desk import AgentState
    from deskgate.agents.schedule import first_due
    from deskgate.agents.service import MAX_CATCH_UP
    from deskgate.domain.base import utcnow

    now = now or utcnow()
    try:
        last = AgentState.load(root).last_cycle_at
    except (RuntimeError, SQLAlchemyError) as exc:
        return f"[yellow]agents: their saved state cannot be read ({escape(str(exc).splitlines()[0])})[/]"
    # As the agents service decides (agents/service.py): cycles missed since a recent stop run at once;
    # after a long stop, or a replay that ran ahead of now, they start from now.
    after = last if last is not None and now - MAX_CATCH_UP < last <= now else now
    kind, at = first_due(mission.agents.schedule, after)
    names = {"morning_brief": "the morning brief", "intraday": "an intraday watch", "eod_review": "the end-of-day review"}
    when = "now, catching up" if at <= now else f"at {at:%H:%M} UTC (in {round((at - now).total_seconds() / 60)} min)"
    return f"agents: the first cycle, {names[kind]}, is due {when}; each cycle then shows on the Agents page and in `deskgate agents status`"


@app.command()
@handle_errors
def up(
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
    web_port: int = typer.Option(None, "--web-port", help="Port for the Command Center (default: the mission's web.port; 0 = any free port)."),
    agents: bool = typer.Option(True, "--agents/--no-agents", help="Run the agents (off: the gated spine only, directives from the CLI)."),
    cluster: int = typer.Option(None, "--cluster", help="Run the bus as this many nats-server nodes on this machine (3, 5 or 7; "
                                "default: the mission's bus.cluster), streams replicated on 3 of them."),
) -> None:
    """Start the desk: nats-server, streams, factory, executor, market data, agents, Command Center. Ctrl-C stops it."""
    from deskgate.services import SERVICES
    from deskgate.stack import Stack

    mission, root = resolve(mission_path, data_dir)
    if web_port is not None:
        if not 0 <= web_port <= 65535:
            fail(f"--web-port {web_port} is not a port number (0-65535)")
        mission = mission.model_copy(update={"web": mission.web.model_copy(update={"port": web_port})})
    if cluster is not None:
        from pydantic import ValidationError

        from deskgate.config import BusSettings

        try:
            bus = BusSettings.model_validate({**mission.bus.model_dump(), "cluster": cluster})
        except ValidationError as exc:
            fail(f"--cluster {cluster}: {exc.errors(include_url=False)[0]['msg']}")
        mission = mission.model_copy(update={"bus": bus})
    console.print(f"[bold]deskgate[/] starting [italic]{mission.desk_name}[/] in {root.root}")
    stack = Stack(mission, root, services=tuple(n for n in SERVICES if agents or n != "agents"))
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack.start()
    try:
        shown = 0

        def show_notices() -> None:
            nonlocal shown
            for notice in stack.notices[shown:]:
                console.print(f"[bold red]warning:[/] {escape(notice)}")
            shown = len(stack.notices)

        def on_restart(name: str) -> None:
            console.print(f"[yellow]restarted {name}[/]")
            show_notices()

        show_notices()
        console.print(where_table(stack))
        if agents:
            console.print(first_cycle_line(mission, root))
        console.print("[green]desk running[/]; Ctrl-C (or SIGTERM) stops every process")
        stack.run_forever(stop, on_restart=on_restart)
    finally:
        console.print("stopping services, then the bus..." if stack.nats or stack.cluster
                      else "stopping services (the external bus keeps running)...")
        stack.stop()
        console.print("[green]stopped cleanly[/]")


@app.command("run")
@handle_errors
def run_live(
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
    web_port: int = typer.Option(None, "--web-port", help="Port for the Command Center (0 = any free port)."),
) -> None:
    """The desk against the live clock: the same as `deskgate up` (agents included). `deskgate demo` replays instead."""
    up(mission_path=mission_path, data_dir=data_dir, web_port=web_port, agents=True)


def where_table(stack) -> Table:
    d = stack.data_dir
    t = Table(title="where everything is", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("data directory", str(d.root))
    if stack.cluster is not None:
        for i, node in enumerate(stack.cluster.nodes):
            t.add_row(f"NATS node {i + 1}", f"{stack.cluster.urls[i]}  (embedded, pid {node.pid}, monitoring {node.monitor_url}, "
                      f"config and store in {stack.cluster.node_dir(i)})")
    elif stack.nats:
        t.add_row("NATS", f"{stack.url}  (embedded, pid {stack.nats.pid})")
        t.add_row("NATS monitoring", stack.nats.monitor_url)
        t.add_row("NATS config", str(d.nats_conf))
        t.add_row("JetStream store", str(d.jetstream))
    else:
        t.add_row("NATS", ",".join(stack.mission.bus.servers()) + "  (external)")
        t.add_row("server config to apply", str(d.operator_conf))
    if stack.tls is not None:
        t.add_row("NATS TLS", f"clients and routes over TLS; the desk's CA {stack.tls.ca_cert} (clients trust it), "
                  f"the server certificate {stack.tls.cert}")
    elif stack.mission.bus.tls:
        t.add_row("NATS TLS", f"clients over TLS, trusting {stack.mission.bus.tls_ca or 'the system CAs'}")
    if stack.web_url:
        t.add_row("Command Center", f"{stack.web_url}  (accounts: deskgate user add NAME --role principal)")
    for name, child in stack.children.items():
        t.add_row(f"service {name}", f"pid {child.process.pid}, log {d.log_file(name)}")
    t.add_row("state", str(d.state))
    t.add_row("credentials", f"deskgate creds ROLE --data-dir {d.root}")
    t.add_row("agent identities", f"deskgate agent list|add|revoke|rotate --data-dir {d.root}")
    return t


@app.command()
@handle_errors
def creds(
    role: str = typer.Argument(..., help="agent, factory, executor, command_center, marketdata or observer"),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Print the keyword arguments for nats.connect() that carry exactly ROLE's rights
    (for agent: the built-in `desk` agent's; other agents have their own file, `deskgate agent add`).
    On a bus with TLS they include `tls_ca`, the CA's PEM, which nats.connect() takes as
    `tls=ssl.create_default_context(cadata=...)` (`deskgate.bus.tls.nats_options` does it)."""
    from deskgate.bus.credentials import connect_kwargs
    from deskgate.bus.subjects import SERVICE_ROLES

    names = [r.value for r in SERVICE_ROLES]
    if role not in names:
        fail(f"unknown role {role!r}; one of {', '.join(names)}")
    root = resolve_data_dir(mission_path, data_dir)
    print(json.dumps(connect_kwargs(root, role)))


@app.command("bus-config")
@handle_errors
def bus_config(
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
    routes: str = typer.Option(None, "--routes", help="A cluster's nodes as HOST:PORT of their route listeners, comma-separated "
                               "(3, 5 or 7): also writes one config per node, each including the accounts."),
    store_dir: str = typer.Option("/var/lib/nats", "--store-dir", help="With --routes: where each node keeps JetStream (a directory per node)."),
    tls_cert: str = typer.Option(None, "--tls-cert", help="With --routes: each node's certificate for clients (an absolute path on the node). "
                                 "Clients must then speak TLS; the routes use it too, unless --route-tls-cert names another."),
    tls_key: str = typer.Option(None, "--tls-key", help="With --tls-cert: its private key (an absolute path on the node)."),
    tls_ca: str = typer.Option(None, "--tls-ca", help="The CA that signed the nodes' certificates (an absolute path on the node)."),
    route_tls_cert: str = typer.Option(None, "--route-tls-cert", help="The certificate a node presents on its routes (default: --tls-cert)."),
    route_tls_key: str = typer.Option(None, "--route-tls-key", help="Its key (default: --tls-key)."),
    route_tls_ca: str = typer.Option(None, "--route-tls-ca", help="The CA the routes check each other against (default: --tls-ca)."),
) -> None:
    """Print (and write to <data_dir>/bus/nats-server.conf) the authorization an external NATS needs."""
    from deskgate.bus.cluster import operator_node_configs
    from deskgate.bus.credentials import active_agents, ensure_credentials
    from deskgate.bus.server import BusError, render_operator_config, write_operator_config
    from deskgate.paths import write_private

    client_tls, route_tls = _operator_tls(routes, tls_cert, tls_key, tls_ca, route_tls_cert, route_tls_key, route_tls_ca)
    try:  # before anything is written: a key that is not the certificate's is refused here, not on three machines
        notes = [n for n in (client_tls.check("--tls-cert") if client_tls else None,
                             route_tls.check("--route-tls-cert", routes=True) if route_tls else None) if n]
    except BusError as exc:
        fail(str(exc))
    mission, root = resolve(mission_path, data_dir)
    creds = ensure_credentials(root)
    agents = active_agents(root)
    path = write_operator_config(root, creds, agents, mission.bus.max_payload_bytes)
    print(render_operator_config(creds, agents, mission.bus.max_payload_bytes), end="")
    err_console.print(f"written to {path}")
    if routes is not None:
        try:
            nodes = operator_node_configs(root, [r.strip() for r in routes.split(",") if r.strip()], path.name, store_dir,
                                          client_tls=client_tls, route_tls=route_tls)
        except BusError as exc:
            fail(str(exc))
        for name, text in nodes.items():
            write_private(path.with_name(f"{name}.conf"), text)
            err_console.print(f"written to {path.with_name(f'{name}.conf')}: copy it, with {path.name}, to that node")
        for note in notes:
            err_console.print(note)
        if client_tls is not None:
            err_console.print("clients: set bus.tls: true in mission.yaml, and bus.tls_ca to a copy of the CA file on this machine")


def _operator_tls(routes, cert, key, ca, route_cert, route_key, route_ca):
    """The TLS files bus-config puts in the node configs: for clients, and for the routes (by default the same)."""
    from deskgate.bus.tls import OperatorTLS

    given = [o for o, v in (("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca), ("--route-tls-cert", route_cert),
                            ("--route-tls-key", route_key), ("--route-tls-ca", route_ca)) if v]
    if given and routes is None:
        fail(f"{', '.join(given)}: TLS goes into the node configs, which only --routes writes")
    if bool(cert) != bool(key):
        fail("--tls-cert and --tls-key go together: the certificate and its private key")
    if ca and not cert:
        fail("--tls-ca without --tls-cert: give the nodes' certificate and key too (or --route-tls-ca for the routes alone)")
    client_tls = OperatorTLS(cert, key, ca) if cert else None
    route_cert, route_key, route_ca = route_cert or cert, route_key or key, route_ca or ca
    if not (route_cert or route_key or route_ca):
        return client_tls, None
    if not (route_cert and route_key):
        fail("route TLS needs a certificate and its key: --route-tls-cert and --route-tls-key (or --tls-cert and --tls-key)")
    if not route_ca:
        fail("route TLS needs the CA that signed every node's certificate (each node checks the others'): --tls-ca or --route-tls-ca")
    return client_tls, OperatorTLS(route_cert, route_key, route_ca)


@app.command()
def schema(what: str = typer.Argument("directive", help="directive | beliefs | approval-response")) -> None:
    """Print a wire format's JSON Schema."""
    from deskgate.domain.approval import ApprovalResponse
    from deskgate.domain.directive import Directive
    from deskgate.policy.beliefs import BeliefsFile

    models = {"directive": Directive, "beliefs": BeliefsFile, "approval-response": ApprovalResponse}
    if what not in models:
        fail(f"unknown schema {what!r}; one of {', '.join(models)}")
    print_json(models[what].model_json_schema())


@app.command(hidden=True)
def service(name: str, data_dir: Path = typer.Option(..., "--data-dir")) -> None:
    """Run one service in this process (used by `deskgate up`)."""
    from deskgate.paths import DataDir
    from deskgate.services import run_service

    run_service(name, DataDir.at(data_dir))


@app.command()
@handle_errors
def demo(
    days: int = typer.Option(5, min=1, max=365, help="Desk days to replay."),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary data directory afterwards, to browse the run."),
    model_from: Path = typer.Option(None, "--model-from", help="Draft with the model this mission.yaml names (agents.model) instead of the offline analyst."),
    record: Path = typer.Option(None, "--record", help="With --model-from: record every answer of the model to this cassette file."),
    replay_llm: Path = typer.Option(None, "--replay-llm", help="Play back the answers recorded in this cassette instead of asking a model."),
) -> None:
    """The desk, replayed: agents (offline analyst, or a model), the real bus, factory and executor, a simulated principal."""
    from deskgate.demo import run_demo

    analyst = None
    if replay_llm is not None:
        if model_from is not None or record is not None:
            fail("--replay-llm plays a cassette back: it takes neither --model-from nor --record")
        from deskgate.agents.cassette import Cassette
        from deskgate.agents.llm import LLMAnalyst
        from deskgate.config import ModelSettings

        cassette = Cassette.replay(replay_llm)
        analyst = LLMAnalyst(ModelSettings.model_validate(cassette.model), cassette=cassette)
    elif model_from is not None:
        from deskgate.agents.cassette import Cassette
        from deskgate.agents.llm import LLMAnalyst

        settings = load_mission(model_from).agents.model
        if settings.provider == "offline":
            fail(f"{model_from} names no model (agents.model.provider is offline)")
        analyst = LLMAnalyst(settings, cassette=Cassette.record(record, settings.model_dump(mode="json")) if record else None)
    elif record is not None:
        fail("--record needs --model-from: the offline analyst asks no model")
    run_demo(console, days=days, keep=keep, analyst=analyst)


@app.command()
@handle_errors
def tour(
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary data directory afterwards."),
) -> None:
    """Scripted directives through every guardrail, principals deciding, a crash tripping the breaker."""
    from deskgate.tour import run_tour

    run_tour(console, keep=keep)
