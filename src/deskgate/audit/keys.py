"""Ed25519 keys: one pair per role, one per principal, kept under the data directory.

`keys/private/<signer>.pem` is readable only by its owner (0600, in a 0700
directory); `keys/public/<signer>.pub` holds the raw public key in base64 and is
what every verifier reads. A signer is a role name (`agent`, `factory`,
`executor`, `marketdata`, `audit`) or `principal:<name>` for a person.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# Roles that sign what they publish. The command center signs nothing itself: each
# decision is signed with the deciding principal's own key.
SIGNING_ROLES: tuple[str, ...] = ("agent", "factory", "executor", "marketdata", "audit")
PRINCIPAL_PREFIX = "principal:"
_SIGNER = re.compile(r"^(agent|factory|executor|marketdata|audit|principal:[a-z0-9][a-z0-9._-]{0,63})$")


class SigningKeyError(LookupError):
    """A key that is missing or unreadable; the message says which and how to make it."""


def principal_signer(name: str) -> str:
    return PRINCIPAL_PREFIX + name.strip().lower()


def check_signer(signer: str) -> str:
    if not isinstance(signer, str) or not _SIGNER.fullmatch(signer):
        raise ValueError(f"not a signer name: {signer!r} (a role, or principal:<name>)")
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


class KeyStore:
    """The desk's keys on disk. Public keys are cached; a miss re-reads the directory,
    so a principal added while a service runs is found without a restart."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._public: dict[str, Ed25519PublicKey] = {}
        self._private: dict[str, Ed25519PrivateKey] = {}

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
        return (self.private_dir / f"{_file_stem(signer)}.pem").exists()

    def create(self, signer: str, *, replace: bool = False) -> Ed25519PublicKey:
        """Make a key pair for `signer`. Never overwrites one unless asked: a new key
        would make everything it signed before unverifiable against the current one."""
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
        if signer in self._private:
            return self._private[signer]
        path = self.private_dir / f"{_file_stem(signer)}.pem"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            how = (
                f"`deskgate keys principal {signer.removeprefix(PRINCIPAL_PREFIX)}` or `deskgate user add`"
                if signer.startswith(PRINCIPAL_PREFIX)
                else "`deskgate init`"
            )
            raise SigningKeyError(f"no signing key for {signer} in {self.private_dir}; make one with {how}") from None
        except (ValueError, TypeError, OSError) as exc:
            raise SigningKeyError(f"cannot read the signing key for {signer} ({path}): {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path} is not an Ed25519 key")
        self._private[signer] = key
        return key

    def public(self, signer: str) -> Ed25519PublicKey | None:
        """The public key of `signer`, or None when the desk has none."""
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

    def revoke(self, signer: str) -> None:
        """Mark a key as no longer allowed to sign new decisions (its public key stays, so
        what it signed before still verifies)."""
        path = self.root / "revoked" / _file_stem(signer)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("revoked\n")

    def is_revoked(self, signer: str) -> bool:
        try:
            return (self.root / "revoked" / _file_stem(signer)).exists()
        except ValueError:
            return True

    def all_public(self) -> dict[str, Ed25519PublicKey]:
        out: dict[str, Ed25519PublicKey] = {}
        if self.public_dir.is_dir():
            for path in sorted(self.public_dir.glob("*.pub")):
                stem = path.stem
                signer = PRINCIPAL_PREFIX + stem.removeprefix("principal-") if stem.startswith("principal-") else stem
                key = self.public(signer)
                if key is not None:
                    out[signer] = key
        return out


class PublicKeys:
    """A fixed set of public keys (from an export), with the KeyStore's lookup."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]):
        self._keys = dict(keys)

    def public(self, signer: str) -> Ed25519PublicKey | None:
        return self._keys.get(signer)

    def all_public(self) -> dict[str, Ed25519PublicKey]:
        return dict(self._keys)


def verify_raw(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
        return True
    except InvalidSignature:
        return False
