"""`deskgate keys` and `deskgate audit`: signing keys, and proving the decision chain."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from deskgate.cli import (
    DataDirOption,
    JsonOption,
    MissionOption,
    PasswordFileOption,
    PasswordStdinOption,
    app,
    console,
    fail,
    handle_errors,
    print_json,
    read_password,
    resolve,
)
from deskgate.cli.tables import compact_table, text_column, value_column

keys_app = typer.Typer(help="Ed25519 signing keys: one per role, and one per principal sealed with their password.", no_args_is_help=True)
audit_app = typer.Typer(help="The signed, hash-chained audit log of the decision chain.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


def _progress(what: str) -> Progress:
    return Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True)


def _open_log(mission_path: Path | None, data_dir: Path | None):
    from deskgate.audit.log import AuditLog

    mission, root = resolve(mission_path, data_dir)
    if not root.audit_db.exists() and not root.storage_url():
        fail(f"no audit log in {root.root} yet; `deskgate up` runs the audit service that writes it")
    return AuditLog.open(root)


@keys_app.command("list")
@handle_errors
def keys_list(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """Every signer's keys: the roles' (private key here or not), the principals' (sealed, current or retired), the agents'."""
    from deskgate.audit.keys import LEGACY_AGENT, SIGNING_ROLES, KeyStore, fingerprint

    _, root = resolve(mission_path, data_dir)
    ks = KeyStore.for_desk(root)
    rows = [
        {"signer": r, "fingerprint": fingerprint(k), "state": "current", "private_key": "here (0600)" if ks.has_private(r) else "not on this machine"}
        for r in SIGNING_ROLES if (k := ks.public(r)) is not None
    ]
    if (legacy := ks.public(LEGACY_AGENT)) is not None:
        rows.append({
            "signer": LEGACY_AGENT, "fingerprint": fingerprint(legacy), "state": "retired",
            "private_key": "the shared agent key of earlier versions: verifies what it signed then, signs no new directive",
        })
    rows += [
        {
            "signer": a.signer, "fingerprint": k.key_id,
            "state": ("revoked" if a.revoked else k.state),
            "private_key": "in the agent's credentials file" if k.state == "current" and not a.revoked
            else f"revoked {a.revoked_at:%Y-%m-%d %H:%M} UTC" if a.revoked else f"retired {k.retired_at:%Y-%m-%d %H:%M} UTC",
        }
        for a in ks.agents.all() for k in a.keys
    ]
    rows += [
        {
            "signer": f"principal:{k.name}", "fingerprint": k.key_id, "state": k.state,
            "private_key": "sealed with their password" if k.state == "current" else f"retired {k.retired_at:%Y-%m-%d %H:%M} UTC"
            + (" (was an unsealed file)" if k.origin == "unsealed" else ""),
        }
        for k in ks.principals.keys()
    ]
    unsealed = ks.principals.stray_key_files()
    if json_out:
        print_json({"keys": rows, "unsealed_principal_key_files": unsealed})
        return
    t = Table("signer", "fingerprint", "state", "private key")
    for r in rows:
        t.add_row(escape(r["signer"]), r["fingerprint"], r["state"], r["private_key"])
    console.print(t if rows else f"no keys in {ks.root}; `deskgate init` makes the roles' keys")
    for name in unsealed:
        console.print(
            f"[yellow]a key file for principal {escape(name)} is in {ks.root}[/]: it is never used (principals' keys are sealed "
            "in the accounts database); someone put it there, look at it and delete it"
        )


def _principals(mission_path: Path | None, data_dir: Path | None):
    from deskgate.people.accounts import Accounts
    from deskgate.people.principals import Principals

    _, root = resolve(mission_path, data_dir)
    principals = Principals(Accounts.open(root.ensure()), legacy_dir=root.keys)
    principals.migrate_unsealed_keys()
    return principals


@keys_app.command("principal")
@keys_app.command("seal")
@handle_errors
def keys_seal(
    name: str = typer.Argument(..., help="The principal's account name."),
    password_file: Path = PasswordFileOption,
    password_stdin: bool = PasswordStdinOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Make a principal's sealed signing key, with their password (`user add` does it for new
    principals; this also upgrades an unsealed key file, which is retired and deleted)."""
    from deskgate.audit.keys import fingerprint

    principals = _principals(mission_path, data_dir)
    refusal = principals.refusal(name)
    if refusal and not principals.can_seal(name):
        fail(refusal)
    if refusal is None:
        current = [k for k in principals.keys(name.strip().lower()) if k.state == "current"]
        fail(f"{name} already has a sealed signing key ({current[0].key_id if current else '?'}); `deskgate keys rotate {name}` makes a new one")
    from deskgate.people.pins import enroll

    key = principals.unlock(name, read_password(name, password_file, password_stdin))
    _, root = resolve(mission_path, data_dir)
    enroll(root, name.strip().lower(), key.public_key())  # an operator's command: the verifiers count this key
    console.print(f"sealed signing key for [bold]principal:{escape(name.strip().lower())}[/] ({fingerprint(key.public_key())}), opened only with their password")


