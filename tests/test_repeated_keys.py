"""A JSON object that repeats a key is refused wherever the desk reads signed bytes.

The messages are written here by hand (pydantic and `json` cannot write a repeated
key), in every layout JSON allows: compact, spaced, whitespace before the colon,
over several lines, keys spelt with escapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from conftest import MEMO, directive
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from deskgate.audit.keys import KeyStore
from deskgate.audit.order_chain import order_problem
from deskgate.audit.signing import Kind, Signer, digest
from deskgate.config import Guardrails
from deskgate.domain.approval import ApprovalResponse, StagedDirective
from deskgate.domain.base import WireModel
from deskgate.domain.breaker import BreakerReset, BreakerTrip
from deskgate.domain.directive import DecisionMemo, Directive
from deskgate.domain.execution import Fill, Order
from deskgate.domain.governor import GovernorClear
from deskgate.domain.jsonkeys import may_repeat_keys, repeated_key
from deskgate.policy.beliefs import Beliefs
from deskgate.policy.engine import evaluate_payload


class Obj(list):
    """A JSON object as its (key, value) pairs, in order; a key may repeat."""


@dataclass(frozen=True)
class Layout:
    before: str  # between a key and its colon
    after: str  # between the colon and the value
    comma: str
    ascii_only: bool


LAYOUTS = [
    Layout("", "", ",", True),  # compact
    Layout("", " ", ", ", True),  # json.dumps
    Layout(" ", " ", " , ", False),
    Layout("\t", "\n  ", ",\n  ", False),  # laid out over lines
    Layout("\r\n ", "", ",\r\n", True),
]


def key_text(key: str, escaped: bool) -> str:
    """The key as JSON; `escaped` spells its first character as a \\u escape (same key)."""
    text = json.dumps(key)
    return '"\\u%04x' % ord(key[0]) + text[2:] if escaped and key and text[1] != "\\" else text


def dump(node, layout: Layout, escapes: frozenset[int] = frozenset(), _n: list | None = None) -> str:
    n = _n if _n is not None else [0]
    if isinstance(node, Obj):
        parts = []
        for key, value in node:
            n[0] += 1
            parts.append(key_text(key, n[0] in escapes) + layout.before + ":" + layout.after + dump(value, layout, escapes, n))
        return "{" + layout.comma.join(parts) + "}"
    if isinstance(node, list):
        return "[" + layout.comma.join(dump(v, layout, escapes, n) for v in node) + "]"
    return json.dumps(node, ensure_ascii=layout.ascii_only)


def as_obj(value):
    if isinstance(value, dict):
        return Obj((k, as_obj(v)) for k, v in value.items())
    if isinstance(value, list):
        return [as_obj(v) for v in value]
    return value


def distinct_keys(node) -> int:
    if isinstance(node, Obj):
        return len({k for k, _ in node}) + sum(distinct_keys(v) for _, v in node)
    if isinstance(node, list):
        return sum(distinct_keys(v) for v in node)
    return 0


def repeats(node) -> bool:
    if isinstance(node, Obj):
        keys = [k for k, _ in node]
        return len(set(keys)) < len(keys) or any(repeats(v) for _, v in node)
    return isinstance(node, list) and any(repeats(v) for v in node)


# -- directives, the hot path ------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]) | st.sampled_from(':"\\ \t{}'), min_size=1, max_size=60)

directives = st.fixed_dictionaries(
    {
        "directive_id": st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
        "asset": st.sampled_from(["BTC", "ETH", "btc/usdt", "SOL"]),
        "venue": st.sampled_from(["binance", "okx"]),
        "side": st.sampled_from(["buy", "sell"]),
        "notional_usd": st.floats(1, 50_000),
        "confidence": st.floats(0, 1),
        "memo": st.fixed_dictionaries({k: TEXT for k in MEMO}),
    },
    optional={
        "leverage": st.floats(0.1, 3),
        "agent": st.sampled_from(["dispatcher", "outside:me", "a b"]),
        "created_at": st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.isoformat()),
    },
)
GUARDRAILS = Guardrails()


def beliefs() -> Beliefs:
    return Beliefs(equity_usd=1e9, peak_equity_usd=1e9, prices={"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0})


@st.composite
def with_a_repeat(draw):
    """A valid directive, and the same one with one key repeated (at the top or in the memo)."""
    d = draw(directives)
    tree = as_obj(d)
    memo = dict(tree)["memo"]
    target, path = draw(st.sampled_from([(tree, ()), (memo, ("memo",))]))
    key, _ = draw(st.sampled_from(list(target)))
    other = draw(st.one_of(st.just(dict(target)[key]), st.sampled_from(["LUNA", "sell", "okx", 1e6, 0.99, "x"]), TEXT))
    clean = dump(tree, layout := draw(st.sampled_from(LAYOUTS)))
    target.insert(draw(st.integers(0, len(target))), (key, as_obj(other)))
    escapes = frozenset(draw(st.sets(st.integers(1, 16), max_size=3)))  # which keys (in writing order) to spell with \\u
    return clean, dump(tree, layout, escapes), (*path, key), distinct_keys(tree)


@settings(max_examples=400, deadline=None)
@given(case=with_a_repeat(), as_text=st.booleans())
def test_no_directive_with_a_repeated_key_is_ever_staged(case, as_text):
    clean, repeated, where, distinct = case
    raw = repeated if as_text else repeated.encode()
    ev = evaluate_payload(raw, beliefs(), GUARDRAILS)
    assert not ev.staged
    schema = ev.checks[0]
    assert schema.name == "schema" and not schema.passed
    assert schema.reason.startswith(".".join(where) + ": the key appears more than once"), schema.reason
    if where == ("directive_id",):
        assert ev.directive_id is None  # two ids: neither is claimed
    # The cheap bound alone would already have let nothing through.
    assert may_repeat_keys(raw, distinct)
    # The same directive written once per key is read as it always was.
    ok = evaluate_payload(clean.encode(), beliefs(), GUARDRAILS)
    assert ok.checks[0].passed, ok.checks[0].reason


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_cheap_bound_never_misses_a_repeat_in_any_json(data):
    keys = st.sampled_from(["a", "b", "ab", "a:b", 'q"', "\\", " ", "é"])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), TEXT)
    trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(st.tuples(keys, inner), max_size=5).map(Obj)), max_leaves=20)
    tree = data.draw(st.lists(st.tuples(keys, trees), max_size=6).map(Obj))
    layout = data.draw(st.sampled_from(LAYOUTS))
    raw = dump(tree, layout, frozenset(data.draw(st.sets(st.integers(1, 30), max_size=4)))).encode()
    assert (repeated_key(raw) is not None) == repeats(tree)
    if repeats(tree):
        assert may_repeat_keys(raw, distinct_keys(tree))


def test_the_desks_own_directives_need_no_full_parse():
    """What the agents send (a timestamp, prose with colons) stays under the cheap bound."""
    d = directive("own", created_at="2026-11-23T05:31:00+00:00", agent="dispatcher")
    d["memo"] = {**d["memo"], "signal_evidence": "Note: trend 4h, 10:30 UTC; ratio 2:1"}
    distinct = len(d) + len(d["memo"])
    for layout in LAYOUTS[:3]:  # one line: compact, json.dumps, spaced
        assert not may_repeat_keys(dump(as_obj(d), layout).encode(), distinct), layout


def test_every_memo_field_is_required_so_the_engine_counts_memo_keys_right():
    """evaluate_payload counts a valid memo's keys as len(DecisionMemo.model_fields)."""
    assert all(f.is_required() for f in DecisionMemo.model_fields.values())


