"""Looking inside the agents' memory: `deskgate memory core | search QUERY | archival QUERY`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, fail, handle_errors, print_json, resolve_data_dir
from deskgate.cli.tables import compact_table, id_column, text_column, value_column

memory_app = typer.Typer(help="The agents' memory (core blocks, recall, archival).", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


def _open(mission_path, data_dir):
    from deskgate.memory.store import Memory

    root = resolve_data_dir(mission_path, data_dir)
    if not root.memory_db.exists():
        fail(f"no memory yet at {root.memory_db}; the agents write it when they run")
    return Memory.open(root.memory_db, read_only=True)  # looking in changes nothing


def _when(value: str | None, what: str) -> datetime | None:
    from deskgate.web.periods import PeriodError, parse_day_or_time

    if value is None:
        return None
    try:
        return parse_day_or_time(value, f"--{what}")
    except PeriodError as exc:
        fail(str(exc))


@memory_app.command("core")
@handle_errors
def core(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """The core blocks the agents keep in their context, with their size limits."""
    blocks = _open(mission_path, data_dir).core()
    if json_out:
        print_json([{"label": b.label, "value": b.value, "chars": b.used, "limit": b.limit, "version": b.version,
                     "updated_at": b.updated_at} for b in blocks])
        return
    t = Table("block", "content", "size", "edits", "updated")
    for b in blocks:
        t.add_row(b.label, escape(b.value) or "[dim](empty)[/]", f"{b.used}/{b.limit}", str(b.version), f"{b.updated_at:%Y-%m-%d %H:%M}")
    console.print(t)


@memory_app.command("search")
@handle_errors
def search(
    query: str = typer.Argument(..., help="Words that must all appear."),
    since: str = typer.Option(None, "--since", help="From this date or time (UTC unless a zone is given)."),
    until: str = typer.Option(None, "--until", help="Before this date or time."),
    kind: list[str] = typer.Option(None, "--kind", help="observation, insight, principle, directive, outcome, review, summary, note."),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Search recall memory (every observation, insight, directive and outcome), newest first."""
    from deskgate.memory.store import MemoryError_

    memory = _open(mission_path, data_dir)
    try:
        found = memory.search(query, since=_when(since, "since"), until=_when(until, "until"), kinds=kind or None, limit=limit)
    except MemoryError_ as exc:
        fail(str(exc))
    if json_out:
        print_json([e.__dict__ for e in found])
        return
    console.print(recall_table(found) if found else escape(f"nothing in recall matches {query!r}"))


def recall_table(entries) -> Table:
    t = compact_table()
    value_column(t, "#", justify="right")
    text_column(t, "when (UTC)")
    value_column(t, "kind")
    text_column(t, "text")
    id_column(t, "ref")
    for e in entries:
        t.add_row(str(e.id), f"{e.at:%Y-%m-%d %H:%M}", e.kind, escape(e.text), escape(e.ref or ""))
    return t


@memory_app.command("archival")
@handle_errors
def archival(
    query: str = typer.Argument(None, help="Words that must all appear (omit to list by tag or newest)."),
    tag: list[str] = typer.Option(None, "--tag", help="Only documents with this tag (repeatable)."),
    limit: int = typer.Option(10, "--limit", min=1, max=200),
    full: bool = typer.Option(False, "--full", help="Print whole documents."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Search archival memory: end-of-day reviews, post-trade analyses, regime notes."""
    from deskgate.memory.store import MemoryError_

    memory = _open(mission_path, data_dir)
    try:
        docs = memory.archival_search(query, tags=tag or None, limit=limit)
    except MemoryError_ as exc:
        fail(str(exc))
    if json_out:
        print_json([d.__dict__ for d in docs])
        return
    if not docs:
        console.print("no archival documents match")
    for d in docs:
        console.rule(f"#{d.id} {escape(d.title)}  [dim]{d.at:%Y-%m-%d %H:%M} UTC  tags: {' '.join(d.tags) or '-'}[/]")
        console.print(d.text if full or len(d.text) <= 600 else d.text[:600] + " …", highlight=False)
