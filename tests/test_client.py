"""deskgate.client against a real desk: a real nats-server, the factory and the paper executor,
and a principal deciding with their own key."""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import pytest
from conftest import MEMO, P, wait_for
from test_agents import drifting
from test_factory import make_mission, running

from deskgate.audit.signing import Kind, Signer
from deskgate.bus.connect import connect_with
from deskgate.bus.reader import read_stream
from deskgate.bus import subjects as S
from deskgate.client import (
    BusRefused,
    CredentialsError,
    DeskClient,
    DeskMismatch,
    DeskUnreachable,
    InvalidDirective,
    Outcome,
    VerdictTimeout,
)
from deskgate.client.dryrun import beliefs_from_book
from deskgate.client.models import revised_id
from deskgate.domain.approval import ApprovalOutcome
from deskgate.domain.evaluation import CheckResult, PolicyEvaluation, PolicyVerdict
from deskgate.domain.portfolio import PolicyView, PortfolioSnapshot, PositionLine, ReservedLine
from deskgate.identity.credentials import read_credentials, write_credentials
from deskgate.identity.names import BUILT_IN_AGENT
from deskgate.identity.registry import AgentRegistry, default_credentials_path
from deskgate.paths import DataDir


@asynccontextmanager
async def agent_client(bus, *, desk_id: str | None = None):
    """The desk's own agent (`desk`) as an outside agent connects: from its credentials file,
    with the bus's address. `desk_id` pretends the file was made for another desk."""
    creds = read_credentials(default_credentials_path(bus.data_dir, BUILT_IN_AGENT))
    if desk_id is None:
        client = await DeskClient.connect(creds, servers=[bus.url], reconnect=False)
    else:  # connect() would refuse it at once (tested below): build it over the same connection
        nc, events = await connect_with(creds.connect_kwargs([bus.url]), reconnect=False)
        client = DeskClient(nc, Signer.of(creds.signer, creds.signing_key()), agent=creds.agent, desk_id=desk_id, events=events)
    try:
        yield client
    finally:
        await client.close()


def draft(**over) -> dict:
    """A directive as an outside agent drafts it: no id, no agent name; the client fills them in."""
    d = {"asset": "BTC", "venue": "binance", "side": "buy", "notional_usd": 10_000, "confidence": 0.8, "memo": dict(MEMO)}
    d.update(over)
    return d


def desk_id_of(data_dir: DataDir) -> str:
    registry = AgentRegistry.open(data_dir)
    try:
        return registry.desk_id()
    finally:
        registry.engine.dispose()


# -- the way in, end to end ------------------------------------------------------------------


async def test_a_submitted_directive_is_staged_approved_filled_and_booked(bus):
    async with running(bus, make_mission()) as (factory, _, cc, _md), agent_client(bus) as desk:
        verdict = await desk.submit(draft(notional_usd=20_000))
        assert verdict.staged and not verdict.dry_run and verdict.seq is not None
        assert verdict.directive_id.startswith("desk-") and verdict.directive.agent == "desk"
        position = next(c for c in verdict.checks if c.name == "position")
        assert position.passed and position.observed == pytest.approx(20.0) and position.limit == 25.0
        assert (await desk.outcome(verdict.directive_id)).state == "staged"

        waiting = asyncio.create_task(desk.outcome(verdict.directive_id, wait=30))
        decided = await cc.decide(verdict.directive_id, "approve", P["alice"])
        assert [o.outcome for o in decided] == ["ordered", "executed"]
        outcome = await waiting
        assert outcome.state == "executed" and outcome.final and outcome.principals == ["alice"]
        assert outcome.fill is not None and outcome.fill.price == 65_000.0 and outcome.fill.notional_usd == pytest.approx(20_000)
        # Asked afterwards, the history says the same.
        again = await desk.outcome(verdict.directive_id)
        assert (again.state, again.fill) == ("executed", outcome.fill)

        book = await wait_for(lambda: _book_with_positions(desk))
        assert book.positions[0].asset == "BTC" and book.cash_usd == pytest.approx(80_000.0)
        assert (await desk.verdict(verdict.directive_id)).seq == verdict.seq


async def _book_with_positions(desk):
    book = await desk.book()
    return book if book.positions else None


async def test_a_forbidden_asset_comes_back_with_its_reason_observed_and_limit(bus):
    async with running(bus, make_mission(), executor=False) as (factory, *_), agent_client(bus) as desk:
        verdict = await desk.submit(draft(asset="luna/usdt"))
        assert verdict.decision == "rejected" and verdict.primary_reason == "asset"
        (asset,) = [c for c in verdict.failed if c.name == "asset"]
        assert asset.observed == "LUNA/USDT" and asset.limit == "not LUNA, UST"
        assert "forbidden asset LUNA" in asset.reason and verdict.reasons()[0].startswith("asset: ")
        outcome = await desk.outcome(verdict.directive_id)
        assert outcome.state == "not_staged" and outcome.final and "forbidden asset LUNA" in outcome.reason