@keys_app.command("rotate")
@handle_errors
def keys_rotate(
    name: str = typer.Argument(..., help="The principal's account name."),
    password_file: Path = PasswordFileOption,
    password_stdin: bool = PasswordStdinOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """A new sealed key for a principal; the old one is retired (it still verifies what it signed).
    Their open Command Center sessions must log in again to sign."""
    from deskgate.audit.keys import fingerprint

    principals = _principals(mission_path, data_dir)
    public = principals.rotate(name, read_password(name, password_file, password_stdin))
    console.print(f"new sealed signing key for [bold]principal:{escape(name.strip().lower())}[/] ({fingerprint(public)})")


@keys_app.command("trust")
@handle_errors
def keys_trust(
    name: str = typer.Argument(..., help="The principal whose current key the factory and the executor should count."),
    expected: str = typer.Option(None, "--fingerprint", help="The key's fingerprint as its owner read it to you (`deskgate keys list`); refused if it differs."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask; for scripts (with --fingerprint)."),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """An operator's word that a principal's current key is theirs: for a key made at their
    first login in the Command Center, which no operator command enrolled. Compare the
    fingerprint with the one they see."""
    from deskgate.audit.keys import fingerprint
    from deskgate.people.pins import PIN_SERVICES, Pins, enroll

    principals = _principals(mission_path, data_dir)
    clean = name.strip().lower()
    refusal = principals.refusal(clean)
    if refusal:
        fail(refusal)
    key = principals.decision_key(clean)
    if key is None:
        fail(f"{clean}'s current key cannot be read")
    fp = fingerprint(key)
    if expected is not None and expected.strip().lower() != fp:
        fail(f"{clean}'s current key is {fp}, not {expected.strip()}: nothing trusted (was it swapped?)")
    _, root = resolve(mission_path, data_dir)
    for service in PIN_SERVICES:
        store = Pins.for_service(root, service)
        before = store.pinned(clean)
        store.close()
        console.print(f"{service}: {'counts ' + before[:12] + '…' if before else 'does not count any key'} for {escape(clean)}")
    console.print(f"{escape(clean)}'s current key: {fp}")
    if not yes and not typer.confirm(f"count {fp} as {clean}'s key from now on?"):
        fail("nothing changed")
    enroll(root, clean, key, how="operator")
    console.print(f"the factory and the executor now count {escape(clean)}'s decisions signed with {fp}")


def _trusted_keys(path: Path):
    """A desk's keys, from its data directory or its keys/ directory: the roles' public key
    files, and the principals' and agents' keys from the accounts database beside them."""
    from deskgate.audit.keys import KeyStore
    from deskgate.paths import DataDir

    path = Path(path)
    root = DataDir.at(path.parent if path.name == "keys" else path)
    if not root.keys.is_dir():
        fail(f"{path} is not a desk's data directory or keys/ directory (no {root.keys})")
    if not root.accounts_db.exists() and root.storage_url() is None:
        return KeyStore(root.keys)  # no principals or agents there: their signatures will not verify
    return KeyStore.for_desk(root)


@audit_app.command("verify")
@handle_errors
def audit_verify(
    file: Path = typer.Option(None, "--file", "-f", help="Verify an export (JSON lines) instead of the desk's log; no database needed."),
    keys_dir: Path = typer.Option(None, "--keys", help="Check signatures against this desk's keys (its data directory, or its keys/ directory; principals' keys come from its state/accounts.db) instead of the keys the export carries."),
    strict: bool = typer.Option(False, "--strict", help="Also fail when the log holds messages whose signatures did not verify when they arrived."),
    signatures: bool = typer.Option(True, "--signatures/--no-signatures", help="Re-verify every message's Ed25519 signature (slow); off: the chain and the audit key's signed checkpoints only."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Check every signature, the hash chain and every signed Merkle checkpoint; name the first bad entry."""

    trusted_note = ""
    if file is not None:
        from deskgate.audit.export import ExportError, read_header, verify_export

        try:
            total = read_header(file).get("entries")
            total = total if isinstance(total, int) and total >= 0 else None  # unverified yet: only a hint for the bar
            trusted = _trusted_keys(keys_dir) if keys_dir is not None else None
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
            keys = _trusted_keys(keys_dir) if keys_dir is not None else None
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
    console.print(trace_table(directive_id, rows))
    kinds = {e.kind for e, _ in rows}
    missing = [k for k in ("directive", "evaluation", "staged", "approval", "order", "fill") if k not in kinds]
    if missing:
        console.print(f"not (yet) in the chain: {', '.join(missing)}")


def trace_table(directive_id: str, rows) -> Table:
    """The directive's own id stands as <id> in the subjects, so they fit beside the rest; the title has it whole."""
    t = compact_table(f"decision chain of {escape(directive_id)}")
    value_column(t, "#", justify="right")
    text_column(t, "recorded (UTC)")
    value_column(t, "what")
    value_column(t, "subject")
    text_column(t, "signed by")
    text_column(t, "signature")
    for e, st in rows:
        colour = "green" if st.value == "valid" else "red"
        subject = ".".join("<id>" if token == directive_id else token for token in e.subject.split("."))
        t.add_row(str(e.seq), e.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, escape(subject), escape(e.signer or "-"), f"[{colour}]{st.value}[/]")
    return t


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
