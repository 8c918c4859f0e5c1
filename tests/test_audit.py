"""The provable decision chain: RFC 6962 Merkle trees, the hash-chained signed log,
exports verified with no database, and orders that must verify back to a principal."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import P, add_test_people, agent_signer, directive, raw, signed_headers, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskgate.audit import merkle
from deskgate.audit.chain import verify_log
from deskgate.audit.export import verify_export
from deskgate.audit.keys import KeyStore, SigningKeyError
from deskgate.audit.log import AuditLog, Record
from deskgate.audit.order_chain import order_problem
from deskgate.audit.signing import (
    Kind,
    SignatureStatus,
    SignedPayload,
    Signer,
    digest,
    verify_headers,
)
from deskgate.domain.approval import ApprovalResponse, PositionContext, StagedDirective
from deskgate.domain.directive import Directive
from deskgate.domain.evaluation import PolicyEvaluation
from deskgate.domain.execution import ApprovalRef, Order
from deskgate.paths import DataDir
from deskgate.people.accounts import Accounts

# --- RFC 6962 -------------------------------------------------------------------------

# The Certificate Transparency reference leaves and tree heads (RFC 6962 test vectors,
# as published with the reference implementations).
CT_LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}
LEAF_HASHES = [merkle.leaf_hash(x) for x in CT_LEAVES]


def test_tree_heads_match_the_rfc_6962_vectors():
    tree = merkle.Tree()
    assert tree.head().hex() == CT_ROOTS[0] == merkle.root([]).hex()
    for n in range(1, 9):
        tree.append(LEAF_HASHES[n - 1])
        assert merkle.root(LEAF_HASHES[:n]).hex() == CT_ROOTS[n]
        assert tree.head().hex() == CT_ROOTS[n]


def test_inclusion_proofs_match_the_vectors_and_verify():
    for (index, size), want in CT_INCLUSION.items():
        proof = merkle.inclusion_proof(LEAF_HASHES, index, size)
        assert [p.hex() for p in proof] == want
        assert merkle.verify_inclusion(LEAF_HASHES[index], index, size, proof, bytes.fromhex(CT_ROOTS[size]))


BIG = [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(40)]
BIG_ROOTS = [merkle.root(BIG[:n]) for n in range(41)]


def test_every_inclusion_and_consistency_proof_verifies_and_mangled_ones_do_not():
    for n in range(1, 41):
        for i in range(n):
            proof = merkle.inclusion_proof(BIG, i, n)
            assert merkle.verify_inclusion(BIG[i], i, n, proof, BIG_ROOTS[n])
            assert not merkle.verify_inclusion(BIG[(i + 1) % n], i, n, proof, BIG_ROOTS[n]) or n == 1
            if proof:
                flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not merkle.verify_inclusion(BIG[i], i, n, flipped, BIG_ROOTS[n])
                assert not merkle.verify_inclusion(BIG[i], i, n, proof[:-1], BIG_ROOTS[n])
                assert not merkle.verify_inclusion(BIG[i], i, n, [*proof, b"\xab" * 32], BIG_ROOTS[n])
    for second in range(41):
        for first in range(second + 1):
            proof = merkle.consistency_proof(BIG, first, second)
            assert merkle.verify_consistency(first, second, BIG_ROOTS[first], BIG_ROOTS[second], proof)
            if proof:
                flipped = [bytes([proof[0][0] ^ 0x80]) + proof[0][1:], *proof[1:]]
                assert not merkle.verify_consistency(first, second, BIG_ROOTS[first], BIG_ROOTS[second], flipped)
                assert not merkle.verify_consistency(first, second, BIG_ROOTS[first], BIG_ROOTS[second], proof[:-1])
            if 0 < first < second:
                # A different history of the same length is not consistent with this one.
                other = merkle.root([b"\x00" * 32, *BIG[1:first]])
                assert not merkle.verify_consistency(first, second, other, BIG_ROOTS[second], proof)


# --- keys and signatures ----------------------------------------------------------------


@pytest.fixture
def keys(tmp_path):
    """The roles' keys in a desk's keys/, the principals' sealed in its accounts.db, and the
    desk's own agent identity (`agent:desk`) there too."""
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    add_test_people(data_dir)
    ks = KeyStore.for_desk(data_dir)
    ks.ensure_roles()
    agent_signer(data_dir)
    return ks


def test_private_keys_are_readable_only_by_their_owner_and_never_replaced(keys):
    for path in keys.private_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    assert keys.private_dir.stat().st_mode & 0o077 == 0
    before = keys.public("factory")
    assert keys.create("factory") is before or keys.public("factory") == before
    assert keys.ensure_roles() == []
    # Agents sign with their own identities' keys: no shared agent key is made any more,
    # and an agent's key is never a file in keys/.
    assert not (keys.private_dir / "agent.pem").exists() and keys.public("agent") is None
    with pytest.raises(SigningKeyError, match="credentials file"):
        keys.create("agent:desk")
    with pytest.raises(SigningKeyError, match="credentials file"):
        keys.private("agent:desk")