def test_the_repeated_key_is_named_with_its_path():
    raw = json.dumps(directive("p")).replace('"flat"', '"flat", "position_context": "short"')
    assert repeated_key(raw) == ("memo", "position_context")
    assert repeated_key(b'{"a": [{"x": 1}, {"x": 1, "x": 2}]}') == ("a", 1, "x")
    assert repeated_key(b'{"a": 1}') is None and repeated_key(b"{not json") is None


# -- every signed message the desk reads from the bus ---------------------------------------


@pytest.mark.parametrize("model", [Directive, ApprovalResponse, StagedDirective, Order, Fill, BreakerTrip, BreakerReset, GovernorClear])
def test_signed_messages_are_all_read_through_the_same_rule(model):
    assert issubclass(model, WireModel)


def test_an_approval_response_cannot_be_reject_to_one_reader_and_approve_to_another():
    resp = ApprovalResponse(
        approval_id="ap1", directive_id="d1", decision="reject", reason="stale", principal="alice", directive_digest="0" * 64, decided_at=datetime.now(timezone.utc)
    )
    text = resp.model_dump_json()
    assert ApprovalResponse.model_validate_json(text).decision == "reject"
    both = text.replace('"decision":"reject"', '"decision":"reject","decision":"approve"')
    with pytest.raises(ValidationError) as err:
        ApprovalResponse.model_validate_json(both)
    (e,) = err.value.errors()
    assert e["type"] == "repeated_key" and e["loc"] == ("decision",)


