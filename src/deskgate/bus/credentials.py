"""Per-role NATS credentials: made once per data directory, kept private to its owner.

The server config holds only bcrypt hashes, so the config can be handed to an
operator (external bus) without handing over the passwords.

The agent role has no shared credentials: each agent identity is its own NATS user
(identity/registry.py), and the desk's own agents connect as the built-in one,
`desk`, from its credentials file in the data directory.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import bcrypt

from deskgate.bus.permissions import inbox_prefix
from deskgate.bus.subjects import Role
from deskgate.paths import DataDir, write_private

if TYPE_CHECKING:
    from deskgate.identity.registry import AgentIdentity

BCRYPT_ROUNDS = 10
# Roles with a user of their own in credentials.json; the agent role's users are the agent identities.
ROLE_USERS: tuple[Role, ...] = tuple(r for r in Role if r is not Role.AGENT)


@dataclass(frozen=True)
class RoleCredentials:
    role: Role
    user: str
    password: str
    bcrypt_hash: str


def ensure_credentials(data_dir: DataDir) -> dict[Role, RoleCredentials]:
    """Load the data directory's credentials, creating any that are missing, and make
    each role's Ed25519 signing key if it has none yet, and the built-in `desk` agent.

    No entry for the agent role: a file from before agent identities keeps one, which
    is dropped here (its user no longer exists on the bus)."""
    from deskgate.audit.keys import KeyStore
    from deskgate.identity.registry import ensure_desk_agent

    data_dir.ensure()
    KeyStore(data_dir.keys).ensure_roles()
    ensure_desk_agent(data_dir)
    stored: dict = {}
    if data_dir.credentials.exists():
        stored = json.loads(data_dir.credentials.read_text())
    changed = stored.pop(Role.AGENT.value, None) is not None
    out: dict[Role, RoleCredentials] = {}
    for role in ROLE_USERS:
        entry = stored.get(role.value)
        if not entry:
            password = secrets.token_urlsafe(24)
            entry = {
                "user": role.value,
                "password": password,
                "bcrypt": bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode(),
            }
            stored[role.value] = entry
            changed = True
        out[role] = RoleCredentials(role, entry["user"], entry["password"], entry["bcrypt"])
    if changed:
        write_private(data_dir.credentials, json.dumps(stored, indent=2))
    return out


def active_agents(data_dir: DataDir) -> list[AgentIdentity]:
    """The agent identities that have a user on the bus: every one not revoked."""
    from deskgate.identity.registry import AgentRegistry

    registry = AgentRegistry.open(data_dir)
    try:
        return registry.active()
    finally:
        registry.engine.dispose()  # asked every few seconds by the supervisor: no pool may pile up


def load_credentials(data_dir: DataDir, role: Role | str) -> RoleCredentials:
    role = Role(role)
    if role is Role.AGENT:
        raise KeyError(
            "the agent role has no shared credentials; each agent connects with its own credentials file (`deskgate agent add NAME`)"
        )
    try:
        stored = json.loads(data_dir.credentials.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no credentials in {data_dir.root}; run `deskgate init` or `deskgate up` first"
        ) from None
    entry = stored.get(role.value)
    if not entry:
        raise KeyError(f"no credentials for role {role.value} in {data_dir.credentials}")
    return RoleCredentials(role, entry["user"], entry["password"], entry["bcrypt"])


def desk_agent_kwargs(data_dir: DataDir) -> dict:
    """The built-in `desk` agent's `nats.connect()` arguments: its credentials file in the
    data directory, at the bus address the desk last published (endpoint.json)."""
    from deskgate.identity.credentials import read_credentials
    from deskgate.identity.names import BUILT_IN_AGENT
    from deskgate.identity.registry import default_credentials_path

    from deskgate.bus.tls import endpoint_tls

    path = default_credentials_path(data_dir, BUILT_IN_AGENT)
    if not path.exists():
        raise FileNotFoundError(
            f"no credentials for the built-in agent {BUILT_IN_AGENT} ({path}); run `deskgate init` or `deskgate up` first"
        )
    creds = read_credentials(path)
    if creds.servers:
        return creds.connect_kwargs()
    endpoint = data_dir.read_endpoint()
    return {**creds.connect_kwargs(endpoint["servers"]), **endpoint_tls(endpoint)}


def connect_kwargs(data_dir: DataDir, role: Role | str) -> dict:
    """Keyword arguments for `nats.connect()` that carry exactly this role's rights. For the
    agent role: the built-in `desk` agent's (the agent role has no shared user). On a bus with
    TLS they say so (`tls_handshake_first`) and carry its CA's PEM as `tls_ca`, which is not
    nats.connect()'s: `bus/connect.py` (or `deskgate.bus.tls.nats_options`) makes it `tls`."""
    from deskgate.bus.tls import endpoint_tls

    role = Role(role)
    if role is Role.AGENT:
        return desk_agent_kwargs(data_dir)
    creds = load_credentials(data_dir, role)
    endpoint = data_dir.read_endpoint()
    return {
        "servers": endpoint["servers"],
        "user": creds.user,
        "password": creds.password,
        "inbox_prefix": inbox_prefix(role),
        "name": f"deskgate-{role.value}",
        **endpoint_tls(endpoint),
    }