def test_a_signature_binds_signer_kind_and_bytes(keys):
    payload = raw(directive("s1"))
    h = agent_signer(keys).headers(Kind.DIRECTIVE, payload)
    assert verify_headers(keys, Kind.DIRECTIVE, payload, h, expect="agent:") is SignatureStatus.VALID
    assert verify_headers(keys, Kind.DIRECTIVE, payload + b" ", h, expect="agent:") is SignatureStatus.INVALID
    assert verify_headers(keys, Kind.APPROVAL, payload, h) is SignatureStatus.INVALID  # a directive is not an approval
    assert verify_headers(keys, Kind.DIRECTIVE, payload, h, expect="factory") is SignatureStatus.WRONG_SIGNER
    assert verify_headers(keys, Kind.DIRECTIVE, payload, None) is SignatureStatus.UNSIGNED
    claimed = {**h, "Deskgate-Signer": "factory"}  # the agent's signature, claimed as the factory's
    assert verify_headers(keys, Kind.DIRECTIVE, payload, claimed, expect="factory") is SignatureStatus.INVALID
    assert verify_headers(keys, Kind.DIRECTIVE, payload, {**h, "Deskgate-Signer": "principal:nobody"}) is SignatureStatus.UNKNOWN_SIGNER


# --- orders verify back to a principal's approval of that exact directive ---------------

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def staged_record(keys: KeyStore, payload: bytes, *, four_eyes: bool = False, explicit: bool = False, expires_at=None,
                  agent: Signer | None = None) -> SignedPayload:
    """The factory's signed staged record of a directive signed by `agent` (the desk's own by default)."""
    d = Directive.model_validate_json(payload)
    staged = StagedDirective(
        directive=d, evaluation=PolicyEvaluation(directive_id=d.directive_id, decision="staged", explicit_approval=explicit, checks=[]),
        asset="BTC", venue="binance", explicit=explicit, four_eyes=four_eyes, price_at_staging=65_000.0, staged_at=NOW,
        expires_at=expires_at or NOW + timedelta(minutes=15),
        context=PositionContext(equity_usd=1e6, current_position_usd=0, pending_same_side_usd=0, post_trade_position_usd=d.notional_usd,
                                post_trade_position_pct=1.0, gross_leverage_after=0.01, drawdown_pct=0),
        signed_directive=(agent or agent_signer(keys)).signed(Kind.DIRECTIVE, payload),
    )
    return Signer(keys, "factory").signed(Kind.STAGED, staged.to_bytes())


def make_order(keys: KeyStore, *, approvers=("alice",), d: dict | None = None, approve_digest_of: bytes | None = None,
               four_eyes: bool = False, decided_at=None, agent: Signer | None = None):
    """A genuine chain: the agent's directive, the factory's staged record, principals' approvals, the factory's order."""
    d = d or directive("oc1", notional_usd=10_000)
    payload = raw(d)
    agent = agent or agent_signer(keys)
    signed_directive = agent.signed(Kind.DIRECTIVE, payload)
    approvals, refs = [], []
    for who in approvers:
        resp = ApprovalResponse(
            approval_id=f"ap-{who}", directive_id=d["directive_id"], decision="approve", principal=who, decided_at=decided_at or NOW,
            directive_digest=digest(approve_digest_of or payload),
        )
        approvals.append(P[who].signed(Kind.APPROVAL, resp.to_bytes()))
        refs.append(ApprovalRef(approval_id=resp.approval_id, principal=who, decided_at=NOW))
    order = Order(
        order_id=f"{d['directive_id']}-o", directive_id=d["directive_id"], venue="binance", asset="BTC", side=d["side"],
        notional_usd=d["notional_usd"], leverage=d.get("leverage", 1.0), reference_price=65_000.0, created_at=NOW,
        approvals=refs, directive=signed_directive, signed_approvals=approvals, staged=staged_record(keys, payload, four_eyes=four_eyes, agent=agent),
    )
    body = order.to_bytes()
    return order, body, Signer(keys, "factory").headers(Kind.ORDER, body)


def test_a_genuine_chain_verifies(keys):
    order, body, headers = make_order(keys, approvers=("alice", "bob"))
    assert order_problem(keys, order, body, headers) is None
    order, body, headers = make_order(keys, approvers=("alice", "bob"), four_eyes=True)
    assert order_problem(keys, order, body, headers) is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notional=st.floats(min_value=1_000, max_value=5e6, allow_nan=False), batched=st.booleans())
def test_a_factory_key_alone_cannot_make_a_four_eyes_order_need_one_person(keys, notional, batched):
    """Whoever holds the factory's key can sign a staged record saying "one principal, no
    explicit approval"; the executor counts people from its own mission, not that record."""
    explicit_above, four_eyes_above = 50_000.0, 250_000.0
    d = directive("fe-forged", notional_usd=notional)
    order, body, headers = make_order(keys, d=d, approvers=("alice",), four_eyes=False)
    if batched:  # the one approval made in a batch, as an explicit directive never may be
        signed = order.signed_approvals[0]
        resp = ApprovalResponse.model_validate_json(signed.payload).model_copy(update={"batch_id": "b-1"})
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [P["alice"].signed(Kind.APPROVAL, resp.to_bytes())]}))
    problem = order_problem(keys, order, body, headers, explicit_above_usd=explicit_above, four_eyes_above_usd=four_eyes_above)
    needs_two = notional > four_eyes_above
    no_batch = notional > explicit_above
    if needs_two:
        assert problem is not None and "two different principals" in problem or (batched and "batch" in (problem or ""))
    elif no_batch and batched:
        assert problem is not None and "batch" in problem
    else:
        assert problem is None, problem


def _resign(keys, order: Order, signer="factory"):
    body = order.to_bytes()
    return order, body, Signer(keys, signer).headers(Kind.ORDER, body)


