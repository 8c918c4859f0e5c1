"""Looking inside the agents' memory: `deskgate memory core | search QUERY | find QUESTION | archival QUERY | embed`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, fail, handle_errors, print_json, resolve, resolve_data_dir
from deskgate.cli.tables import compact_table, id_column, text_column, value_column

memory_app = typer.Typer(help="The agents' memory (core blocks, recall, archival).", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


def _open(mission_path, data_dir, *, read_only: bool = True, embedder: bool = False):
    from deskgate.memory.embedding import embedder_from
    from deskgate.memory.store import Memory

    mission, root = resolve(mission_path, data_dir) if embedder else (None, resolve_data_dir(mission_path, data_dir))
    if not root.memory_db.exists() and root.storage_url() is None:
        fail(f"no memory yet at {root.memory_db}; the agents write it when they run")
    # Looking in changes nothing; the embedder is the mission's, so questions meet the vectors the agents wrote.
    return Memory.for_desk(root, read_only=read_only, embedder=embedder_from(mission.memory.embedder) if embedder else None)


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


@memory_app.command("find")
@handle_errors
def find(
    question: str = typer.Argument(..., help="A question or a few words: entries are found by words and by meaning."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid (words and meaning), text (words only) or semantic (meaning only)."),
    since: str = typer.Option(None, "--since", help="From this date or time (UTC unless a zone is given)."),
    until: str = typer.Option(None, "--until", help="Before this date or time."),
    kind: list[str] = typer.Option(None, "--kind", help="observation, insight, principle, directive, outcome, review, summary, note."),
    archival_docs: bool = typer.Option(False, "--archival", help="Search archival documents instead of recall."),
    tag: list[str] = typer.Option(None, "--tag", help="With --archival: only documents with this tag (repeatable)."),
    limit: int = typer.Option(10, "--limit", min=1, max=100),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Find what memory holds on a question, best first: what the agents' memory tools return."""
    from deskgate.memory.store import MemoryError_

    memory = _open(mission_path, data_dir, embedder=mode != "text")
    try:
        if archival_docs:
            hits = memory.find_documents(question, mode=mode, tags=tag or None, limit=limit)
        else:
            hits = memory.find(question, mode=mode, since=_when(since, "since"), until=_when(until, "until"), kinds=kind or None, limit=limit)
    except MemoryError_ as exc:
        fail(str(exc))
    if json_out:
        print_json([{"score": h.score, "word_rank": h.word_rank, "meaning_rank": h.meaning_rank, "similarity": h.similarity, **h.entry.__dict__}
                    for h in hits])
        return
    if not hits:
        console.print(escape(f"nothing in {'archival' if archival_docs else 'recall'} for {question!r}"))
        return
    t = compact_table()
    value_column(t, "#", justify="right")
    text_column(t, "when (UTC)")
    value_column(t, "why")
    text_column(t, "title" if archival_docs else "text")
    for h in hits:
        why = " ".join(x for x in (f"words {h.word_rank}" if h.word_rank else "", f"meaning {h.meaning_rank} ({h.similarity:.2f})" if h.meaning_rank else "") if x)
        body = f"{h.entry.title}: {h.entry.text[:200]}" if archival_docs else f"[{h.entry.kind}] {h.entry.text}"
        t.add_row(str(h.entry.id), f"{h.entry.at:%Y-%m-%d %H:%M}", why, escape(body))
    console.print(t)


@memory_app.command("embed")
@handle_errors
def embed(
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Also try again the entries this model could not embed on their own."),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Give every entry still without one its vector (written while the embedder was down, or under another model)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from deskgate.memory.embedding import EmbeddingError

    memory = _open(mission_path, data_dir, read_only=False, embedder=True)
    if memory.vectors is None:
        fail("memory.embedder.kind is none in the mission: there is nothing to embed with")
    if retry_failed:
        console.print(f"{memory.vectors.retry_failed()} entries set aside earlier are pending again")
    elif failed := memory.vectors.failures():
        console.print(f"[yellow]{len(failed)} entries could not be embedded on their own (first: {escape(failed[0]['error'][:200])}); "
                      "--retry-failed tries them again[/]")
    todo = {kind: len(memory.vectors.pending(kind)) for kind in ("recall", "archival")}
    if not any(todo.values()):
        console.print(f"every entry has its vector ({memory.vectors.embedder.model})")
        return
    with Progress(TextColumn("embedding {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
        tasks = {kind: bar.add_task(kind, total=n) for kind, n in todo.items()}
        try:
            done = memory.embed_pending(progress=lambda kind, n: bar.advance(tasks[kind], n))
        except EmbeddingError as exc:
            fail(f"{exc}; what was embedded before it failed is kept: run again once it answers")
    console.print(f"embedded {done} entries with {memory.vectors.embedder.model}")
