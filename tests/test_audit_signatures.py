"""Ed25519 through libsodium, and signatures checked on every core.

libsodium must make the same signatures `cryptography` (OpenSSL) made and accept the
same ones, so keys, signatures and headers stay as they were. A pooled verification
must give exactly the serial one's report: the same first bad entry, for the same reason.
"""

from __future__ import annotations

import base64
import gc
import json
import sqlite3
from datetime import timedelta

import pytest
from conftest import P, add_test_people, agent_signer, directive, raw
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_audit import NOW, _records

from deskgate.audit import ed25519, pool
from deskgate.audit.chain import Entry, verify_log
from deskgate.audit.export import verify_export
from deskgate.audit.keys import KeyStore, raw_public, verify_raw
from deskgate.audit.log import AuditLog, Record
from deskgate.audit.pool import SignaturePool, Signed, verify_many, verify_many_async
from deskgate.audit.signing import Kind, SignatureStatus, Signer, signed_message, verify
from deskgate.paths import DataDir

# --- libsodium agrees with cryptography ---------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=2048), flip=st.integers(0, 511))
def test_libsodium_and_cryptography_make_and_accept_the_same_signatures(seed, message, flip):
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = raw_public(key.public_key())
    theirs = key.sign(message)
    ours = ed25519.sign(ed25519.secret_key(seed), message)
    assert ours == theirs  # Ed25519 is deterministic: byte for byte
    assert ed25519.verify(public, theirs, message)
    key.public_key().verify(ours, message)  # raises if OpenSSL disagrees
    bad = bytearray(ours)
    bad[flip // 8] ^= 1 << (flip % 8)
    assert not ed25519.verify(public, bytes(bad), message)
    with pytest.raises(InvalidSignature):
        key.public_key().verify(bytes(bad), message)
    if message:
        assert not ed25519.verify(public, ours, message[:-1])


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), payload=st.binary(max_size=512), kind=st.sampled_from(list(Kind)))
def test_a_signer_signs_exactly_as_before(seed, payload, kind):
    """The headers a role or principal attaches are what `cryptography` made before."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    signer = Signer.of("agent:desk", key)
    assert base64.b64decode(signer.sign(kind, payload)) == key.sign(signed_message(kind, payload))
    assert base64.b64decode(signer.sign_bytes(payload)) == key.sign(payload)


def test_a_short_signature_never_borrows_bytes_from_the_message():
    """libsodium takes the first 64 bytes it is given as the signature; a 60-byte one
    followed by a message that starts with the missing 4 bytes must still fail."""
    key = Ed25519PrivateKey.generate()
    message = b"the rest of the message"
    signature = key.sign(message)
    assert verify_raw(key.public_key(), signature, message)
    assert not verify_raw(key.public_key(), signature[:60], signature[60:] + message)
    assert not ed25519.verify(raw_public(key.public_key())[:31], signature, message)


# --- the pool gives the serial answers ------------------------------------------------------


@pytest.fixture
def keys(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    add_test_people(data_dir)
    ks = KeyStore.for_desk(data_dir)
    ks.ensure_roles()
    return ks


def _approval(n: int, who: str = "alice") -> Record:
    body = json.dumps({"approval_id": f"ap{n}", "directive_id": f"log{n}", "decision": "approve", "principal": who}).encode()
    h = P[who].headers(Kind.APPROVAL, body)
    return Record("approval", f"approvals.response.log{n}", f"log{n}", f"RESPONSES:{n}", h["Deskgate-Signer"], h["Deskgate-Signature"], "valid", body.decode())


@pytest.fixture
def log(tmp_path, keys):
    """60 entries: the agent's directives, principals' approvals, and one forged message recorded as such."""
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", keys, checkpoint_every=7)
    forged = Record("directive", "consciousness.directives.BTC", "evil", "DIRECTIVES:999", "agent:desk", base64.b64encode(b"\x01" * 64).decode(),
                    "invalid", raw(directive("evil")).decode())
    for k in range(5):
        log.append([*_records(keys, 10, start=10 * k), _approval(k, "alice"), _approval(k + 10, "bob")], NOW + timedelta(seconds=k))
    log.append([forged], NOW + timedelta(seconds=6))
    log.checkpoint(NOW + timedelta(seconds=7))
    return log


def _both(log, keys, **kw):
    """The serial report and the pooled one (the pool forced on, small as the log is)."""
    serial = verify_log(log.entries(), log.checkpoints(), keys, workers=1, **kw)
    pooled = verify_log(log.entries(), log.checkpoints(), keys, workers=2, pool_above=0, **kw)
    return serial, pooled


def _tamper(log, seq: int, column: str, index: int) -> None:
    """Change one character of one entry in the database, as someone with the file could."""
    path = log.engine.url.database
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute(f"SELECT {column} FROM audit_entries WHERE seq = ?", (seq,)).fetchone()
        changed = value[:index] + ("0" if value[index] != "0" else "1") + value[index + 1 :]
        conn.execute(f"UPDATE audit_entries SET {column} = ? WHERE seq = ?", (changed, seq))


def test_a_pooled_verify_of_an_intact_log_is_the_serial_one(log, keys):
    serial, pooled = _both(log, keys)
    assert serial.ok and serial.entries == 61 and serial.unverified_count == 1
    assert serial.signatures == {"valid": 60, "invalid": 1}
    assert pooled.model_dump() == serial.model_dump()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_one_byte_change_is_caught_at_the_same_entry_for_the_same_reason_by_the_pool(tmp_path_factory, data):
    """Each example tampers its own copy of the log, in the payload or the signature."""
    data_dir = DataDir.at(tmp_path_factory.mktemp("tamper") / "desk").ensure()
    add_test_people(data_dir)
    keys = KeyStore.for_desk(data_dir)
    keys.ensure_roles()
    log = AuditLog(f"sqlite:///{data_dir.root / 'audit.db'}", keys, checkpoint_every=7)
    log.append([*_records(keys, 20), _approval(1)], NOW)
    log.checkpoint(NOW)
    seq = data.draw(st.integers(1, 21))
    column = data.draw(st.sampled_from(["payload", "signature"]))
    index = data.draw(st.integers(0, 40))
    _tamper(log, seq, column, index)
    serial, pooled = _both(log, keys)
    assert not serial.ok and serial.first.seq == seq and "contents do not match its hash" in serial.first.what
    assert pooled.model_dump() == serial.model_dump()


def test_a_re_sealed_forgery_is_reported_as_a_bad_signature_by_the_pool_too(log, keys, tmp_path):
    """Hashes recomputed after an edit: only the signature (and the checkpoints) give it away."""
    path = tmp_path / "export.jsonl"
    log.export(path, NOW + timedelta(minutes=1))
    lines, prev = [], "0" * 64
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "entry" in obj:
            e = Entry.model_validate(obj["entry"])
            if e.seq == 11:  # alice's approval, edited
                e = e.model_copy(update={"payload": e.payload.replace("approve", "appro_e")})
            e = e.model_copy(update={"prev_hash": prev}).sealed()
            prev = e.hash
            line = json.dumps({"entry": e.model_dump(mode="json")})
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    serial, _ = verify_export(path, keys, workers=1)
    pooled, _ = verify_export(path, keys, workers=2, pool_above=0)
    assert serial.first.seq == 11 and "approval's signature is invalid but was valid" in serial.first.what
    assert pooled.model_dump() == serial.model_dump()


def test_an_unreadable_line_is_reported_only_where_the_chain_reaches_it_by_the_pool_too(log, keys, tmp_path):
    """The pool reads ahead of the chain; a line the chain never reaches is still not reported."""
    path = tmp_path / "export.jsonl"
    log.export(path, NOW + timedelta(minutes=1))
    lines = path.read_text().splitlines()
    entries = [i for i, line in enumerate(lines) if line.startswith('{"entry"')]
    unreadable = list(lines)
    unreadable[entries[30]] = "not json"
    stopped_before = list(unreadable)
    del stopped_before[entries[4]]  # entry 5 missing: the chain stops there
    for variant, reached in ((unreadable, True), (stopped_before, False)):
        path.write_text("\n".join(variant) + "\n")
        serial, _ = verify_export(path, keys, workers=1)
        pooled, _ = verify_export(path, keys, workers=2, pool_above=0)
        if reached:
            assert serial.first.seq == 31 and "cannot be read" in serial.first.what
        else:
            assert serial.first.seq == 5 and not any("cannot be read" in p.what for p in serial.problems)
        assert pooled.model_dump() == serial.model_dump()
        assert gc.isenabled()  # paused while the pool ran, back on after it stopped early


def test_when_no_worker_can_start_the_log_is_verified_here(log, keys, monkeypatch):
    def no_processes(*a, **kw):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(pool, "ProcessPoolExecutor", no_processes)
    _tamper(log, 9, "payload", 3)
    serial, pooled = _both(log, keys)
    assert serial.first.seq == 9 and pooled.model_dump() == serial.model_dump()


def _requests(keys) -> list[Signed]:
    body = raw(directive("vm1"))
    agent = agent_signer(keys).sign(Kind.DIRECTIVE, body)
    alice = P["alice"].sign(Kind.APPROVAL, body)
    return [
        Signed(Kind.DIRECTIVE, body, "agent:desk", agent, ("agent:",)),
        Signed(Kind.DIRECTIVE, body + b" ", "agent:desk", agent, ("agent:",)),
        Signed(Kind.DIRECTIVE, body, "agent:desk", agent, "factory"),
        Signed(Kind.DIRECTIVE, body, None, None, ("agent:",)),
        Signed(Kind.APPROVAL, body, "principal:alice", alice, ("principal:",)),
        Signed(Kind.APPROVAL, body, "principal:bob", alice, ("principal:",)),
        Signed(Kind.APPROVAL, body, "principal:nobody", alice),
        Signed(Kind.APPROVAL, body, "principal:alice", "not base64!"),
    ]


def test_verify_many_answers_as_verify_does(keys):
    requests = _requests(keys)
    one_by_one = [verify(keys, r.kind, r.payload, r.signer, r.signature, expect=r.expect) for r in requests]
    assert one_by_one == [
        SignatureStatus.VALID, SignatureStatus.INVALID, SignatureStatus.WRONG_SIGNER, SignatureStatus.UNSIGNED,
        SignatureStatus.VALID, SignatureStatus.INVALID, SignatureStatus.UNKNOWN_SIGNER, SignatureStatus.INVALID,
    ]
    assert verify_many(keys, requests) == one_by_one  # serial: too few for a pool
    assert verify_many(keys.deciding, requests * 3, workers=2, pool_above=0) == [
        verify(keys.deciding, r.kind, r.payload, r.signer, r.signature, expect=r.expect) for r in requests * 3
    ]


async def test_off_the_event_loop_in_a_kept_pool_and_inside_a_running_loop(log, keys):
    """A service keeps one pool, or none (a thread); a verification started under a running loop does not fork it."""
    requests = _requests(keys)
    with SignaturePool(2) as kept:
        first = await verify_many_async(keys, requests, kept)
        again = await verify_many_async(keys.deciding, requests * 2, kept)
        assert await verify_many_async(keys, [], kept) == []
    assert first == verify_many(keys, requests)
    assert again == verify_many(keys.deciding, requests * 2)
    assert await verify_many_async(keys.deciding, requests) == verify_many(keys.deciding, requests)  # no pool: a thread
    assert pool._start_method().get_start_method() != "fork"
    serial, pooled = _both(log, keys)
    assert pooled.model_dump() == serial.model_dump()
