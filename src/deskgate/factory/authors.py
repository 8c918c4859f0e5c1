"""Who drafted a directive: the agent whose *current* key signed it, while that agent is
not revoked, as the agent registry says at this very message.

A directive counts as an agent's only then. Everything else is refused before any
policy check, each for its own stated reason (docs/POLICY.md): unsigned; signed by
something that is not an agent (a role, a principal, the shared agent key of earlier
desks); signed by an unknown agent; by a revoked agent (revocation takes effect at the
next directive, no restart); with a key that is not the agent's current one (retired
by a rotation, or another agent's). A directive whose `agent` field names another agent
than the one who signed it is evaluated, and refused by an extra `agent` check.

The registry lives in the accounts database, which `deskgate agent revoke` (another
process) writes. Each answer is kept until that database changes (SQLite's
data_version; storage.UntilChanged), so a revocation is seen by the very next
directive without a read of the registry per directive.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from deskgate.audit import ed25519
from deskgate.audit.keys import LEGACY_AGENT
from deskgate.audit.signing import SIGNATURE_HEADER, SIGNER_HEADER, Kind, signed_message
from deskgate.identity.names import agent_of_signer, agent_signer
from deskgate.identity.registry import AgentIdentity
from deskgate.policy.engine import Check, Evaluation, agent_rejection, signature_rejection
from deskgate.storage import UntilChanged

# What a directive must be signed with, as a check's limit.
CURRENT_KEY = "signed with the current key of an agent of this desk"


@dataclass(frozen=True)
class Known:
    """One agent identity as the registry says now, with its keys' raw bytes (current first)."""

    identity: AgentIdentity
    raw_keys: tuple[bytes, ...]

    @classmethod
    def of(cls, identity: AgentIdentity) -> Known:
        return cls(identity, tuple(base64.b64decode(k.public_key) for k in identity.keys))


@dataclass(frozen=True)
class Author:
    """What a directive's signature says about who drafted it."""

    # The agent one of whose keys verified the signature (current or retired, revoked or
    # not: who signed is a fact, PolicyVerdict.agent); None when no agent's key does.
    agent: str | None
    # Why the directive does not count as that agent's; None when it does.
    refusal: Evaluation | None = None


def authorship(
    signer: str | None,
    signature: str | None,
    payload: bytes,
    lookup: Callable[[str], Known | None],
    everyone: Callable[[], Iterable[Known]],
) -> Author:
    """Decide from the headers and the registry's answers alone (no clock, no bus)."""
    if not signer or not signature:
        return Author(None, signature_rejection("unsigned", signer, "the directive is not signed; only directives signed with an agent's own current key are evaluated"))
    name = agent_of_signer(signer)
    if name is None:
        if signer == LEGACY_AGENT:
            why = ("it is signed with the shared agent key of earlier desks, which signs no new directive: "
                   "each agent signs with its own key (`deskgate agent add NAME`)")
        else:
            why = f"it is signed by {signer[:80]!r}, which is not an agent: only an agent's own key signs directives"
        return Author(None, signature_rejection("not an agent", signer, why))
    known = lookup(name)
    if known is None:
        return Author(None, agent_rejection("unknown agent", signer, f"no agent named {name} on this desk; `deskgate agent add {name}` makes one"))
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    message = signed_message(Kind.DIRECTIVE, payload)
    which = next((i for i, k in enumerate(known.raw_keys) if ed25519.verify(k, raw, message)), None)
    ident = known.identity
    if which is None:
        other = _whose_key(name, raw, message, everyone())
        if other is not None:
            return Author(None, signature_rejection(
                "another agent's key", signer, f"it is signed as {signer} with agent {other}'s key; each agent signs only as itself",
            ))
        return Author(None, signature_rejection("invalid", signer, f"the signature does not verify with any key agent {name} ever had"))
    if ident.revoked:
        return Author(name, agent_rejection(
            "revoked", signer,
            f"agent {name} was revoked at {ident.revoked_at.isoformat()}; its directives are refused from then on "
            "(what it had staged before may still be decided)",
        ))
    key = ident.keys[which]
    if key.state != "current":
        when = f" at {key.retired_at.isoformat()}" if key.retired_at is not None else ""
        current = ident.current_key.key_id if ident.current_key is not None else "none"
        return Author(name, signature_rejection(
            "retired key", signer,
            f"it is signed with agent {name}'s key {key.key_id}, retired{when} by a rotation; only its current key ({current}) signs directives",
        ))
    return Author(name)


