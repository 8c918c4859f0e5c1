"""A principal's decision can be made only by that principal.

Sealed keys (argon2id + AES-GCM), keys that need accounts, the CLI asking for the
principal's own password, the Command Center signing only inside the person's own
session, legacy unsealed keys retired; and, against the real desk (nats-server,
factory, executor), every way in that must leave a directive unexecuted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sqlite3
import subprocess
import sys
import uuid

import pytest
from conftest import P, TEST_DISABLED, TEST_PASSWORD, TEST_VIEWER, add_test_people, agent_signer, directive, raw, wait_for
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_factory import make_mission, running, submit

from deskgate.audit.keys import KeyStore, SigningKeyError, fingerprint, public_to_text
from deskgate.audit.signing import Kind, SignatureStatus, Signer, digest, verify
from deskgate.domain.approval import ApprovalOutcome, ApprovalResponse
from deskgate.domain.base import utcnow
from deskgate.paths import DataDir
from deskgate.people.accounts import Accounts
from deskgate.people.passkeys import decision_digest
from deskgate.people.principals import PrincipalError, Principals
from deskgate.people.sealing import KdfParams, SealedKey, WrongSecret, seal, unseal, unwrap_for_session, wrap_for_session

DESKGATE = [sys.executable, "-m", "deskgate"]
CHEAP = KdfParams(time_cost=1, memory_kib=8, parallelism=1)  # for the pure sealing tests only; the desk uses the default


# -- sealing, pure ------------------------------------------------------------------------------


def test_a_sealed_key_opens_only_with_its_secret_and_only_as_itself():
    key = Ed25519PrivateKey.generate()
    sealed = seal(key, "principal:alice", "the right password", CHEAP)
    assert public_to_text(unseal(sealed, "the right password").public_key()) == sealed.public_key
    with pytest.raises(WrongSecret):
        unseal(sealed, "the wrong password")
    other = public_to_text(Ed25519PrivateKey.generate().public_key())
    for altered in (sealed.model_copy(update={"signer": "principal:bob"}), sealed.model_copy(update={"public_key": other})):
        with pytest.raises(WrongSecret):  # bound to its name and public key by the associated data
            unseal(altered, "the right password")


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["salt", "nonce", "ciphertext"]), where=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_of_a_sealed_key_is_refused(field, where, bit):
    sealed = _SEALED
    data = bytearray(base64.b64decode(getattr(sealed, field)))
    data[where % len(data)] ^= 1 << bit
    with pytest.raises(WrongSecret):
        unseal(sealed.model_copy(update={field: base64.b64encode(bytes(data)).decode()}), "pw")


_SEALED = seal(Ed25519PrivateKey.generate(), "principal:alice", "pw", CHEAP)


def test_a_session_key_opens_only_with_the_token_the_server_never_stores():
    key = Ed25519PrivateKey.generate()
    token = "a-cookie-token-only-the-browser-has"
    wrapped = wrap_for_session(key, "principal:alice", token)
    assert unwrap_for_session(wrapped, "principal:alice", token).public_key() == key.public_key()
    stored = hashlib.sha256(token.encode()).hexdigest()  # what the accounts database keeps of the token
    for guess in (stored, token + "x", ""):
        with pytest.raises(WrongSecret):
            unwrap_for_session(wrapped, "principal:alice", guess)
    with pytest.raises(WrongSecret):
        unwrap_for_session(wrapped, "principal:bob", token)


# -- keys need accounts; no plain key on disk ----------------------------------------------------


@pytest.fixture
def people(tmp_path) -> tuple[DataDir, Principals]:
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    add_test_people(data_dir)
    KeyStore(data_dir.keys).ensure_roles()
    return data_dir, Principals(Accounts.open(data_dir), legacy_dir=data_dir.keys)


def test_no_plain_principal_key_is_anywhere_under_the_data_directory(people):
    data_dir, principals = people
    private = principals.unlock("alice", TEST_PASSWORD)
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    for path in data_dir.root.rglob("*"):
        if path.is_file():
            body = path.read_bytes()
            assert seed not in body and base64.b64encode(seed) not in body, path
    assert not list(data_dir.keys.rglob("principal-*")), "a principal's key file on disk"


def test_the_key_store_never_makes_or_reads_a_principals_private_key(people):
    data_dir, _ = people
    keys = KeyStore.for_desk(data_dir)
    with pytest.raises(SigningKeyError, match="sealed"):
        keys.create("principal:mallory")
    with pytest.raises(SigningKeyError, match="sealed"):
        Signer(keys, "principal:alice")


def test_only_an_enabled_principal_or_admin_account_has_a_deciding_key(people):
    data_dir, principals = people
    assert principals.decision_key("alice") is not None and principals.decision_key("ALICE ") is not None
    for name in (TEST_VIEWER, TEST_DISABLED, "mallory", "b\u200bob"):
        assert principals.decision_key(name) is None, name
        assert principals.refusal(name)
    assert "viewer" in principals.refusal(TEST_VIEWER) and "disabled" in principals.refusal(TEST_DISABLED)
    assert "no account" in principals.refusal("mallory")
    with pytest.raises(PrincipalError, match="viewer"):
        principals.make_key(TEST_VIEWER, TEST_PASSWORD)
    with pytest.raises(PrincipalError, match="no account"):
        principals.unlock("mallory", TEST_PASSWORD)
    with pytest.raises(PrincipalError, match="wrong password"):
        principals.unlock("alice", "not alice's password")
    with pytest.raises(PrincipalError, match="already has"):
        principals.make_key("alice", TEST_PASSWORD)


def test_wrong_passwords_from_the_cli_path_are_slowed_down_like_logins(people):
    _, principals = people
    for _ in range(3):
        with pytest.raises(PrincipalError, match="wrong password"):
            principals.signer("bob", "guess guess guess", failures_allowed=3)
    with pytest.raises(PrincipalError, match="too many wrong passwords"):
        principals.signer("bob", TEST_PASSWORD, failures_allowed=3)


def _plant_unsealed_key(data_dir: DataDir, name: str) -> Ed25519PrivateKey:
    """What an earlier version left (or an intruder plants): a plain key file and its public file."""
    key = Ed25519PrivateKey.generate()
    (data_dir.keys / "private").mkdir(parents=True, exist_ok=True)
    (data_dir.keys / "public").mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (data_dir.keys / "private" / f"principal-{name}.pem").write_bytes(pem)
    (data_dir.keys / "public" / f"principal-{name}.pub").write_text(public_to_text(key.public_key()) + "\n")
    return key


def test_unsealed_keys_from_before_are_retired_once_and_a_file_planted_later_is_never_anyones(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    accounts = Accounts.open(data_dir)
    accounts.add("olga", "principal", TEST_PASSWORD)  # an account from before keys were sealed...
    old = _plant_unsealed_key(data_dir, "olga")  # ...with the plain key file that version made
    then = Signer.of("principal:olga", old).headers(Kind.APPROVAL, b"an old decision")

    keys = KeyStore.for_desk(data_dir)  # the first desk process to open the keys retires them
    assert not list(data_dir.keys.rglob("principal-*")), "the plain key files are gone"
    assert verify(keys, Kind.APPROVAL, b"an old decision", then["Deskgate-Signer"], then["Deskgate-Signature"]) is SignatureStatus.VALID
    assert verify(keys.deciding, Kind.APPROVAL, b"now", "principal:olga", Signer.of("principal:olga", old).sign(Kind.APPROVAL, b"now")) \
        is SignatureStatus.UNKNOWN_SIGNER  # a retired key decides nothing

    principals = Principals(accounts, legacy_dir=data_dir.keys)
    new = principals.unlock("olga", TEST_PASSWORD)  # her next login (or `deskgate keys seal olga`)
    assert new.public_key() != old.public_key(), "an unsealed key is never adopted: someone may hold a copy"
    assert {r.state: r.origin for r in principals.keys("olga")} == {"current": "sealed", "retired": "unsealed"}
    fresh = KeyStore.for_desk(data_dir)
    assert verify(fresh, Kind.APPROVAL, b"an old decision", then["Deskgate-Signer"], then["Deskgate-Signature"]) is SignatureStatus.VALID
    assert verify(fresh.deciding, Kind.APPROVAL, b"now", "principal:olga", Signer.of("principal:olga", new).sign(Kind.APPROVAL, b"now")) \
        is SignatureStatus.VALID

    # After that one migration, a key file planted in keys/ is nobody's: not for olga, not for a name with no key.
    for name in ("olga", "mallory"):
        planted = _plant_unsealed_key(data_dir, name)
        forged = Signer.of(f"principal:{name}", planted).sign(Kind.APPROVAL, b"forged")
        later = KeyStore.for_desk(data_dir)
        assert verify(later, Kind.APPROVAL, b"forged", f"principal:{name}", forged) is not SignatureStatus.VALID
        assert name in later.principals.stray_key_files()


def test_a_password_change_makes_a_new_key_certified_by_the_old_one(people):
    from deskgate.people.pins import chain_reaches

    data_dir, principals = people
    before = public_to_text(principals.unlock("carol", TEST_PASSWORD).public_key())
    after = public_to_text(principals.change_password("carol", TEST_PASSWORD, "a brand new passphrase"))
    assert after != before, "whoever learned the old password opens only a retired key"
    with pytest.raises(PrincipalError, match="wrong password"):
        principals.unlock("carol", TEST_PASSWORD)
    assert public_to_text(principals.unlock("carol", "a brand new passphrase").public_key()) == after
    chain = principals.key_chain("carol")
    assert chain[-1][0] == after and chain_reaches(before, chain, "carol")
    forged = [*chain[:-1], (after, chain[-1][1][:-4] + "AAA=")]
    assert not chain_reaches(before, forged, "carol")


def test_the_cli_refuses_keys_without_an_account_and_decisions_without_the_password(tmp_path):
    def run(*args, input=None):
        return subprocess.run([*DESKGATE, *args, "--data-dir", str(tmp_path / "desk")], input=input, capture_output=True, timeout=60)

    add_test_people(DataDir.at(tmp_path / "desk").ensure())
    pw = (TEST_PASSWORD + "\n").encode()
    for name, why in (("mallory", b"no account"), (TEST_VIEWER, b"viewer"), (TEST_DISABLED, b"disabled")):
        made = run("keys", "principal", name, "--password-stdin", input=pw)
        assert made.returncode == 2 and why in made.stderr, made.stderr
    assert not (tmp_path / "desk" / "keys" / "private" / "principal-mallory.pem").exists()
    # A password is never an argument: there is no option that takes one.
    assert run("approvals", "approve", "x", "--principal", "alice", "--password", TEST_PASSWORD).returncode == 2


# -- against the real desk: every way in that must leave a directive unexecuted ------------------


async def _outcome(cc, resp: ApprovalResponse, headers: dict | None) -> ApprovalOutcome:
    """Publish a decision as-is and return the factory's answer to it."""
    got: asyncio.Queue = asyncio.Queue()

    async def cb(msg):
        o = ApprovalOutcome.model_validate_json(msg.data)
        if o.approval_id == resp.approval_id:
            got.put_nowait(o)

    sub = await cc.nc.subscribe(f"factory.status.approval.{resp.directive_id}", cb=cb)
    try:
        await cc.js.publish(f"approvals.response.{resp.directive_id}", resp.to_bytes(), headers=headers)
        return await asyncio.wait_for(got.get(), 10)
    finally:
        await sub.unsubscribe()


