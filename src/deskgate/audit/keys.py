"""Ed25519 keys: one pair per role under the data directory, one per principal sealed,
one per agent identity.

A signer is a role name (`factory`, `executor`, `marketdata`, `audit`),
`principal:<name>` for a person, or `agent:<name>` for an agent identity. A role's
key is `keys/private/<role>.pem`, readable only by its owner (0600, in a 0700
directory), and `keys/public/<role>.pub` (the raw public key in base64), which every
verifier reads.

A person's key never lies on disk in the clear: it is sealed with their password
in the accounts database (people/principals.py), and this store only reads their
public keys from there. An agent's private key lives only in its credentials file;
the desk keeps its public keys in the same database (identity/registry.py).

Two lookups, for two questions: `public_keys` is every key a signer ever had, to
verify what was signed before (a rotated or revoked agent's old keys included);
`deciding` is the keys that may sign something the desk acts on *now* (a principal's
current sealed key while their account is enabled; an agent's current key while it
is not revoked), for the factory and the executor.

`agent` alone is the shared agent key of desks from before per-agent identities
(`keys/public/agent.pub`). It is never made any more and never signs a new
directive (`deciding` has no key for it), but it still verifies what it signed
then: an old audit log stays verifiable.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deskgate.audit import ed25519
from deskgate.identity.names import AGENT_NAME_PATTERN, AGENT_SIGNER_PREFIX, agent_of_signer

# Roles that sign what they publish. The command center signs nothing itself: each
# decision is signed with the deciding principal's own key. Agents sign with their own
# identities' keys (`agent:<name>`), which live in their credentials files, not here.
SIGNING_ROLES: tuple[str, ...] = ("factory", "executor", "marketdata", "audit")
# The shared agent key of earlier desks: its public file is kept to verify the past.
LEGACY_AGENT = "agent"
PRINCIPAL_PREFIX = "principal:"
AGENT_PREFIX = AGENT_SIGNER_PREFIX
# Who may have signed an agent's output, as `expect=` (audit/signing.py) takes it: any
# agent identity, or the shared key of earlier desks for what it signed back then (the
# factory never evaluates a new directive it signs: factory/authors.py).
AGENT_SIGNERS: tuple[str, ...] = (AGENT_PREFIX, LEGACY_AGENT)
_SIGNER = re.compile(
    r"^(agent|factory|executor|marketdata|audit|principal:[a-z0-9][a-z0-9._-]{0,63}|agent:" + AGENT_NAME_PATTERN.pattern[1:-1] + r")$"
)


class SigningKeyError(LookupError):
    """A key that is missing or unreadable; the message says which and how to make it."""


def principal_signer(name: str) -> str:
    return PRINCIPAL_PREFIX + name.strip().lower()


def check_signer(signer: str) -> str:
    if not isinstance(signer, str) or not _SIGNER.fullmatch(signer):
        raise ValueError(f"not a signer name: {signer!r} (a role, principal:<name> or agent:<name>)")
    return signer


def _file_stem(signer: str) -> str:
    return check_signer(signer).replace(":", "-")


def fingerprint(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw key: enough to tell keys apart by eye."""
    return hashlib.sha256(raw_public(public)).hexdigest()[:16]


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_from_text(text: str) -> Ed25519PublicKey:
    raw = base64.b64decode(text.strip(), validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_to_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(public)).decode()


class PrincipalKeys(Protocol):
    """Where principals' public keys come from (people.principals.Principals)."""

    def public_keys(self, name: str) -> list[Ed25519PublicKey]: ...

    def decision_key(self, name: str) -> Ed25519PublicKey | None: ...


class AgentKeys(Protocol):
    """Where agents' public keys come from (identity.registry.AgentRegistry)."""

    def public_keys(self, name: str) -> tuple[Ed25519PublicKey, ...]: ...

    def directive_key(self, name: str) -> Ed25519PublicKey | None: ...

    def refusal(self, name: str) -> str | None: ...


