"""`deskgate keys` and `deskgate audit`: signing keys, and proving the decision chain."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, fail, handle_errors, print_json, resolve

keys_app = typer.Typer(help="Ed25519 signing keys: one per role, one per principal.", no_args_is_help=True)
audit_app = typer.Typer(help="The signed, hash-chained audit log of the decision chain.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


def _progress(what: str) -> Progress:
    return Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True)


def _open_log(mission_path: Path | None, data_dir: Path | None):
    from deskgate.audit.log import AuditLog

    mission, root = resolve(mission_path, data_dir)
    if not root.audit_db.exists() and not mission.storage.url:
        fail(f"no audit log in {root.root} yet; `deskgate up` runs the audit service that writes it")
    return AuditLog.open(root, mission.storage.url)


@keys_app.command("list")
@handle_errors
def keys_list(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """Every signer's public key fingerprint, and whether its private key is here."""
    from deskgate.audit.keys import KeyStore, fingerprint

    _, root = resolve(mission_path, data_dir)
    ks = KeyStore(root.keys)
    rows = [(s, fingerprint(k), ks.has_private(s)) for s, k in ks.all_public().items()]
    if json_out:
        print_json([{"signer": s, "fingerprint": f, "private_key_here": p} for s, f, p in rows])
        return
    t = Table("signer", "fingerprint", "private key")
    for s, f, p in rows:
        t.add_row(s, f, "here (0600)" if p else "[yellow]not on this machine[/]")
    console.print(t if rows else f"no keys in {ks.root}; `deskgate init` makes the roles' keys")


