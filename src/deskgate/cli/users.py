"""Command Center accounts: `deskgate user add | list | disable`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, fail, handle_errors, print_json, resolve_data_dir

user_app = typer.Typer(help="Command Center accounts (viewer, principal, admin).", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _accounts(mission_path, data_dir):
    from deskgate.people.accounts import Accounts

    root = resolve_data_dir(mission_path, data_dir)
    root.ensure()
    return Accounts.open(root)


@user_app.command("add")
@handle_errors
def add(
    name: str = typer.Argument(..., help="Account name: lower-case letters, digits, '.', '_' or '-'."),
    role: str = typer.Option(..., "--role", "-r", help="viewer (sees everything, changes nothing), principal, or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin instead of prompting."),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Add an account; the password is prompted for and stored as an argon2 hash."""
    from deskgate.people.accounts import AccountError, Role, check_password_strength, normalise_name

    try:
        normalise_name(name)
        if role not in {r.value for r in Role}:
            raise AccountError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        check_password_strength(password)
        account = _accounts(mission_path, data_dir).add(name, role, password)
    except AccountError as exc:
        fail(str(exc))
    console.print(f"added [bold]{account.name}[/] as {account.role.value}")
    if account.can_decide:
        from deskgate.audit.keys import fingerprint
        from deskgate.people.principals import Principals

        from deskgate.people.pins import enroll

        root = resolve_data_dir(mission_path, data_dir)
        public = Principals(_accounts(mission_path, data_dir), legacy_dir=root.keys).make_key(account.name, password)
        enroll(root, account.name, public)  # the factory and the executor count this key, and only this one
        console.print(f"their decisions are signed with their own key ({fingerprint(public)}), sealed with their password")


@user_app.command("list")
@handle_errors
def list_(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """List accounts with their roles and whether they are disabled."""
    accounts = _accounts(mission_path, data_dir).list()
    if json_out:
        print_json([{"name": a.name, "role": a.role.value, "disabled": a.disabled, "created_at": a.created_at} for a in accounts])
        return
    t = Table("name", "role", "state", "created")
    for a in accounts:
        t.add_row(a.name, a.role.value, "[red]disabled[/]" if a.disabled else "active", a.created_at.strftime("%Y-%m-%d %H:%M UTC"))
    console.print(t if accounts else "no accounts yet; add one with `deskgate user add NAME --role principal`")


@user_app.command("disable")
@handle_errors
def disable(name: str, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """Disable an account; its open sessions end at once."""
    from deskgate.people.accounts import AccountError

    try:
        account = _accounts(mission_path, data_dir).disable(name)
    except AccountError as exc:
        fail(str(exc))
    # The factory and the executor count decisions only from enabled accounts' keys.
    console.print(f"disabled [bold]{account.name}[/]; its sessions are ended and its signing key signs nothing the desk counts")


@user_app.command("password")
@handle_errors
def password(
    name: str = typer.Argument(..., help="The account whose password changes."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the old and the new password from two lines of stdin."),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Change an account's password (the old one is needed: it opens their sealed signing key).
    A principal gets a new key, certified by the old one, which is retired; their sessions end."""
    from deskgate.people.accounts import AccountError, check_password_strength, normalise_name
    from deskgate.people.principals import PrincipalError, Principals

    try:
        name = normalise_name(name)
        if password_stdin:
            old, new = sys.stdin.readline().rstrip("\r\n"), sys.stdin.readline().rstrip("\r\n")
        else:
            old = typer.prompt(f"{name}'s current password", hide_input=True)
            new = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
        check_password_strength(new)
        accounts = _accounts(mission_path, data_dir)
        account = accounts.get(name)
        if account is None:
            raise AccountError(f"no account {name!r}")
        if account.can_decide:
            Principals(accounts, legacy_dir=resolve_data_dir(mission_path, data_dir).keys).change_password(name, old, new)
        else:
            if accounts.verify_password(name, old) is None:
                raise AccountError(f"wrong password for {name}")
            accounts.set_password(name, new)
    except (AccountError, PrincipalError) as exc:
        fail(str(exc))
    accounts.record(name, "change_password", name, via="cli")
    console.print(f"password changed for [bold]{name}[/]")


@user_app.command("passkeys")
@handle_errors
def passkeys_(
    name: str = typer.Argument(..., help="The principal whose passkeys to list."),
    remove: str = typer.Option(None, "--remove", help="Remove the passkey with this credential id (a lost device); its prefix is enough."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """A principal's passkeys (registered in the Command Center), or remove a lost one. Removing
    the last one means their decisions need only their password or session again."""
    from deskgate.people.accounts import AccountError, normalise_name
    from deskgate.people.principals import Principals

    try:
        name = normalise_name(name)
    except AccountError as exc:
        fail(str(exc))
    accounts = _accounts(mission_path, data_dir)
    principals = Principals(accounts, legacy_dir=resolve_data_dir(mission_path, data_dir).keys)
    keys = principals.passkeys(name)
    if remove is not None:
        matches = [k for k in keys if k.credential_id.startswith(remove)] if remove else []
        if len(matches) != 1:
            fail(f"{len(matches)} of {name}'s passkeys start with {remove!r}; give enough of the id to name one")
        from deskgate.people.pins import PIN_SERVICES, Pins

        principals.remove_passkey(name, matches[0].credential_id)
        for service in PIN_SERVICES:  # the verifiers hold passkeys until an operator removes them
            Pins.for_service(resolve_data_dir(mission_path, data_dir), service).drop_passkey(name, matches[0].credential_id)
        accounts.record(name, "remove_passkey", matches[0].credential_id[:64], via="cli")
        console.print(f"removed {name}'s passkey {matches[0].label or matches[0].credential_id[:16]}")
        return
    if json_out:
        print_json([k.model_dump(mode="json") for k in keys])
        return
    t = Table("credential id", "name", "registered")
    for k in keys:
        t.add_row(k.credential_id, k.label or "—", k.created_at.strftime("%Y-%m-%d %H:%M UTC"))
    console.print(t if keys else f"{name} has no passkey")


@user_app.command("reset-password")
@handle_errors
def reset_password(
    name: str = typer.Argument(..., help="The account whose password was forgotten."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin."),
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """An operator's reset of a forgotten password. A principal gets a new sealed key: the old
    one is retired (what it signed still verifies; it signs nothing new), their sessions end."""
    from deskgate.people.accounts import AccountError, check_password_strength, normalise_name
    from deskgate.people.principals import PrincipalError, Principals

    try:
        name = normalise_name(name)
        new = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("new password", hide_input=True, confirmation_prompt=True)
        check_password_strength(new)
        accounts = _accounts(mission_path, data_dir)
        account = accounts.get(name)
        if account is None:
            raise AccountError(f"no account {name!r}")
        if account.can_decide and not account.disabled:
            from deskgate.audit.keys import fingerprint
            from deskgate.people.pins import enroll

            root = resolve_data_dir(mission_path, data_dir)
            public = Principals(accounts, legacy_dir=root.keys).reset(name, new)
            enroll(root, name, public, how="operator")  # the operator's word: no old key certifies this one
            console.print(f"{name}'s new key is {fingerprint(public)}; the factory and the executor now count it, not the old one")
        else:
            accounts.set_password(name, new)
            accounts.end_sessions(name)
    except (AccountError, PrincipalError) as exc:
        fail(str(exc))
    accounts.record(name, "reset_password", name, via="cli")
    console.print(f"password reset for [bold]{name}[/]" + ("; their old signing key is retired" if account.can_decide else ""))
