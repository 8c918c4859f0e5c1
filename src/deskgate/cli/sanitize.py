"""`deskgate sanitize --source NAME`: screen untrusted text, JSON lines in and out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, err_console, fail, handle_errors, print_json, resolve_data_dir

BATCH = 64  # lines screened together (the model embeds a batch at once); output stays line for line


@app.command()
def sanitize(
    source: str = typer.Option(..., "--source", "-s", help="Where the text comes from (named in the delimiters), e.g. reuters or desk-research."),
    explain: bool = typer.Option(False, "--explain", help="Add each layer's verdict (rules, model, judge) to every line as \"layers\"."),
    model: bool = typer.Option(True, "--model/--no-model", help="Run the learned layer beside the rules (on by default; off only with a reason)."),
    judge_url: str | None = typer.Option(None, "--judge-url", help="An OpenAI-compatible server (…/v1) to ask about what the rules and the model pass."),
    judge_model: str | None = typer.Option(None, "--judge-model", help="The judge's model name (with --judge-url)."),
    judge_key_env: str | None = typer.Option(None, "--judge-key-env", help="The environment variable holding the judge's API key."),
    judge_calls_per_hour: int = typer.Option(120, "--judge-calls-per-hour", min=1, help="At most this many judge calls per hour."),
) -> None:
    """Read {"id", "text"} JSON lines on stdin; write {"id", "flagged", "score", "reasons", "flagged_by", "text"} per line.

    Passed text comes back normalised, stripped of hidden characters and markup,
    wrapped in delimiters naming the source and datamarked; flagged text comes back
    with "text": null, the layers that flagged it and the reasons (each starting with
    its layer). A line that cannot be read (not UTF-8, not JSON, no id, empty text)
    is answered with {"line": N, "error": ...} in its place, so the output stays line
    for line with the input; the exit code is then 1.
    """
    from pydantic import ValidationError

    from deskgate.config import JudgeSettings
    from deskgate.sanitize.item import RawItem, sanitize_many, source_name
    from deskgate.sanitize.judge import Judge
    from deskgate.sanitize.model import shared_screen

    try:
        source_name(source)
    except ValueError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    judge = None
    if judge_url or judge_model:
        if not (judge_url and judge_model):
            err_console.print("[bold red]error:[/] --judge-url and --judge-model go together")
            raise typer.Exit(2)
        judge = Judge(JudgeSettings(base_url=judge_url, model=judge_model, api_key_env=judge_key_env, calls_per_hour=judge_calls_per_hour))
    learned = shared_screen() if model else None
    out = sys.stdout
    errors = 0

    def error(n: int, what: str) -> dict:
        nonlocal errors
        errors += 1
        err_console.print(f"line {n}: {what}")
        return {"line": n, "error": what}

    def screened(batch: list[tuple[int, RawItem | dict]]) -> list:
        """Each line's answer: the batch screened at once, or, if that fails, item by item,
        so one item that breaks the pipeline is answered as an error and the rest screened."""
        items = [x for _, x in batch if isinstance(x, RawItem)]
        try:
            results = iter(sanitize_many(items, source, model=learned, judge=judge))
            return [x if isinstance(x, dict) else next(results)[0] for _, x in batch]
        except (ValueError, RecursionError) as exc:
            if len(items) == 1:
                n = next(n for n, x in batch if isinstance(x, RawItem))
                return [x if isinstance(x, dict) else error(n, f"cannot be screened ({type(exc).__name__}: {str(exc)[:160]})") for _, x in batch]
            return [a for one in batch for a in screened([one])]

    def flush(batch: list[tuple[int, RawItem | dict]]) -> None:
        for answer in screened(batch):
            if isinstance(answer, dict):
                out.write(json.dumps(answer) + "\n")
            else:
                out.write(answer.model_dump_json(exclude=None if explain else {"layers"}) + "\n")
        out.flush()

    batch: list[tuple[int, RawItem | dict]] = []
    for n, raw in enumerate(sys.stdin.buffer, start=1):
        raw = raw.rstrip(b"\r\n")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            batch.append((n, error(n, f"not UTF-8: byte 0x{raw[exc.start]:02x} at position {exc.start}")))
        else:
            if not line.strip():
                batch.append((n, error(n, "empty line: expected a JSON object {\"id\", \"text\"}")))
            else:
                try:
                    batch.append((n, RawItem.model_validate_json(line)))
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    where = ".".join(map(str, first["loc"])) or "line"
                    batch.append((n, error(n, f"{where}: {first['msg']}")))
        if len(batch) >= BATCH:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    if errors:
        err_console.print(f"{errors} line(s) could not be read; everything else was screened")
        raise typer.Exit(1)


screen_app = typer.Typer(help="The injection screen's learned layer: released false positives, training.", no_args_is_help=True)
app.add_typer(screen_app, name="screen")


@screen_app.command("releases")
@handle_errors
def releases(
    export: Path = typer.Option(None, "--export", help="Write them as labelled corpus lines (JSON lines) for `deskgate screen train --extra`."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Quarantined items a principal released as false positives (kept by the market-data service)."""
    import hashlib

    from sqlalchemy import select

    from deskgate.marketdata.news import metadata, releases as table
    from deskgate.storage import make_engine

    root = resolve_data_dir(mission_path, data_dir)
    if not (root.state / "news.db").exists():
        fail(f"no news screened yet under {root.state}: the market-data service keeps releases there once it reads a feed")
    engine = make_engine(root.sqlite_url("news"))
    metadata.create_all(engine)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.released_at))]
    lines = [
        {"id": f"release-{hashlib.sha256(r['news_id'].encode()).hexdigest()[:16]}", "text": r["text"], "label": "benign",
         "technique": "released-false-positive", "language": "und", "carrier": "news", "group": f"releases/{r['source']}",
         "news_id": r["news_id"], "released_by": r["principal"], "reason": r["reason"], "flagged_by": r["flagged_by"]}
        for r in rows
    ]
    if export is not None:
        export.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
        err_console.print(f"wrote {len(lines)} released item(s) to {export}; train with `deskgate screen train --extra {export}`")
        return
    if json_out:
        print_json(lines)
        return
    from rich.table import Table

    t = Table("news id", "released by", "reason", "flagged by", "text")
    for x in lines:
        t.add_row(x["news_id"], x["released_by"], x["reason"], x["flagged_by"], x["text"][:120])
    console.print(t if lines else "no released items yet")


@screen_app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context) -> None:
    """Retrain the learned layer from the corpus (a clone of the repository): `python -m deskgate.sanitize.train`'s options."""
    from deskgate.sanitize.train import main as train_main

    raise typer.Exit(train_main(list(ctx.args)))