TAMPERINGS = [
    "unsigned order", "order signed by the agent", "no approvals", "approval signed by the agent",
    "approval signed by another principal", "approval of another directive", "approval digest of other bytes",
    "rejection instead of approval", "bigger order than the directive", "other side", "directive not signed",
    "directive re-signed by the factory", "directive bytes edited", "approval bytes edited", "approval forged for an unknown principal",
    "refs name an approval not carried", "no staged record", "staged record signed by the agent", "one approval where two are needed",
    "ordered after expiry", "the same approval twice", "ref names another principal", "asset is the quote leg", "staged for another directive",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(TAMPERINGS), notional=st.floats(min_value=1, max_value=1e6, allow_nan=False), side=st.sampled_from(["buy", "sell"]))
def test_no_tampered_order_ever_verifies(keys, which, notional, side):
    d = directive("oc2", notional_usd=notional, side=side)
    order, body, headers = make_order(keys, d=d)
    sp = order.signed_approvals[0]
    resp = ApprovalResponse.model_validate_json(sp.payload)
    agent, factory = agent_signer(keys), Signer(keys, "factory")
    if which == "unsigned order":
        headers = None
    elif which == "order signed by the agent":
        headers = agent.headers(Kind.ORDER, body)
    elif which == "no approvals":
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": []}))
    elif which == "approval signed by the agent":
        forged = SignedPayload(signer="principal:alice", signature=agent.sign(Kind.APPROVAL, sp.data), payload=sp.payload)
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [forged]}))
    elif which == "approval signed by another principal":
        forged = P["bob"].signed(Kind.APPROVAL, sp.data)  # bob's key on a decision naming alice
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [forged]}))
    elif which == "approval of another directive":
        other = resp.model_copy(update={"directive_id": "other"})
        forged = P["alice"].signed(Kind.APPROVAL, other.to_bytes())
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [forged]}))
    elif which == "approval digest of other bytes":
        order, body, headers = make_order(keys, d=d, approve_digest_of=raw({**d, "notional_usd": notional * 2}))
    elif which == "rejection instead of approval":
        rej = resp.model_copy(update={"decision": "reject", "reason": "no"})
        forged = P["alice"].signed(Kind.APPROVAL, rej.to_bytes())
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [forged]}))
    elif which == "bigger order than the directive":
        order, body, headers = _resign(keys, order.model_copy(update={"notional_usd": notional * 10}))
    elif which == "other side":
        order, body, headers = _resign(keys, order.model_copy(update={"side": "sell" if side == "buy" else "buy"}))
    elif which == "directive not signed":
        bare = order.directive.model_copy(update={"signature": "AAAA"})
        order, body, headers = _resign(keys, order.model_copy(update={"directive": bare}))
    elif which == "directive re-signed by the factory":
        resigned = SignedPayload(signer="agent:desk", signature=factory.sign(Kind.DIRECTIVE, order.directive.data), payload=order.directive.payload)
        order, body, headers = _resign(keys, order.model_copy(update={"directive": resigned}))
    elif which == "directive bytes edited":
        edited = order.directive.model_copy(update={"payload": order.directive.payload.replace('"oc2"', '"oc2" ')})
        order, body, headers = _resign(keys, order.model_copy(update={"directive": edited}))
    elif which == "approval bytes edited":
        edited = sp.model_copy(update={"payload": sp.payload.replace("alice", "alice ")})
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [edited]}))
    elif which == "approval forged for an unknown principal":
        nobody = resp.model_copy(update={"principal": "mallory"})
        forged = SignedPayload(signer="principal:mallory", signature=agent.sign(Kind.APPROVAL, nobody.to_bytes()), payload=nobody.to_bytes().decode())
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [forged]}))
    elif which == "refs name an approval not carried":
        refs = [ApprovalRef(approval_id="ap-ghost", principal="alice", decided_at=NOW)]
        order, body, headers = _resign(keys, order.model_copy(update={"approvals": refs}))
    elif which == "no staged record":
        order, body, headers = _resign(keys, order.model_copy(update={"staged": None}))
    elif which == "staged record signed by the agent":
        forged = SignedPayload(signer="factory", signature=agent.sign(Kind.STAGED, order.staged.data), payload=order.staged.payload)
        order, body, headers = _resign(keys, order.model_copy(update={"staged": forged}))
    elif which == "one approval where two are needed":
        order, body, headers = make_order(keys, d=d, four_eyes=True)
    elif which == "ordered after expiry":
        order, body, headers = _resign(keys, order.model_copy(update={"created_at": NOW + timedelta(hours=1)}))
    elif which == "the same approval twice":
        order, body, headers = _resign(keys, order.model_copy(update={"signed_approvals": [sp, sp], "approvals": [*order.approvals, *order.approvals]}))
    elif which == "ref names another principal":
        refs = [ApprovalRef(approval_id=resp.approval_id, principal="bob", decided_at=NOW)]
        order, body, headers = _resign(keys, order.model_copy(update={"approvals": refs}))
    elif which == "asset is the quote leg":
        pair = {**d, "asset": "BTC/USDT"}
        order, body, headers = make_order(keys, d=pair)
        order, body, headers = _resign(keys, order.model_copy(update={"asset": "USDT"}))
    elif which == "staged for another directive":
        other = staged_record(keys, raw(directive("other", notional_usd=notional, side=side)))
        order, body, headers = _resign(keys, order.model_copy(update={"staged": other}))
    assert order_problem(keys, order, body, headers) is not None, which


# --- the log ------------------------------------------------------------------------------