@keys_app.command("principal")
@handle_errors
def keys_principal(
    name: str = typer.Argument(..., help="The principal's account name."),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Make a principal's own signing key (done by `deskgate user add` for principals and admins)."""
    from deskgate.audit.keys import KeyStore, fingerprint, principal_signer
    from deskgate.web.accounts import AccountError, normalise_name

    try:
        name = normalise_name(name)
    except AccountError as exc:
        fail(str(exc))
    _, root = resolve(mission_path, data_dir)
    ks = KeyStore(root.keys)
    signer = principal_signer(name)
    if ks.has_private(signer):
        fail(f"{name} already has a signing key ({fingerprint(ks.public(signer))}); keys are never replaced silently")
    console.print(f"made a signing key for [bold]{signer}[/] ({fingerprint(ks.create(signer))})")


@audit_app.command("verify")
@handle_errors
def audit_verify(
    file: Path = typer.Option(None, "--file", "-f", help="Verify an export (JSON lines) instead of the desk's log; no database needed."),
    keys_dir: Path = typer.Option(None, "--keys", help="Check signatures against this key directory (the desk's keys/) instead of the keys the export carries."),
    strict: bool = typer.Option(False, "--strict", help="Also fail when the log holds messages whose signatures did not verify when they arrived."),
    signatures: bool = typer.Option(True, "--signatures/--no-signatures", help="Re-verify every message's Ed25519 signature (slow); off: the chain and the audit key's signed checkpoints only."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Check every signature, the hash chain and every signed Merkle checkpoint; name the first bad entry."""
    from deskgate.audit.keys import KeyStore

    trusted_note = ""
    if file is not None:
        from deskgate.audit.export import ExportError, read_header, verify_export

        try:
            total = read_header(file).get("entries")
            total = total if isinstance(total, int) and total >= 0 else None  # unverified yet: only a hint for the bar
            trusted = KeyStore(keys_dir) if keys_dir is not None else None
            with _progress("verifying") as bar:
                task = bar.add_task("verify", total=total)
                report, header = verify_export(file, trusted, progress=lambda n: bar.advance(task, n), signatures=signatures)
        except ExportError as exc:
            fail(str(exc))
        trusted_note = f"keys from {keys_dir}" if keys_dir else "keys carried by the export (proves integrity; pass --keys to prove authorship)"
        last = header.get("entries")
    else:
        log = _open_log(mission_path, data_dir)
        last = log.size  # the log as it was when opened: the audit service may be appending meanwhile
        with _progress("verifying") as bar:
            task = bar.add_task("verify", total=last)
            keys = KeyStore(keys_dir) if keys_dir is not None else None
            report = log.verify(keys, progress=lambda n: bar.advance(task, n), signatures=signatures)
        trusted_note = f"keys from {keys_dir or log.keys.root}"
    failed = bool(report.problems) or (strict and report.unverified_count > 0)
    if json_out:
        print_json({"ok": not failed, **report.model_dump()})
        raise typer.Exit(1 if failed else 0)
    what = "signatures checked" if signatures else "message signatures NOT re-checked (--no-signatures); checkpoints checked"
    console.print(f"{report.entries} entries, {report.checkpoints} signed checkpoints; {what} with {trusted_note}")
    for status, n in sorted(report.signatures.items()):
        console.print(f"  signatures {status}: {n}")
    if report.unverified_count:
        console.print(f"[yellow]{report.unverified_count} messages arrived without a valid signature and are recorded as such[/] (refused by the desk), e.g.:")
        for p in report.unverified[:5]:
            console.print(f"  entry {p.seq}: {escape(p.what)}")
    if report.problems:
        first = report.problems[0]
        where = f"entry {first.seq}" if first.seq is not None else "the log"
        console.print(f"[bold red]FAILED[/]: first bad entry is {where}: {escape(first.what)}")
        for p in report.problems[1:10]:
            console.print(f"  then {'entry ' + str(p.seq) if p.seq is not None else 'the log'}: {escape(p.what)}")
        raise typer.Exit(1)
    if failed:
        console.print("[bold red]FAILED[/] (--strict): unverified messages in the log")
        raise typer.Exit(1)
    console.print(f"[bold green]verified[/]: the chain is intact through entry {last} and every checkpoint matches")
    if report.unchecked_tail:
        console.print(f"  the last {report.unchecked_tail} entries are not yet under a signed checkpoint (the audit service signs one within seconds)")


@audit_app.command("trace")
@handle_errors
def audit_trace(
    directive_id: str = typer.Argument(..., help="The directive's id."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """A directive's whole chain: insights, directive, evaluation, approval, order, fill; each signature's status."""
    from deskgate.audit.chain import signature_status

    log = _open_log(mission_path, data_dir)
    chain = log.trace(directive_id)
    if not chain:
        fail(f"nothing in the audit log about {directive_id}")
    rows = [(e, signature_status(log.keys, e)) for e in chain]
    if json_out:
        print_json([{**e.model_dump(mode="json"), "signature_now": st.value} for e, st in rows])
        return
    t = Table("#", "recorded", "what", "subject", "signed by", "signature", title=f"decision chain of {escape(directive_id)}")
    for e, st in rows:
        colour = "green" if st.value == "valid" else "red"
        t.add_row(str(e.seq), e.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, escape(e.subject), escape(e.signer or "-"), f"[{colour}]{st.value}[/]")
    console.print(t)
    kinds = {e.kind for e, _ in rows}
    missing = [k for k in ("directive", "evaluation", "staged", "approval", "order", "fill") if k not in kinds]
    if missing:
        console.print(f"not (yet) in the chain: {', '.join(missing)}")


@audit_app.command("export")
@handle_errors
def audit_export(
    file: Path = typer.Argument(..., help="Where to write the JSON lines."),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Write the log up to its latest signed checkpoint as JSON lines; `audit verify --file` checks it anywhere."""
    log = _open_log(mission_path, data_dir)
    with _progress("exporting") as bar:
        task = bar.add_task("export", total=log.size)
        n = log.export(file, datetime.now(timezone.utc), progress=lambda k: bar.advance(task, k))
    console.print(f"exported {n} entries to [bold]{escape(str(file))}[/]; check it anywhere with `deskgate audit verify --file {escape(str(file))}`")
    if log.size > n:
        console.print(f"{log.size - n} newer entries are not yet under a signed checkpoint; they go in the next export")
