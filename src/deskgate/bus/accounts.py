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
  - readers of a stream import its direct-get API (history, read-only) and its
    `$JS.API.STREAM.MSG.GET` (one message, answered by the stream's leader only);
  - a durable consumer's owner imports its pull and ack subjects.

The agent role has no account of its own: each active agent identity
(identity/registry.py) is an account, `AGENT_<NAME>`, with one user and the role's
imports, and DESK's exports name every such account. Inside one shared account an
agent could aim JetStream's answers (a direct get returning a message it stored) at
another agent's reply inbox and forge that agent's publish acknowledgements; across
accounts every answer comes back through the caller's own `_R_` route. A revoked
agent has no account, so the reload that drops it cuts its connections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from deskgate.bus.credentials import RoleCredentials
from deskgate.bus.permissions import agent_permissions, permissions_for
from deskgate.bus.streams import DURABLES
from deskgate.bus.subjects import SERVICE_ROLES, SUBJECTS, Role
from deskgate.identity.names import agent_user, check_agent_name

if TYPE_CHECKING:
    from deskgate.identity.registry import AgentIdentity

DESK_ACCOUNT = "DESK"
LIVE_PREFIX = "deskgate.live."


AGENT_ACCOUNT_PREFIX = "AGENT_"


def account_of(role: Role | str) -> str:
    """A role's account. The agent role has none of its own: see `agent_account`."""
    role = Role(role)
    if role is Role.AGENT:
        raise ValueError("the agent role has one account per agent identity: use agent_account(name)")
    return DESK_ACCOUNT if role is Role.PROVISIONER else role.value.upper()


def agent_account(name: str) -> str:
    """One agent identity's account (upper-casing is one-to-one on the names allowed)."""
    return AGENT_ACCOUNT_PREFIX + check_agent_name(name).upper()


def _accounts(roles, agent_accounts: Sequence[str]) -> list[str]:
    out: list[str] = []
    for r in roles:
        out += list(agent_accounts) if r is Role.AGENT else [account_of(r)]
    return sorted(out)


def _export(entry: dict) -> list[dict]:
    """An export limited to the accounts named, or none at all when none are: nats-server
    takes an export with no account list as public, open to every account."""
    return [entry] if entry["accounts"] else []


def desk_exports(agent_accounts: Sequence[str] = ()) -> list[dict]:
    exports: list[dict] = []
    for f in SUBJECTS:
        exports += _export({"service": f.pattern, "accounts": _accounts(f.publishers, agent_accounts)})
        exports += _export({"stream": LIVE_PREFIX + f.pattern, "accounts": _accounts(f.readers, agent_accounts)})
    for stream, readers in _stream_readers().items():
        for subject in (f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>"):
            exports += _export(
                {"service": subject, "response_type": "stream", "response_threshold": "10s", "accounts": _accounts(readers, agent_accounts)}
            )
        # The leader's message get answers with one message: a singleton reply, the default. Never
        # to an agent: the agent role uses no `$JS.API.STREAM.` subject at all (DESIGN §3).
        exports += _export({"service": f"$JS.API.STREAM.MSG.GET.{stream}", "accounts": _accounts(readers - {Role.AGENT}, ())})
    for d in DURABLES:
        if d.owner is Role.AGENT:
            raise AssertionError(f"durable {d.name}: a durable consumer owned by the agent role would be shared by every agent")
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
            leader_get = () if role is Role.AGENT else (f"$JS.API.STREAM.MSG.GET.{stream}",)
            for subject in (f"$JS.API.DIRECT.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}.>", *leader_get):
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


def agent_accounts(agents: Iterable[AgentIdentity]) -> dict[str, dict]:
    """One account per active agent identity, holding its one user; a revoked one has none,
    so it cannot connect."""
    imports = role_imports(Role.AGENT)
    out = {}
    for a in sorted(agents, key=lambda a: a.name):
        if a.revoked:
            continue
        user = {"user": agent_user(a.name), "password": a.nats_bcrypt, "permissions": agent_permissions(a.name)}
        out[agent_account(a.name)] = {"users": [user], "imports": imports}
    return out


def accounts_block(creds: dict[Role, RoleCredentials], agents: Iterable[AgentIdentity]) -> dict:
    """The `accounts` section of the server config: the roles' users from `creds`, and an
    account for each active agent identity (`AgentRegistry.active()`)."""
    per_agent = agent_accounts(agents)
    block = {
        DESK_ACCOUNT: {
            "jetstream": "enabled",
            "users": [_user(creds[Role.PROVISIONER])],
            "exports": desk_exports(sorted(per_agent)),
        }
    }
    for role in SERVICE_ROLES:
        if role is not Role.AGENT:
            block[account_of(role)] = {"users": [_user(creds[role])], "imports": role_imports(role)}
    return {**block, **per_agent}