def _records(keys: KeyStore, n: int, start: int = 0) -> list[Record]:
    agent = agent_signer(keys)
    out = []
    for i in range(start, start + n):
        payload = raw(directive(f"log{i}"))
        h = agent.headers(Kind.DIRECTIVE, payload)
        out.append(Record("directive", "consciousness.directives.BTC", f"log{i}", f"DIRECTIVES:{i + 1}",
                          h["Deskgate-Signer"], h["Deskgate-Signature"], "valid", payload.decode()))
    return out


@pytest.fixture
def filled_log(tmp_path, keys):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", keys, checkpoint_every=7)
    at = NOW
    for k in range(4):
        log.append(_records(keys, 10, start=10 * k), at + timedelta(seconds=k), cursor=("DIRECTIVES:x", 10 * (k + 1)))
    log.checkpoint(at + timedelta(seconds=5))  # as the audit service does when the desk goes quiet
    return log


def test_the_log_verifies_and_appending_is_idempotent_per_source(filled_log, keys):
    report = verify_log(filled_log.entries(), filled_log.checkpoints(), keys)
    assert report.ok and report.entries == 40 and report.checkpoints == 6  # sizes 7, 14, 21, 28, 35 and 40
    assert filled_log.append(_records(keys, 10, start=30), NOW) == 0  # same sources again: nothing added
    assert filled_log.cursor("DIRECTIVES:x") == 40
    reopened = AuditLog(str(filled_log.engine.url), keys, checkpoint_every=7)
    assert reopened.tree.head() == filled_log.tree.head() and reopened.size == 40


@settings(max_examples=100, deadline=None)
@given(payload=st.text(), subject=st.text(min_size=1, max_size=40), ref=st.none() | st.text(max_size=20),
       status=st.sampled_from(list(SignatureStatus)), at=st.datetimes(timezones=st.just(timezone.utc)))
def test_a_row_appended_is_the_entry_as_sealed(payload, subject, ref, status, at):
    """The log appends `new_row` (one validation, one dump); it must be the sealed entry, hash and all."""
    from deskgate.audit.chain import GENESIS, new_entry, new_row

    fields = dict(kind="directive", subject=subject, ref=ref, source="DIRECTIVES:1", recorded_at=at, signer="agent",
                  signature="c2ln", status=status, payload=payload)
    assert new_row(1, GENESIS, **fields) == new_entry(1, GENESIS, **fields).model_dump(mode="json")


def test_an_unsigned_message_is_kept_as_history_not_reported_as_damage(tmp_path, keys):
    log = AuditLog(f"sqlite:///{tmp_path / 'a.db'}", keys)
    forged = Record("directive", "consciousness.directives.BTC", "evil", "DIRECTIVES:1", None, None, "unsigned", raw(directive("evil")).decode())
    log.append([forged, *_records(keys, 2, start=1)], NOW)
    log.checkpoint(NOW)
    report = verify_log(log.entries(), log.checkpoints(), keys)
    assert report.ok and report.unverified_count == 1 and report.unverified[0].seq == 1


def _export(log, tmp_path) -> list[str]:
    path = tmp_path / "export.jsonl"
    log.export(path, NOW + timedelta(minutes=5))
    return path.read_text().splitlines()


def _verify_lines(tmp_path, lines: list[str], keys=None):
    path = tmp_path / "tampered.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report, _ = verify_export(path, keys)
    return report


def test_an_export_verifies_with_no_database(filled_log, keys, tmp_path):
    lines = _export(filled_log, tmp_path)
    assert json.loads(lines[-1]).get("checkpoint", {}).get("size") == 40  # ends on a checkpoint
    report = _verify_lines(tmp_path, lines)
    assert report.ok and report.entries == 40
    assert _verify_lines(tmp_path, lines, keys).ok  # and against the desk's own keys


def _verify_bytes(tmp_path, data: bytes, keys=None, signatures: bool = True):
    """verify_export on these exact bytes: the report, or the ExportError for a file that is no export."""
    from deskgate.audit.export import ExportError

    path = tmp_path / "flipped.jsonl"
    path.write_bytes(data)
    try:
        return verify_export(path, keys, signatures=signatures)[0]
    except ExportError as exc:
        return exc


def _caught(outcome) -> bool:
    from deskgate.audit.export import ExportError

    return isinstance(outcome, ExportError) or not outcome.ok


def test_every_one_byte_change_to_the_header_line_is_caught(filled_log, keys, tmp_path):
    """Line 1 carries the keys, the entry count, the checkpoint interval and the final
    checkpoint; the audit key signs its exact bytes. Every byte, flipped, fails verification,
    with the keys the file carries and with the desk's; none crashes it. (Even without
    re-checking each message's signature, `--no-signatures`: the header's is always checked.)"""
    path = tmp_path / "export.jsonl"
    filled_log.export(path, NOW + timedelta(minutes=5))
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    assert _verify_bytes(tmp_path, data).ok and _verify_bytes(tmp_path, data, keys).ok
    missed = []
    for i in range(header_end):  # every byte of line 1, its newline included
        for mask in (0x01, 0x20):
            flipped = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
            if not all(_caught(_verify_bytes(tmp_path, flipped, k, signatures=False)) for k in (None, keys)):
                missed.append((i, mask, data[max(0, i - 20) : i + 20]))
    assert missed == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_change_to_the_header_or_the_body_is_caught_or_changes_nothing(filled_log, keys, tmp_path, data):
    """Any replacement byte anywhere: the header is caught always; a body line is caught
    whenever the change means something (a body line's JSON is hashed, not its layout)."""
    path = tmp_path / "export.jsonl"
    filled_log.export(path, NOW + timedelta(minutes=5))
    raw = path.read_bytes()
    i = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    flipped = raw[:i] + bytes([new]) + raw[i + 1 :]
    outcome = _verify_bytes(tmp_path, flipped, data.draw(st.sampled_from([None, keys])))  # never raises anything else
    start = raw.rfind(b"\n", 0, i) + 1
    end = raw.index(b"\n", i) + 1 if raw[i] != 10 else i + 1
    if start == 0:
        assert _caught(outcome), "a change to the header went unnoticed"
        return
    before, after = raw[start:end], flipped[start:end]
    try:
        same = json.loads(before) == json.loads(after.decode("utf-8"))
    except ValueError:
        same = False  # it no longer parses, or it split the line in two
    if not same:
        assert _caught(outcome), (before, after)


