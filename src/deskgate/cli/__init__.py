"""The `deskgate` command line. Human-readable by default, `--json` for scripts."""

from __future__ import annotations

import asyncio
import functools
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from deskgate.config import Mission, load_mission
from deskgate.paths import DataDir

app = typer.Typer(
    name="deskgate",
    help="LLM agents draft; deterministic guardrails decide what reaches a human; a human decides what executes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DEFAULT_MISSION = "mission.yaml"

MissionOption = typer.Option(None, "--mission", "-m", help="mission.yaml to use (default: ./mission.yaml if present).")
DataDirOption = typer.Option(
    None, "--data-dir", "-d", envvar="DESKGATE_DATA_DIR", help="The desk's data directory (default: the mission's data_dir)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of tables.")
PrincipalOption = typer.Option(
    None, "--principal", envvar="DESKGATE_PRINCIPAL", help="Who is deciding: their account (default: your login name)."
)
PasswordFileOption = typer.Option(
    None, "--password-file", help="Read the principal's password from the first line of this file (for scripts; keep it 0600)."
)
PasswordStdinOption = typer.Option(False, "--password-stdin", help="Read the principal's password from the first line of stdin.")


def resolve(mission_path: Path | None, data_dir: Path | None) -> tuple[Mission, DataDir]:
    """The mission and data directory a command works on, from flags, files and defaults."""
    if mission_path is not None:
        mission = load_mission(mission_path)
    elif Path(DEFAULT_MISSION).exists():
        mission = load_mission(DEFAULT_MISSION)
    elif data_dir is not None and DataDir.at(data_dir).mission_snapshot.exists():
        mission = Mission.model_validate_json(DataDir.at(data_dir).mission_snapshot.read_text())
    else:
        mission = Mission()
    root = DataDir.at(data_dir) if data_dir is not None else DataDir.at(mission.data_dir)
    try:
        # A mission naming another database than the desk's is refused; naming one for a desk
        # whose stores are still files, it is recorded by the next `deskgate up` (or `db upgrade`).
        root.keep_storage(mission.storage.url, record=False)
    except ValueError as exc:
        fail(str(exc))
    return mission, root


def resolve_data_dir(mission_path: Path | None, data_dir: Path | None) -> DataDir:
    if data_dir is not None:
        return DataDir.at(data_dir)
    return resolve(mission_path, None)[1]


def principal_name(value: str | None) -> str:
    return value or os.environ.get("USER") or getpass.getuser()


def read_password(prompt_for: str, password_file: Path | None, password_stdin: bool) -> str:
    """A password from a file, stdin or a hidden prompt; never from an argument, where
    other users could read it in the process list."""
    if password_file is not None and password_stdin:
        fail("give either --password-file or --password-stdin, not both")
    if password_file is not None:
        try:
            lines = Path(password_file).read_text().splitlines()
        except OSError as exc:
            fail(f"cannot read the password file {password_file}: {exc.strerror or exc}")
        return lines[0] if lines else ""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt(f"{prompt_for}'s password", hide_input=True)


def fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # messages quote user input
    raise typer.Exit(code)


# The errors a command reports as one line, by where they are defined. Only a module
# that was imported can have raised its error, so handle_errors looks them up in
# sys.modules instead of importing them: a command (`deskgate up` above all, which
# stays resident as the supervisor) should not load SQLAlchemy, argon2 and WebAuthn
# just to name exceptions it will never see.
KNOWN_ERRORS = (
    ("deskgate.config", "MissionError"),
    ("deskgate.approvals.client", "CommandCenterError"),
    ("deskgate.stack", "StackError"),
    ("deskgate.bus.server", "BusError"),
    ("deskgate.marketdata.csv_replay", "CsvError"),
    ("deskgate.bus.reader", "ReadError"),
    ("deskgate.audit.keys", "SigningKeyError"),
    ("deskgate.people.principals", "PrincipalError"),
    ("deskgate.people.accounts", "AccountError"),
    ("deskgate.client.errors", "DeskClientError"),
    ("deskgate.identity.names", "AgentNameError"),
    ("deskgate.identity.registry", "IdentityError"),
    ("deskgate.identity.credentials", "CredentialsError"),
    ("deskgate.migrations", "SchemaError"),
    ("deskgate.migrations", "StoreUnreachable"),
    ("deskgate.memory.store", "MemoryError_"),
)


def _loaded(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in names if module in sys.modules)


def handle_errors(fn):
    """Known failures become one clear line and exit code 2, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, (*_loaded(KNOWN_ERRORS), FileNotFoundError, KeyError)):
                fail(str(exc).strip("'\""))
            if isinstance(exc, (*_loaded((("nats.errors", "Error"),)), OSError)):
                name = type(exc).__name__
                fail(f"cannot reach the desk's bus ({name}: {exc}); is `deskgate up` running for this data directory?")
            raise

    return wrapper


def run_async(coro) -> Any:
    return asyncio.run(coro)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


from deskgate.cli import agents, agents_status, audit, bus, db, desk, governor, mcp, memory, ops, policy, sanitize, scorecard, users, venues  # noqa: E402,F401  (registers the commands)


def main() -> None:
    import logging

    # Commands report through the console; keep library warnings (e.g. a refused
    # publish, which the command reports itself) off the terminal.
    logging.getLogger("deskgate").addHandler(logging.NullHandler())
    logging.getLogger("deskgate").propagate = False
    app()
