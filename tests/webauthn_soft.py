"""A software WebAuthn authenticator for tests: an authenticator is outside the project, like a hosted API.

It plays both the authenticator and the browser: it builds clientDataJSON and
authenticator data as a browser and a CTAP2 authenticator would, signs them with
its own key (ES256 or Ed25519), and answers in the JSON shape passkey.js posts.
Every part can be chosen (type, origin, rp id, flags), and the result is always
validly signed, so a test can hit exactly one check of the verifier.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

UP, UV, AT = 0x01, 0x04, 0x40


def b64(raw: bytes) -> str:
    return bytes_to_base64url(raw)


class SoftAuthenticator:
    """One credential on one software authenticator."""

    def __init__(self, alg: str = "ES256", *, sign_count: int = 0):
        if alg == "ES256":
            self.key = ec.generate_private_key(ec.SECP256R1())
            n = self.key.public_key().public_numbers()
            self.cose = {1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}
        elif alg == "EdDSA":
            self.key = ed25519.Ed25519PrivateKey.generate()
            self.cose = {1: 1, 3: -8, -1: 6, -2: self.key.public_key().public_bytes_raw()}
        else:
            raise ValueError(f"unknown algorithm {alg}")
        self.alg = alg
        self.credential_id = os.urandom(32)
        self.user_handle: bytes | None = None
        self.sign_count = sign_count

    def _sign(self, data: bytes) -> bytes:
        if self.alg == "ES256":
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self.key.sign(data)

    def _auth_data(self, rp_id: str, flags: int, extra: bytes = b"") -> bytes:
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.sign_count) + extra

    def register(self, options: dict, origin: str, *, rp_id: str | None = None, type_: str = "webauthn.create",
                 flags: int = UP | UV | AT, challenge: str | None = None) -> dict:
        """Answer navigator.credentials.create(options) with attestation "none"."""
        rp_id = rp_id or options["rp"]["id"]
        self.user_handle = base64url_to_bytes(options["user"]["id"])
        client_data = json.dumps({"type": type_, "challenge": challenge or options["challenge"], "origin": origin,
                                  "crossOrigin": False}, separators=(",", ":")).encode()
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + encode_cbor(self.cose)
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": self._auth_data(rp_id, flags, attested)})
        return {
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64(client_data), "attestationObject": b64(attestation), "transports": ["internal"]},
        }

    def assert_(self, challenge: bytes, origin: str, rp_id: str, *, type_: str = "webauthn.get",
                flags: int = UP | UV) -> dict:
        """Answer navigator.credentials.get() for this challenge, as made on `origin` for `rp_id`."""
        self.sign_count += 1 if self.sign_count else 0  # a counting authenticator counts; a zero one stays at zero
        client_data = json.dumps({"type": type_, "challenge": b64(challenge), "origin": origin, "crossOrigin": False},
                                 separators=(",", ":")).encode()
        auth_data = self._auth_data(rp_id, flags)
        signature = self._sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data), "signature": b64(signature),
                "userHandle": b64(self.user_handle) if self.user_handle else None,
            },
        }

    def get(self, options: dict, origin: str) -> dict:
        """Answer navigator.credentials.get(options) as a browser on `origin` would."""
        allowed = {c["id"] for c in options.get("allowCredentials", [])}
        if allowed and b64(self.credential_id) not in allowed:
            raise LookupError("this authenticator holds none of the allowed credentials")
        return self.assert_(base64url_to_bytes(options["challenge"]), origin, options["rpId"])