def test_a_header_changed_to_say_something_else_fails_with_the_reason(filled_log, keys, tmp_path):
    lines = _export(filled_log, tmp_path)
    header = json.loads(lines[0])
    changes = {
        "a key swapped for another valid one": {"keys": {**header["keys"], "principal:bob": header["keys"]["principal:alice"]}},
        "a signer added": {"keys": {**header["keys"], "principal:mallory": header["keys"]["factory"]}},
        "the count": {"entries": 39},
        "the interval": {"checkpoint_every": 1000},
        "another final checkpoint": {"final_checkpoint": {**header["final_checkpoint"], "size": 35}},
    }
    for what, change in changes.items():
        for trusted in (None, keys):
            report = _verify_lines(tmp_path, [json.dumps({**header, **change}, sort_keys=True), *lines[1:]], trusted)
            assert not report.ok, what
            assert report.first.seq is None and "the header's signature is invalid" in report.first.what, (what, report.first)
    # Without its signature line, or with it moved, the header is not trusted either.
    assert "not signed" in _verify_lines(tmp_path, [lines[0], *lines[2:]]).first.what
    assert "must be line 2" in _verify_lines(tmp_path, [lines[0], *lines[2:], lines[1]]).first.what


def test_a_header_re_signed_with_another_audit_key_fails_against_the_desks_keys(filled_log, keys, tmp_path):
    from deskgate.audit.keys import public_to_text

    lines = _export(filled_log, tmp_path)
    header = json.loads(lines[0])
    mallory = KeyStore(tmp_path / "mallory")
    mallory.create("audit")
    forged = json.dumps({**header, "entries": 39, "keys": {**header["keys"], "audit": public_to_text(mallory.public("audit"))}}, sort_keys=True)
    seal = json.dumps({"header_signature": {"signer": "audit", "signature": Signer(mallory, "audit").sign(Kind.EXPORT_HEADER, forged.encode())}})
    # Self-consistent under the keys it carries, the header still fails: the checkpoints are the desk's audit key's.
    assert not _verify_lines(tmp_path, [forged, seal, *lines[2:]]).ok
    report = _verify_lines(tmp_path, [forged, seal, *lines[2:]], keys)
    assert report.first.seq is None and "the header's signature is invalid" in report.first.what


def test_an_export_that_ends_elsewhere_than_its_signed_header_says_is_caught(filled_log, keys, tmp_path):
    lines = _export(filled_log, tmp_path)
    last_checkpoint = max(i for i, line in enumerate(lines) if line.startswith('{"checkpoint"'))
    earlier = [i for i, line in enumerate(lines) if line.startswith('{"checkpoint"') and i < last_checkpoint][-1]
    report = _verify_lines(tmp_path, lines[: earlier + 1], keys)  # a clean cut at an earlier checkpoint
    assert not report.ok and report.first.seq is None
    assert "header says 40 entries" in report.first.what


def test_an_older_unsigned_export_is_refused_with_the_reason(filled_log, tmp_path):
    from deskgate.audit.export import ExportError

    lines = _export(filled_log, tmp_path)
    old = json.dumps({**json.loads(lines[0]), "format": "deskgate-audit/1"}, sort_keys=True)
    path = tmp_path / "old.jsonl"
    path.write_text("\n".join([old, *lines[2:]]) + "\n")
    with pytest.raises(ExportError, match="not signed"):
        verify_export(path)


def test_audit_verify_file_reports_a_changed_header_and_never_crashes(filled_log, keys, tmp_path):
    from typer.testing import CliRunner

    from deskgate.cli import app

    path = tmp_path / "export.jsonl"
    filled_log.export(path, NOW + timedelta(minutes=5))
    data = path.read_bytes()
    runner = CliRunner()

    def verify(blob: bytes, *extra: str):
        target = tmp_path / "cli.jsonl"
        target.write_bytes(blob)
        result = runner.invoke(app, ["audit", "verify", "--file", str(target), *extra])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result

    assert verify(data).exit_code == 0
    count = data.index(b'"entries": 40') + len(b'"entries": 4')
    for blob in (
        data[:count] + b"1" + data[count + 1 :],  # the count, 40 -> 41: still parses
        data.replace(b'"checkpoint_every": 7', b'"checkpoint_every": 8', 1),  # the interval
        data[:5] + b"\xff" + data[6:],  # no longer UTF-8
        data[: data.index(b"\n")] + b" " + data[data.index(b"\n") :],  # a trailing space: same JSON, other bytes
    ):
        result = verify(blob)
        assert result.exit_code in (1, 2) and ("header" in result.output or "line 1" in result.output), result.output
    assert verify(data[:count] + b"1" + data[count + 1 :], "--keys", str(keys.root), "--json").exit_code == 1


