"""Mandates in the running factory: the verified agent's mandate applies at intake (its daily
budget counted and kept across a restart) and again at the approval's time of use."""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import directive, raw, signed_headers
from test_factory_cores import T0, FixedClock, approve, make_factory, submit

from deskgate.audit.signing import Kind
from deskgate.domain.market import Bar
from deskgate.factory.service import Factory

MANDATE = {"assets": ["BTC"], "venues": ["binance"], "max_notional_usd": 10_000, "daily_directives": 4}


def verdict_of(factory: Factory, directive_id: str) -> dict:
    (payload,) = [p.payload for p in factory.outbox._outgoing if p.kind.value == "verdict" and p.subject.endswith(f".{directive_id}")][-1:]
    return json.loads(payload)


def failed(factory: Factory, directive_id: str) -> dict[str, dict]:
    return {c["name"]: c for c in verdict_of(factory, directive_id)["evaluation"]["checks"] if not c["passed"]}


def submit_as(factory: Factory, seq: int, agent: str, d: dict) -> str | None:
    data = raw(d)
    return factory.evaluate_directives([(seq, data, signed_headers(factory.data_dir, f"agent:{agent}", Kind.DIRECTIVE, data))])[0]


def test_the_verified_agents_mandate_applies_at_intake_and_its_budget_counts(tmp_path):
    factory = make_factory(tmp_path, mandates={"desk": MANDATE})
    assert submit(factory, 1, directive("d1", notional_usd=10_000)) == "staged"  # at the mandate's limit: inclusive
    assert submit(factory, 2, directive("d2", asset="ETH", notional_usd=1_000)) == "rejected"
    assert set(failed(factory, "d2")) == {"mandate_asset"}
    check = failed(factory, "d2")["mandate_asset"]
    assert check["observed"] == "ETH" and "BTC" in str(check["limit"]) and check["reason"]
    assert submit(factory, 3, directive("d3", notional_usd=12_000)) == "rejected"
    assert set(failed(factory, "d3")) == {"mandate_notional"} and failed(factory, "d3")["mandate_notional"]["limit"] == 10_000
    assert submit(factory, 4, directive("d1", notional_usd=1_000)) == "duplicate"  # a repeated id is not counted
    assert submit(factory, 5, directive("d4", notional_usd=1_000)) == "staged"  # the 4th of 4
    assert submit(factory, 6, directive("d5", notional_usd=1_000)) == "rejected"
    assert set(failed(factory, "d5")) == {"mandate_budget"} and failed(factory, "d5")["mandate_budget"]["limit"] == 4

    # Another agent has no mandate: only the desk's guardrails apply to it.
    assert submit_as(factory, 7, "free", directive("f1", asset="ETH", notional_usd=12_000)) == "staged"

    # The budget is kept across a restart (counted from the stored evaluations), and a new UTC day resets it.
    again = Factory(factory.mission, factory.data_dir, clock=FixedClock(T0 + timedelta(hours=1)))
    again.load_state()
    again.book.apply_bar(Bar(asset="BTC", ts=T0, open=65_000.0, high=65_000.0, low=65_000.0, close=65_000.0, volume=1.0,
                             interval_seconds=60.0, source="test").to_bytes())
    assert submit(again, 8, directive("d6", notional_usd=1_000)) == "rejected" and set(failed(again, "d6")) == {"mandate_budget"}
    again.clock.t = T0 + timedelta(days=1)
    assert submit(again, 9, directive("d7", notional_usd=1_000)) == "staged"


def test_a_directive_naming_another_agent_gets_the_signers_mandate_not_the_named_one(tmp_path):
    factory = make_factory(tmp_path, mandates={"desk": MANDATE})
    # Signed by `free` (no mandate) but claiming to be `desk`: refused for the claim; and `desk`'s budget is untouched.
    assert submit_as(factory, 1, "free", directive("x1", agent="desk", notional_usd=1_000)) == "rejected"
    assert "agent" in failed(factory, "x1")
    # Signed by `desk` claiming nothing: desk's mandate, whatever another agent may do.
    assert submit(factory, 2, directive("x2", asset="ETH", notional_usd=1_000)) == "rejected"
    assert set(failed(factory, "x2")) == {"mandate_asset"}


def test_a_mandate_that_expired_before_the_approval_invalidates_it(tmp_path):
    factory = make_factory(tmp_path, mandates={"desk": {**MANDATE, "expires": (T0 + timedelta(hours=1)).isoformat()}},
                           approvals={"expiry_seconds": 86_400.0})
    assert submit(factory, 1, directive("d1", notional_usd=5_000)) == "staged"
    factory.clock.t = T0 + timedelta(hours=2)
    outcome = approve(factory, 1, "d1", "alice")
    assert outcome.outcome == "invalidated"
    assert "mandate_expiry" in {c.name for c in outcome.evaluation.checks if not c.passed}
    # And a new directive after the expiry is refused at intake.
    assert submit(factory, 2, directive("d2", notional_usd=1_000)) == "rejected" and "mandate_expiry" in failed(factory, "d2")


async def test_the_mandate_reaches_the_agent_and_its_dry_run_and_the_running_factory_enforces_it(bus):
    from test_client import agent_client, draft
    from test_factory import make_mission, running

    mission = make_mission(mandates={"desk": {"assets": ["BTC"], "max_notional_usd": 10_000, "daily_directives": 50}})
    async with running(bus, mission, executor=False), agent_client(bus) as desk:
        facts = await desk.desk()
        assert facts.mandate["assets"] == ["BTC"] and facts.mandate["max_notional_usd"] == 10_000
        dry = await desk.check(draft(asset="ETH", notional_usd=1_000))
        assert dry.decision == "rejected" and [c.name for c in dry.failed] == ["mandate_asset"]
        assert any("daily budget" in n for n in dry.notes)
        real = await desk.submit(draft(asset="ETH", notional_usd=1_000))
        assert real.decision == "rejected" and [c.name for c in real.failed] == ["mandate_asset"] and real.agent == "desk"
        assert (await desk.submit(draft(notional_usd=10_000))).decision == "staged"
