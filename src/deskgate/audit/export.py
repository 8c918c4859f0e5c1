"""Verifying an exported audit log with nothing but the file (and, optionally, trusted keys).

Line 1 is the header (format, keys, entry count, checkpoint interval, final checkpoint);
line 2 the audit key's signature over line 1's exact bytes, whatever shape its fields
take; then the entries and checkpoints, the last of which must be the header's final
checkpoint. Lines end in LF.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deskgate.audit.chain import Checkpoint, Entry, Problem, Report, verify_log
from deskgate.audit.keys import KeyStore, PublicKeys, public_from_text
from deskgate.audit.log import EXPORT_FORMAT
from deskgate.audit.pool import POOL_ABOVE
from deskgate.audit.signing import Kind, SignatureStatus, verify

UNSIGNED_FORMATS = {"deskgate-audit/1"}


class ExportError(ValueError):
    """The file is not an audit export at all; the message says what is wrong."""


class HeaderSignature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signer: str = Field(min_length=1, max_length=80)
    signature: str = Field(min_length=1, max_length=200)


def read_header(path: Path) -> dict:
    return _read_header(path)[1]


def _read_header(path: Path) -> tuple[bytes, dict]:
    """Line 1 exactly as written (what its signature covers), and what it says."""
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror or exc}") from None
    line = first[:-1] if first.endswith(b"\n") else first
    line = line[:-1] if line.endswith(b"\r") else line  # a copy that went through CRLF line endings
    try:
        header = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        raise ExportError(f"{path}: line 1 is not JSON; an export starts with its header") from None
    if isinstance(header, dict) and header.get("format") in UNSIGNED_FORMATS:
        raise ExportError(
            f"{path}: a {header['format']} export, whose header (keys, entry count, checkpoint interval) is not signed "
            "and so cannot be verified; export the log again with this version"
        )
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: line 1 is not a {EXPORT_FORMAT} header")
    return line, header


def verify_export(
    path: Path, trusted: KeyStore | PublicKeys | None = None, progress=None, *, signatures: bool = True,
    workers: int | None = None, pool_above: int = POOL_ABOVE,
) -> tuple[Report, dict]:
    """Verify an export. Signatures are checked against `trusted` keys when given (the
    desk's own), else against the keys the file carries, which proves the file is
    intact and self-consistent but not who made it; the caller says which. `workers`
    and `pool_above` as for `verify_log`."""
    header_line, header = _read_header(path)
    try:
        embedded = PublicKeys({
            s: [public_from_text(x) for x in k] if isinstance(k, list) else public_from_text(k)
            for s, k in dict(header.get("keys") or {}).items()
        })
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"{path}: the header's keys cannot be read ({exc})") from None
    keys = trusted or embedded
    cps: list[Checkpoint] = []

    def lines(entries: bool = True):
        """Each line's item, or why it cannot be read. `entries=False`, for the first pass,
        which wants only the checkpoints and the header's signature: an entry's line is
        not validated, nor even parsed when it starts as the export writes it (whatever
        follows, such a line is an entry or unreadable, and the first pass skips both)."""
        with path.open(encoding="utf-8", errors="replace", newline="\n") as fh:
            fh.readline()
            for n, line in enumerate(fh, start=2):
                if not line.strip() or (not entries and line.startswith('{"entry"')):
                    continue
                try:
                    obj = json.loads(line)
                    if "entry" in obj:
                        yield n, Entry.model_validate(obj["entry"]) if entries else None
                    elif "checkpoint" in obj:
                        yield n, Checkpoint.model_validate(obj["checkpoint"])
                    elif "header_signature" in obj:
                        yield n, HeaderSignature.model_validate(obj["header_signature"])
                    else:
                        raise ValueError("neither an entry, a checkpoint nor the header's signature")
                except (ValueError, TypeError, ValidationError, AttributeError, RecursionError) as exc:
                    yield n, f"line {n} cannot be read ({str(exc).splitlines()[0][:120]})"

    seals: list[tuple[int, HeaderSignature]] = []
    for n, item in lines(entries=False):
        if isinstance(item, Checkpoint):
            cps.append(item)
        elif isinstance(item, HeaderSignature):
            seals.append((n, item))

    def entries():
        last = 0
        for n, item in lines():
            if isinstance(item, str):
                yield Problem(seq=last + 1, what=item)  # the chain cannot be followed past an unreadable line
                return
            if isinstance(item, Entry):
                last = item.seq
                yield item

    every = header.get("checkpoint_every")
    report = verify_log(
        entries(), cps, keys, progress=progress, signatures=signatures,
        checkpoint_every=every if isinstance(every, int) and every > 0 else None, final_checkpoint=True,
        workers=workers, pool_above=pool_above,
    )
    unsigned = _unsigned_header(header_line, seals, keys)  # first: the rest rests on the header
    report.problems = ([unsigned] if unsigned else []) + report.problems
    if header.get("entries") is not None and report.entries != header["entries"] and not report.problems:
        report.problems.append(Problem(seq=None, what=f"the header says {header['entries']} entries, the file has {report.entries}"))
    if not report.problems:
        report.problems += _other_contents(header, cps)
    return report, header


def _unsigned_header(header_line: bytes, seals: list[tuple[int, HeaderSignature]], keys) -> Problem | None:
    """Why the header cannot be trusted, if it cannot: its signature is missing or not the audit key's over its bytes."""
    if not seals:
        return Problem(seq=None, what="the header is not signed (no header_signature line): its keys, entry count and checkpoint interval cannot be trusted")
    if len(seals) > 1 or seals[0][0] != 2:
        return Problem(seq=None, what=f"the header's signature must be line 2, once; found on line(s) {', '.join(str(n) for n, _ in seals)}")
    seal = seals[0][1]
    status = verify(keys, Kind.EXPORT_HEADER, header_line, seal.signer, seal.signature, expect="audit")
    if status is SignatureStatus.VALID:
        return None
    return Problem(
        seq=None,
        what=f"the header's signature is {status.value}: the header (format, keys, entry count, checkpoint interval, final checkpoint) "
        "was changed after export, or is not the audit key's",
    )


def _other_contents(header: dict, cps: list[Checkpoint]) -> list[Problem]:
    """A signed header names the export's last checkpoint; a file ending elsewhere is not that export."""
    last = max(cps, key=lambda cp: cp.size, default=None)
    if (json.loads(last.body()) if last else None) == header.get("final_checkpoint"):
        return []
    named = header.get("final_checkpoint")
    size = named.get("size") if isinstance(named, dict) else 0
    return [
        Problem(
            seq=None,
            what=f"the file ends on a checkpoint covering {last.size if last else 0} entries, not on the one its signed header names "
            f"(covering {size!r}): entries or checkpoints were removed, added or changed",
        )
    ]