def _entry_lines(lines):
    return [i for i, line in enumerate(lines) if '"entry"' in line[:10]]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_flipping_any_byte_of_an_entry_is_detected_and_located(filled_log, keys, tmp_path, data):
    lines = _export(filled_log, tmp_path)
    idx = data.draw(st.sampled_from(_entry_lines(lines)))
    entry = json.loads(lines[idx])["entry"]
    field = data.draw(st.sampled_from(["payload", "signature", "recorded_at", "prev_hash", "hash", "subject", "ref", "status", "signer"]))
    value = entry[field]
    if field == "recorded_at":
        entry[field] = value.replace(value[18], "7" if value[18] != "7" else "8", 1)
    elif isinstance(value, str) and value:
        pos = data.draw(st.integers(0, len(value) - 1))
        ch = value[pos]
        entry[field] = value[:pos] + ("0" if ch != "0" else "1") + value[pos + 1 :]
    else:
        entry[field] = "x"
    lines[idx] = json.dumps({"entry": entry})
    report = _verify_lines(tmp_path, lines, keys)
    assert not report.ok
    assert report.first.seq == entry["seq"], (field, report.first)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_deleting_reordering_or_truncating_entries_is_detected_and_located(filled_log, keys, tmp_path, data):
    lines = _export(filled_log, tmp_path)
    entries = _entry_lines(lines)
    how = data.draw(st.sampled_from(["delete", "swap", "truncate", "duplicate"]))
    i = data.draw(st.integers(0, len(entries) - 2))
    seq = json.loads(lines[entries[i]])["entry"]["seq"]
    if how == "delete":
        del lines[entries[i]]
    elif how == "swap":
        a, b = entries[i], entries[i + 1]
        lines[a], lines[b] = lines[b], lines[a]
    elif how == "duplicate":
        lines.insert(entries[i] + 1, lines[entries[i]])
        seq += 1
    else:
        lines = lines[: entries[i]]  # cut here, and the checkpoints after go with it
    report = _verify_lines(tmp_path, lines, keys)
    assert not report.ok, how
    if how != "truncate":
        assert report.first.seq == seq, (how, report.first)
    else:
        assert any(w in report.first.what for w in ("truncated", "header says", "after the last checkpoint"))


def test_a_rewritten_log_without_the_audit_key_fails_at_its_checkpoint(filled_log, keys, tmp_path):
    """Recomputing every hash after an edit keeps the chain whole, but not the signed checkpoints."""
    from deskgate.audit.chain import Entry

    lines = _export(filled_log, tmp_path)
    prev = "0" * 64
    out = [lines[0]]
    for line in lines[1:]:
        obj = json.loads(line)
        if "entry" in obj:
            e = Entry.model_validate(obj["entry"])
            if e.seq == 3:
                e = e.model_copy(update={"payload": e.payload.replace("10000", "99999")})
            e = e.model_copy(update={"prev_hash": prev}).sealed()
            prev = e.hash
            out.append(json.dumps({"entry": e.model_dump(mode="json")}))
        else:
            out.append(line)
    report = _verify_lines(tmp_path, out, keys)
    assert not report.ok and report.first.seq == 3  # the agent's signature no longer matches what it was


# --- against the real broker, factory and executor ----------------------------------------


async def test_unsigned_directives_and_decisions_are_refused_by_the_factory(bus):
    from test_factory import make_mission, running, submit

    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        (v,) = await agent.submit_payloads([raw(directive("nosig", notional_usd=1_000))], sign=False)
        assert v.decision == "rejected" and v.primary_reason == "signature" and v.directive_id is None
        (v,) = await submit(agent, directive("nosig", notional_usd=1_000))  # the agent's own, signed, is not blocked by it
        assert v.decision == "staged"
        # A decision naming the wrong digest (the principal was shown something else) is refused.
        resp = ApprovalResponse(approval_id="ap-x", directive_id="nosig", decision="approve", principal="alice", decided_at=NOW, directive_digest="0" * 64)
        outcomes = await cc.send(resp.model_copy(update={"decided_at": datetime.now(timezone.utc)}), P["alice"], wait=5.0)
        assert outcomes[0].outcome == "refused" and "digest" in outcomes[0].reason
        # An unsigned decision (command center credentials, no principal's key) is refused.
        resp = ApprovalResponse(approval_id="ap-y", directive_id="nosig", decision="approve", principal="alice", decided_at=datetime.now(timezone.utc))
        await cc.js.publish("approvals.response.nosig", resp.to_bytes())
        await wait_for(lambda: factory.stats["unsigned_decisions"] >= 1)
        assert (await cc.item("nosig")).state == "staged"
        # A disabled principal's key signs nothing the factory counts, even opened and sent.
        Accounts.open(bus.data_dir).disable("bob")
        refused = await cc.decide("nosig", "approve", P["bob"], wait=5.0)
        assert [o.outcome for o in refused] == ["refused"] and "disabled" in refused[0].reason
        late = ApprovalResponse(approval_id="ap-bob", directive_id="nosig", decision="approve", principal="bob",
                                decided_at=datetime.now(timezone.utc), directive_digest=digest((await cc.item("nosig")).staged.signed_directive.data))
        await cc.js.publish("approvals.response.nosig", late.to_bytes(), headers=signed_headers(bus.data_dir, "principal:bob", Kind.APPROVAL, late.to_bytes()))

        async def refused_as_revoked():
            item = await cc.item("nosig")
            return item if sum(o.outcome == "refused" and "disabled" in o.reason for o in item.outcomes) >= 2 else None

        assert (await wait_for(refused_as_revoked)).state == "staged"
        outcomes = await cc.decide("nosig", "approve", P["alice"], until_fill=False)
        assert [o.outcome for o in outcomes] == ["ordered"]  # no executor here; the genuine decision goes through


