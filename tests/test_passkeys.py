"""Passkeys: registration, the header, and every refusal of verify_assertion, against a software authenticator.

The authenticator (tests/webauthn_soft.py) always signs what it is told to, so each
test reaches exactly the check it names; the browser test
(tests/test_passkeys_browser.py) proves the same functions against Chromium's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn_soft import UV, SoftAuthenticator

from deskgate.audit.signing import Kind, signed_message
from deskgate.people.passkeys import (
    MAX_DIGESTS,
    MAX_HEADER_CHARS,
    PASSKEY_HEADER,
    PasskeyAssertion,
    PasskeyError,
    StoredPasskey,
    assertion_from_browser,
    challenge_for,
    decision_digest,
    decode_assertion,
    encode_assertion,
    origin_allowed,
    registration_options,
    request_options,
    verify_assertion,
    verify_registration,
)

RP = "desk.example"
ORIGIN = "https://desk.example"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
D1 = decision_digest(Kind.APPROVAL, b'{"directive_digest":"aa","outcome":"approve","principal":"alice"}')
D2 = decision_digest(Kind.APPROVAL, b'{"directive_digest":"bb","outcome":"approve","principal":"alice"}')
FIELDS = ("credential_id", "authenticator_data", "client_data_json", "signature")


def enrol(alg: str = "ES256", *, sign_count: int = 0, principal: str = "alice") -> tuple[SoftAuthenticator, StoredPasskey]:
    auth = SoftAuthenticator(alg, sign_count=sign_count)
    options, challenge = registration_options(rp_id=RP, rp_name="Desk", principal=principal, user_id=b"user-1", exclude=[])
    stored = verify_registration(auth.register(options, ORIGIN), expected_challenge=challenge, rp_id=RP, principal=principal, now=NOW)
    return auth, stored


def signed(auth: SoftAuthenticator, digests: list[str], *, challenge: bytes | None = None, origin: str = ORIGIN,
           rp_id: str = RP, **kw) -> PasskeyAssertion:
    answer = auth.assert_(challenge if challenge is not None else challenge_for(digests), origin, rp_id, **kw)
    return assertion_from_browser(answer, digests)


def flipped(a: PasskeyAssertion, field: str, index: int | bytes, mask: int = 0x01) -> PasskeyAssertion:
    """One byte of one field changed (at an index, or where some bytes start); the text stays canonical base64url."""
    raw = bytearray(base64url_to_bytes(getattr(a, field)))
    at = raw.index(index) if isinstance(index, bytes) else index % len(raw)
    raw[at] ^= mask
    return a.model_copy(update={field: bytes_to_base64url(bytes(raw))})


def refused(pattern: str, fn, *args, **kwargs) -> None:
    with pytest.raises(PasskeyError) as caught:
        fn(*args, **kwargs)
    assert re.search(pattern, str(caught.value)), str(caught.value)


ES256, ES256_KEY = enrol("ES256")
EDDSA, EDDSA_KEY = enrol("EdDSA")
ES256_ASSERTION = signed(ES256, [D1])
EDDSA_ASSERTION = signed(EDDSA, [D1])


# -- digests and challenges --


def test_a_decision_digest_names_the_exact_signed_decision():
    payload = b'{"outcome":"approve"}'
    assert decision_digest(Kind.APPROVAL, payload) == hashlib.sha256(signed_message(Kind.APPROVAL, payload)).hexdigest()
    assert decision_digest(Kind.APPROVAL, payload) != decision_digest(Kind.BREAKER, payload)  # the kind is part of it
    assert decision_digest(Kind.APPROVAL, payload) != decision_digest(Kind.APPROVAL, payload.replace(b"approve", b"reject"))


def test_the_challenge_names_every_decision_in_order():
    assert challenge_for([D1]) == hashlib.sha256(b"deskgate/1 passkey\n" + D1.encode()).digest()
    assert challenge_for([D1, D2]) == hashlib.sha256(b"deskgate/1 passkey\n" + f"{D1}\n{D2}".encode()).digest()
    assert len({challenge_for([D1]), challenge_for([D2]), challenge_for([D1, D2]), challenge_for([D2, D1])}) == 4


@pytest.mark.parametrize(
    ("digests", "reason"),
    [
        ([], "at least one decision"),
        ("not a list", "at least one decision"),
        ([D1.upper()], "is not a decision digest"),
        ([D1[:-1]], "is not a decision digest"),
        ([42], "is not a decision digest"),
        ([D1, D1], "listed twice"),
        ([f"{i:064x}" for i in range(MAX_DIGESTS + 1)], f"at most {MAX_DIGESTS}"),
    ],
)
def test_a_bad_digest_list_is_refused_with_its_reason(digests, reason):
    refused(reason, challenge_for, digests)


# -- origins --


@pytest.mark.parametrize(
    ("origin", "rp_id", "allowed"),
    [
        ("https://desk.example", "desk.example", True),
        ("https://desk.example:8443", "desk.example", True),
        ("https://cc.desk.example", "desk.example", True),
        ("http://localhost:8123", "localhost", True),
        ("http://localhost", "localhost", True),
        ("https://localhost:9000", "localhost", True),
        ("http://desk.example", "desk.example", False),  # plain http only on localhost
        ("http://localhost:8123", "desk.example", False),
        ("https://evildesk.example", "desk.example", False),  # a suffix, not a subdomain
        ("https://desk.example.evil.com", "desk.example", False),
        ("https://example", "desk.example", False),  # a parent, not a subdomain
        ("https://desk.example/", "desk.example", False),  # an origin has no path
        ("https://user@desk.example", "desk.example", False),
        ("https://desk.example:0", "desk.example", False),
        ("https://desk.example:65536", "desk.example", False),
        ("https://desk.example:08443", "desk.example", False),
        ("https://DESK.example", "desk.example", False),  # browsers serialise host names in lowercase
        ("https://desk.example\n", "desk.example", False),
        ("https://127.0.0.1", "127.0.0.1", False),  # WebAuthn refuses IP-address rp ids
        ("http://127.0.0.1:8000", "localhost", False),
        ("ftp://desk.example", "desk.example", False),
        ("null", "desk.example", False),
        ("", "desk.example", False),
        ("https://desk.example", "", False),
        (None, "desk.example", False),
    ],
)
def test_origin_allowed(origin, rp_id, allowed):
    assert origin_allowed(origin, rp_id) is allowed


# -- registration --


def test_registration_options_ask_for_es256_or_eddsa_without_attestation():
    options, challenge = registration_options(rp_id=RP, rp_name="Desk", principal="alice", user_id=b"user-1", exclude=[ES256_KEY])
    assert json.loads(json.dumps(options)) == options  # JSON-ready as it is
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8]
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["rp"] == {"id": RP, "name": "Desk"}
    assert options["user"]["name"] == "alice" and base64url_to_bytes(options["user"]["id"]) == b"user-1"
    assert base64url_to_bytes(options["challenge"]) == challenge and len(challenge) >= 32
    assert [c["id"] for c in options["excludeCredentials"]] == [ES256_KEY.credential_id]
    assert registration_options(rp_id=RP, rp_name="Desk", principal="alice", user_id=b"u", exclude=[])[1] != challenge


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"rp_id": "127.0.0.1"}, "not a usable passkey site name"),
        ({"rp_id": ""}, "not a usable passkey site name"),
        ({"rp_name": " "}, "needs a name"),
        ({"principal": ""}, "named principal"),
        ({"user_id": b""}, "1 to 64 bytes"),
        ({"user_id": bytes(65)}, "1 to 64 bytes"),
        ({"user_id": "alice"}, "1 to 64 bytes"),
    ],
)
def test_registration_options_refuse_bad_input(change, reason):
    args = {"rp_id": RP, "rp_name": "Desk", "principal": "alice", "user_id": b"u", "exclude": []} | change
    refused(reason, registration_options, **args)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_a_registration_is_verified_and_kept(alg):
    auth = SoftAuthenticator(alg)
    options, challenge = registration_options(rp_id=RP, rp_name="Desk", principal="alice", user_id=b"user-1", exclude=[])
    answer = auth.register(options, "https://cc.desk.example")
    stored = verify_registration(json.dumps(answer), expected_challenge=challenge, rp_id=RP, principal="alice",
                                 label="  office laptop ", now=NOW)
    assert stored.principal == "alice" and stored.label == "office laptop" and stored.created_at == NOW
    assert base64url_to_bytes(stored.credential_id) == auth.credential_id
    assert stored.sign_count == 0
    assert StoredPasskey.model_validate_json(stored.model_dump_json()) == stored  # survives storage


def _registration():
    auth = SoftAuthenticator()
    options, challenge = registration_options(rp_id=RP, rp_name="Desk", principal="alice", user_id=b"user-1", exclude=[])
    return auth, options, challenge


@pytest.mark.parametrize(
    ("answer", "args", "reason"),
    [
        (lambda a, o: a.register(o, ORIGIN, challenge=bytes_to_base64url(b"x" * 64)), {}, "another challenge"),
        (lambda a, o: a.register(o, "https://evil.example"), {}, "made on 'https://evil.example'"),
        (lambda a, o: a.register(o, "http://desk.example"), {}, "not this desk's site"),
        (lambda a, o: a.register(o, ORIGIN, rp_id="evil.example"), {}, "belongs to another site"),
        (lambda a, o: a.register(o, ORIGIN, type_="webauthn.get"), {}, "not a registration"),
        (lambda a, o: a.register(o, ORIGIN, flags=UV | 0x40), {}, "person was present"),
        (lambda a, o: a.register(o, ORIGIN), {"rp_id": "other.example"}, "not this desk's site"),
        (lambda a, o: a.register(o, ORIGIN), {"label": "bad\u200bname"}, "control or invisible"),
        (lambda a, o: a.register(o, ORIGIN), {"label": "x" * 65}, "at most 64"),
        (lambda a, o: a.register(o, ORIGIN), {"now": datetime(2026, 3, 2)}, "cannot be kept"),
        (lambda a, o: a.register(o, ORIGIN), {"expected_challenge": "text"}, "another challenge"),
        (lambda a, o: "{not json", {}, "not valid JSON"),
        (lambda a, o: "[]", {}, "must be a JSON object"),
        (lambda a, o: 7, {}, "must be a JSON object"),
        (lambda a, o: '{"id": "a", "id": "b"}', {}, "gives the key 'id' twice"),
        (lambda a, o: {**a.register(o, ORIGIN), "response": {}}, {}, "malformed: response.clientDataJSON"),
        (lambda a, o: {**a.register(o, ORIGIN), "id": "other"}, {}, "id and rawId differ"),
        (lambda a, o: {**a.register(o, ORIGIN), "type": "password"}, {}, "malformed: type"),
    ],
)
def test_a_bad_registration_is_refused_with_its_reason(answer, args, reason):
    auth, options, challenge = _registration()
    kwargs = {"expected_challenge": challenge, "rp_id": RP, "principal": "alice", "now": NOW} | args
    refused(reason, verify_registration, answer(auth, options), **kwargs)


def test_a_registration_with_a_tampered_attestation_is_refused():
    auth, options, challenge = _registration()
    answer = auth.register(options, ORIGIN)
    answer["response"]["attestationObject"] = bytes_to_base64url(b"\xa1" + base64url_to_bytes(answer["response"]["attestationObject"])[1:])
    refused("attestation object cannot be read|does not verify", verify_registration, answer,
            expected_challenge=challenge, rp_id=RP, principal="alice", now=NOW)


# -- request options and the header --


def test_request_options_challenge_the_authenticator_with_these_decisions():
    options = request_options(rp_id=RP, digests=[D1, D2], credentials=[ES256_KEY, EDDSA_KEY])
    assert base64url_to_bytes(options["challenge"]) == challenge_for([D1, D2])
    assert options["rpId"] == RP and options["userVerification"] == "preferred"
    assert [c["id"] for c in options["allowCredentials"]] == [ES256_KEY.credential_id, EDDSA_KEY.credential_id]
    refused("no passkey is registered", request_options, rp_id=RP, digests=[D1], credentials=[])
    refused("not a decision digest", request_options, rp_id=RP, digests=["x"], credentials=[ES256_KEY])
    refused("not a usable passkey site name", request_options, rp_id="10.0.0.1", digests=[D1], credentials=[ES256_KEY])


def test_the_header_round_trips_and_stays_bounded():
    text = encode_assertion(ES256_ASSERTION)
    assert PASSKEY_HEADER == "Deskgate-Passkey"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)
    assert decode_assertion(text) == ES256_ASSERTION
    largest = PasskeyAssertion(
        credential_id="A" * 1366, authenticator_data="A" * 1366, client_data_json="A" * 5462, signature="A" * 1366,
        user_handle="A" * 86, digests=[f"{i:064x}" for i in range(MAX_DIGESTS)],
    )
    assert len(encode_assertion(largest)) <= MAX_HEADER_CHARS
    assert decode_assertion(encode_assertion(largest)) == largest


def _header(obj) -> str:
    return bytes_to_base64url(json.dumps(obj).encode())


GOOD = json.loads(ES256_ASSERTION.model_dump_json())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "carries no passkey assertion"),
        ("", "carries no passkey assertion"),
        (123, "must be text"),
        ("abc!", "not base64url"),
        ("eyJ9 ", "not base64url"),
        ("A" * (MAX_HEADER_CHARS + 1), "longer than"),
        ("A", "not base64url"),
        ("eA", "not valid JSON"),
        (bytes_to_base64url(b"\xff\xfe"), "not UTF-8"),
        (_header([GOOD]), "must be a JSON object"),
        (_header({k: v for k, v in GOOD.items() if k != "signature"}), "malformed: signature"),
        (_header(GOOD | {"extra": 1}), "malformed: extra"),
        (_header(GOOD | {"digests": [D1.upper()]}), "malformed: digests"),
        (_header(GOOD | {"digests": []}), "malformed: digests"),
        (_header(GOOD | {"digests": [D1, D1]}), "listed twice"),
        (_header(GOOD | {"digests": [f"{i:064x}" for i in range(MAX_DIGESTS + 1)]}), "malformed: digests"),
        (_header(GOOD | {"signature": "not+base64/url"}), "malformed: signature"),
        (_header(GOOD | {"signature": 5}), "malformed: signature"),
        (bytes_to_base64url(json.dumps(GOOD)[:-1].encode() + b',"signature":"AA"}'), "gives the key 'signature' twice"),
        (bytes_to_base64url(b"[" * 5000 + b"]" * 5000), "not valid JSON|must be a JSON object"),
    ],
)
def test_a_malformed_header_is_refused_with_its_reason(text, reason):
    refused(reason, decode_assertion, text)


@given(st.text(max_size=300) | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_header_text_decodes_or_is_refused(text):
    try:
        decode_assertion(text)
    except PasskeyError:
        pass


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c | {"id": "zzzz"}, "id and rawId differ"),
        (lambda c: c | {"type": "password"}, "malformed: type"),
        (lambda c: c | {"response": {k: v for k, v in c["response"].items() if k != "signature"}}, "malformed: response.signature"),
        (lambda c: c | {"response": c["response"] | {"signature": "no spaces allowed"}}, "malformed: signature"),
        (lambda c: json.dumps(c) + "x", "not valid JSON"),
    ],
)
def test_a_malformed_browser_assertion_is_refused(change, reason):
    answer = ES256.assert_(challenge_for([D1]), ORIGIN, RP)
    refused(reason, assertion_from_browser, change(answer), [D1])
    refused("not a decision digest", assertion_from_browser, answer, ["nope"])


# -- verify_assertion: success --


@pytest.mark.parametrize("assertion", [ES256_ASSERTION, EDDSA_ASSERTION], ids=["ES256", "EdDSA"])
def test_a_registered_passkey_over_this_decision_verifies(assertion):
    through_the_header = decode_assertion(encode_assertion(assertion))
    assert verify_assertion(through_the_header, [EDDSA_KEY, ES256_KEY], digest=D1, rp_id=RP) == 0


def test_one_assertion_covers_each_decision_of_its_batch_and_reports_the_sign_count():
    auth, stored = enrol(sign_count=41)
    batch = signed(auth, [D1, D2])
    assert batch.user_handle == bytes_to_base64url(b"user-1")
    assert verify_assertion(batch, [stored], digest=D1, rp_id=RP) == 42
    assert verify_assertion(batch, [stored], digest=D2, rp_id=RP) == 42  # the count is not a replay defence


def test_an_assertion_made_on_a_subdomain_verifies():
    assert verify_assertion(signed(ES256, [D1], origin="https://cc.desk.example:8443"), [ES256_KEY], digest=D1, rp_id=RP) == 0


# -- verify_assertion: each refusal --


def test_a_passkey_not_registered_to_this_principal_is_refused():
    _, bobs = enrol(principal="bob")
    refused("not one registered to this principal", verify_assertion, ES256_ASSERTION, [bobs], digest=D1, rp_id=RP)
    refused("not one registered to this principal", verify_assertion, ES256_ASSERTION, [], digest=D1, rp_id=RP)


def test_an_assertion_is_refused_for_a_decision_it_does_not_cover():
    refused("does not cover this decision", verify_assertion, ES256_ASSERTION, [ES256_KEY], digest=D2, rp_id=RP)


def test_an_assertion_replayed_for_another_decision_is_refused():
    """Re-labelled to cover another decision, the challenge it signed no longer matches."""
    moved = ES256_ASSERTION.model_copy(update={"digests": [D2]})
    refused("signed a different challenge", verify_assertion, moved, [ES256_KEY], digest=D2, rp_id=RP)
    widened = ES256_ASSERTION.model_copy(update={"digests": [D1, D2]})
    refused("signed a different challenge", verify_assertion, widened, [ES256_KEY], digest=D2, rp_id=RP)


def test_an_assertion_over_an_altered_challenge_is_refused():
    other = signed(ES256, [D1], challenge=hashlib.sha256(b"something else").digest())
    refused("signed a different challenge", verify_assertion, other, [ES256_KEY], digest=D1, rp_id=RP)


def test_a_registration_presented_as_an_assertion_is_refused():
    refused("not an assertion", verify_assertion, signed(ES256, [D1], type_="webauthn.create"), [ES256_KEY], digest=D1, rp_id=RP)


@pytest.mark.parametrize("origin", ["https://evil.example", "http://desk.example", "https://desk.example.evil.com"])
def test_an_assertion_made_on_another_origin_is_refused(origin):
    refused("which is not this desk's site", verify_assertion, signed(ES256, [D1], origin=origin), [ES256_KEY], digest=D1, rp_id=RP)


def test_an_assertion_for_another_rp_id_is_refused():
    refused("belongs to another site", verify_assertion, signed(ES256, [D1], rp_id="evil.example"), [ES256_KEY], digest=D1, rp_id=RP)
    # the desk's own rp id differs from where the assertion was made
    refused("not this desk's site", verify_assertion, ES256_ASSERTION, [ES256_KEY], digest=D1, rp_id="other.example")


def test_an_assertion_without_user_presence_is_refused():
    refused("person was present", verify_assertion, signed(ES256, [D1], flags=UV), [ES256_KEY], digest=D1, rp_id=RP)


@pytest.mark.parametrize(
    ("field", "index", "mask", "reason"),
    [
        ("signature", 10, 0x01, "signature does not verify"),
        ("signature", -1, 0x80, "signature does not verify"),
        ("authenticator_data", 36, 0x01, "signature does not verify"),  # the sign count
        ("authenticator_data", 32, 0x04, "signature does not verify"),  # the user-verified flag
        ("authenticator_data", 32, 0x01, "person was present"),  # the user-present flag
        ("authenticator_data", 32, 0x80, "authenticator data cannot be read"),  # claims extensions that are not there
        ("authenticator_data", 0, 0x01, "belongs to another site"),  # the rp id hash
        ("client_data_json", 0, 0x01, "client data cannot be read"),
        ("client_data_json", 3, 0x01, "client data cannot be read"),  # "type" -> "txpe": no type at all
        ("client_data_json", b"get", 0x01, "not an assertion"),  # "webauthn.get" -> "webauthn.fet"
        ("client_data_json", b"crossOrigin", 0x01, "signature does not verify"),  # an ignored key, still signed
        ("credential_id", 0, 0x01, "not one registered"),
    ],
)
def test_one_flipped_byte_is_refused_with_its_reason(field, index, mask, reason):
    refused(reason, verify_assertion, flipped(ES256_ASSERTION, field, index, mask), [ES256_KEY], digest=D1, rp_id=RP)


def test_a_non_canonical_field_spelling_is_refused():
    # Authenticator data is 37 bytes: its last base64url character carries spare bits, so a
    # second spelling of the same bytes always exists (an ES256 signature's length varies,
    # and at a multiple of 3 bytes it has none).
    text = ES256_ASSERTION.authenticator_data
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = text[:-1] + next(c for c in last if c != text[-1] and base64url_to_bytes(text[:-1] + c) == base64url_to_bytes(text))
    refused("authenticator data is not base64url", verify_assertion, ES256_ASSERTION.model_copy(update={"authenticator_data": twin}),
            [ES256_KEY], digest=D1, rp_id=RP)


def test_a_substituted_public_key_is_refused():
    swapped = EDDSA_KEY.model_copy(update={"credential_id": ES256_KEY.credential_id})
    refused("signature does not verify", verify_assertion, ES256_ASSERTION, [swapped], digest=D1, rp_id=RP)
    broken = ES256_KEY.model_copy(update={"public_key": bytes_to_base64url(b"\xa0")})
    refused("signature does not verify", verify_assertion, ES256_ASSERTION, [broken], digest=D1, rp_id=RP)


def test_verify_refuses_what_is_not_an_assertion():
    refused("assertion is missing", verify_assertion, None, [ES256_KEY], digest=D1, rp_id=RP)


@given(
    which=st.sampled_from([(ES256_ASSERTION, ES256_KEY), (EDDSA_ASSERTION, EDDSA_KEY)]),
    field=st.sampled_from(FIELDS),
    index=st.integers(min_value=0, max_value=10_000),
    mask=st.integers(min_value=1, max_value=255),
)
@settings(max_examples=400, deadline=None)
def test_any_single_byte_change_is_refused(which, field, index, mask):
    assertion, stored = which
    with pytest.raises(PasskeyError):
        verify_assertion(flipped(assertion, field, index, mask), [stored], digest=D1, rp_id=RP)


def _header_json(a: PasskeyAssertion) -> str:
    text = encode_assertion(a)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


BOUND_HEADER = _header_json(ES256_ASSERTION)
_HANDLE = re.search(r'"user_handle":"[^"]*"', BOUND_HEADER).span()


@given(index=st.integers(min_value=0, max_value=100_000), char=st.characters(min_codepoint=0x20, max_codepoint=0x7E))
@settings(max_examples=400, deadline=None)
def test_any_change_to_the_header_is_refused_except_the_unverified_user_handle(index, char):
    """Every character of the header is bound to the decision, save the user handle (informative only)."""
    positions = [i for i in range(len(BOUND_HEADER)) if not _HANDLE[0] <= i < _HANDLE[1]]
    i = positions[index % len(positions)]
    if BOUND_HEADER[i] == char:
        return
    changed = bytes_to_base64url((BOUND_HEADER[:i] + char + BOUND_HEADER[i + 1:]).encode())
    with pytest.raises(PasskeyError):
        verify_assertion(decode_assertion(changed), [ES256_KEY], digest=D1, rp_id=RP)