class KeyStore:
    """The desk's keys. Role keys are cached; a principal's and an agent's are read from
    the accounts database (cached for verifying the past, re-read when a signature does
    not verify; never cached for deciding, so a disabled account or a revoked agent
    stops signing at once)."""

    def __init__(self, root: Path, principals: PrincipalKeys | None = None, agents: AgentKeys | None = None):
        self.root = Path(root)
        self.principals = principals
        self.agents = agents
        self._public: dict[str, Ed25519PublicKey] = {}
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._account_keys: dict[str, tuple[Ed25519PublicKey, ...]] = {}
        self.pins = None  # a verifying service's pinned principal keys (people/pins.py), if it keeps them

    @classmethod
    def for_desk(cls, data_dir, *, pins=None) -> KeyStore:
        """Role keys from `data_dir/keys`, principals' and agents' from
        `data_dir/state/accounts.db` (unsealed principal key files from an earlier
        version are retired the first time). `pins`: the verifying service's own pinned
        keys (people/pins.py)."""
        from deskgate.identity.registry import AgentRegistry
        from deskgate.people.accounts import Accounts
        from deskgate.people.principals import Principals

        accounts = Accounts.open(data_dir)
        principals = Principals(accounts, legacy_dir=data_dir.keys)
        principals.migrate_unsealed_keys()
        store = cls(data_dir.keys, principals, AgentRegistry(accounts.engine))
        store.pins = pins
        return store

    @property
    def deciding(self) -> DecidingKeys:
        return DecidingKeys(self)

    @property
    def private_dir(self) -> Path:
        return self.root / "private"

    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    def _ensure_dirs(self) -> None:
        self.private_dir.mkdir(parents=True, exist_ok=True)
        self.public_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.private_dir, 0o700)

    def has_private(self, signer: str) -> bool:
        if signer.startswith((PRINCIPAL_PREFIX, AGENT_PREFIX)):
            return False  # sealed in the accounts database, or in the agent's credentials file: never here
        return (self.private_dir / f"{_file_stem(signer)}.pem").exists()

    def create(self, signer: str, *, replace: bool = False) -> Ed25519PublicKey:
        """Make a key pair for a role. Never overwrites one unless asked: a new key
        would make everything it signed before unverifiable against the current one."""
        if check_signer(signer).startswith(PRINCIPAL_PREFIX):
            raise SigningKeyError(
                f"{signer}'s key is sealed with their password, never written to a file: "
                "`deskgate user add NAME --role principal` makes it"
            )
        if signer.startswith(AGENT_PREFIX):
            raise SigningKeyError(f"{signer}'s key is in its credentials file, never in keys/: `deskgate agent add NAME` makes it")
        self._ensure_dirs()
        stem = _file_stem(signer)
        private_path = self.private_dir / f"{stem}.pem"
        if private_path.exists() and not replace:
            return self.public(signer)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = private_path.with_suffix(".pem.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, private_path)
        public_path = self.public_dir / f"{stem}.pub"
        pub_tmp = public_path.with_suffix(".pub.tmp")
        pub_tmp.write_text(public_to_text(key.public_key()) + "\n")
        os.replace(pub_tmp, public_path)
        self._private[signer] = key
        self._public[signer] = key.public_key()
        return key.public_key()

    def ensure_roles(self) -> list[str]:
        """Make the role keys that are missing; returns the ones made."""
        made = [r for r in SIGNING_ROLES if not self.has_private(r)]
        for r in made:
            self.create(r)
        return made

    def private(self, signer: str) -> Ed25519PrivateKey:
        """A role's private key. A principal's is never read from here: only their own
        secret opens it (people/principals.py), whatever lies in this directory."""
        if signer in self._private:
            return self._private[signer]
        if check_signer(signer).startswith(PRINCIPAL_PREFIX):
            raise SigningKeyError(f"{signer} signs only with their sealed key, opened with their own password")
        if signer.startswith(AGENT_PREFIX):
            raise SigningKeyError(f"{signer} signs with the key in its own credentials file (deskgate.identity.credentials), not one in {self.private_dir}")
        path = self.private_dir / f"{_file_stem(signer)}.pem"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise SigningKeyError(f"no signing key for {signer} in {self.private_dir}; make one with `deskgate init`") from None
        except (ValueError, TypeError, OSError) as exc:
            raise SigningKeyError(f"cannot read the signing key for {signer} ({path}): {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 key")
        self._private[signer] = key
        return key

    def public(self, signer: str) -> Ed25519PublicKey | None:
        """The (current) public key of `signer`, or None when the desk has none."""
        keys = self.public_keys(signer)
        return keys[0] if keys else None

    def _file_public(self, signer: str) -> Ed25519PublicKey | None:
        if signer in self._public:
            return self._public[signer]
        try:
            path = self.public_dir / f"{_file_stem(signer)}.pub"
        except ValueError:
            return None
        try:
            key = public_from_text(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        self._public[signer] = key
        return key

    def public_keys(self, signer: str, *, fresh: bool = False) -> tuple[Ed25519PublicKey, ...]:
        """Every key `signer` ever signed with, current first: for verifying the past.
        A principal's and an agent's come only from the accounts database (retired
        unsealed keys, rotated keys and a revoked agent's keys included), never from a
        file in keys/."""
        if signer.startswith(AGENT_PREFIX):
            return self._agent_keys(signer, fresh)
        if not signer.startswith(PRINCIPAL_PREFIX):
            key = self._file_public(signer)
            return (key,) if key is not None else ()
        if not fresh and signer in self._account_keys:
            return self._account_keys[signer]
        name = signer.removeprefix(PRINCIPAL_PREFIX)
        found = tuple(self.principals.public_keys(name)) if self.principals is not None else ()
        if found:
            self._account_keys[signer] = found
        return found

    def _agent_keys(self, signer: str, fresh: bool) -> tuple[Ed25519PublicKey, ...]:
        name = agent_of_signer(signer)
        if name is None or self.agents is None:
            return ()
        if not fresh and signer in self._account_keys:
            return self._account_keys[signer]
        found = tuple(self.agents.public_keys(name))
        if found:
            self._account_keys[signer] = found
        return found

    def all_public(self) -> dict[str, Ed25519PublicKey]:
        """Each signer's current key."""
        return {signer: keys[0] for signer, keys in self.all_keys().items()}

    def all_keys(self) -> dict[str, tuple[Ed25519PublicKey, ...]]:
        """Every signer's keys, current first (roles, then principals)."""
        signers: set[str] = set()
        if self.public_dir.is_dir():
            signers.update(p.stem for p in self.public_dir.glob("*.pub") if not p.stem.startswith("principal-"))
        if self.principals is not None and hasattr(self.principals, "keys"):
            signers.update(PRINCIPAL_PREFIX + r.name for r in self.principals.keys())
        if self.agents is not None and hasattr(self.agents, "all"):
            signers.update(a.signer for a in self.agents.all())
        out: dict[str, tuple[Ed25519PublicKey, ...]] = {}
        for signer in sorted(signers):
            keys = self.public_keys(signer, fresh=True)
            if keys:
                out[signer] = keys
        return out


class DecidingKeys:
    """The keys that may sign something the desk acts on *now*: the roles' keys; for a
    principal only the current sealed key of an enabled principal or admin account; for
    an agent only its current key while it is not revoked; for the shared agent key of
    earlier desks, none. Read afresh every time: disabling an account or revoking an
    agent takes effect at once."""

    def __init__(self, store: KeyStore):
        self.store = store

    def public_keys(self, signer: str, *, fresh: bool = True) -> tuple[Ed25519PublicKey, ...]:
        if signer == LEGACY_AGENT:
            return ()
        if signer.startswith(AGENT_PREFIX):
            name = agent_of_signer(signer)
            key = self.store.agents.directive_key(name) if name is not None and self.store.agents is not None else None
            return (key,) if key is not None else ()
        if not signer.startswith(PRINCIPAL_PREFIX):
            return self.store.public_keys(signer)
        if self.store.principals is None:
            return ()
        name = signer.removeprefix(PRINCIPAL_PREFIX)
        key = self.store.principals.decision_key(name)
        if key is None:
            return ()
        pins = self.store.pins
        if pins is not None and not pins.accepts(name.strip().lower(), key, self.store.principals.key_chain(name.strip().lower())):
            return ()
        return (key,)

    def why_not(self, signer: str) -> str | None:
        """Why `signer` cannot sign a decision now, in words (None when it can)."""
        if signer == LEGACY_AGENT:
            return "the shared agent key of earlier desks signs nothing new: each agent signs with its own key (`deskgate agent add NAME`)"
        if signer.startswith(AGENT_PREFIX):
            name = agent_of_signer(signer)
            if name is None:
                return f"{signer!r} is not an agent's signer name"
            return self.store.agents.refusal(name) if self.store.agents is not None else f"no agent identities are known here ({signer})"
        if not signer.startswith(PRINCIPAL_PREFIX) or self.store.principals is None:
            return None
        name = signer.removeprefix(PRINCIPAL_PREFIX)
        refusal = self.store.principals.refusal(name)
        if refusal is None and not self.public_keys(signer):
            clean = name.strip().lower()
            if self.store.pins is not None and self.store.pins.pinned(clean) is None:
                return f"{clean} is not enrolled with this service: an operator confirms their key with `deskgate keys trust {clean}`"
            return (
                f"{clean}'s current key is not the one this service trusts, and no certificate from that key leads to it "
                f"(an operator confirms a new key with `deskgate keys trust {clean}`)"
            )
        return refusal

    def public(self, signer: str) -> Ed25519PublicKey | None:
        keys = self.public_keys(signer)
        return keys[0] if keys else None


class PublicKeys:
    """A fixed set of public keys (from an export), with the KeyStore's lookup. Each
    signer maps to one key, or to several (current first) when it had more."""

    def __init__(self, keys: dict[str, Ed25519PublicKey | tuple[Ed25519PublicKey, ...] | list[Ed25519PublicKey]]):
        self._keys = {s: tuple(k) if isinstance(k, (tuple, list)) else (k,) for s, k in keys.items()}

    def public(self, signer: str) -> Ed25519PublicKey | None:
        keys = self._keys.get(signer)
        return keys[0] if keys else None

    def public_keys(self, signer: str, *, fresh: bool = False) -> tuple[Ed25519PublicKey, ...]:
        return self._keys.get(signer, ())

    def all_public(self) -> dict[str, Ed25519PublicKey]:
        return {s: k[0] for s, k in self._keys.items() if k}

    def all_keys(self) -> dict[str, tuple[Ed25519PublicKey, ...]]:
        return dict(self._keys)


def verify_raw(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Checked by libsodium (audit/ed25519.py), twice as fast as OpenSSL; the key objects
    stay `cryptography`'s, which reads and writes the key files."""
    return ed25519.verify(raw_public(public), signature, message)