def test_the_executor_refuses_an_order_whose_signed_directive_repeats_a_key(tmp_path):
    """A whole chain, every link genuinely signed, over directive bytes that say LUNA to one
    reader and BTC to another: what a factory reading the last key would have staged."""
    from test_audit import make_order

    from conftest import P, add_test_people, agent_signer

    from deskgate.paths import DataDir

    data_dir = DataDir.at(tmp_path / "desk").ensure()
    add_test_people(data_dir)
    keys = KeyStore.for_desk(data_dir)
    keys.ensure_roles()
    d = directive("o1", notional_usd=10_000)
    order, _, _ = make_order(keys, d=d)  # the same chain over the directive written once per key
    assert order_problem(keys, order, order.to_bytes(), Signer(keys, "factory").headers(Kind.ORDER, order.to_bytes())) is None
    payload = json.dumps(d).replace('"asset": "BTC"', '"asset": "LUNA", "asset": "BTC"').encode()
    signed = agent_signer(keys).signed(Kind.DIRECTIVE, payload)
    staged = StagedDirective.model_validate_json(order.staged.payload).model_copy(update={"signed_directive": signed})
    approval = ApprovalResponse(
        approval_id="ap-alice", directive_id="o1", decision="approve", principal="alice", directive_digest=digest(payload), decided_at=datetime.now(timezone.utc)
    )
    two_meanings = order.model_copy(update={
        "directive": signed,
        "staged": Signer(keys, "factory").signed(Kind.STAGED, staged.to_bytes()),
        "signed_approvals": [P["alice"].signed(Kind.APPROVAL, approval.to_bytes())],
    })
    body = two_meanings.to_bytes()
    assert order_problem(keys, two_meanings, body, Signer(keys, "factory").headers(Kind.ORDER, body)) == "the signed directive is not a valid directive"


def test_a_repeated_id_is_claimed_by_nothing_and_a_single_one_still_is():
    from deskgate.audit.service import ref_of
    from deskgate.policy.engine import id_claimed

    once = json.dumps(directive("r1")).encode()
    two_ids = once.replace(b'"directive_id": "r1"', b'"directive_id": "r1", "asset": "ETH", "\\u0064irective_id": "r2"')
    two_assets = once.replace(b'"asset": "BTC"', b'"asset": "BTC", "asset": "ETH"')
    assert (id_claimed(once), id_claimed(two_ids), id_claimed(two_assets)) == ("r1", None, "r1")
    assert (ref_of(Kind.DIRECTIVE, once), ref_of(Kind.DIRECTIVE, two_ids), ref_of(Kind.DIRECTIVE, two_assets)) == ("r1", None, "r1")
    # The verdict on a directive that repeats its id is filed under no id.
    ev = evaluate_payload(two_ids, beliefs(), GUARDRAILS)
    assert ev.directive_id is None and not ev.checks[0].passed
