"""The factory's cores driven without a bus: intake, approvals, the book, the gate and the
Governor's fold, on a real store and real keys in a temporary data directory.

The bus tests (test_factory.py, test_crash.py) cover the wiring and crashes; these
follow one directive from intake to a fill and pin the rules' order.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import P, add_test_people, directive, raw, signed_headers
from deskgate.audit.signing import Kind, digest
from deskgate.bus import subjects as S
from deskgate.bus.credentials import ensure_credentials
from deskgate.config import Mission
from deskgate.domain.approval import ApprovalResponse, StagedDirective
from deskgate.domain.execution import Fill, Order
from deskgate.domain.governor import GovernorClear, GovernorState
from deskgate.domain.market import Bar
from deskgate.factory.approvals import AwaitSecond, Expire, Recheck, Refuse, Reject, approval_gate
from deskgate.factory.governor import HoldRecord, fold_hold
from deskgate.factory.service import Factory
from deskgate.paths import DataDir

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class FixedClock:
    def __init__(self, t: datetime = T0):
        self.t = t

    def now(self) -> datetime:
        return self.t


def make_factory(tmp_path, **over) -> Factory:
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    add_test_people(data_dir)  # before ensure_credentials, which makes accounts.db
    ensure_credentials(data_dir)
    base = {"paper": {"starting_equity_usd": 100_000.0}, "marketdata": {"assets": ["BTC", "ETH"]}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    factory = Factory(Mission.model_validate(base), data_dir, clock=FixedClock())
    factory.load_state()
    for asset, price in (("BTC", 65_000.0), ("ETH", 3_500.0)):
        factory.book.apply_bar(Bar(asset=asset, ts=T0, open=price, high=price, low=price, close=price, volume=1.0,
                                   interval_seconds=60.0, source="test").to_bytes())
    return factory


def submit(factory: Factory, seq: int, d: dict) -> str | None:
    data = raw(d)
    return factory.evaluate_directives([(seq, data, signed_headers(factory.data_dir, "agent:desk", Kind.DIRECTIVE, data))])[0]


def approve(factory: Factory, seq: int, did: str, who: str, decision: str = "approve", **kw):
    with factory.store.connect() as conn:
        staged = StagedDirective.model_validate_json(factory.store.intention(conn, did)["staged"])
    resp = ApprovalResponse(approval_id=f"ap-{uuid.uuid4().hex}", directive_id=did, decision=decision, principal=who,
                            decided_at=factory.clock.now(), directive_digest=digest(staged.signed_directive.data), **kw)
    data = resp.to_bytes()
    return factory.decide(seq, S.response_subject(did), data, P[who].headers(Kind.APPROVAL, data))


def outgoing(factory: Factory) -> list[tuple[str, str]]:
    return [(p.kind.value, p.subject) for p in factory.outbox._outgoing]


def test_one_directive_from_intake_to_a_fill_without_a_bus(tmp_path):
    factory = make_factory(tmp_path)
    assert submit(factory, 1, directive("d1", notional_usd=10_000)) == "staged"
    assert factory.beliefs.pending["d1"].notional_usd == 10_000
    assert outgoing(factory) == [("staged", "approvals.queue.directive.d1"), ("verdict", "factory.status.policy.d1")]  # the item before its verdict

    outcome = approve(factory, 1, "d1", "alice")
    assert outcome.outcome == "ordered" and outcome.principals == ["alice"]
    assert [s for _, s in outgoing(factory)[2:]] == ["factory.execution.orders.binance", "factory.status.approval.d1"]
    order = Order.model_validate_json(factory.outbox._outgoing[2].payload)
    assert order.staged.signer == "factory" and [a.principal for a in order.approvals] == ["alice"]

    fill = Fill(fill_id="f1", order_id=order.order_id, directive_id="d1", venue="binance", asset="BTC", side="buy",
                status="filled", quantity=10_000 / 65_000.0, price=65_000.0, notional_usd=10_000.0, reference_price=65_000.0,
                filled_at=T0).to_bytes()
    executed = factory.apply_fill(1, fill, signed_headers(factory.data_dir, "executor", Kind.FILL, fill))
    assert executed.outcome == "executed"
    assert factory.beliefs.pending == {} and factory.beliefs.position("BTC") == pytest.approx(10_000.0)
    assert factory.funnel().executed == 1 and factory.funnel().staged == 1
    # The same fill again (a redelivery) changes nothing; a fill the agent signed is refused.
    assert factory.apply_fill(1, fill, signed_headers(factory.data_dir, "executor", Kind.FILL, fill)) is None
    assert factory.apply_fill(2, fill, signed_headers(factory.data_dir, "agent:desk", Kind.FILL, fill)) is None
    assert factory.beliefs.position("BTC") == pytest.approx(10_000.0)


def test_a_redelivered_directive_is_skipped_and_a_repeated_id_is_a_duplicate(tmp_path):
    factory = make_factory(tmp_path)
    assert submit(factory, 1, directive("d1", notional_usd=1_000)) == "staged"
    assert submit(factory, 1, directive("d1", notional_usd=1_000)) is None  # the same stream message
    assert submit(factory, 2, directive("d1", notional_usd=2_000)) == "duplicate"
    assert factory.beliefs.pending["d1"].notional_usd == 1_000


def test_one_person_cannot_be_both_pairs_of_eyes(tmp_path):
    factory = make_factory(tmp_path, guardrails={"require_human_approval_above_usd": 5_000.0},
                           approvals={"four_eyes_above_usd": 5_000.0})
    assert submit(factory, 1, directive("d1", notional_usd=10_000)) == "staged"
    first = approve(factory, 1, "d1", "alice")
    second = approve(factory, 2, "d1", "alice")
    assert (first.outcome, second.outcome) == ("awaiting_second_approval", "refused")
    assert "another principal" in second.reason
    third = approve(factory, 3, "d1", "bob")
    assert third.outcome == "ordered" and third.principals == ["alice", "bob"]


def test_a_tripped_breaker_refuses_approvals_but_not_rejections(tmp_path):
    factory = make_factory(tmp_path)
    for i, did in enumerate(("a", "b"), start=1):
        assert submit(factory, i, directive(did, notional_usd=1_000)) == "staged"
    factory.beliefs.breaker_tripped = True
    refused = approve(factory, 1, "a", "alice")
    assert refused.outcome == "refused" and "circuit breaker is tripped" in refused.reason
    assert "a" in factory.beliefs.pending  # still pending, still reserving
    rejected = approve(factory, 2, "b", "alice", decision="reject", reason="not now")
    assert rejected.outcome == "rejected" and "b" not in factory.beliefs.pending


def test_an_expired_directive_is_finished_by_housekeeping(tmp_path):
    factory = make_factory(tmp_path, approvals={"expiry_seconds": 60.0})
    assert submit(factory, 1, directive("d1", notional_usd=1_000)) == "staged"
    assert factory.approvals.next_expiry == T0 + timedelta(seconds=60)
    factory.clock.t = T0 + timedelta(seconds=61)
    factory.expire_due()
    assert factory.beliefs.pending == {} and factory.funnel().expired == 1
    assert outgoing(factory)[-1] == ("outbox", "factory.status.approval.d1")
    assert factory.approvals.next_expiry is None


# -- the gate's order ----------------------------------------------------------------


def _intention(**over) -> dict:
    row = {"state": "staged", "expires_at": T0 + timedelta(minutes=15), "explicit": False, "four_eyes": False, "staged": b"{}"}
    row.update(over)
    return row


def _response(decision: str = "approve", principal: str = "alice", **kw) -> ApprovalResponse:
    return ApprovalResponse(approval_id="ap1", directive_id="d1", decision=decision, principal=principal, decided_at=T0,
                            reason=kw.pop("reason", "no" if decision == "reject" else ""), **kw)


def test_the_gate_checks_in_order(monkeypatch):
    from deskgate.factory import approvals as A

    class Staged:  # only what the gate reads
        def __init__(self, data):
            self.signed_directive = type("S", (), {"data": data})()

    monkeypatch.setattr(A.StagedDirective, "model_validate_json", staticmethod(lambda b: Staged(raw(directive("d1")))))
    right = digest(raw(directive("d1")))
    tripped = "the circuit breaker is tripped"
    # Gone beats tripped: the principal learns the directive is gone, not to wait for a reset.
    assert approval_gate(_response(directive_digest=right), None, [], tripped, T0) == Refuse("no staged directive d1")
    assert approval_gate(_response(directive_digest=right), _intention(state="ordered"), [], tripped, T0).reason.endswith("already ordered")
    # Expired beats everything after it, the rejection included.
    late = T0 + timedelta(hours=1)
    assert isinstance(approval_gate(_response("reject"), _intention(), [], None, late), Expire)
    assert approval_gate(_response("reject"), _intention(), [], tripped, T0) == Reject("no")
    assert approval_gate(_response(directive_digest=right), _intention(), [], tripped, T0) == Refuse(tripped)
    batch = approval_gate(_response(directive_digest=right, batch_id="b1"), _intention(explicit=True), [], None, T0)
    assert isinstance(batch, Refuse) and "one by one" in batch.reason
    same = approval_gate(_response(principal="Alice", directive_digest=right), _intention(four_eyes=True), [{"principal": "alice\u200b"}], None, T0)
    assert isinstance(same, Refuse) and "another principal" in same.reason
    shown_other = approval_gate(_response(directive_digest="0" * 64), _intention(), [], None, T0)
    assert isinstance(shown_other, Refuse) and "digest" in shown_other.reason
    assert isinstance(approval_gate(_response(directive_digest=right), _intention(four_eyes=True), [], None, T0), AwaitSecond)
    assert isinstance(approval_gate(_response(principal="bob", directive_digest=right), _intention(four_eyes=True),
                                    [{"principal": "alice"}], None, T0), Recheck)


# -- the Governor's fold ---------------------------------------------------------------


def _state(damping: float, applied: int = 0) -> GovernorState:
    if damping >= 1.0:
        return GovernorState(applied_clear_seq=applied)
    return GovernorState(state="drifting", damping=damping, mean_proximity=0.1, sd_proximity=0.05, mean_confidence=0.7,
                         sd_confidence=0.03, drifting_since=T0, applied_clear_seq=applied)


def _clear(clear_id: str, hold_seq: int) -> GovernorClear:
    return GovernorClear(clear_id=clear_id, principal="alice", reason="checked", at=T0, hold_seq=hold_seq)


events = st.lists(
    st.one_of(
        st.tuples(st.just("state"), st.floats(0.05, 1.0), st.integers(0, 5)),
        st.tuples(st.just("clear"), st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 40)),
        st.tuples(st.just("unsigned"), st.none(), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_the_hold_only_falls_until_a_principal_clears_it(evs):
    """Without a counted clear the damping never rises; a clear id counts at most once; the
    factor stays in (0, 1]. Events are folded one at a time, as refreshes see them."""
    g = HoldRecord()
    counted: set[str] = set()
    for seq, (kind, a, b) in enumerate(evs, start=1):
        before = g
        if kind == "state":
            fold = fold_hold(g, [], [(seq, _state(a, applied=b))])
        elif kind == "clear":
            fold = fold_hold(g, [(seq, _clear(a, b))], [])
        else:
            fold = fold_hold(g, [(seq, None)], [])
        g = fold.record
        assert 0 < g.damping <= 1.0
        lifted = g.counted_clear_seq != before.counted_clear_seq
        if lifted:
            assert kind == "clear" and a not in counted and (before.hold is None or b == before.held_since_seq)
            counted.add(a)
        else:
            assert g.damping <= before.damping  # nothing but a principal's clear raises it


def test_a_governor_file_round_trips_and_fails_closed_when_unreadable(tmp_path):
    path = tmp_path / "governor.json"
    record = fold_hold(HoldRecord(), [], [(3, _state(0.6))]).record
    path.write_text(record.to_json())
    assert HoldRecord.read(path, 0.5) == record
    path.write_text('{"hold": 7}')
    assert HoldRecord.read(path, 0.5).hold == 0.5


# -- who may decide: answers kept only until the accounts or the pins change ----------------


def test_the_verifier_sees_a_disabled_account_and_a_new_passkey_at_once(tmp_path):
    """The factory keeps its answers about principals between decisions; a change committed
    by another process (the Command Center, the CLI) must reach the very next decision."""
    from webauthn_soft import SoftAuthenticator

    from deskgate.domain.base import utcnow
    from deskgate.people.accounts import Accounts
    from deskgate.people.passkeys import registration_options, verify_registration
    from deskgate.people.pins import passkey_endorsement_message
    from deskgate.people.principals import Principals

    factory = make_factory(tmp_path, web={"passkey_rp_id": "localhost"})
    for i in range(4):
        assert submit(factory, i + 1, directive(f"d{i}", notional_usd=1_000)) == "staged"
    assert approve(factory, 1, "d0", "alice").outcome == "ordered"  # warm: alice's key and passkeys are known
    assert approve(factory, 2, "d1", "carol").outcome == "ordered"

    other = Accounts.open(factory.data_dir)  # another process's connection to accounts.db
    other.disable("alice")
    refused = approve(factory, 3, "d2", "alice")
    assert refused.outcome == "refused" and "disabled" in refused.reason

    principals = Principals(other, legacy_dir=factory.data_dir.keys)
    auth = SoftAuthenticator()
    options, challenge = registration_options(rp_id="localhost", rp_name="desk", principal="carol", user_id=b"carol", exclude=[])
    stored = verify_registration(auth.register(options, "http://localhost:8700"), expected_challenge=challenge, rp_id="localhost",
                                 principal="carol", now=utcnow())
    principals.add_passkey(stored, endorsement=P["carol"].sign_bytes(passkey_endorsement_message("carol", stored.credential_id, stored.public_key)))
    without = approve(factory, 4, "d3", "carol")
    assert without.outcome == "refused" and "decides with a passkey" in without.reason
    other.engine.dispose()


def test_until_changed_keeps_an_answer_only_while_nothing_was_committed(tmp_path):
    from sqlalchemy import text

    from deskgate.storage import UntilChanged, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    memo = UntilChanged(engine)
    reads = []

    def read():
        with engine.connect() as conn:
            reads.append(conn.execute(text("SELECT v FROM t")).scalar())
        return reads[-1]

    assert memo.get("v", read) == 1 and memo.get("v", read) == 1 and len(reads) == 1
    with engine.begin() as conn:  # a commit on another connection
        conn.execute(text("UPDATE t SET v = 2"))
    assert memo.get("v", read) == 2 and len(reads) == 2

    def read_and_write():  # an answer whose own computation commits is used, not kept
        with engine.begin() as conn:
            conn.execute(text("UPDATE t SET v = v + 1"))
        return read()

    assert memo.get("w", read_and_write) == 3
    assert memo.get("w", read) == 3 and len(reads) == 4
    # A commit by another process.
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", f"import sqlite3; c = sqlite3.connect({str(tmp_path / 'a.db')!r}); "
                    "c.execute('UPDATE t SET v = 9'); c.commit()"], check=True)
    assert memo.get("w", read) == 9
    # If the question cannot be asked, nothing is kept: every answer is read afresh.
    memo.close()
    n = len(reads)
    assert memo.get("v", read) == 9 and memo.get("v", read) == 9 and len(reads) == n + 2
    engine.dispose()
