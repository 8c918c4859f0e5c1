"""Per-role NATS credentials: made once per data directory, kept private to its owner.

The server config holds only bcrypt hashes, so the config can be handed to an
operator (external bus) without handing over the passwords.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import bcrypt

from deskgate.bus.permissions import inbox_prefix
from deskgate.bus.subjects import Role
from deskgate.paths import DataDir, write_private

BCRYPT_ROUNDS = 10


@dataclass(frozen=True)
class RoleCredentials:
    role: Role
    user: str
    password: str
    bcrypt_hash: str


def ensure_credentials(data_dir: DataDir) -> dict[Role, RoleCredentials]:
    """Load the data directory's credentials, creating any that are missing, and make
    each role's Ed25519 signing key if it has none yet."""
    from deskgate.audit.keys import KeyStore
    from deskgate.identity.registry import ensure_desk_agent

    data_dir.ensure()
    KeyStore(data_dir.keys).ensure_roles()
    ensure_desk_agent(data_dir)
    stored: dict = {}
    if data_dir.credentials.exists():
        stored = json.loads(data_dir.credentials.read_text())
    changed = False
    out: dict[Role, RoleCredentials] = {}
    for role in Role:
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


def load_credentials(data_dir: DataDir, role: Role | str) -> RoleCredentials:
    role = Role(role)
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


def connect_kwargs(data_dir: DataDir, role: Role | str) -> dict:
    """Keyword arguments for `nats.connect()` that carry exactly this role's rights."""
    role = Role(role)
    creds = load_credentials(data_dir, role)
    endpoint = data_dir.read_endpoint()
    return {
        "servers": endpoint["servers"],
        "user": creds.user,
        "password": creds.password,
        "inbox_prefix": inbox_prefix(role),
        "name": f"deskgate-{role.value}",
    }