async def test_the_executor_never_fills_an_order_that_does_not_verify(bus):
    """Even with the factory's bus credentials and its signing key, an order needs a
    principal's signature over that exact directive; the refusal is recorded."""
    from sqlalchemy import select
    from test_factory import make_mission, running, submit

    from deskgate.bus.reader import read_stream
    from deskgate.bus.subjects import Role
    from deskgate.execution.service import Executor
    from deskgate.execution.store import refused_orders

    mission = make_mission()
    async with running(bus, mission, executor=False) as (factory, agent, cc, _):
        ex = Executor(mission, bus.data_dir)
        import asyncio

        xready = asyncio.Event()
        task = asyncio.create_task(ex.run(ready=xready))
        await asyncio.wait_for(xready.wait(), 10)
        try:
            await submit(agent, directive("real", notional_usd=2_000), directive("target", notional_usd=20_000))
            good = await cc.decide("real", "approve", P["alice"])
            assert [o.outcome for o in good] == ["ordered", "executed"]  # a genuine chain fills
            keys = KeyStore(bus.data_dir.keys)
            staged = (await cc.item("target")).staged
            signed_directive = staged.signed_directive
            agent = agent_signer(bus.data_dir)

            def approval(**over):
                resp = ApprovalResponse(approval_id=over.pop("approval_id", "ap-forged"), directive_id="target", decision="approve",
                                        principal="alice", decided_at=datetime.now(timezone.utc), directive_digest=digest(signed_directive.data))
                return resp.model_copy(update=over)

            real_directive = (await cc.item("real")).staged.signed_directive
            forged = {
                "missing": [],
                "forged": [SignedPayload(signer="principal:alice", signature=agent.sign(Kind.APPROVAL, approval().to_bytes()), payload=approval().to_bytes().decode())],
                "mismatched": [P["alice"].signed(Kind.APPROVAL, approval(directive_digest=digest(real_directive.data)).to_bytes())],
            }
            fx, _ = await bus.connect(Role.FACTORY)
            factory_signer = Signer(keys, "factory")
            from deskgate.bus.reader import last_message

            staged_msg = await last_message(cc.nc, "APPROVALS", "approvals.queue.directive.target")
            staged_signed = factory_signer.signed(Kind.STAGED, staged_msg.data)
            for n, (name, approvals) in enumerate(forged.items()):
                refs = [ApprovalRef(approval_id="ap-forged", principal="alice", decided_at=NOW)] if approvals else []
                order = Order.model_construct(order_id=f"target-forged-{name}", directive_id="target", venue="binance", asset="BTC", side="buy",
                                              notional_usd=20_000.0, leverage=1.0, reference_price=65_000.0, created_at=NOW, approvals=refs or
                                              [ApprovalRef(approval_id="ap-forged", principal="alice", decided_at=NOW)],
                                              directive=signed_directive, signed_approvals=approvals, staged=staged_signed)
                body = order.to_bytes()
                await fx.jetstream().publish("factory.execution.orders.binance", body, headers=factory_signer.headers(Kind.ORDER, body))
            # The genuine order of "real", replayed under a new order id with the factory's own key: an approval is used once.
            real_order = [Order.model_validate_json(m.data) async for m in read_stream(cc.nc, "ORDERS")][0]
            replay = real_order.model_copy(update={"order_id": "real-again"})
            body = replay.to_bytes()
            await fx.jetstream().publish("factory.execution.orders.binance", body, headers=factory_signer.headers(Kind.ORDER, body))
            unsigned = Order(order_id="target-unsigned", directive_id="target", venue="binance", asset="BTC", side="buy", notional_usd=20_000,
                             leverage=1.0, reference_price=65_000.0, created_at=NOW, approvals=[ApprovalRef(approval_id="a", principal="alice", decided_at=NOW)])
            await fx.jetstream().publish("factory.execution.orders.binance", unsigned.to_bytes())
            await fx.close()
            await wait_for(lambda: ex.refused >= 5, timeout=15)
            with ex.engine.connect() as conn:
                reasons = [r[0] for r in conn.execute(select(refused_orders.c.reason).order_by(refused_orders.c.seq))]
            assert len(reasons) == 5
            assert "approvals are not the signed ones" in reasons[0] or "no principal's signed approval" in reasons[0]
            assert "approvals must be signed by a principal" in reasons[1] and "invalid" in reasons[1]
            assert "digest mismatch" in reasons[2]
            assert "already answered as order real-o" in reasons[3]
            assert "unsigned" in reasons[4]
            fills = [json.loads(m.data) async for m in read_stream(cc.nc, "FILLS")]
            assert [f["status"] for f in fills if f["directive_id"] == "target"] == ["rejected"] * 3  # none for the unsigned order
            assert [f["status"] for f in fills if f["directive_id"] == "real"] == ["filled", "rejected"]  # the replay filled nothing
            assert all(f["reason"].startswith("refused by the executor") for f in fills if f["directive_id"] == "target")
            assert (await cc.item("target")).state == "staged"  # still awaiting a real principal
            assert factory.beliefs.position("BTC") == pytest.approx(2_000)  # only the genuine order moved the book
        finally:
            ex.stop()
            await task