async def test_a_rejected_directive_is_revised_under_a_new_id(bus):
    async with running(bus, make_mission(), executor=False) as (factory, *_), agent_client(bus) as desk:
        first = await desk.submit(draft(directive_id="big", notional_usd=30_000))
        assert first.primary_reason == "position" and first.failed[0].observed == pytest.approx(30.0)
        second = await desk.revise(first, notional_usd=20_000, memo={"proposed_action": "buy 20k, inside the limit"})
        assert second.directive_id == "big-r1" and second.staged
        assert second.directive.memo.proposed_action == "buy 20k, inside the limit"
        assert second.directive.memo.signal_evidence == MEMO["signal_evidence"]
        third = await desk.revise("big-r1", asset="ETH")  # by id: this client sent it
        assert third.directive_id == "big-r2" and third.directive.asset == "ETH"
        with pytest.raises(InvalidDirective, match="notional_usd: Input should be greater than 0"):
            await desk.revise(first, notional_usd=-1)
        with pytest.raises(InvalidDirective, match="position_pct: unknown field"):
            await desk.revise(first, position_pct=10)
        with pytest.raises(InvalidDirective, match="sent no directive 'nope'"):
            await desk.revise("nope", notional_usd=1)


async def test_the_dry_run_stages_nothing_and_agrees_with_the_factory(bus):
    async with running(bus, make_mission(), executor=False) as (factory, _, cc, _md), agent_client(bus) as desk:
        checked = await desk.check(draft(directive_id="dry", notional_usd=20_000))
        assert checked.staged and checked.dry_run and checked.seq is None and checked.directive_id == "dry"
        assert [c.name for c in checked.checks][-2:] == ["market_price", "explicit_approval"]
        assert factory.beliefs.pending == {} and factory.funnel().received == 0
        assert [m async for m in read_stream(desk.nc, "DIRECTIVES", "consciousness.directives.>")] == []

        staged = await desk.submit(draft(directive_id="real", notional_usd=20_000))
        assert staged.staged
        # The published book now carries the reservation; the dry run sees it as the factory does.
        await wait_for(lambda: _reserving(desk, "BTC"))
        dry = await desk.check(draft(directive_id="more", notional_usd=10_000))
        real = await desk.submit(draft(directive_id="more", notional_usd=10_000))
        assert (dry.decision, dry.primary_reason) == (real.decision, real.primary_reason) == ("rejected", "position")
        assert dry.failed[0].observed == pytest.approx(real.failed[0].observed) == pytest.approx(30.0)
        # An id the factory has evaluated is a duplicate, in the dry run too.
        assert (await desk.check(draft(directive_id="real", notional_usd=1_000))).decision == "duplicate"
        assert factory.funnel().received == 2
        # The Governor's damping changes no book, yet the factory says it again: the dry run damps as the factory does.
        state = drifting(0.5).to_bytes()  # as the desk's agents publish it, signed with their key
        await desk.js.publish(S.GOVERNOR_STATE_SUBJECT, state, headers=desk.signer.headers(Kind.INSIGHT, state))
        await wait_for(lambda: _damped(desk, 0.5), timeout=30)
        damped = await desk.check(draft(asset="ETH", notional_usd=1_000, confidence=0.8))
        confidence = next(c for c in damped.checks if c.name == "confidence")
        assert damped.primary_reason == "confidence" and confidence.observed == pytest.approx(0.4) and "damped x0.5" in confidence.reason


async def _damped(desk, damping):
    return (await desk.book()).policy.confidence_damping == damping


async def _reserving(desk, asset):
    view = (await desk.book()).policy
    return view is not None and any(r.asset == asset for r in view.reservations)


async def test_desk_facts_and_market_as_the_factory_published_them(bus):
    mission = make_mission(guardrails={"forbidden_assets": ["LUNA", "UST", "FTT"]})
    async with running(bus, mission, executor=False) as (factory, *_), agent_client(bus) as desk:
        facts = await desk.desk()
        assert facts.desk_id == desk_id_of(bus.data_dir) and facts.agent == "desk" and facts.mandate is None
        assert facts.guardrails == mission.guardrails and facts.approvals == mission.approvals
        assert facts.assets == ("BTC", "ETH", "SOL") and facts.max_directive_bytes == mission.max_directive_bytes
        btc = await desk.market("btc/usdt")
        assert (btc.asset, btc.price) == ("BTC", 65_000.0)
        assert [m.asset for m in await desk.markets()] == ["BTC", "ETH", "SOL"]
        with pytest.raises(InvalidDirective, match="asset 'BTC!' contains '!'"):
            await desk.market("BTC!")


