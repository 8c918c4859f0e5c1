"""`deskgate bus`: the embedded bus's own chores; `move` carries a desk's streams to a cluster."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, fail, handle_errors, print_json, resolve

bus_app = typer.Typer(help="The embedded bus (nats-server): moving a desk's streams to a cluster.", no_args_is_help=True)
app.add_typer(bus_app, name="bus")


@bus_app.command("move")
@handle_errors
def move_cmd(
    to: str = typer.Option(..., "--to", help="Where the streams go: `cluster` (from the desk's one nats-server)."),
    nodes: int = typer.Option(None, "--nodes", help="The cluster's nodes: 3, 5 or 7 (default: the mission's bus.cluster, or 3)."),
    mission_path: Path | None = MissionOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Move every stream, KV bucket and durable consumer from the desk's one nats-server to a cluster
    on this machine, with every message's sequence number, headers and time, and each durable's
    position. The desk must be stopped. Each stream is checked on the cluster before the old store
    is renamed (never deleted); one that fails stops the move and leaves the old store in use."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from deskgate.bus.move import move_to_cluster

    if to == "one-server":
        fail("moving a cluster's streams back to one nats-server is not built yet: keep the desk a cluster "
             "(bus.cluster), or start one server on a new data directory")
    if to != "cluster":
        fail(f"--to {to!r}: the streams can be moved to `cluster` only")
    mission, root = resolve(mission_path, data_dir)
    nodes = nodes or (mission.bus.cluster if mission.bus.cluster > 1 else 3)
    with Progress(TextColumn("{task.description:<32}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=as_json) as progress:
        tasks: dict[str, int] = {}

        def on_streams(names: list[str]) -> None:
            for name in names:
                tasks[name] = progress.add_task(f"{name}: waiting", total=None)

        def on_step(stream: str, phase: str, done: int, total: int | None) -> None:
            progress.update(tasks[stream], description=f"{stream}: {phase}", completed=done, total=total)

        report = move_to_cluster(root, mission, nodes=nodes, progress=on_step, on_streams=on_streams)
    if as_json:
        print_json({"nodes": report.nodes, "replicas": report.replicas, "old_store": str(report.old_store), "at": report.at,
                    "streams": [vars(s) for s in report.streams]})
        return
    table = Table(title=f"streams moved to a {report.nodes}-node cluster, {report.replicas} copies each, every message checked")
    for col in ("stream", "messages", "sequences", "snapshot", "durables (acknowledged up to)"):
        table.add_column(col)
    for s in report.streams:
        durables = ", ".join(f"{name} {pos['ack_floor.stream_seq']}" for name, pos in s.consumers.items()) or "-"
        table.add_row(s.name, str(s.messages), f"{s.first_seq}..{s.last_seq}" if s.messages else f"none (last {s.last_seq})",
                      f"{s.snapshot_bytes:,} B", durables)
    console.print(table)
    console.print(f"the one server's store is kept, renamed, at [bold]{report.old_store}[/]")
    console.print(f"next: start the desk as a cluster: `bus.cluster: {report.nodes}` in mission.yaml, or `deskgate up --cluster {report.nodes}`")
