"""Who asked for a review, and whether their key was good when they asked.

Any agent identity may publish on approvals.queue.review.>, and what a request says of
itself (`agent`, `kind`, the summary) is its own claim. A request is shown only when an
agent's key signed it while that key was the agent's current one, by the stream's own
clock: what an agent asked before a revocation or a rotation stays (marked), and a
retired or revoked key, however it leaked, asks nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deskgate.audit.keys import LEGACY_AGENT, KeyStore, PublicKeys
from deskgate.audit.signing import SIGNATURE_HEADER, SIGNER_HEADER, Kind, SignatureStatus, verify
from deskgate.identity.names import BUILT_IN_AGENT, agent_of_signer

LEGACY_AUTHOR = "shared agent key (before per-agent keys)"


@dataclass(frozen=True)
class ReviewAuthor:
    agent: str  # the identity whose key signed the request (or LEGACY_AUTHOR)
    current_key: bool  # that key may still sign now: not retired, its agent not revoked


class ReviewAuthors:
    """The authors of one read of the review queue; each identity is read once per read."""

    def __init__(self, keys: KeyStore):
        self.keys = keys
        self._identities: dict[str, object] = {}

    def _identity(self, name: str):
        if name not in self._identities:
            self._identities[name] = self.keys.agents.get(name) if self.keys.agents is not None else None
        return self._identities[name]

    def author(self, data: bytes, headers: dict[str, str] | None, stored_at: str) -> ReviewAuthor | str:
        """The request's author, or why it is not shown (in words, for the log)."""
        h = headers or {}
        signer, signature = h.get(SIGNER_HEADER), h.get(SIGNATURE_HEADER)
        if not signer or not signature:
            return "unsigned"
        try:
            at = datetime.fromisoformat(stored_at)
        except ValueError:
            return f"no stream time on it ({stored_at!r})"
        if signer == LEGACY_AGENT:
            return self._legacy(data, signer, signature, at)
        name = agent_of_signer(signer)
        if name is None:
            return f"signed by {signer!r}, not an agent"
        ident = self._identity(name)
        if ident is None:
            return f"signed by {signer}, an agent this desk does not know"
        for key in ident.keys:
            if verify(PublicKeys({signer: key.public()}), Kind.REVIEW, data, signer, signature, expect=signer) is not SignatureStatus.VALID:
                continue
            if key.state != "current" and key.retired_at is None:
                return f"signed by {signer} with a key retired at a time not recorded"
            ends = [t for t in (key.retired_at, ident.revoked_at) if t is not None]
            if ends and at >= min(ends):
                return f"signed by {signer} with a key that stopped counting at {min(ends).isoformat()}, sent after that"
            return ReviewAuthor(name, not ends)
        return f"its signature does not verify with any key {signer} ever had"

    def _legacy(self, data: bytes, signer: str, signature: str, at: datetime) -> ReviewAuthor | str:
        """The shared key of earlier desks: what it asked before the desk's own identity
        was made (the upgrade) is shown; it asks nothing after."""
        if verify(self.keys, Kind.REVIEW, data, signer, signature, expect=signer) is not SignatureStatus.VALID:
            return f"its signature does not verify with the key of {signer}"
        desk = self._identity(BUILT_IN_AGENT)
        if desk is not None and at >= desk.created_at:
            return f"signed with the shared agent key of earlier desks after per-agent keys were made ({desk.created_at.isoformat()})"
        return ReviewAuthor(LEGACY_AUTHOR, False)