# -- bad input -----------------------------------------------------------------------------------


async def test_an_invalid_directive_names_its_fields_and_nothing_is_sent(bus):
    async with agent_client(bus) as desk:
        with pytest.raises(InvalidDirective) as err:
            await desk.submit({"asset": "BTC", "venue": "binance", "side": "buy", "notional_usd": "10000", "confidence": 0.8, "position": 3})
        text = str(err.value)
        assert "notional_usd: Input should be a valid number (got '10000')" in text
        assert "memo: Field required" in text and "position: unknown field" in text
        with pytest.raises(InvalidDirective, match="not a directive id"):
            await desk.outcome("a.>")
        assert [m async for m in read_stream(desk.nc, "DIRECTIVES", "consciousness.directives.>")] == []


async def test_no_verdict_in_time_names_the_directive_and_its_sequence(bus):
    async with agent_client(bus) as desk:  # no factory running
        with pytest.raises(VerdictTimeout) as err:
            await desk.submit(draft(directive_id="late"), wait=0.5)
        assert err.value.directive_id == "late" and err.value.seq == 1
        assert "directive late (DIRECTIVES seq 1)" in str(err.value)
        assert (await desk.outcome("late")).state == "unknown"


def _credentials_file(tmp_path, data_dir: DataDir, **changes):
    creds = AgentRegistry.open(data_dir).add("outsider", []).model_copy(update=changes)
    return write_credentials(tmp_path / "outsider.json", creds)


