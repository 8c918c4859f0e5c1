"""`deskgate db`: the stores' schema versions, and bringing them up to date."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, fail, handle_errors, print_json, resolve

db_app = typer.Typer(help="The desk's stores (SQLite files, or PostgreSQL with storage.url): schema status and upgrades.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


def _table(rows, title: str, before: bool) -> Table:
    t = Table(title=title)
    for col in ("store", "where", *(("was",) if before else ()), "at", "newest"):
        t.add_column(col)
    for s in rows:
        t.add_row(s.store, s.where, *((s.was or "-",) if before else ()), s.now or "-", s.head)
    return t


def _desk_stopped(root):
    """The lock `deskgate up` holds while the desk runs: a running desk's stores are not
    upgraded or carried from under its services."""
    import fcntl

    fh = open(root.root / "up.lock", "a")  # "a": a running `up`'s pid in it is not wiped by looking
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        fail(f"the desk in {root.root} is running (`deskgate up` holds {root.root / 'up.lock'}); stop it first: "
             "its services upgrade their own stores as they start")
    return fh


@db_app.command("status")
@handle_errors
def status_cmd(mission_path: Path | None = MissionOption, data_dir: Path | None = DataDirOption, as_json: bool = JsonOption) -> None:
    """Each store's schema revision beside the newest this deskgate knows ("-": not made yet, or from before versions)."""
    from deskgate.stores import states

    _, root = resolve(mission_path, data_dir)
    rows = states(root)
    if as_json:
        print_json([{"store": s.store, "where": s.where, "revision": s.now, "newest": s.head} for s in rows])
        return
    console.print(_table(rows, "stores", before=False))


@db_app.command("upgrade")
@handle_errors
def upgrade_cmd(mission_path: Path | None = MissionOption, data_dir: Path | None = DataDirOption, as_json: bool = JsonOption) -> None:
    """Bring every store to the newest schema (services also do it for their own stores as they start).

    A store from before versions is adopted; one written by a newer deskgate is refused.
    With storage.url, stores that were SQLite files here are carried into PostgreSQL once."""
    from rich.progress import Progress

    from deskgate.migrations import STORES
    from deskgate.stores import upgrade_all

    mission, root = resolve(mission_path, data_dir)
    root.state.mkdir(parents=True, exist_ok=True)
    lock = _desk_stopped(root)
    try:
        root.keep_storage(mission.storage.url)  # with storage.url: the files are carried into it below
    except ValueError as exc:
        fail(str(exc))
    with lock, Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("upgrading stores", total=len(STORES))
        rows = upgrade_all(root, progress=lambda store: progress.advance(task))
    if as_json:
        print_json([{"store": s.store, "where": s.where, "was": s.was, "revision": s.now, "newest": s.head} for s in rows])
        return
    console.print(_table(rows, "stores upgraded", before=True))
