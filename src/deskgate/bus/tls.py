"""TLS for the bus: the embedded desk's own CA and server certificate, an operator's files
checked before they reach a config, and the client side's SSL context.

Why TLS at all: a client's password goes to whatever answers on the bus's address. A
process that takes the port while the bus is down (or a machine in the path of an
external bus) would collect every password of the reconnecting services. With TLS the
server proves itself with a certificate from the desk's CA before anything is sent.

Why the TLS handshake comes first (`handshake_first`): nats-py starts TLS only after the
server's plaintext INFO says `tls_required`, so a server that says otherwise would get a
plaintext CONNECT with the password in it. deskgate's clients start TLS before reading
a byte (`tls_handshake_first`). The servers deskgate configures take that at once, and
after HANDSHAKE_FIRST_FALLBACK also take a client that waits for INFO first (other NATS
clients, the `nats` CLI), still over TLS: a plaintext client is refused either way.

The CA is made once per data directory (`<data_dir>/bus/tls/`) and never replaced
silently: every client trusting it would be refused by a new one. The server certificate
is derived from it and is made again whenever it is missing, expiring, or no longer fits
(another CA, another host or names). The CA's key may be kept offline: a certificate that
is only due for renewal is then kept, with a warning. Client authentication stays the
per-role passwords.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deskgate.bus.server import WILDCARD_HOSTS, BusError
from deskgate.paths import DataDir, write_private

log = logging.getLogger("deskgate.bus.tls")

CA_DAYS = 3650
SERVER_DAYS = 397
RENEW_BEFORE = timedelta(days=30)  # a server certificate closer than this to its end is made again at a start
HANDSHAKE_FIRST_FALLBACK = "300ms"  # how long a server waits for a client's TLS handshake before sending INFO
HANDSHAKE_TIMEOUT_S = 5  # nats-server's default (0.5 s) is short for a loaded 2-CPU machine starting three nodes
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class TLSError(BusError):
    """A certificate, key or CA that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class DeskTLS:
    """The embedded bus's TLS files, under `<data_dir>/bus/tls/`."""

    dir: Path

    @classmethod
    def of(cls, data_dir: DataDir) -> DeskTLS:
        return cls(data_dir.bus / "tls")

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def key(self) -> Path:
        return self.dir / "server-key.pem"


# -- nats-server config blocks ----------------------------------------------------------


def client_tls_block(cert: str | Path, key: str | Path, ca: str | Path | None = None) -> dict:
    """The server's `tls` block for clients: TLS required, the handshake first (or, after a
    moment, the classic way), no client certificates asked for: clients authenticate with
    their passwords."""
    block = {"cert_file": str(cert), "key_file": str(key), "handshake_first": HANDSHAKE_FIRST_FALLBACK, "timeout": HANDSHAKE_TIMEOUT_S}
    if ca is not None:
        block["ca_file"] = str(ca)
    return block


def route_tls_block(cert: str | Path, key: str | Path, ca: str | Path) -> dict:
    """The `cluster { tls }` block: each node proves itself to the others with a certificate
    from `ca`, both ways (`verify`), in addition to the route password."""
    return {"cert_file": str(cert), "key_file": str(key), "ca_file": str(ca), "verify": True, "timeout": HANDSHAKE_TIMEOUT_S}


def tls_url(url: str) -> str:
    """An address with the tls:// scheme (nats://host:port and host:port alike)."""
    rest = url.split("://", 1)[1] if "://" in url else url
    return f"tls://{rest}"


# -- the embedded desk's CA and server certificate ---------------------------------------