async def test_credentials_files_that_cannot_be_used_are_named(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(CredentialsError, match=f"no agent credentials file at {missing}"):
        await DeskClient.connect(missing)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(CredentialsError, match="cannot read the agent credentials file .*dir.json"):
        await DeskClient.connect(tmp_path / "dir.json")
    other = DataDir.at(tmp_path / "other").ensure()
    path = _credentials_file(tmp_path, other)
    os.chmod(path, 0o644)
    with pytest.raises(CredentialsError, match="readable by others"):
        await DeskClient.connect(path)
    os.chmod(path, 0o600)
    with pytest.raises(CredentialsError, match="name no bus server"):
        await DeskClient.connect(path)  # servers=[] and none given
    path.write_text(json.dumps({"format": "deskgate-agent-credentials/1", "agent": "x"}))
    with pytest.raises(CredentialsError, match="is not a valid agent credentials file"):
        await DeskClient.connect(path)


async def test_the_bus_refuses_another_desks_agent_and_says_so(bus, tmp_path):
    other = DataDir.at(tmp_path / "other").ensure()
    path = _credentials_file(tmp_path, other, servers=(bus.url,))
    with pytest.raises(BusRefused, match="the bus refused agent outsider's credentials: the agent was revoked or rotated, or the file is for another desk"):
        await DeskClient.connect(path)


async def test_a_bus_that_serves_another_desk_is_named(bus):
    async with running(bus, make_mission(), executor=False), agent_client(bus, desk_id="0123456789abcdef") as desk:
        with pytest.raises(DeskMismatch, match=f"credentials for desk 0123456789abcdef, this bus serves desk {desk_id_of(bus.data_dir)}"):
            await desk.verify_desk()


async def test_no_bus_at_the_address_is_named(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    path = _credentials_file(tmp_path, DataDir.at(tmp_path / "other").ensure())
    with pytest.raises(DeskUnreachable, match=f"cannot reach the desk's bus at nats://127.0.0.1:{port}"):
        await DeskClient.connect(path, servers=[f"nats://127.0.0.1:{port}"], connect_timeout=1.0)


def test_the_desk_credentials_file_is_where_the_desk_keeps_it(bus):
    """What `agent_client` connects with: made by the bus's own set-up."""
    path = default_credentials_path(bus.data_dir, BUILT_IN_AGENT)
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"


# -- pure parts ----------------------------------------------------------------------------------


def test_revised_ids_count_up_and_stay_within_64_characters():
    assert revised_id("d1") == "d1-r1" and revised_id("d1-r1") == "d1-r2" and revised_id("d1-r9") == "d1-r10"
    long = "x" * 64
    assert revised_id(long) == "x" * 61 + "-r1" and len(revised_id(revised_id(long))) == 64


NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)


def _verdict(decision: str, checks=()) -> PolicyVerdict:
    ev = PolicyEvaluation(directive_id="d", decision="staged" if decision == "staged" else "rejected", explicit_approval=False, checks=list(checks))
    return PolicyVerdict(directive_id="d", seq=1, decision=decision, primary_reason=None, evaluation=ev, at=NOW)


def _outcome(outcome: str, **kw) -> ApprovalOutcome:
    return ApprovalOutcome(directive_id="d", outcome=outcome, at=NOW, **kw)


def test_an_outcome_folds_what_the_factory_published_in_order():
    assert Outcome.fold("d", None, []).state == "unknown"
    failed = CheckResult(name="asset", passed=False, observed="LUNA", limit="not LUNA", reason="forbidden")
    rejected = Outcome.fold("d", _verdict("rejected", [failed]), [])
    assert (rejected.state, rejected.final, rejected.reason) == ("not_staged", True, "asset: forbidden")
    staged = _verdict("staged")
    assert Outcome.fold("d", staged, []).state == "staged"
    refused = [_outcome("refused", reason="batch"), _outcome("awaiting_second_approval", principals=["alice"])]
    assert Outcome.fold("d", staged, refused).state == "awaiting_second_approval"
    done = Outcome.fold("d", staged, [_outcome("ordered", principals=["alice", "bob"], order_id="o1"), _outcome("executed", order_id="o1")])
    assert (done.state, done.principals, done.order_id, done.final) == ("executed", ["alice", "bob"], "o1", True)
    approved = Outcome.fold("d", staged, [_outcome("ordered", order_id="o1"), _outcome("expired")])
    assert approved.state == "approved" and not approved.final  # nothing moves an approved directive back


def test_the_policy_view_sums_reservations_per_asset_and_side():
    from deskgate.factory.status import policy_view
    from deskgate.policy.beliefs import Beliefs, Reservation

    b = Beliefs(100_000, prices={"BTC": 65_000.0}, breaker_tripped=True, confidence_damping=0.7, pending=[
        Reservation("a", "BTC", "buy", 5_000), Reservation("b", "BTC", "buy", 3_000), Reservation("c", "ETH", "sell", 1_000)])
    view = policy_view(b)
    assert [(r.asset, r.side, r.notional_usd, r.intentions) for r in view.reservations] == [("BTC", "buy", 8_000, 2), ("ETH", "sell", 1_000, 1)]
    assert (view.prices, view.breaker_tripped, view.confidence_damping) == ({"BTC": 65_000.0}, True, 0.7)


def test_beliefs_from_the_book_are_the_factorys():
    book = PortfolioSnapshot(
        at=NOW, cash_usd=60_000, equity_usd=101_000, peak_equity_usd=110_000, drawdown_pct=8.18, breaker_peak_equity_usd=105_000,
        breaker_drawdown_pct=3.8, gross_exposure_usd=41_000, leverage=0.41, fees_paid_usd=0,
        positions=[PositionLine(asset="BTC", venue="binance", quantity=0.5, price=66_000, notional_usd=33_000),
                   PositionLine(asset="BTC", venue="okx", quantity=0.1, price=66_000, notional_usd=6_600),
                   PositionLine(asset="ETH", venue="okx", quantity=-0.4, price=3_500, notional_usd=-1_400)],
        pending_intentions=3, reserved_usd=12_000,
        policy=PolicyView(prices={"BTC": 66_000, "ETH": 3_500},
                          reservations=[ReservedLine(asset="BTC", side="buy", notional_usd=10_000, intentions=2),
                                        ReservedLine(asset="ETH", side="sell", notional_usd=2_000, intentions=1)],
                          breaker_tripped=False, confidence_damping=0.5),
    )
    b = beliefs_from_book(book)
    assert b.equity_usd == 101_000 and b.peak_equity_usd == 105_000
    assert b.position("BTC") == pytest.approx(39_600) and b.position("ETH") == -1_400
    assert b.pending_buy("BTC") == 10_000 and b.pending_sell("ETH") == 2_000 and b.confidence_damping == 0.5
    with pytest.raises(ValueError, match="no policy view"):
        beliefs_from_book(book.model_copy(update={"policy": None}))


async def test_a_revoked_agent_is_told_so_by_its_client(bus, tmp_path):
    from test_agent_identities import add_agent, apply

    creds = add_agent(bus, "leaving", tmp_path)
    async with running(bus, make_mission(), executor=False):
        desk = await DeskClient.connect(creds, reconnect=False)
        assert (await desk.submit(draft(notional_usd=1_000))).agent == "leaving"
        AgentRegistry.open(bus.data_dir).revoke("leaving", by="test")
        assert apply(bus.data_dir).how == "reloaded"
        await wait_for(lambda: desk.nc.is_closed, timeout=10)
        with pytest.raises(DeskUnreachable, match="connection is closed"):
            await desk.submit(draft(notional_usd=1_000))
        await desk.close()
    with pytest.raises(BusRefused, match="the bus refused agent leaving's credentials: the agent was revoked"):
        await DeskClient.connect(creds)