def _decision(cc_item, principal: str, did: str) -> ApprovalResponse:
    return ApprovalResponse(
        approval_id=f"ap-{uuid.uuid4().hex}", directive_id=did, decision="approve", principal=principal, decided_at=utcnow(),
        directive_digest=digest(cc_item.staged.signed_directive.data),
    )


def _disabled_key(data_dir: DataDir) -> Ed25519PrivateKey:
    """dora's key, as someone who knew her password (or copied it unsealed) would hold it."""
    with sqlite3.connect(data_dir.accounts_db) as conn:
        (text,) = conn.execute("SELECT sealed FROM signing_keys WHERE name = ? AND state = 'current'", (TEST_DISABLED,)).fetchone()
    return unseal(SealedKey.model_validate_json(text), TEST_PASSWORD)


async def test_no_one_but_the_named_principal_with_their_own_current_key_is_counted(bus):
    """Property, against the real broker and factory: whatever name a decision gives, whatever
    key signed it and whatever signer it claims, it counts only when it is that enabled
    principal's own sealed key. Every other combination is refused and changes nothing."""
    async with running(bus, make_mission(), executor=True) as (factory, agent, cc, _):
        await submit(agent, directive("prop", notional_usd=1_000))
        item = await cc.item("prop")
        planted = _plant_unsealed_key(bus.data_dir, "mallory")
        planted_as_alice = Ed25519PrivateKey.generate()
        (bus.data_dir.keys / "public" / "principal-alice.pub").parent.mkdir(parents=True, exist_ok=True)
        (bus.data_dir.keys / "public" / "principal-alice.pub").write_text(public_to_text(planted_as_alice.public_key()) + "\n")
        keys = {
            "alice": P["alice"]._key, "bob": P["bob"]._key, "dora (disabled)": _disabled_key(bus.data_dir),
            "planted for mallory": planted, "planted as alice": planted_as_alice,
            "agent": agent_signer(bus.data_dir)._key, "factory": Signer(KeyStore(bus.data_dir.keys), "factory")._key,
        }
        owner = {"alice": "alice", "bob": "bob"}
        loop = asyncio.get_running_loop()
        tried = []

        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            named=st.sampled_from(["alice", "Alice", " bob", TEST_VIEWER, TEST_DISABLED, "mallory", "b\u200bob", "agent"]),
            key=st.sampled_from([*keys, "unsigned"]),
            claimed=st.sampled_from(["as named", "principal:alice", "principal:bob", "agent:desk", "principal:mallory"]),
        )
        def attempt(named, key, claimed):
            canonical = named.strip().lower()
            signer = f"principal:{canonical}" if claimed == "as named" else claimed
            genuine = key in owner and owner[key] == canonical and signer == f"principal:{canonical}"
            if genuine:
                return  # counted: shown by the last step below; here the directive must stay pending
            resp = _decision(item, named, "prop")
            headers = None
            if key != "unsigned":
                headers = Signer.of(signer, keys[key]).headers(Kind.APPROVAL, resp.to_bytes())

            async def go():
                out = await _outcome(cc, resp, headers)
                tried.append(out.outcome)
                assert out.outcome == "refused", (named, key, claimed, out)
                assert (await cc.item("prop")).state == "staged"

            asyncio.run_coroutine_threadsafe(go(), loop).result(30)

        await loop.run_in_executor(None, attempt)
        assert len(tried) >= 20
        with factory.store.connect() as conn:
            assert factory.store.order(conn, "prop-o") is None
        # The named principal, with their own key, is counted.
        done = await cc.decide("prop", "approve", P["alice"])
        assert [o.outcome for o in done] == ["ordered", "executed"]