def test_removing_checkpoints_or_rewriting_the_unsigned_tail_is_detected(filled_log, keys, tmp_path):
    from deskgate.audit.chain import Entry

    lines = _export(filled_log, tmp_path)
    no_checkpoints = [line for line in lines if '"checkpoint"' not in line[:15]]
    report = _verify_lines(tmp_path, no_checkpoints, keys)
    assert not report.ok and report.first.seq == 7  # the first place one is always signed
    # Drop the final checkpoint and rewrite the entries after the one before it, chain recomputed.
    body = lines[:-1]
    prev = None
    for i, line in enumerate(body):
        obj = json.loads(line)
        if "entry" in obj and obj["entry"]["seq"] > 35:
            e = Entry.model_validate(obj["entry"])
            e = e.model_copy(update={"payload": e.payload.replace("10000", "99999"), "status": SignatureStatus.UNSIGNED, "signer": None, "signature": None,
                                     "prev_hash": prev}).sealed()
            body[i] = json.dumps({"entry": e.model_dump(mode="json")})
        if "entry" in json.loads(body[i]):
            prev = json.loads(body[i])["entry"]["hash"]
    report = _verify_lines(tmp_path, body, keys)
    assert not report.ok and report.first.seq == 36 and "after the last checkpoint" in report.first.what


def test_a_failed_append_leaves_the_log_as_it_was(filled_log, keys):
    import sqlalchemy

    head, size, root = filled_log.head, filled_log.size, filled_log.tree.head()
    original = filled_log.engine  # the next commit goes to a database that cannot be written
    filled_log.engine = sqlalchemy.create_engine("sqlite:////nonexistent-dir/x.db")
    with pytest.raises(sqlalchemy.exc.SQLAlchemyError):
        filled_log.append(_records(keys, 3, start=200), NOW)
    filled_log.engine = original
    assert (filled_log.head, filled_log.size, filled_log.tree.head()) == (head, size, root)
    filled_log.append(_records(keys, 3, start=200), NOW)
    filled_log.checkpoint(NOW)
    assert verify_log(filled_log.entries(), filled_log.checkpoints(), keys, checkpoint_every=7).ok


def test_a_second_checkpoint_writer_does_not_break_the_log(filled_log, keys):
    other = AuditLog(str(filled_log.engine.url), keys, checkpoint_every=7)
    filled_log.append(_records(keys, 1, start=300), NOW)
    other_view = AuditLog(str(filled_log.engine.url), keys, checkpoint_every=7)
    assert other_view.checkpoint(NOW) is not None
    assert filled_log.checkpoint(NOW) is None  # already signed at this size: no conflict, no crash
    assert other.size == 40  # a reader opened earlier is simply behind


def test_the_audit_record_of_a_hostile_message_is_storable_and_verifies(keys):
    from deskgate.audit.service import record_of
    from deskgate.bus.reader import StoredMessage

    m = StoredMessage("DIRECTIVES", "consciousness.directives.BTC", 9, "", b"\xff\x00{" + b"x" * 10,
                      {"Deskgate-Signer": "agent" * 40, "Deskgate-Signature": "A" * 5000})
    r = record_of(keys, Kind.DIRECTIVE, m, "DIRECTIVES")
    assert r.signer is None and r.signature is None and r.status == "unsigned" and "\x00" not in r.payload
    log_entry = new_entry_from(r)
    assert verify_log([log_entry], [], keys).ok


def new_entry_from(r: Record):
    from deskgate.audit.chain import GENESIS, new_entry

    return new_entry(1, GENESIS, kind=r.kind, subject=r.subject, ref=r.ref, source=r.source, recorded_at=NOW,
                     signer=r.signer, signature=r.signature, status=r.status, payload=r.payload)


def test_an_export_carries_a_principals_retired_keys_so_what_they_signed_still_verifies(tmp_path, keys):
    """A principal's key rotated after they decided: the export names both keys, and the
    old decisions verify from the file alone and against the desk."""
    from conftest import TEST_PASSWORD

    from deskgate.people.principals import Principals

    principals: Principals = keys.principals
    before = principals.signer("carol", TEST_PASSWORD)
    log = AuditLog(f"sqlite:///{tmp_path / 'rot.db'}", keys, checkpoint_every=7)

    def approval(signer, n: int) -> Record:
        resp = ApprovalResponse(approval_id=f"ap-rot{n}", directive_id=f"rot{n}", decision="reject", principal="carol",
                                decided_at=NOW, reason="no")
        h = signer.headers(Kind.APPROVAL, resp.to_bytes())
        return Record("approval", f"approvals.response.rot{n}", f"ap-rot{n}", f"RESPONSES:{n}", h["Deskgate-Signer"],
                      h["Deskgate-Signature"], "valid", resp.to_bytes().decode())

    log.append([approval(before, 1)], NOW)
    principals.rotate("carol", TEST_PASSWORD)
    after = principals.signer("carol", TEST_PASSWORD)
    log.append([approval(after, 2)], NOW + timedelta(seconds=1))
    log.checkpoint(NOW + timedelta(seconds=2))
    lines = _export(log, tmp_path)
    assert isinstance(json.loads(lines[0])["keys"]["principal:carol"], list)
    assert _verify_lines(tmp_path, lines).ok
    assert _verify_lines(tmp_path, lines, keys).ok
    assert verify_log(log.entries(), log.checkpoints(), keys).ok
