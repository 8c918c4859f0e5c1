"""An agent's credentials file: everything a client needs to act as one agent, and nothing more.

Written once by `deskgate agent add` (or `rotate`), 0600, and handed to whoever runs
the agent. It holds the bus URLs, the agent's own NATS user and password (the one user
of its own account, with the agent role's rights), its inbox prefix, and its
own Ed25519 signing key; on a bus with TLS, also the CA that the bus's certificate
must come from, so the client needs nothing else to connect safely. The desk keeps only the public half and a bcrypt hash of
the password, so a credentials file is the one place this agent's secrets live.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deskgate.identity.names import AGENT_NAME_PATTERN, agent_inbox_prefix, agent_signer, agent_user

FORMAT = "deskgate-agent-credentials/1"


class CredentialsError(ValueError):
    """A credentials file that cannot be used; the message names the file and what is wrong."""


class AgentCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["deskgate-agent-credentials/1"] = FORMAT
    desk_id: str = Field(min_length=8, max_length=64, description="The desk these credentials belong to.")
    agent: str = Field(pattern=AGENT_NAME_PATTERN.pattern)
    # Empty for the desk's own agents, which read the bus's address from the data directory.
    servers: tuple[str, ...] = ()
    user: str
    password: str = Field(min_length=16, repr=False)
    inbox_prefix: str
    signer: str
    key_id: str = Field(min_length=16, max_length=16)
    private_key: str = Field(description="The Ed25519 private key's 32-byte seed, base64.", repr=False)
    issued_at: datetime
    # The bus speaks TLS (the handshake first); tls_ca: the PEM of the CA its certificate is from
    # (None: the system's CAs).
    tls: bool = False
    tls_ca: str | None = None

    def model_post_init(self, _context) -> None:
        if self.tls_ca is not None:
            if not self.tls:
                raise ValueError("tls_ca is given but tls is false")
            from cryptography import x509

            try:
                x509.load_pem_x509_certificates(self.tls_ca.encode())
            except ValueError:
                raise ValueError("tls_ca holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
        expected = {"user": agent_user(self.agent), "inbox_prefix": agent_inbox_prefix(self.agent), "signer": agent_signer(self.agent)}
        for field, want in expected.items():
            if getattr(self, field) != want:
                raise ValueError(f"{field} is {getattr(self, field)!r}; for agent {self.agent} it must be {want!r}")

    def signing_key(self) -> Ed25519PrivateKey:
        try:
            seed = base64.b64decode(self.private_key, validate=True)
            return Ed25519PrivateKey.from_private_bytes(seed)
        except ValueError as exc:
            raise CredentialsError(f"the private key of agent {self.agent} is not a base64 Ed25519 seed: {exc}") from None

    def connect_kwargs(self, servers: list[str] | None = None) -> dict:
        """Keyword arguments for `nats.connect()`: exactly this agent's rights."""
        servers = list(servers or self.servers)
        if not servers:
            raise CredentialsError(f"the credentials of agent {self.agent} name no bus server; pass the server URLs")
        kwargs = {
            "servers": servers,
            "user": self.user,
            "password": self.password,
            "inbox_prefix": self.inbox_prefix,
            "name": f"deskgate-agent-{self.agent}",
        }
        if self.tls:
            kwargs["tls_handshake_first"] = True  # TLS before the password is sent anywhere (bus/tls.py)
            if self.tls_ca is not None:
                kwargs["tls_ca"] = self.tls_ca  # made an SSL context by bus/connect.py
        return kwargs


def _tls_unset(creds: AgentCredentials) -> set[str]:
    """The TLS fields left out of the file when unset: a file for a plaintext bus keeps the shape
    it had before TLS, which older clients (the same format, extra fields forbidden) still read."""
    return {f for f in ("tls", "tls_ca") if getattr(creds, f) in (False, None)}


def write_credentials(path: Path, creds: AgentCredentials, *, replace: bool = False) -> Path:
    """Write 0600 (made so before a byte is written); never over another file unless asked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise CredentialsError(f"{path} exists; refusing to overwrite another agent's credentials (choose another --out)")
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover, or a link planted in a shared directory: never written through
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(creds.model_dump_json(indent=2, exclude=_tls_unset(creds)) + "\n")
    os.replace(tmp, path)
    return path


def read_credentials(path: str | os.PathLike) -> AgentCredentials:
    """Load a credentials file, or say exactly why it cannot be used."""
    path = Path(path)
    try:
        st = path.stat()
        text = path.read_text()
    except FileNotFoundError:
        raise CredentialsError(f"no agent credentials file at {path}: make one with `deskgate agent add NAME`") from None
    except PermissionError:
        raise CredentialsError(f"cannot read the agent credentials file {path}: permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read the agent credentials file {path}: {exc}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise CredentialsError(
            f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); it holds an agent's secrets: chmod 600 {path}"
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CredentialsError(f"{path} is not an agent credentials file (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CredentialsError(f"{path} is not an agent credentials file (format is not {FORMAT!r})")
    try:
        creds = AgentCredentials.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise CredentialsError(f"{path} is not a valid agent credentials file: {where}: {first['msg']}") from None
    creds.signing_key()
    return creds
