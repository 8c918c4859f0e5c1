"""Verifying an exported audit log with nothing but the file (and, optionally, trusted keys)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from deskgate.audit.chain import Checkpoint, Entry, Problem, Report, verify_log
from deskgate.audit.keys import KeyStore, PublicKeys, public_from_text
from deskgate.audit.log import EXPORT_FORMAT


class ExportError(ValueError):
    """The file is not an audit export at all; the message says what is wrong."""


def read_header(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as fh:
            first = fh.readline()
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(first)
    except ValueError:
        raise ExportError(f"{path}: line 1 is not JSON; an export starts with its header") from None
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: line 1 is not a {EXPORT_FORMAT} header")
    return header


def verify_export(
    path: Path, trusted: KeyStore | PublicKeys | None = None, progress=None, *, signatures: bool = True
) -> tuple[Report, dict]:
    """Verify an export. Signatures are checked against `trusted` keys when given (the
    desk's own), else against the keys the file carries, which proves the file is
    intact and self-consistent but not who made it; the caller says which."""
    header = read_header(path)
    try:
        embedded = PublicKeys({s: public_from_text(k) for s, k in dict(header.get("keys") or {}).items()})
    except (ValueError, TypeError) as exc:
        raise ExportError(f"{path}: the header's keys cannot be read ({exc})") from None
    keys = trusted or embedded
    bad_lines: list[Problem] = []
    cps: list[Checkpoint] = []

    def lines():
        with path.open(encoding="utf-8", errors="replace") as fh:
            fh.readline()
            for n, line in enumerate(fh, start=2):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if "entry" in obj:
                        yield n, Entry.model_validate(obj["entry"])
                    elif "checkpoint" in obj:
                        yield n, Checkpoint.model_validate(obj["checkpoint"])
                    else:
                        raise ValueError("neither an entry nor a checkpoint")
                except (ValueError, TypeError, ValidationError, AttributeError) as exc:
                    yield n, f"line {n} cannot be read ({str(exc).splitlines()[0][:120]})"

    for n, item in lines():
        if isinstance(item, Checkpoint):
            cps.append(item)
    state = {"last": 0}

    def entries():
        for n, item in lines():
            if isinstance(item, str):
                bad_lines.append(Problem(seq=state["last"] + 1, what=item))
                return  # the chain cannot be followed past an unreadable line
            if isinstance(item, Entry):
                state["last"] = item.seq
                yield item

    every = header.get("checkpoint_every")
    report = verify_log(
        entries(), cps, keys, progress=progress, signatures=signatures,
        checkpoint_every=every if isinstance(every, int) and every > 0 else None, final_checkpoint=True,
    )
    if bad_lines:
        report.problems = bad_lines + report.problems
    if header.get("entries") is not None and report.entries != header["entries"] and not report.problems:
        report.problems.append(Problem(seq=None, what=f"the header says {header['entries']} entries, the file has {report.entries}"))
    return report, header
