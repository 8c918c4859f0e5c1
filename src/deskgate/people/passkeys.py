"""Passkeys (WebAuthn): a principal's decisions, signed by an authenticator the person holds.

Once a principal has registered a passkey, each of their decisions travels with a
WebAuthn assertion (in the `Deskgate-Passkey` header, beside the Ed25519 signature
headers) whose challenge names the exact signed decision bytes:
`challenge_for(digests)`, where each digest is `decision_digest(kind, payload)`.
One assertion may cover a batch of up to `MAX_DIGESTS` decisions, so a person
touches the authenticator once per batch, not once per item.

The cryptography is py_webauthn's (`webauthn`): CBOR, COSE keys and signatures are
never parsed here by hand. What is ours is which checks run, in which order, and a
reason a person can read for each refusal (`PasskeyError`).

The authenticator's sign count is deliberately NOT a replay defence: many platform
authenticators always report 0, and one assertion is checked once for every decision
in its batch. Replay is stopped elsewhere: each decision's id is single-use, and the
challenge names the exact signed decision bytes, so an assertion cannot be moved to
another decision. `verify_assertion` returns the count only for the record.

Everything here is pure: no I/O, no clock (`now` is passed in).

py_webauthn (with pyOpenSSL, cbor2, pyasn1) is imported by the functions that use it,
not with this module: the agents and the Command Center import this module for its
digests and models, and most desks never register a passkey, so they need not hold
the library at rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from deskgate.audit.signing import Kind, signed_message

if TYPE_CHECKING:
    from webauthn.helpers.structs import AuthenticatorData, CollectedClientData, PublicKeyCredentialDescriptor

PASSKEY_HEADER = "Deskgate-Passkey"
MAX_DIGESTS = 200
CEREMONY_TIMEOUT_MS = 120_000
CHALLENGE_PREFIX = b"deskgate/1 passkey\n"
MAX_USER_ID_BYTES = 64  # WebAuthn's limit for a user handle
MAX_LABEL = 64
MAX_JSON_CHARS = 64_000  # what a browser posts: a few kilobytes at most

# Field bounds in base64url characters (n bytes take ceil(4n/3) characters).
_CREDENTIAL_ID_CHARS = 1366  # WebAuthn allows ids up to 1023 bytes
_AUTHENTICATOR_DATA_CHARS = 1366  # 37 bytes plus any extensions
_CLIENT_DATA_CHARS = 5462  # 4 KiB; a browser's is a few hundred bytes
_SIGNATURE_CHARS = 1366  # ES256 is at most 72 bytes, EdDSA 64
_USER_HANDLE_CHARS = 86  # 64 bytes
_PUBLIC_KEY_CHARS = 2732  # COSE ES256 and EdDSA keys are under 100 bytes
MAX_HEADER_CHARS = 40_000  # the largest valid assertion encodes to about 31,000

_B64URL = r"^[A-Za-z0-9_-]*$"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_HOST = re.compile(r"(?=.{1,253}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")
_ORIGIN = re.compile(r"(https?)://([^:/?#@\s]+)(?::([0-9]{1,5}))?")


class PasskeyError(ValueError):
    """A passkey step that cannot be accepted; the message is the reason, for a person."""


def _b64url(max_length: int, min_length: int = 1) -> Any:
    """A base64url text field of bounded length (the bytes are checked where they are used)."""
    return Annotated[str, StringConstraints(pattern=_B64URL, min_length=min_length, max_length=max_length)]


CredentialId = _b64url(_CREDENTIAL_ID_CHARS)
AuthenticatorDataText = _b64url(_AUTHENTICATOR_DATA_CHARS)
ClientDataText = _b64url(_CLIENT_DATA_CHARS)
SignatureText = _b64url(_SIGNATURE_CHARS)
UserHandleText = _b64url(_USER_HANDLE_CHARS)
PublicKeyText = _b64url(_PUBLIC_KEY_CHARS)
AttestationText = _b64url(MAX_JSON_CHARS)
Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class StoredPasskey(BaseModel):
    """One registered credential of one principal: what the factory verifies against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: str = Field(min_length=1, max_length=64)
    credential_id: CredentialId
    public_key: PublicKeyText
    sign_count: int = Field(ge=0, lt=2**32)
    label: str = Field(default="", max_length=MAX_LABEL)
    created_at: AwareDatetime