async def test_each_way_in_without_the_principal_leaves_the_directive_unexecuted(bus, tmp_path):
    """A viewer, a name with no account, a wrong password, one person twice for four eyes, an
    unsealed key planted in keys/: each leaves the directive pending, with no order."""
    mission = make_mission(guardrails={"require_human_approval_above_usd": 1_000.0}, approvals={"four_eyes_above_usd": 1_000.0})
    async with running(bus, mission, executor=True) as (factory, agent, cc, _):
        await submit(agent, directive("gate", notional_usd=5_000))  # explicit, four eyes
        item = await cc.item("gate")
        cli = _Cli(bus.data_dir)

        # A viewer, a name with no account, a disabled account: the CLI refuses before any password.
        for name, why in ((TEST_VIEWER, "viewer"), ("mallory", "no account"), (TEST_DISABLED, "disabled")):
            r = await cli.approve("gate", name, TEST_PASSWORD)
            assert r.returncode == 2 and why in r.stderr, r.stderr
        # The wrong password opens nothing.
        r = await cli.approve("gate", "alice", "not alice's password")
        assert r.returncode == 2 and "wrong password for alice" in r.stderr
        assert (await cc.item("gate")).state == "staged"

        # A key planted in keys/ as alice's (an unsealed file and its public file) signs nothing counted.
        planted = _plant_unsealed_key(bus.data_dir, "alice")
        resp = _decision(item, "alice", "gate")
        out = await _outcome(cc, resp, Signer.of("principal:alice", planted).headers(Kind.APPROVAL, resp.to_bytes()))
        assert out.outcome == "refused" and "signature" in out.reason
        # ...nor as a name with no account.
        mallory = _plant_unsealed_key(bus.data_dir, "mallory")
        resp = _decision(item, "mallory", "gate")
        out = await _outcome(cc, resp, Signer.of("principal:mallory", mallory).headers(Kind.APPROVAL, resp.to_bytes()))
        assert out.outcome == "refused" and "no account" in out.reason
        assert (await cc.item("gate")).state == "staged"

        # Four eyes: alice with her own password counts once; alice again is refused; alice's key
        # on a decision naming bob is not bob's.
        r = await cli.approve("gate", "alice", TEST_PASSWORD)
        assert r.returncode == 0, r.stderr
        assert (await cc.item("gate")).state == "awaiting_second_approval", r.stdout
        r = await cli.approve("gate", "alice", TEST_PASSWORD)
        assert r.returncode != 0
        resp = _decision(item, "bob", "gate")
        out = await _outcome(cc, resp, Signer.of("principal:bob", P["alice"]._key).headers(Kind.APPROVAL, resp.to_bytes()))
        assert out.outcome == "refused"
        assert (await cc.item("gate")).state == "awaiting_second_approval"
        with factory.store.connect() as conn:
            assert factory.store.order(conn, "gate-o") is None
        # Two people, two secrets: bob's own approval executes it.
        r = await cli.approve("gate", "bob", TEST_PASSWORD)
        assert r.returncode == 0, r.stderr
        assert (await wait_for(lambda: _state(cc, "gate", "executed"))).state == "executed"