# Keys tried to say whose key a bad signature was made with: a bound, so that a flood of
# bad signatures costs the factory a few verifications each, however many agents there are.
MAX_KEYS_TRIED = 16


def _whose_key(name: str, raw: bytes, message: bytes, known: Iterable[Known]) -> str | None:
    """Which other agent's key made this signature, if one of the first MAX_KEYS_TRIED does."""
    tried = 0
    for k in known:
        if k.identity.name == name:
            continue
        for public in k.raw_keys:
            if tried >= MAX_KEYS_TRIED:
                return None
            tried += 1
            if ed25519.verify(public, raw, message):
                return k.identity.name
    return None


def id_owner(directive_id: str, names) -> str | None:
    """The agent an id is reserved to: an id that begins with an agent's name and a dash
    (`desk-...`, what `deskgate.client` makes) belongs to that agent, the longest such name
    winning, so no other agent can take it first and have the owner's directive refused as a
    duplicate. Other ids are first come, first served."""
    owner = None
    for name in names:
        if directive_id.startswith(name + "-") and (owner is None or len(name) > len(owner)):
            owner = name
    return owner


def reserved_id_rejection(directive_id: str, owner: str, signer_agent: str) -> Evaluation:
    """Refused without taking the id (answered on the unidentified subject), so its owner can still use it."""
    return agent_rejection(
        "reserved id", agent_signer(signer_agent),
        f"directive id {directive_id} begins with {owner}-, which is reserved for agent {owner}; "
        f"use ids of your own (e.g. {signer_agent}-...)",
    )


def named_another(named: str | None, name: str) -> Check | None:
    """The directive's own `agent` field, if any, must be the agent who signed it."""
    if named is None or named == name:
        return None
    return Check(
        "agent", False, f"names {named[:64]}, signed by {agent_signer(name)}", f"names {name} or no agent",
        f"the directive names agent {named[:64]!r} but is signed by {agent_signer(name)}; an agent drafts only as itself",
    )


class Authors:
    """`authorship` against the registry, each answer kept until the accounts database changes."""

    def __init__(self, registry):
        self.registry = registry
        self._memo: UntilChanged | None = None
        if registry is not None:
            try:
                self._memo = UntilChanged(registry.engine)
            except ValueError:
                self._memo = None  # not an SQLite file: every answer is read afresh

    def _ask(self, key, compute):
        return compute() if self._memo is None else self._memo.get(key, compute)

    def lookup(self, name: str) -> Known | None:
        if self.registry is None:
            return None

        def read() -> Known | None:
            ident = self.registry.get(name)
            return Known.of(ident) if ident is not None else None

        return self._ask(("agent", name), read)

    def everyone(self) -> tuple[Known, ...]:
        if self.registry is None:
            return ()
        return self._ask(("everyone",), lambda: tuple(Known.of(i) for i in self.registry.all()))

    def owner_of(self, directive_id: str) -> str | None:
        return id_owner(directive_id, (k.identity.name for k in self.everyone()))

    def author(self, payload: bytes, headers: dict | None) -> Author:
        h = headers or {}
        return authorship(h.get(SIGNER_HEADER), h.get(SIGNATURE_HEADER), payload, self.lookup, self.everyone)

    def close(self) -> None:
        if self._memo is not None:
            self._memo.close()