class PasskeyAssertion(BaseModel):
    """What travels in PASSKEY_HEADER: the authenticator's answer and the decisions it covers.

    `user_handle` is carried as the browser gave it but not verified: the credential
    id already names the principal, through the caller's list of registered passkeys.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    credential_id: CredentialId
    authenticator_data: AuthenticatorDataText
    client_data_json: ClientDataText
    signature: SignatureText
    user_handle: UserHandleText | None = None
    digests: list[Digest] = Field(min_length=1, max_length=MAX_DIGESTS)

    @field_validator("digests")
    @classmethod
    def _distinct(cls, digests: list[str]) -> list[str]:
        if len(set(digests)) != len(digests):
            raise ValueError("a decision digest is listed twice")
        return digests


# -- digests and challenges --


def decision_digest(kind: Kind | str, payload: bytes) -> str:
    """Names one exact signed decision: the bytes its Ed25519 signature covers, kind included."""
    return hashlib.sha256(signed_message(kind, payload)).hexdigest()


def challenge_for(digests: list[str]) -> bytes:
    """The WebAuthn challenge for these decisions, in this order."""
    _check_digests(digests)
    return hashlib.sha256(CHALLENGE_PREFIX + "\n".join(digests).encode()).digest()


def _check_digests(digests: list[str]) -> None:
    if not isinstance(digests, list) or not digests:
        raise PasskeyError("a passkey must cover at least one decision")
    if len(digests) > MAX_DIGESTS:
        raise PasskeyError(f"one passkey assertion covers at most {MAX_DIGESTS} decisions, not {len(digests)}")
    for d in digests:
        if not isinstance(d, str) or not _DIGEST.fullmatch(d):
            raise PasskeyError(f"{str(d)[:80]!r} is not a decision digest (64 lowercase hex characters)")
    if len(set(digests)) != len(digests):
        raise PasskeyError("a decision digest is listed twice")


# -- origins --


def _is_host(name: str) -> bool:
    """A DNS name (lowercase, as browsers serialise it); never an IP address, as WebAuthn requires."""
    return isinstance(name, str) and _HOST.fullmatch(name) is not None and not name.rsplit(".", 1)[-1].isdigit()


def origin_allowed(origin: str, rp_id: str) -> bool:
    """https on rp_id or a subdomain of it, any port; plain http only for a desk on localhost."""
    if not isinstance(origin, str) or not _is_host(rp_id):
        return False
    m = _ORIGIN.fullmatch(origin)
    if m is None:
        return False
    scheme, host, port = m.groups()
    if not _is_host(host):
        return False
    if port is not None and (port.startswith("0") or not 1 <= int(port) <= 65535):
        return False
    if scheme == "http":
        return rp_id == "localhost" and host == "localhost"
    return host == rp_id or host.endswith("." + rp_id)


def _algorithms() -> list:
    from webauthn.helpers.cose import COSEAlgorithmIdentifier

    return [COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA]  # ES256 first: every authenticator has it


def _check_rp_id(rp_id: str) -> None:
    if not _is_host(rp_id):
        raise PasskeyError(f"{str(rp_id)[:80]!r} is not a usable passkey site name (rp id): use the desk's host name, not an address")


# -- registration --


class _RegistrationResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    clientDataJSON: ClientDataText
    attestationObject: AttestationText


class _BrowserRegistration(BaseModel):
    """The parts of navigator.credentials.create()'s answer we read ourselves; webauthn reads it all."""

    model_config = ConfigDict(extra="ignore")

    id: CredentialId
    rawId: CredentialId
    type: Literal["public-key"]
    response: _RegistrationResponse