async def _state(cc, did: str, want: str):
    item = await cc.item(did)
    return item if item.state == want else None


class _Cli:
    """`deskgate approvals approve` as a person runs it, password on stdin."""

    def __init__(self, data_dir: DataDir):
        self.data_dir = data_dir

    async def approve(self, did: str, who: str, password: str) -> subprocess.CompletedProcess:
        """In a thread: the factory runs in this test's event loop and must keep answering."""
        return await asyncio.to_thread(
            subprocess.run,
            [*DESKGATE, "approvals", "approve", did, "--principal", who, "--password-stdin", "--yes", "--json", "--wait", "60",
             "--data-dir", str(self.data_dir.root)],
            input=password + "\n", capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
        )


async def test_the_command_center_signs_for_no_one_without_their_own_session(bus):
    """With no cookie, a made-up one, or a session row forged into the accounts database
    (even holding alice's wrapped key), the Command Center cannot sign for alice."""
    from test_web_http import web_desk

    from deskgate.people.accounts import _sha256, sessions

    async with web_desk(bus) as web:
        await submit(web.agent, directive("cc1", notional_usd=1_000))
        anon = web.client()
        assert (await anon.post("/api/approvals/cc1/approve", json={})).status_code == 401
        forged = web.client()
        forged.cookies.set("deskgate_session", "made-up-token")
        assert (await forged.post("/api/approvals/cc1/approve", json={}, headers={"X-CSRF-Token": "x"})).status_code == 401
        # alice logs in: her key is wrapped under her cookie's token.
        alice, csrf = await web.login("alice")
        with web.accounts.engine.connect() as conn:
            wrapped = conn.execute(sessions.select().where(sessions.c.name == "alice")).mappings().first()["wrapped_key"]
        assert wrapped and "PRIVATE" not in wrapped
        # Someone who can write the accounts database plants a session of their own holding
        # alice's wrapped key: their token cannot open it.
        token = "an-intruders-token"
        with web.accounts.engine.begin() as conn:
            conn.execute(sessions.insert().values(token_sha256=_sha256(token), name="alice", csrf="c" * 43, created_at=web.clock(),
                                                  last_seen=web.clock(), wrapped_key=wrapped))
        intruder = web.client()
        intruder.cookies.set("deskgate_session", token)
        r = await intruder.post("/api/approvals/cc1/approve", json={}, headers={"X-CSRF-Token": "c" * 43})
        assert r.status_code == 403 and "cannot open" in r.json()["detail"]
        assert (await web.cc.item("cc1")).state == "staged"
        # alice herself, in her own session, can.
        r = await alice.post("/api/approvals/cc1/approve", json={}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["state"] in ("ordered", "executed")
        assert [a["action"] for a in web.accounts.actions() if a["name"] == "alice"][0] == "approve"


def test_a_kept_decision_is_used_once_by_its_own_session_for_its_own_decision():
    from deskgate.web.proofs import ProofError, Proofs

    now = [0.0]
    proofs = Proofs(clock=lambda: now[0])
    resp = ApprovalResponse(approval_id="ap-1", directive_id="d1", decision="approve", principal="alice", decided_at=utcnow())
    pid, digests = proofs.keep("session-a", "approve", "d1", Kind.APPROVAL, [resp])
    assert digests == [decision_digest(Kind.APPROVAL, resp.to_bytes())]
    for owner, action, target in (("session-b", "approve", "d1"), ("session-a", "reject", "d1"), ("session-a", "approve", "d2")):
        with pytest.raises(ProofError, match="another decision"):
            proofs.take(owner, pid, action, target)
    assert proofs.take("session-a", pid, "approve", "d1").payloads == (resp,)
    with pytest.raises(ProofError, match="already used"):
        proofs.take("session-a", pid, "approve", "d1")
    pid, _ = proofs.keep("session-a", "approve", "d1", Kind.APPROVAL, [resp])
    now[0] += 1_000
    with pytest.raises(ProofError, match="expired"):
        proofs.take("session-a", pid, "approve", "d1")


def test_password_change_and_reset_from_the_cli(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    add_test_people(data_dir)

    def run(*args, input=None):
        return subprocess.run([*DESKGATE, "user", *args, "--data-dir", str(data_dir.root)], input=input, capture_output=True, text=True, timeout=60)

    wrong = run("password", "carol", "--password-stdin", input="not carol's password\nanother long passphrase\n")
    assert wrong.returncode == 2 and "wrong password for carol" in wrong.stderr
    assert run("password", "carol", "--password-stdin", input=f"{TEST_PASSWORD}\nanother long passphrase\n").returncode == 0
    principals = Principals(Accounts.open(data_dir), legacy_dir=data_dir.keys)
    assert principals.unlock("carol", "another long passphrase").public_key() != P["carol"]._key.public_key()
    # A forgotten password: a new key, the old one retired, no certificate (an operator confirms it).
    assert run("reset-password", "bob", "--password-stdin", input="a fresh passphrase for bob\n").returncode == 0
    assert principals.unlock("bob", "a fresh passphrase for bob").public_key() != P["bob"]._key.public_key()
    assert {r.state for r in principals.keys("bob")} == {"current", "retired"}
    assert principals.key_chain("bob")[-1][1] is None


async def test_the_factory_follows_a_principals_key_only_as_far_as_their_old_key_certifies(bus):
    """Whatever can write accounts.db could swap bob's key for its own: the factory trusts the
    key it pinned, a rotation bob's old key certified, or an operator's word, nothing else."""
    from deskgate.people.pins import Pins

    async with running(bus, make_mission(), executor=True) as (factory, agent, cc, _):
        await submit(agent, *(directive(f"pin{i}", notional_usd=1_000) for i in range(4)))
        principals = Principals(Accounts.open(bus.data_dir), legacy_dir=bus.data_dir.keys)

        # A key swapped into the accounts database: bob's retired, an intruder's made current,
        # sealed properly under a password the intruder chose.
        intruder = Ed25519PrivateKey.generate()
        sealed = seal(intruder, "principal:bob", "the intruder's password", CHEAP)
        with sqlite3.connect(bus.data_dir.accounts_db) as conn:
            conn.execute("UPDATE signing_keys SET state = 'retired', sealed = NULL WHERE name = 'bob'")
            conn.execute(
                "INSERT INTO signing_keys (name, key_id, public_key, sealed, state, origin, created_at) VALUES (?, ?, ?, ?, 'current', 'sealed', ?)",
                ("bob", "intruder", sealed.public_key, sealed.model_dump_json(), utcnow().isoformat()),
            )
        resp = _decision(await cc.item("pin0"), "bob", "pin0")
        out = await _outcome(cc, resp, Signer.of("principal:bob", intruder).headers(Kind.APPROVAL, resp.to_bytes()))
        assert out.outcome == "refused" and "not the one this service trusts" in out.reason
        assert (await cc.item("pin0")).state == "staged"

    # A rotation certified by the old key is followed (carol's: `deskgate keys rotate carol`).
    async with running(bus, make_mission(), executor=True) as (factory, agent, cc, _):
        principals.rotate("carol", TEST_PASSWORD)
        rotated = principals.signer("carol", TEST_PASSWORD)
        assert [o.outcome for o in await cc.decide("pin1", "approve", rotated)] == ["ordered", "executed"]
        # A reset (no old key to certify it) waits for the operator's word.
        principals.reset("alice", "alice's fresh passphrase")
        reset = principals.signer("alice", "alice's fresh passphrase")
        out = await cc.decide("pin2", "approve", reset, wait=5.0)
        assert [o.outcome for o in out] == ["refused"] and "keys trust alice" in out[0].reason
        for service in ("factory", "executor"):
            Pins.for_service(bus.data_dir, service).trust("alice", reset._key.public_key())
        assert [o.outcome for o in await cc.decide("pin2", "approve", reset)] == ["ordered", "executed"]


async def test_a_replayed_governor_clear_does_not_lift_a_new_hold(bus):
    """Anyone with the command center's credentials can send an old signed clear again,
    byte for byte; the factory lifts a hold only with a clear made for it, once."""
    from test_agents import drifting

    from deskgate.bus import subjects as S
    from deskgate.bus.reader import read_stream

    async with running(bus, make_mission(paper={"starting_equity_usd": 1_000_000.0})) as (factory, agent, cc, md):
        await agent.publish_insight(S.GOVERNOR_STATE_SUBJECT, drifting(0.5).to_bytes())
        (v,) = await agent.submit_payloads([raw(directive("g1", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "rejected"  # damped below min_confidence
        await cc.clear_governor(P["alice"], "checked once")
        (v,) = await agent.submit_payloads([raw(directive("g2", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "staged"
        old = [m async for m in read_stream(cc.nc, "RESPONSES", S.GOVERNOR_CLEAR_SUBJECT)][-1]
        await agent.publish_insight(S.GOVERNOR_STATE_SUBJECT, drifting(0.5, applied_clear_seq=old.seq).to_bytes())
        (v,) = await agent.submit_payloads([raw(directive("g3", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "rejected", "held again by the new drift"
        signed = {k: x for k, x in (old.headers or {}).items() if k.startswith("Deskgate-")}
        await cc.js.publish(S.GOVERNOR_CLEAR_SUBJECT, old.data, headers=signed)
        (v,) = await agent.submit_payloads([raw(directive("g4", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "rejected", "the replayed clear lifted nothing"
        assert factory.stats["bad_governor_states"] >= 1
        await cc.clear_governor(P["bob"], "checked the new drift")  # a clear made for this hold does
        (v,) = await agent.submit_payloads([raw(directive("g5", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "staged"


async def test_an_acknowledgement_not_signed_by_its_principal_is_not_shown(bus):
    from deskgate.domain.review import ReviewAck, ReviewRequest

    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        req = ReviewRequest(review_id="rv1", kind="drift", summary="drift in sizes", created_at=utcnow())
        await agent.js.publish("approvals.queue.review.rv1", req.to_bytes(), headers=agent_signer(bus.data_dir).headers(Kind.REVIEW, req.to_bytes()))
        forged = ReviewAck(review_id="rv1", principal="alice", at=utcnow(), note="looked")
        await cc.js.publish("approvals.acknowledged.rv1", forged.to_bytes())  # the command center's credentials, no key
        await asyncio.sleep(0.3)
        assert not [r for r in await cc.reviews() if r.request.review_id == "rv1"][0].acknowledged
        await cc.acknowledge("rv1", P["alice"], "looked")
        assert [r for r in await cc.reviews() if r.request.review_id == "rv1"][0].acks[0].principal == "alice"


async def test_a_principal_no_operator_enrolled_and_a_key_left_behind_never_count(bus):
    """Accounts written straight into the database count for nothing until an operator
    enrols them; a key once followed past is never taken back, even if put back as current."""
    from deskgate.people.pins import Pins

    async with running(bus, make_mission(), executor=True) as (factory, agent, cc, _):
        await submit(agent, *(directive(f"en{i}", notional_usd=1_000) for i in range(3)))
        principals = Principals(Accounts.open(bus.data_dir), legacy_dir=bus.data_dir.keys)
        # An account (and its key) added to accounts.db by something other than an operator's command.
        principals.accounts.add("mallory", "principal", "mallory's own passphrase")
        mallory = principals.signer("mallory", "mallory's own passphrase")
        out = await cc.decide("en0", "approve", mallory, wait=5.0)
        assert [o.outcome for o in out] == ["refused"] and "not enrolled" in out[0].reason
        # bob changes his password (a new key, certified by the old); the factory follows at once...
        old_bob = P["bob"]
        principals.change_password("bob", TEST_PASSWORD, "bob's new passphrase")
        factory.follow_key_rotations()
        # ...so the old key, put back as current by whoever can write the file (the new row gone), is refused.
        with sqlite3.connect(bus.data_dir.accounts_db) as conn:
            conn.execute("DELETE FROM signing_keys WHERE name = 'bob' AND state = 'current'")
            conn.execute("UPDATE signing_keys SET state = 'current', sealed = 'x' WHERE name = 'bob' AND key_id = ?",
                         (fingerprint(old_bob._key.public_key()),))
        resp = _decision(await cc.item("en1"), "bob", "en1")
        out = await _outcome(cc, resp, old_bob.headers(Kind.APPROVAL, resp.to_bytes()))
        assert out.outcome == "refused"
        assert Pins.for_service(bus.data_dir, "factory").pinned("bob") != public_to_text(old_bob._key.public_key())
        assert (await cc.item("en1")).state == "staged"


async def test_a_passkey_once_seen_stays_required_whatever_the_accounts_database_says(bus):
    from webauthn_soft import SoftAuthenticator

    from deskgate.people.passkeys import (
        PASSKEY_HEADER,
        assertion_from_browser,
        challenge_for,
        encode_assertion,
        registration_options,
        verify_registration,
    )
    from deskgate.people.pins import passkey_endorsement_message

    async with running(bus, make_mission(web={"passkey_rp_id": "localhost"}), executor=True) as (factory, agent, cc, _):
        await submit(agent, *(directive(f"pk{i}", notional_usd=1_000) for i in range(3)))
        principals = Principals(Accounts.open(bus.data_dir), legacy_dir=bus.data_dir.keys)
        auth = SoftAuthenticator()
        options, challenge = registration_options(rp_id="localhost", rp_name="desk", principal="carol", user_id=b"carol", exclude=[])
        stored = verify_registration(auth.register(options, "http://localhost:8700"), expected_challenge=challenge, rp_id="localhost",
                                     principal="carol", now=utcnow())
        # Registered as the Command Center does: endorsed with carol's own key.
        principals.add_passkey(stored, endorsement=P["carol"].sign_bytes(passkey_endorsement_message("carol", stored.credential_id, stored.public_key)))

        def bare(did):
            return _decision(item, "carol", did)

        item = await cc.item("pk0")
        resp = bare("pk0")
        out = await _outcome(cc, resp, P["carol"].headers(Kind.APPROVAL, resp.to_bytes()))
        assert out.outcome == "refused" and "decides with a passkey" in out.reason
        # The row deleted from accounts.db: the factory holds carol to her passkey all the same.
        principals.remove_passkey("carol", stored.credential_id)
        resp = bare("pk0")
        out = await _outcome(cc, resp, P["carol"].headers(Kind.APPROVAL, resp.to_bytes()))
        assert out.outcome == "refused" and "decides with a passkey" in out.reason
        # With the passkey's answer over exactly this decision, it counts.
        resp = bare("pk0")
        d = decision_digest(Kind.APPROVAL, resp.to_bytes())
        answer = auth.assert_(challenge_for([d]), "http://localhost:8700", "localhost")
        headers = {**P["carol"].headers(Kind.APPROVAL, resp.to_bytes()), PASSKEY_HEADER: encode_assertion(assertion_from_browser(answer, [d]))}
        out = await _outcome(cc, resp, headers)
        assert out.outcome == "ordered", out.reason

        # A passkey row no key of alice's endorsed satisfies nothing and requires nothing.
        intruder = SoftAuthenticator()
        options, challenge = registration_options(rp_id="localhost", rp_name="desk", principal="alice", user_id=b"alice", exclude=[])
        planted = verify_registration(intruder.register(options, "http://localhost:8700"), expected_challenge=challenge, rp_id="localhost",
                                      principal="alice", now=utcnow())
        principals.add_passkey(planted, endorsement=base64.b64encode(b"\0" * 64).decode())
        assert [o.outcome for o in await cc.decide("pk1", "approve", P["alice"])] == ["ordered", "executed"]
