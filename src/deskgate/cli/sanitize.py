"""`deskgate sanitize --source NAME`: screen untrusted text, JSON lines in and out."""

from __future__ import annotations

import json
import sys

import typer

from deskgate.cli import app, err_console


@app.command()
def sanitize(
    source: str = typer.Option(..., "--source", "-s", help="Where the text comes from (named in the delimiters), e.g. reuters or desk-research."),
) -> None:
    """Read {"id", "text"} JSON lines on stdin; write {"id", "flagged", "score", "reasons", "text"} per line.

    Passed text comes back normalised, stripped of hidden characters and markup,
    wrapped in delimiters naming the source and datamarked; flagged text comes back
    with "text": null and the reasons. A line that cannot be read is answered with
    {"line": N, "error": ...} in its place, so the output stays line for line with
    the input; the exit code is then 1.
    """
    from pydantic import ValidationError

    from deskgate.sanitize.item import RawItem, source_name
    from deskgate.sanitize.item import sanitize as run

    try:
        source_name(source)
    except ValueError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    errors = 0
    out = sys.stdout
    for n, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = RawItem.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(map(str, first["loc"])) or "line"
            errors += 1
            err_console.print(f"line {n}: {where}: {first['msg']}")
            out.write(json.dumps({"line": n, "error": f"{where}: {first['msg']}"}) + "\n")
            continue
        out.write(run(item, source).model_dump_json() + "\n")
    out.flush()
    if errors:
        err_console.print(f"{errors} line(s) could not be read; everything else was screened")
        raise typer.Exit(1)