def registration_options(
    *, rp_id: str, rp_name: str, principal: str, user_id: bytes, exclude: list[StoredPasskey]
) -> tuple[dict, bytes]:
    """Options for navigator.credentials.create, and the challenge the server keeps until the answer comes."""
    from webauthn import generate_registration_options
    from webauthn.helpers import options_to_json
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    _check_rp_id(rp_id)
    if not isinstance(rp_name, str) or not rp_name.strip():
        raise PasskeyError("the desk needs a name to show in the passkey prompt")
    if not isinstance(principal, str) or not principal.strip():
        raise PasskeyError("a passkey is registered for a named principal")
    if not isinstance(user_id, bytes) or not 1 <= len(user_id) <= MAX_USER_ID_BYTES:
        raise PasskeyError(f"the passkey's user id must be 1 to {MAX_USER_ID_BYTES} bytes")
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_name=principal,
        user_id=user_id,
        timeout=CEREMONY_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[_descriptor(p) for p in exclude],
        supported_pub_key_algs=_algorithms(),
    )
    return json.loads(options_to_json(options)), options.challenge  # plain JSON types, no enums


def verify_registration(
    credential: dict | str, *, expected_challenge: bytes, rp_id: str, principal: str, label: str = "", now: datetime
) -> StoredPasskey:
    """Check navigator.credentials.create()'s answer and return what to keep.

    With attestation "none" this proves where and for which challenge the key was made,
    not who made the authenticator. The caller must also refuse a credential id that is
    already registered to anyone.
    """
    from webauthn import verify_registration_response
    from webauthn.helpers import parse_attestation_object
    from webauthn.helpers.exceptions import WebAuthnException
    from webauthn.helpers.structs import ClientDataType

    label = _check_label(label)
    data = _json_object(credential, "passkey registration")
    browser = _model(_BrowserRegistration, data, "passkey registration")
    if browser.id != browser.rawId:
        raise PasskeyError("the passkey registration is malformed: its id and rawId differ")
    client = _client_data(browser.response.clientDataJSON)
    if client.type != ClientDataType.WEBAUTHN_CREATE:
        raise PasskeyError("the passkey's client data is not a registration")
    if not isinstance(expected_challenge, bytes) or not hmac.compare_digest(client.challenge, expected_challenge):
        raise PasskeyError("the passkey registration answers another challenge: start the registration again")
    if not origin_allowed(client.origin, rp_id):
        raise PasskeyError(f"the passkey was made on {client.origin[:200]!r}, which is not this desk's site ({rp_id})")
    try:
        attestation = parse_attestation_object(_bytes(browser.response.attestationObject, "attestation object"))
    except PasskeyError:
        raise
    except Exception:
        raise PasskeyError("the passkey's attestation object cannot be read") from None
    _check_authenticator(attestation.auth_data, rp_id)
    try:
        verified = verify_registration_response(
            credential=data,
            expected_challenge=expected_challenge,
            expected_rp_id=rp_id,
            expected_origin=client.origin,
            require_user_presence=True,
            supported_pub_key_algs=_algorithms(),
        )
    except WebAuthnException as exc:
        raise PasskeyError(f"the passkey registration does not verify: {_library_reason(exc)}") from None
    except Exception:
        raise PasskeyError("the passkey registration does not verify: its data cannot be read") from None
    credential_id = _base64url(verified.credential_id)
    if credential_id != browser.rawId:
        raise PasskeyError("the passkey registration names a different key than the one it made")
    try:
        return StoredPasskey(
            principal=principal,
            credential_id=credential_id,
            public_key=_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            label=label,
            created_at=now,
        )
    except ValidationError as exc:
        raise PasskeyError(f"the passkey cannot be kept: {_first_error(exc)}") from None


def _check_label(label: str) -> str:
    if not isinstance(label, str):
        raise PasskeyError("a passkey's name must be text")
    label = label.strip()
    if len(label) > MAX_LABEL:
        raise PasskeyError(f"a passkey's name is at most {MAX_LABEL} characters")
    if any(unicodedata.category(c).startswith("C") for c in label):
        raise PasskeyError("a passkey's name cannot contain control or invisible characters")
    return label


# -- assertions --


class _AssertionResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    clientDataJSON: str
    authenticatorData: str
    signature: str
    userHandle: str | None = None