def server_names(host: str, extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """What the server certificate is valid for: loopback, bus.host when it is a real address
    (not a wildcard such as 0.0.0.0), since clients connect to the address they were given, and
    `extra` (bus.tls_names: the machine's names and addresses as remote clients reach it)."""
    names = list(LOOPBACK_NAMES)
    for name in (host, *extra):
        if name and name not in names and name not in WILDCARD_HOSTS:
            names.append(name)
    return tuple(names)


def ensure_desk_tls(
    data_dir: DataDir, host: str = "127.0.0.1", names: tuple[str, ...] | list[str] = (), *, now: datetime | None = None
) -> DeskTLS:
    """The embedded bus's CA (made once) and a server certificate from it, valid for `host` and
    `names` (bus.tls_names) for at least RENEW_BEFORE more. Keys are 0600. Without the CA's key
    (kept offline), a certificate that is only due for renewal is kept, with a warning."""
    now = now or datetime.now(timezone.utc)
    files = DeskTLS.of(data_dir)
    files.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(files.dir, 0o700)
    ca = _ensure_ca(files, now)
    ca_key = _ca_key(files, ca)
    wanted = server_names(host, names)
    problem, usable = _server_cert_problem(files, ca, wanted, now)
    if problem is None:
        return files
    if ca_key is None:
        if usable:
            log.warning(
                "the bus's server certificate %s should be made again (%s), but the CA's key %s is not there to sign a new "
                "one; it is used as it is for now: put the key back and restart the desk before it expires",
                files.cert, problem, files.ca_key,
            )
            return files
        raise TLSError(
            f"the bus's server certificate {files.cert} must be made again ({problem}), but the CA's key {files.ca_key} "
            "is missing, so nothing can sign it: put the key back, or move the directory aside to make a new CA "
            "(every client must then be given the new CA: `deskgate creds`, `deskgate agent rotate`)"
        )
    if files.cert.exists():
        log.info("making the bus's server certificate again: %s", problem)
    _make_server_cert(files, ca, ca_key, wanted, now)
    return files


def _ca_key(files: DeskTLS, ca: x509.Certificate):
    """The CA's private key; None when it is kept offline (absent). Refused when it is not `ca`'s."""
    if not files.ca_key.exists():
        return None
    key = load_private_key(files.ca_key, "the desk's CA key")
    if not _same_key(ca, key):
        raise TLSError(
            f"the desk's CA key {files.ca_key} does not match the CA certificate {files.ca_cert} (it is another CA's key): "
            f"put back the key that belongs to {files.ca_cert}, or move {files.dir} aside to start with a new CA "
            "(every client must then be given the new CA)"
        )
    return key


def _ensure_ca(files: DeskTLS, now: datetime) -> x509.Certificate:
    if not files.ca_cert.exists():
        if files.ca_key.exists():
            raise TLSError(
                f"the desk's CA certificate {files.ca_cert} is missing but its key {files.ca_key} is there; deskgate does not "
                "make a new CA silently (clients trusting the old one would be refused): put the certificate back, or move "
                f"{files.dir} aside to start with a new CA"
            )
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "deskgate"), x509.NameAttribute(NameOID.COMMON_NAME, "deskgate bus CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(files.ca_key, key)
        _write_cert(files.ca_cert, cert)
        return cert
    ca = load_certificates(files.ca_cert, "the desk's CA")[0]
    if ca.not_valid_after_utc - now < RENEW_BEFORE:
        raise TLSError(
            f"the desk's CA {files.ca_cert} expires on {ca.not_valid_after_utc:%Y-%m-%d}; deskgate does not replace it "
            f"silently: move {files.dir} aside and start the desk to make a new one, then give every client the new CA "
            "(`deskgate creds`, `deskgate agent rotate` for outside agents)"
        )
    return ca


def _server_cert_problem(files: DeskTLS, ca: x509.Certificate, names: tuple[str, ...], now: datetime) -> tuple[str | None, bool]:
    """Why the server certificate should be made again (None: it need not), and whether it can
    still serve until then: yes when it is only due for renewal or names more than is asked;
    no when it is missing, expired, not its key's, not from the CA, or does not cover a name."""
    if not files.cert.exists() or not files.key.exists():
        return "there is none", False
    try:
        cert = load_certificates(files.cert, "the bus's server certificate")[0]
        key = load_private_key(files.key, "the bus's server key")
    except TLSError as exc:
        return str(exc), False
    if not _same_key(cert, key):
        return f"its key {files.key} does not match it", False
    if not _issued_by(cert, ca):
        return f"it is not signed by the desk's CA {files.ca_cert}", False
    if cert.not_valid_after_utc <= now:
        return f"it expired on {cert.not_valid_after_utc:%Y-%m-%d}", False
    has = set(_san_names(cert))
    if missing := set(names) - has:
        return f"it is not valid for {', '.join(sorted(missing))}", False
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}", True
    if extra := has - set(names):
        return f"it is also valid for {', '.join(sorted(extra))}, no longer asked for (bus.host, bus.tls_names)", True
    return None, True


