"""NATS accounts: JetStream lives in one account (DESK); every role is an account of its own.

Why accounts and not just per-user permissions: nats-server checks the subject a
client publishes to, never the reply subject it names, and JetStream answers on
that reply subject with its own rights. Inside one account a role could therefore
aim a JetStream answer (a publish acknowledgement, or a stored message returned by
a direct get) at `approvals.response.<id>` or the breaker's reset key, and a stream
would take it in. Across accounts that cannot happen: a role reaches DESK only
through the imports below, and the server rewrites every reply that crosses an
import to a private `_R_` subject that routes back to the caller alone.

Exports and imports are derived from the subject map (bus/subjects.py):
  - each family's publishers import it as a *service* (their publishes land in DESK,
    where the stream captures them, and the acknowledgement comes back);
  - each family's readers import it as a *stream* for live delivery. Messages that
    arrive through a service import do not travel on through stream exports, so
    every stream republishes what it stores under `deskgate.live.` and readers
    import that, renamed back to the family's own subjects. Live readers therefore
    see exactly what was persisted, nothing else;
  - readers of a stream import its direct-get API (history, read-only);
  - a durable consumer's owner imports its pull and ack subjects.

The agent role's account has no shared user: its users are the desk's active agent
identities (identity/registry.py), one each, so an agent can be cut off alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from deskgate.bus.credentials import RoleCredentials
from deskgate.bus.permissions import agent_permissions, permissions_for
from deskgate.bus.streams import DURABLES
from deskgate.bus.subjects import SERVICE_ROLES, SUBJECTS, Role
from deskgate.identity.names import agent_user

if TYPE_CHECKING:
    from deskgate.identity.registry import AgentIdentity

DESK_ACCOUNT = "DESK"
LIVE_PREFIX = "deskgate.live."


def account_of(role: Role | str) -> str:
    role = Role(role)
    return DESK_ACCOUNT if role is Role.PROVISIONER else role.value.upper()


def _accounts(roles) -> list[str]:
    return sorted(account_of(r) for r in roles)


def desk_exports() -> list[dict]:
    exports: list[dict] = []
    for f in SUBJECTS:
        exports.append({"service": f.pattern, "accounts": _accounts(f.publishers)})
        exports.append({"stream": LIVE_PREFIX + f.pattern, "accounts": _accounts(f.readers)})
    for stream, readers in _stream_readers().items():
        for subject in (f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>"):
            exports.append(
                {"service": subject, "response_type": "stream", "response_threshold": "10s", "accounts": _accounts(readers)}
            )
    for d in DURABLES:
        exports.append(
            {
                "service": f"$JS.API.CONSUMER.MSG.NEXT.{d.stream}.{d.name}",
                "response_type": "stream",
                # Longer than a pull request's expiry; without it the server keeps each
                # request's reply route until the connection closes.
                "response_threshold": "10s",
                "accounts": [account_of(d.owner)],
            }
        )
        exports.append({"service": f"$JS.ACK.{d.stream}.{d.name}.>", "accounts": [account_of(d.owner)]})
    return exports


def role_imports(role: Role) -> list[dict]:
    imports: list[dict] = []
    for f in SUBJECTS:
        if role in f.publishers:
            imports.append({"service": {"account": DESK_ACCOUNT, "subject": f.pattern}})
        if role in f.readers:
            imports.append({"stream": {"account": DESK_ACCOUNT, "subject": LIVE_PREFIX + f.pattern}, "to": f.pattern})
    for stream, readers in _stream_readers().items():
        if role in readers:
            for subject in (f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>"):
                imports.append({"service": {"account": DESK_ACCOUNT, "subject": subject}})
    for d in DURABLES:
        if d.owner is role:
            imports.append({"service": {"account": DESK_ACCOUNT, "subject": f"$JS.API.CONSUMER.MSG.NEXT.{d.stream}.{d.name}"}})
            imports.append({"service": {"account": DESK_ACCOUNT, "subject": f"$JS.ACK.{d.stream}.{d.name}.>"}})
    return imports


def _stream_readers() -> dict[str, frozenset[Role]]:
    out: dict[str, frozenset[Role]] = {}
    for f in SUBJECTS:
        if f.stream:
            out[f.stream] = out.get(f.stream, frozenset()) | f.readers
    return out


def _user(c: RoleCredentials) -> dict:
    return {"user": c.user, "password": c.bcrypt_hash, "permissions": permissions_for(c.role)}


def agent_users(agents: Iterable[AgentIdentity]) -> list[dict]:
    """One user per active agent identity; a revoked one has none, so it cannot connect."""
    users = []
    for a in sorted(agents, key=lambda a: a.name):
        if a.revoked:
            continue
        users.append({"user": agent_user(a.name), "password": a.nats_bcrypt, "permissions": agent_permissions(a.name)})
    return users


def accounts_block(creds: dict[Role, RoleCredentials], agents: Iterable[AgentIdentity]) -> dict:
    """The `accounts` section of the server config: the roles' users from `creds`, and in
    the agent role's account the agent identities (`AgentRegistry.active()`)."""
    block = {
        DESK_ACCOUNT: {
            "jetstream": "enabled",
            "users": [_user(creds[Role.PROVISIONER])],
            "exports": desk_exports(),
        }
    }
    for role in SERVICE_ROLES:
        users = agent_users(agents) if role is Role.AGENT else [_user(creds[role])]
        block[account_of(role)] = {"users": users, "imports": role_imports(role)}
    return block