class _BrowserAssertion(BaseModel):
    """navigator.credentials.get()'s answer as passkey.js posts it; browsers add fields we ignore."""

    model_config = ConfigDict(extra="ignore")

    id: str
    rawId: str
    type: Literal["public-key"]
    response: _AssertionResponse


def request_options(*, rp_id: str, digests: list[str], credentials: list[StoredPasskey]) -> dict:
    """Options for navigator.credentials.get whose challenge names exactly these decisions."""
    from webauthn import generate_authentication_options
    from webauthn.helpers import options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    _check_rp_id(rp_id)
    if not credentials:
        raise PasskeyError("no passkey is registered for this principal")
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge_for(digests),
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=[_descriptor(p) for p in credentials],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return json.loads(options_to_json(options))


def assertion_from_browser(credential: dict | str, digests: list[str]) -> PasskeyAssertion:
    """The header's content from what the page posts (passkey.js's `assert` result) and the digests it was asked for."""
    _check_digests(digests)
    browser = _model(_BrowserAssertion, _json_object(credential, "passkey assertion"), "passkey assertion")
    if browser.id.rstrip("=") != browser.rawId.rstrip("="):
        raise PasskeyError("the passkey assertion is malformed: its id and rawId differ")
    r = browser.response
    return _model(
        PasskeyAssertion,
        {
            "credential_id": browser.rawId.rstrip("="),
            "authenticator_data": r.authenticatorData.rstrip("="),
            "client_data_json": r.clientDataJSON.rstrip("="),
            "signature": r.signature.rstrip("="),
            "user_handle": r.userHandle.rstrip("=") if r.userHandle else None,
            "digests": list(digests),
        },
        "passkey assertion",
    )


def encode_assertion(a: PasskeyAssertion) -> str:
    """The header value: base64url of compact JSON (no characters a NATS header cannot carry)."""
    text = _base64url(a.model_dump_json(exclude_none=True).encode())
    if len(text) > MAX_HEADER_CHARS:
        raise PasskeyError("the passkey assertion is too large to send")
    return text


def decode_assertion(text: str | None) -> PasskeyAssertion:
    """The header value back; anything malformed is a PasskeyError, never another exception."""
    if text is None or text == "":
        raise PasskeyError("the decision carries no passkey assertion")
    if not isinstance(text, str):
        raise PasskeyError("the passkey assertion must be text")
    if len(text) > MAX_HEADER_CHARS:
        raise PasskeyError(f"the passkey assertion is longer than {MAX_HEADER_CHARS} characters")
    if not re.fullmatch(_B64URL, text):
        raise PasskeyError("the passkey assertion is not base64url")
    try:
        raw = _bytes(text, "assertion").decode("utf-8")
    except UnicodeDecodeError:
        raise PasskeyError("the passkey assertion is not UTF-8 JSON") from None
    return _model(PasskeyAssertion, _json_object(raw, "passkey assertion"), "passkey assertion")