def _make_server_cert(files: DeskTLS, ca: x509.Certificate, ca_key, names: tuple[str, ...], now: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [_general_name(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "deskgate"), x509.NameAttribute(NameOID.COMMON_NAME, "deskgate bus")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=SERVER_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        # serverAuth for clients, clientAuth because a cluster's node also dials the others' routes with it.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(files.key, key)
    _write_cert(files.cert, cert)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _san_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _write_key(path: Path, key) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(path, pem.decode())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    write_private(path, cert.public_bytes(serialization.Encoding.PEM).decode())
    os.chmod(path, 0o644)  # a certificate is public; its directory (0700) still keeps it to the desk's user


# -- reading and checking files -----------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TLSError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise TLSError(f"{what} {path} is a directory, not a PEM file") from None
    except PermissionError:
        raise TLSError(f"{what} {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise TLSError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def load_certificates(path: str | Path, what: str = "the certificate file") -> list[x509.Certificate]:
    """Every certificate in a PEM file (a leaf and its chain, or a CA bundle); at least one."""
    data = _read(Path(path), what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSError(f"{what} {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    return certs


def load_private_key(path: str | Path, what: str = "the key file"):
    data = _read(Path(path), what)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSError(f"{what} {path} is encrypted; nats-server needs it unencrypted (keep it 0600)") from None
    except ValueError:
        raise TLSError(f"{what} {path} is not a PEM private key") from None


def read_ca(path: str | Path, what: str = "the bus's CA file") -> str:
    """A CA file's certificates as PEM text, for clients to trust (credentials files, `deskgate
    creds`). Only the certificates, re-serialised: a private key kept in the same file is never
    copied out of it."""
    certs = load_certificates(path, what)
    if b"PRIVATE KEY" in _read(Path(path), what):
        log.warning("%s %s also holds a private key; only its certificates are given to clients: keep the key in its own file", what, path)
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def _same_key(cert: x509.Certificate, key) -> bool:
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*der) == key.public_key().public_bytes(*der)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chains_to(leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: list[x509.Certificate]) -> bool:
    """Whether `leaf` leads to one of `roots` through the intermediates its file carries."""
    current = leaf
    for _ in range(len(intermediates) + 1):
        if any(_issued_by(current, root) for root in roots):
            return True
        current = next((c for c in intermediates if c is not current and _issued_by(current, c)), None)
        if current is None:
            return False
    return False


def check_server_files(cert: str | Path, key: str | Path, ca: str | Path | None, *, what: str, routes: bool = False) -> None:
    """An operator's certificate, key and CA for nats-server: readable, the key the certificate's,
    the certificate from the CA and not expired; for routes also usable as a client (a node dials
    the others with it)."""
    certs = load_certificates(cert, f"{what} certificate")
    leaf = certs[0]
    if not _same_key(leaf, load_private_key(key, f"{what} key")):
        raise TLSError(f"{what} key {key} does not match the certificate {cert} (it is another certificate's key)")
    if leaf.not_valid_after_utc <= datetime.now(timezone.utc):
        raise TLSError(f"{what} certificate {cert} expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    if ca is not None and not _chains_to(leaf, certs[1:], load_certificates(ca, f"{what} CA file")):
        raise TLSError(f"{what} certificate {cert} is not signed by the CA in {ca}")
    if routes:
        try:
            usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            raise TLSError(
                f"{what} certificate {cert} is not allowed for client authentication (extended key usage clientAuth): "
                "a node presents it when it dials the other nodes' routes"
            )


@dataclass(frozen=True)
class OperatorTLS:
    """An operator's certificate, key and CA for their own nodes (`deskgate bus-config`): paths
    as nats-server on each node reads them, so absolute, and each node holds its own files there."""

    cert: str
    key: str
    ca: str | None = None

    def check(self, what: str, *, routes: bool = False) -> str | None:
        """Refuse what cannot work; when the files are on this machine too, check them (key, CA,
        expiry). Returns a note when they are not here, so were not checked."""
        for option, path in (("certificate", self.cert), ("key", self.key), ("CA file", self.ca)):
            if path is not None and not Path(path).is_absolute():
                raise TLSError(f"{what} {option} {path!r} must be an absolute path: nats-server reads it on each node")
        if not Path(self.cert).exists():
            return f"{what}: {self.cert} is not on this machine, so it was not checked; it must be on every node at that path"
        check_server_files(self.cert, self.key, self.ca, what=what, routes=routes)
        return None


# -- the client side -----------------------------------------------------------------------


def client_context(ca_pem: str | None = None, *, cafile: str | Path | None = None) -> ssl.SSLContext:
    """An SSL context that trusts the bus's CA (PEM text or a file), or the system's CAs when none is given."""
    try:
        if cafile is not None:
            return ssl.create_default_context(cafile=str(cafile))
        return ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    except FileNotFoundError:
        raise TLSError(f"the bus's CA file {cafile} does not exist") from None
    except (ssl.SSLError, ValueError) as exc:
        raise TLSError(f"the bus's CA ({cafile or 'given in the credentials'}) holds no usable PEM certificate: {exc}") from None


def endpoint_tls(endpoint: dict) -> dict:
    """What a client of the bus that endpoint.json describes needs for TLS, as JSON `nats.connect()`
    arguments (see `nats_options`); nothing for a plaintext bus."""
    if not endpoint.get("tls"):
        return {}
    out: dict = {"tls_handshake_first": True}
    if endpoint.get("tls_ca"):
        out["tls_ca"] = read_ca(endpoint["tls_ca"])
    return out


def nats_options(kwargs: dict) -> dict:
    """`nats.connect()` keyword arguments from deskgate's JSON ones (`deskgate creds`, a credentials
    file): `tls_ca`, the CA's PEM text, becomes `tls`, an SSL context trusting it."""
    kwargs = dict(kwargs)
    ca = kwargs.pop("tls_ca", None)
    if ca is not None and "tls" not in kwargs:
        kwargs["tls"] = client_context(ca)
    return kwargs