def verify_assertion(assertion: PasskeyAssertion, credentials: list[StoredPasskey], *, digest: str, rp_id: str) -> int:
    """Check that this principal's passkey signed a challenge covering this decision; return its sign count.

    Each check has its own reason, in this order: a registered credential, the digest
    covered, an assertion (not a registration) over challenge_for(digests), the origin,
    the rp id, user presence, then the signature with the stored COSE key (py_webauthn,
    which repeats the earlier checks). The sign count is not compared: see the module's
    docstring.
    """
    from webauthn import verify_authentication_response
    from webauthn.helpers import parse_authenticator_data
    from webauthn.helpers.structs import AuthenticationCredential, AuthenticatorAssertionResponse, ClientDataType

    if not isinstance(assertion, PasskeyAssertion):
        raise PasskeyError("the passkey assertion is missing")
    stored = next((p for p in credentials if p.credential_id == assertion.credential_id), None)
    if stored is None:
        raise PasskeyError("the passkey is not one registered to this principal")
    if digest not in assertion.digests:
        raise PasskeyError("the passkey assertion does not cover this decision")
    client_data_bytes = _bytes(assertion.client_data_json, "client data")
    client = _client_data(assertion.client_data_json)
    if client.type != ClientDataType.WEBAUTHN_GET:
        raise PasskeyError("the passkey's client data is not an assertion")
    challenge = challenge_for(assertion.digests)
    if not hmac.compare_digest(client.challenge, challenge):
        raise PasskeyError("the passkey signed a different challenge than these decisions")
    if not origin_allowed(client.origin, rp_id):
        raise PasskeyError(f"the passkey was used on {client.origin[:200]!r}, which is not this desk's site ({rp_id})")
    authenticator_data = _bytes(assertion.authenticator_data, "authenticator data")
    try:
        auth = parse_authenticator_data(authenticator_data)
    except Exception:
        raise PasskeyError("the passkey's authenticator data cannot be read") from None
    _check_authenticator(auth, rp_id)
    credential = AuthenticationCredential(
        id=assertion.credential_id,
        raw_id=_bytes(assertion.credential_id, "credential id"),
        response=AuthenticatorAssertionResponse(
            client_data_json=client_data_bytes,
            authenticator_data=authenticator_data,
            signature=_bytes(assertion.signature, "signature"),
            user_handle=_bytes(assertion.user_handle, "user handle") if assertion.user_handle else None,
        ),
    )
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=client.origin,
            credential_public_key=_bytes(stored.public_key, "registered public key"),
            credential_current_sign_count=0,  # not a replay defence here: see the module's docstring
        )
    except Exception:
        raise PasskeyError("the passkey's signature does not verify") from None
    return verified.new_sign_count


def _check_authenticator(auth: AuthenticatorData, rp_id: str) -> None:
    if not hmac.compare_digest(auth.rp_id_hash, hashlib.sha256(rp_id.encode()).digest()):
        raise PasskeyError(f"the passkey belongs to another site, not this desk's ({rp_id})")
    if not auth.flags.up:
        raise PasskeyError("the authenticator did not confirm that a person was present")


# -- small helpers --


def _descriptor(p: StoredPasskey) -> PublicKeyCredentialDescriptor:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

    return PublicKeyCredentialDescriptor(id=_bytes(p.credential_id, "credential id"))


def _bytes(text: str, what: str) -> bytes:
    """Strict base64url: only the canonical unpadded spelling of some bytes is accepted."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError, TypeError):
        raise PasskeyError(f"the passkey's {what} is not base64url") from None
    if _base64url(raw) != text:
        raise PasskeyError(f"the passkey's {what} is not base64url")
    return raw


def _base64url(raw: bytes) -> str:
    """Unpadded base64url, as py_webauthn's bytes_to_base64url writes it."""
    return base64.urlsafe_b64encode(raw).decode("utf-8").rstrip("=")


def _client_data(text: str) -> CollectedClientData:
    from webauthn.helpers import parse_client_data_json

    try:
        return parse_client_data_json(_bytes(text, "client data"))
    except PasskeyError:
        raise
    except Exception:
        raise PasskeyError("the passkey's client data cannot be read") from None


class _Repeated(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise _Repeated(k)
        seen[k] = v
    return seen


def _json_object(value: dict | str, what: str) -> dict:
    """A JSON object from the browser or the bus; a key given twice is refused (one meaning for every reader)."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise PasskeyError(f"the {what} must be a JSON object")
    if len(value) > MAX_JSON_CHARS:
        raise PasskeyError(f"the {what} is longer than {MAX_JSON_CHARS} characters")
    try:
        data = json.loads(value, object_pairs_hook=_unique_pairs)
    except _Repeated as exc:
        raise PasskeyError(f"the {what} gives the key {str(exc)[:80]!r} twice") from None
    except (ValueError, RecursionError):
        raise PasskeyError(f"the {what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise PasskeyError(f"the {what} must be a JSON object")
    return data


def _model(model: type[BaseModel], data: dict, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PasskeyError(f"the {what} is malformed: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    e = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in e["loc"]) or "value"
    return f"{where}: {e['msg']}"[:200]


def _library_reason(exc: Exception) -> str:
    return str(exc).replace(" See __cause__ for more info", "").strip()[:200] or type(exc).__name__
