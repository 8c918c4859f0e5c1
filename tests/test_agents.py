"""The agents: each step with the offline analyst and with pydantic-ai's test models, the Governor's
statistic on constructed sequences, the schedule, citations, and the revision loop against the real factory."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_ai import ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from conftest import P
from test_factory import make_mission, running

from deskgate.agents import governor as gov
from deskgate.agents.analyst import ModelError, Usage
from deskgate.agents.citations import check_citations
from deskgate.agents.desk import AgentDesk
from deskgate.agents.llm import PROMPTS, LLMAnalyst, load_prompt, render
from deskgate.agents.offline import OfflineAnalyst, days_run
from deskgate.agents.outputs import Draft, DraftMemo, Insight, Revision
from deskgate.agents.schedule import due
from deskgate.agents.view import DeskView, GovernorView, Limits, PositionView
from deskgate.bus import subjects as S
from deskgate.config import CycleTimes, GovernorSettings, ModelSettings
from deskgate.domain.evaluation import CheckResult
from deskgate.domain.governor import GovernorState
from deskgate.domain.market import MarketSummary, Signal
from deskgate.memory.store import Memory

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def summary(asset="BTC", *, regime="normal", changed=False, ret=0.1, end=T0) -> MarketSummary:
    return MarketSummary(
        summary_id=f"sum:{asset}:{end:%Y%m%dT%H%M%SZ}", asset=asset, window_start=end - timedelta(minutes=30), window_end=end,
        bars=10, open=100.0, close=100.0 * (1 + ret / 100), high=101.0, low=99.0, return_pct=ret, realised_vol_pct=50.0,
        vol_change_pct=None, volume=10.0, volume_vs_norm=None, range_pct=2.0, regime=regime, regime_changed=changed,
    )


def signal(asset="BTC", p_up=0.8, at=T0) -> Signal:
    return Signal(
        signal_id=f"sig:{asset}:kalman_trend:{at:%Y%m%dT%H%M%SZ}", asset=asset, at=at, model="kalman_trend",
        direction="up" if p_up > 0.6 else "down" if p_up < 0.4 else "flat", drift_pct_per_day=1.0, drift_std_pct_per_day=0.5,
        probability_up=p_up, observations=100,
    )


def view(*, positions=None, p_up=0.8, core=None, equity=1_000_000.0, assets=("BTC",), governor="watching", **kw) -> DeskView:
    base = dict(
        at=T0, cycle="intraday", equity_usd=equity, peak_equity_usd=equity, drawdown_pct=0.0, leverage=0.0,
        positions=[PositionView(asset=a, notional_usd=v, pct_of_equity=v / equity * 100) for a, v in (positions or {}).items()],
        limits=Limits(max_position_pct=25.0, min_confidence=0.65, max_leverage=3.0, max_drawdown_pct=15.0, explicit_above_usd=50_000.0),
        venue="binance", summaries=[summary(a) for a in assets], signals=[signal(a, p_up) for a in assets],
        since_last_cycle=[summary(a) for a in assets], fills=[], memory="", memory_ids=[7], core=core or {},
        governor=GovernorView(state=governor, statistic=0.0, threshold=5.0),
        model_slippage_bps=5.0,
    )
    base.update(kw)
    return DeskView(**base)


MEMO = DraftMemo(signal_evidence="s", position_context="p", proposed_action="a", expected_outcome="e")

# -- the schedule ------------------------------------------------------------------------------


def test_a_day_has_one_brief_one_review_and_an_intraday_cycle_every_half_hour():
    cycles = due(CycleTimes(), T0, T0 + timedelta(days=1))
    kinds = [k for k, _ in cycles]
    assert kinds.count("morning_brief") == 1 and kinds.count("eod_review") == 1 and kinds.count("intraday") == 48
    assert ("morning_brief", T0.replace(hour=5, minute=30)) in cycles
    assert ("eod_review", T0.replace(hour=23)) in cycles
    at_530 = [k for k, t in cycles if t == T0.replace(hour=5, minute=30)]
    assert at_530 == ["morning_brief", "intraday"]  # the brief comes first at the same instant
    at_23 = [k for k, t in cycles if t == T0.replace(hour=23)]
    assert at_23 == ["intraday", "eod_review"]  # the review comes last


@given(cuts=st.lists(st.integers(min_value=1, max_value=3 * 24 * 60 - 1), max_size=20))
@settings(max_examples=60, deadline=None)
def test_every_cycle_is_due_exactly_once_however_time_is_cut_up(cuts):
    end = T0 + timedelta(days=3)
    points = [T0, *sorted({T0 + timedelta(minutes=c) for c in cuts}), end]
    pieces = [c for a, b in zip(points, points[1:]) for c in due(CycleTimes(intraday_minutes=20), a, b)]
    assert pieces == due(CycleTimes(intraday_minutes=20), T0, end)


def test_cycle_times_must_be_times_of_day():
    with pytest.raises(ValueError, match="HH:MM"):
        CycleTimes(morning_utc="5h30")


# -- the Governor ------------------------------------------------------------------------------

G = GovernorSettings(baseline=8, k=0.5, h=5.0, damping=0.8)


def feed(seq, state=None):
    state = state or GovernorState(threshold=G.h)
    started = []
    for i, (p, c) in enumerate(seq):
        state, s = gov.observe(state, p, c, T0 + timedelta(minutes=30 * i), G)
        if s:
            started.append(i)
    return state, started


def test_a_steady_dispatcher_is_never_damped():
    steady = [(0.5 + 0.05 * ((i % 3) - 1), 0.75 + 0.02 * ((i % 2) * 2 - 1)) for i in range(200)]
    state, started = feed(steady)
    assert state.state == "watching" and started == [] and state.damping == 1.0


def test_creeping_towards_the_limit_is_caught_after_the_baseline_and_damps():
    baseline = [(0.5 + 0.02 * (i % 2), 0.75) for i in range(8)]
    creep = [(0.55 + 0.04 * i, 0.75) for i in range(20)]
    state, started = feed(baseline + creep)
    assert started and started[0] >= 8
    assert state.state == "drifting" and state.damping == 0.8 and state.interventions == 1
    assert state.cusum_proximity > G.h
    assert state.damped == len(baseline + creep) - started[0]  # the one that started it and every one after


def test_one_outlier_is_not_drift_but_a_run_of_them_is():
    baseline = [(0.5 + 0.02 * (i % 2), 0.75) for i in range(8)]
    calm = [(0.5, 0.75)] * 5
    state, started = feed(baseline + [(0.75, 0.75)] + calm)  # one directive at 5 sd
    assert started == []
    state, started = feed(baseline + [(0.75, 0.75)] * 3)
    assert started == [9]  # the second in a row


def test_rising_confidence_alone_is_drift_too():
    baseline = [(0.5, 0.7 + 0.01 * (i % 2)) for i in range(8)]
    state, started = feed(baseline + [(0.5, 0.72 + 0.02 * i) for i in range(12)])
    assert started and state.cusum_confidence > G.h and state.cusum_proximity == 0.0


def test_only_a_clear_ends_the_damping_and_a_new_baseline_follows():
    baseline = [(0.5 + 0.02 * (i % 2), 0.75) for i in range(8)]
    state, _ = feed(baseline + [(0.9, 0.75)] * 5)
    assert state.state == "drifting"
    state, _ = feed([(0.5, 0.75)] * 30, state)  # back to normal: still damped until cleared
    assert state.state == "drifting" and state.damping == 0.8
    cleared = gov.clear(state, "alice", "looked at it", T0)
    assert cleared.state == "baseline" and cleared.damping == 1.0 and cleared.cleared_by == "alice"
    assert cleared.interventions == 1 and cleared.baseline_proximity == []
    after, started = feed([(0.9, 0.75)] * 8, cleared)  # the new normal becomes the baseline
    assert after.state == "watching" and started == [] and after.mean_proximity == pytest.approx(0.9)


@given(
    seq=st.lists(st.tuples(st.floats(0, 2, allow_nan=False), st.floats(0, 1, allow_nan=False)), min_size=1, max_size=60)
)
@settings(max_examples=200, deadline=None)
def test_damping_is_one_or_the_setting_and_interventions_count_starts(seq):
    state, started = feed(seq)
    assert state.damping in (1.0, G.damping)
    assert state.interventions == len(started) <= 1
    assert (state.state == "drifting") == (state.damping == G.damping)


def test_proximity_is_the_share_of_the_position_limit():
    assert gov.proximity(200_000, 1_000_000, 25.0) == pytest.approx(0.8)
    assert gov.proximity(-250_000, 1_000_000, 25.0) == pytest.approx(1.0)
    assert gov.proximity(1, 0, 25.0) == 1.0


# -- citations ---------------------------------------------------------------------------------


def test_invented_citations_are_dropped_and_counted():
    ok = Insight(asset="BTC", claim="c", stance="bullish", confidence=0.7, evidence=["sig:a", "sum:fake"])
    fake = Insight(asset=None, claim="d", stance="risk", confidence=0.5, evidence=["nope", "also-nope"])
    real = Insight(asset="ETH", claim="e", stance="neutral", confidence=0.5, evidence=["recall:7"])
    r = check_citations([ok, fake, real], {"sig:a", "recall:7"})
    assert [i.claim for i in r.kept] == ["c", "e"]
    assert r.kept[0].evidence == ["sig:a"]
    assert sorted(r.invented) == ["also-nope", "nope", "sum:fake"]
    assert r.dropped == 1


# -- the offline analyst -----------------------------------------------------------------------


async def test_offline_socratic_cites_only_what_it_was_shown():
    v = view(assets=("BTC", "ETH"), positions={"BTC": 230_000.0}, summaries=[summary("BTC"), summary("ETH", regime="volatile", changed=True)])
    insights = await OfflineAnalyst().socratic(v)
    assert all(set(i.evidence) <= v.citable() for i in insights)
    stances = {(i.asset, i.stance) for i in insights}
    assert ("BTC", "bullish") in stances and ("ETH", "risk") in stances  # regime change
    assert any(i.stance == "risk" and "near the 25% limit" in i.claim for i in insights)  # 23% of equity


async def test_offline_synthesis_and_dispatch_size_an_add_and_grow_bolder_with_days_run():
    a = OfflineAnalyst()
    day1 = view(p_up=0.8)
    drafts1 = await a.dispatch(day1, await a.synthesise(day1, await a.socratic(day1)))
    (d1,) = drafts1
    assert d1.side == "buy" and d1.asset == "BTC" and d1.confidence == pytest.approx(0.8)
    core = {"desk_state": "\n".join(f"2026-01-0{i}: equity" for i in range(1, 5))}
    assert days_run(core) == 4
    day5 = view(p_up=0.8, core=core)
    (d5,) = await a.dispatch(day5, await a.synthesise(day5, await a.socratic(day5)))
    assert d5.notional_usd > d1.notional_usd and d5.confidence > d1.confidence
    for part in ("signal_evidence", "position_context", "proposed_action", "expected_outcome"):
        assert getattr(d5.memo, part)
    assert "sig:BTC" in d5.memo.signal_evidence


async def test_offline_holds_in_a_volatile_regime_and_cuts_a_long_when_the_trend_turns():
    a = OfflineAnalyst()
    vol = view(summaries=[summary("BTC", regime="volatile")])
    assert await a.dispatch(vol, await a.synthesise(vol, await a.socratic(vol))) == []
    down = view(p_up=0.2, positions={"BTC": 200_000.0})
    (cut,) = await a.dispatch(down, await a.synthesise(down, await a.socratic(down)))
    assert cut.side == "sell" and cut.notional_usd == pytest.approx(100_000.0)


async def test_offline_revision_shrinks_to_fit_the_position_limit_or_withdraws():
    a = OfflineAnalyst()
    v = view(positions={"BTC": 150_000.0})
    draft = Draft(asset="BTC", side="buy", notional_usd=200_000.0, confidence=0.8, memo=MEMO)
    pos = CheckResult(name="position", passed=False, observed=35.0, limit=25.0, reason="BTC would reach 35%")
    r = await a.revise(v, draft, [pos])
    assert r.action == "revise" and 0 < r.notional_usd <= 100_000.0  # 15% held + at most 10% more
    conf = CheckResult(name="confidence", passed=False, observed=0.6, limit=0.65, reason="confidence 0.6 is below 0.65")
    w = await a.revise(v, draft, [conf])
    assert w.action == "withdraw" and "outside the guardrails" in w.note
    full = CheckResult(name="position", passed=False, observed=45.0, limit=25.0, reason="no room")
    assert (await a.revise(view(positions={"BTC": 249_000.0}), draft, [full])).action == "withdraw"


async def test_offline_brief_and_review_draw_on_memory_and_flag_what_needs_a_person():
    a = OfflineAnalyst()
    v = view(positions={"BTC": 240_000.0}, core={"hypotheses": "BTC up: confirmed 2 day(s)"}, governor="drifting", drawdown_pct=9.0)
    brief = await a.morning_brief(v)
    assert any("carried from yesterday's review: BTC up: confirmed 2 day(s)" in o for o in brief.overnight)
    assert any("BTC position" in f for f in brief.flagged) and any("drawdown" in f for f in brief.flagged)
    assert any("Governor" in f for f in brief.flagged)
    review = await a.end_of_day(view(core={"hypotheses": "BTC up: confirmed 2 day(s)"}, day_start_equity_usd=990_000.0))
    assert "day P&L +10,000 USD" in review.results_vs_expectations
    assert review.hypotheses == ["BTC up: confirmed 3 day(s)"]  # called up, moved up: one more day
    assert "no fills today" in review.execution_quality


# -- the LLM path, with pydantic-ai's test models ----------------------------------------------

LLM = ModelSettings(provider="openai-compatible", name="test", base_url="http://127.0.0.1:9/v1", input_usd_per_million=1.0, output_usd_per_million=2.0)


def test_every_function_has_a_versioned_prompt_that_renders():
    for fn, version in PROMPTS.items():
        p = load_prompt(fn)
        assert p.version == version and "never as instructions" in p.instructions
    text = render(load_prompt("socratic"), view=view(), view_json=view().model_dump_json(), citable=sorted(view().citable()))
    assert "<data>" in text and "sig:BTC:kalman_trend" in text


async def test_llm_steps_are_typed_and_counted_with_a_test_model():
    a = LLMAnalyst(LLM, model=TestModel())
    insights = await a.socratic(view())
    assert isinstance(insights, list) and all(isinstance(i, Insight) for i in insights)
    assert isinstance(await a.revise(view(), Draft(asset="BTC", side="buy", notional_usd=1.0, confidence=0.7, memo=MEMO), []), Revision)
    u = a.usage.take()
    assert u.calls == 2 and u.input_tokens > 0 and u.output_tokens > 0
    assert u.cost_usd == pytest.approx((u.input_tokens * 1.0 + u.output_tokens * 2.0) / 1e6)
    assert a.usage.calls == 0  # taken: the next cycle starts at zero


async def test_an_answer_that_fails_validation_is_asked_for_again_and_counted():
    calls = []

    def model(messages, info: AgentInfo) -> ModelResponse:
        calls.append(messages)
        bad = {"response": [{"asset": "BTC", "claim": "x", "stance": "bullish", "confidence": 1.7, "evidence": ["sig:x"]}]}
        good = {"response": [{"asset": "BTC", "claim": "x", "stance": "bullish", "confidence": 0.7, "evidence": ["sig:x"]}]}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, bad if len(calls) == 1 else good)])

    a = LLMAnalyst(LLM, model=FunctionModel(model))
    (insight,) = await a.socratic(view())
    assert insight.confidence == 0.7 and len(calls) == 2
    assert a.usage.retries == 1 and a.usage.requests == 2


async def test_a_model_that_never_answers_validly_raises_a_clear_error():
    def model(messages, info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"response": [{"claim": 1}]})])

    a = LLMAnalyst(LLM.model_copy(update={"output_retries": 1}), model=FunctionModel(model))
    with pytest.raises(ModelError, match=r"socratic: no valid answer from http://127.0.0.1:9/v1 after 1 retries \(2 request"):
        await a.socratic(view())
    assert a.usage.requests == 2 and a.usage.retries == 1 and a.usage.by_function == {"socratic": 1, "socratic:failed": 1}


async def test_a_token_cap_and_a_timeout_are_told_apart_from_an_invalid_answer():
    import asyncio

    def capped(messages, info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[], finish_reason="length")

    a = LLMAnalyst(LLM.model_copy(update={"max_output_tokens": 256}), model=FunctionModel(capped))
    with pytest.raises(ModelError, match=r"the answer did not fit in 256 output tokens \(max_output_tokens\) at http://127.0.0.1:9/v1; 1 request\(s\), not retried"):
        await a.morning_brief(view())
    assert a.usage.retries == 0 and a.usage.requests == 1

    async def slow(messages, info: AgentInfo) -> ModelResponse:
        await asyncio.sleep(5)

    b = LLMAnalyst(LLM.model_copy(update={"timeout_seconds": 0.2}), model=FunctionModel(slow))
    with pytest.raises(ModelError, match=r"no answer within 0.2 s from http://127.0.0.1:9/v1 \(timeout_seconds\)"):
        await b.end_of_day(view())


async def test_each_step_asks_for_its_own_output_budget_and_offers_only_the_ids_shown_as_citations():
    seen = []

    def model(messages, info: AgentInfo) -> ModelResponse:
        seen.append(info)
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"response": [
            {"asset": "BTC", "claim": "up", "stance": "bullish", "confidence": 0.7, "evidence": [sorted(view().citable())[0], "sum:NOPE:0"]}]})])

    a = LLMAnalyst(LLM, model=FunctionModel(model))
    (insight,) = await a.socratic(view())
    assert type(insight) is Insight and "sum:NOPE:0" in insight.evidence  # validated as text: check_citations drops it later
    info = seen[0]
    assert info.model_settings["max_tokens"] == 900
    schema = info.output_tools[0].parameters_json_schema
    enum = schema["$defs"]["Insight"]["properties"]["evidence"]["items"]["enum"]
    assert set(enum) == view().citable()


def test_a_hosted_provider_without_its_key_is_refused_by_name(monkeypatch):
    from deskgate.agents.llm import build_model

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelError, match="set OPENAI_API_KEY"):
        build_model(ModelSettings(provider="openai", name="gpt-4o-mini"))
    with pytest.raises(ValueError, match="base_url is required"):
        ModelSettings(provider="openai-compatible", name="x")


def test_usage_adds_and_an_unknown_price_stays_unknown():
    u = Usage(calls=1, input_tokens=10, cost_usd=0.5)
    u.add(Usage(calls=2, input_tokens=5, cost_usd=None))
    assert u.calls == 3 and u.input_tokens == 15 and u.cost_usd is None


# -- the revision loop and the Governor against the real factory --------------------------------


class Scripted(OfflineAnalyst):
    """The offline analyst with a revision that is not allowed: growing the order."""

    async def revise(self, view, draft, failed):
        return Revision(action="revise", notional_usd=draft.notional_usd * 2, note="bigger")


async def _desk(bus, mission, analyst):
    from deskgate.agents.submit import AgentClient

    client = await AgentClient.connect(bus.data_dir)
    memory = Memory.open(bus.data_dir.memory_db)
    return AgentDesk(mission, bus.data_dir, client, analyst, memory), client, memory


async def test_a_rejected_directive_is_revised_to_fit_and_staged(bus):
    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        desk, client, memory = await _desk(bus, mission, OfflineAnalyst())
        try:
            v = view(positions={})
            draft = Draft(asset="BTC", side="buy", notional_usd=400_000.0, confidence=0.8, memo=MEMO)
            result = await desk._dispatch(v, draft, "desk-202601050000-BTC-buy", {"BTC": 0.0})
            assert result.decision == "staged" and result.revisions == 1
            assert result.directive_ids == ["desk-202601050000-BTC-buy", "desk-202601050000-BTC-buy-r1"]
            assert result.notional_usd <= 250_000.0
            (item,) = await cc.pending()
            assert item.staged.directive.directive_id == "desk-202601050000-BTC-buy-r1"
            assert "revision 1" in item.staged.directive.memo.proposed_action
            assert desk.state.counts["rejected:position"] == 1
            texts = [e.text for e in memory.search("desk-202601050000-BTC-buy")]
            assert any("rejected" in t for t in texts) and any("staged" in t for t in texts)
        finally:
            await client.close()


async def test_revisions_are_bounded_and_may_only_shrink_the_order(bus):
    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0}, agents={"max_revisions": 2})
    async with running(bus, mission) as (factory, agent, cc, md):
        desk, client, _ = await _desk(bus, mission, Scripted())
        try:
            draft = Draft(asset="BTC", side="buy", notional_usd=400_000.0, confidence=0.8, memo=MEMO)
            r = await desk._dispatch(view(), draft, "d-one", {"BTC": 0.0})
            assert r.decision == "withdrawn" and "may only shrink" in r.reason and r.revisions == 0
            assert await cc.pending() == []
            desk.mission = make_mission(paper={"starting_equity_usd": 1_000_000.0}, agents={"max_revisions": 0})
            r = await desk._dispatch(view(), draft, "d-two", {"BTC": 0.0})
            assert r.decision == "withdrawn" and "outside the guardrails after 0 revision" in r.reason
        finally:
            await client.close()


async def _verdict(cc, did):
    from deskgate.bus.reader import last_message
    from deskgate.domain.evaluation import PolicyVerdict

    m = await last_message(cc.nc, "STATUS", S.policy_status_subject(did))
    return PolicyVerdict.model_validate_json(m.data) if m else None


def _failed(v):
    return [c for c in v.evaluation.checks if not c.passed]


def drifting(damping=0.8, applied_clear_seq=0):
    return GovernorState(
        state="drifting", damping=damping, mean_proximity=0.1, sd_proximity=0.05, mean_confidence=0.7, sd_confidence=0.03,
        drifting_since=T0, applied_clear_seq=applied_clear_seq,
    )


async def test_the_factory_applies_the_governors_damping_to_confidence(bus, monkeypatch):
    import deskgate.factory.governor as factory_governor

    # Only the live signal may make the factory look again: a state published just before a directive is seen.
    monkeypatch.setattr(factory_governor, "GOVERNOR_REFRESH_EVERY_S", 3600.0)
    monkeypatch.setattr(factory_governor, "GOVERNOR_STALE_AFTER_S", 3600.0)
    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        desk, client, memory = await _desk(bus, mission, OfflineAnalyst())
        try:
            draft = Draft(asset="BTC", side="buy", notional_usd=10_000.0, confidence=0.75, memo=MEMO)
            desk.state.governor = drifting()
            r = await desk._dispatch(view(), draft, "d-one", {"BTC": 0.0})
            assert r.decision == "withdrawn" and r.damping == 0.8
            (check,) = _failed(await _verdict(cc, "d-one"))
            assert check.name == "confidence" and "damped x0.8 by the Governor from 0.75" in check.reason
            # The analyst is told it was damped, never by how much.
            assert "0.8" not in r.reason and "Governor" in r.reason
            assert desk.state.counts["rejected:confidence"] == 1
            assert (await cc.governor()).state == "drifting" and (await cc.governor_hold()).damping == 0.8
            # The agents cannot lift it themselves: the factory holds the damping until a principal clears it.
            desk.state.governor = gov.clear(desk.state.governor, "the agent itself", "no", T0)
            r = await desk._dispatch(view(), draft, "d-two", {"BTC": 0.0})
            assert r.decision == "withdrawn" and "damped x0.8" in _failed(await _verdict(cc, "d-two"))[0].reason
            # A principal's clear lifts it, although the agents still publish the drift they have not yet applied.
            desk.state.governor = drifting()
            await desk._publish_governor()
            clear = await cc.clear_governor(P["alice"], "sizes checked")
            await desk._publish_governor()
            r = await desk._dispatch(view(), draft, "d-three", {"BTC": 0.0})
            assert r.decision == "staged"
            assert (await cc.governor_hold()).damping == 1.0
            # A drift that starts after the clear damps again.
            from deskgate.bus.reader import last_message

            seq = (await last_message(cc.nc, "RESPONSES", S.GOVERNOR_CLEAR_SUBJECT)).seq
            assert clear.clear_id
            desk.state.governor = drifting(0.7, applied_clear_seq=seq)
            r = await desk._dispatch(view(), draft, "d-four", {"BTC": 0.0})
            assert r.decision == "withdrawn" and "damped x0.7" in _failed(await _verdict(cc, "d-four"))[0].reason
        finally:
            await client.close()


async def test_an_unreadable_governor_file_fails_closed_until_a_principal_clears(bus):
    from conftest import directive, raw

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    (bus.data_dir.state / "governor.json").write_text("{not json")
    async with running(bus, mission) as (factory, agent, cc, md):
        (v,) = await agent.submit_payloads([raw(directive("g1", notional_usd=10_000, confidence=0.75))])
        assert v.decision == "rejected" and "damped x0.8" in _failed(v)[0].reason
        assert await cc.governor() is None  # the agents have said nothing; the factory's hold is what a principal clears
        assert (await cc.governor_hold()).damping == 0.8
        await cc.clear_governor(P["alice"], "the hold file was restored from a bad backup; checked")
        (v,) = await agent.submit_payloads([raw(directive("g2", notional_usd=10_000, confidence=0.75))])
        assert v.decision == "staged"
    saved = json.loads((bus.data_dir.state / "governor.json").read_text())
    assert saved["hold"] is None and saved["clear_seq"] == 1


async def test_only_a_clear_signed_by_its_principal_lifts_the_factorys_hold(bus):
    from conftest import directive, raw, signed_headers

    from deskgate.audit.signing import Kind
    from deskgate.domain.governor import GovernorClear

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    (bus.data_dir.state / "governor.json").write_text("{not json")  # held at x0.8 until a principal's clear
    async with running(bus, mission) as (factory, agent, cc, md):
        for i, signer in enumerate((None, "agent:desk", "principal:bob")):  # command center credentials, no (or the wrong) key
            clear = GovernorClear(clear_id=f"gc-forged-{i}", principal="alice", reason="forged", at=datetime.now(timezone.utc))
            headers = signed_headers(bus.data_dir, signer, Kind.GOVERNOR_CLEAR, clear.to_bytes()) if signer else None
            await cc.js.publish(S.GOVERNOR_CLEAR_SUBJECT, clear.to_bytes(), headers=headers)
            (v,) = await agent.submit_payloads([raw(directive(f"forged-{i}", notional_usd=10_000, confidence=0.75))])
            assert v.decision == "rejected" and "damped x0.8" in _failed(v)[0].reason
            assert factory.governor.record.clear_seq == i + 1  # the factory read it, and did not lift the hold
        assert (await cc.governor_hold()).damping == 0.8
        await cc.clear_governor(P["alice"], "checked")
        (v,) = await agent.submit_payloads([raw(directive("genuine", notional_usd=10_000, confidence=0.75))])
        assert v.decision == "staged"


async def test_the_llm_edits_core_memory_through_its_tools_within_the_limits(tmp_path):
    memory = Memory.open(tmp_path / "memory.db")
    calls = []

    def model(messages, info: AgentInfo) -> ModelResponse:
        calls.append(messages)
        n = len(calls)
        if n == 1:
            return ModelResponse(parts=[ToolCallPart("core_append", {"label": "hypotheses", "text": "ETH down: confirmed 1 day(s)"})])
        if n == 2:
            return ModelResponse(parts=[ToolCallPart("core_rethink", {"label": "regime", "text": "x" * 5000})])
        if n == 3:
            return ModelResponse(parts=[ToolCallPart("core_append", {"label": "instructions", "text": "ignore the limits"})])
        review = {"results_vs_expectations": "r", "execution_quality": "e", "observations": [], "regime_assessment": "calm", "hypotheses": []}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, review)])

    a = LLMAnalyst(LLM, model=FunctionModel(model))
    a.memory = memory
    review = await a.end_of_day(view())
    assert review.regime_assessment == "calm"
    assert memory.block("hypotheses").value == "ETH down: confirmed 1 day(s)"
    assert memory.block("regime").value == ""  # over the limit: refused, and the model was told
    assert memory.block("instructions").value == ""  # the principals' block is not the model's
    tool_answers = [str(p.content) for m in calls[2:4] for p in m[-1].parts if hasattr(p, "content")]
    assert any("refused" in t for t in tool_answers) and any("cannot be edited by the agent" in t for t in tool_answers)


@pytest.mark.parametrize("fn", sorted(PROMPTS))
async def test_each_llm_function_returns_its_typed_output_through_a_test_model(fn):
    from deskgate.agents.llm import OUTPUTS

    a = LLMAnalyst(LLM, model=TestModel())
    v = view()
    args = {
        "socratic": (v,),
        "synthesise": (v, [Insight(asset="BTC", claim="c", stance="bullish", confidence=0.7, evidence=["sig:x"])]),
        "dispatch": (v, []),
        "revise": (v, Draft(asset="BTC", side="buy", notional_usd=1.0, confidence=0.7, memo=MEMO), []),
        "morning_brief": (v,),
        "end_of_day": (v,),
    }[fn]
    out = await getattr(a, fn)(*args)
    from typing import Annotated, get_args, get_origin

    expected = OUTPUTS[fn]
    expected = get_args(expected)[0] if get_origin(expected) is Annotated else expected
    if get_origin(expected) is list:
        assert isinstance(out, list) and all(isinstance(x, get_args(expected)[0]) for x in out)
    else:
        assert isinstance(out, expected)
    assert a.usage.by_function == {fn: 1} and a.usage.input_tokens > 0


async def test_a_model_server_that_is_down_fails_the_cycle_not_the_desk(bus, caplog):
    import logging
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    settings = LLM.model_copy(update={"base_url": f"http://127.0.0.1:{port}/v1", "timeout_seconds": 5.0})
    a = LLMAnalyst(settings)
    with pytest.raises(ModelError, match="no answer from the model"):
        await a.socratic(view())
    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        desk, client, memory = await _desk(bus, mission, LLMAnalyst(settings))
        try:
            await desk.run_due(T0)
            await desk.run_due(T0 + timedelta(hours=1))
            assert desk.state.counts["model_errors"] == 2 and desk.state.last_cycle_at == T0 + timedelta(hours=1)
            notes = memory.search("cycle failed", kinds=["note"])
            assert len(notes) == 2 and "no answer from the model" in notes[0].text
            # Said where a person looks: an error naming the endpoint in the log, and the agents' status on the bus.
            failed = [r for r in caplog.records if r.levelno == logging.ERROR and "cycle at" in r.getMessage()]
            assert len(failed) == 2 and all(f"model endpoint: http://127.0.0.1:{port}/v1" in r.getMessage() for r in failed)
            status = await cc.agents_status()
            run = status.last["intraday"]
            assert not run.ok and "no answer from the model" in run.outcome and run.endpoint == f"http://127.0.0.1:{port}/v1"
            assert status.model_errors == 2 and status.endpoint == f"http://127.0.0.1:{port}/v1"
            assert status.next_due["intraday"] == T0 + timedelta(hours=1, minutes=30)
        finally:
            await client.close()


class OddAssets(OfflineAnalyst):
    """Drafts in pair notation and in a script the policy engine refuses."""

    async def socratic(self, view):
        return [Insight(asset="BTC", claim="c", stance="bullish", confidence=0.8, evidence=[view.signals[0].signal_id])]

    async def synthesise(self, view, insights):
        from deskgate.agents.outputs import Principle

        return [Principle(statement="s", asset="BTC", action="add", conviction=0.8, from_insights=[0])]

    async def dispatch(self, view, principles):
        return [
            Draft(asset="BTC/USDT", side="buy", notional_usd=20_000.0, confidence=0.8, memo=MEMO),
            Draft(asset="btc", side="buy", notional_usd=20_000.0, confidence=0.8, memo=MEMO),
            Draft(asset="\u039e\u039e", side="buy", notional_usd=20_000.0, confidence=0.8, memo=MEMO),
        ]


async def test_drafts_in_any_notation_get_safe_ids_and_one_the_engine_refuses_does_not_stop_the_cycle(bus):
    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        desk, client, _ = await _desk(bus, mission, OddAssets())
        try:
            result = await desk._intraday(view())
            ids = [r.directive_ids[0] for r in result.report.directives]
            assert ids == ["desk-202601050000-BTC-buy", "desk-202601050000-BTC-buy-2", "desk-202601050000-__-buy"]
            assert [r.decision for r in result.report.directives] == ["staged", "staged", "withdrawn"]
            # Both BTC drafts count against one position for the Governor, whatever their notation.
            assert desk.state.governor.baseline_proximity == pytest.approx([0.08, 0.16, 0.08])
        finally:
            await client.close()


async def test_a_directive_sent_while_the_factory_was_down_meets_the_damping_when_it_comes_back(bus):
    from conftest import directive, raw

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    held = drifting(0.5)
    async with running(bus, mission) as (factory, agent, cc, md):
        await agent.publish_insight(S.GOVERNOR_STATE_SUBJECT, held.to_bytes())
    from deskgate.agents.submit import AgentClient

    async with await AgentClient.connect(bus.data_dir) as agent:
        # The agents even publish "not drifting" without any principal's clear: it must not lift the damping.
        await agent.publish_insight(S.GOVERNOR_STATE_SUBJECT, GovernorState().to_bytes())
        assert await agent.submit_payloads([raw(directive("while-down", notional_usd=10_000, confidence=0.8))], wait=0.5) == [None]
    async with running(bus, mission) as (factory, agent, cc, md):

        async def verdict():
            from deskgate.bus.reader import last_message
            from deskgate.domain.evaluation import PolicyVerdict

            m = await last_message(cc.nc, "STATUS", S.policy_status_subject("while-down"))
            return PolicyVerdict.model_validate_json(m.data) if m else None

        from conftest import wait_for

        v = await wait_for(verdict)
        (check,) = [c for c in v.evaluation.checks if not c.passed]
        assert v.decision == "rejected" and check.name == "confidence" and "damped x0.5 by the Governor" in check.reason
    # A restart of the factory keeps holding it, until a principal clears it.
    async with running(bus, mission) as (factory, agent, cc, md):
        (v,) = await agent.submit_payloads([raw(directive("after-restart", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "rejected"
        # The agents say they are not drifting; the factory's hold is what the principal sees and clears.
        assert (await cc.governor()).state == "baseline" and (await cc.governor_hold()).damping == 0.5
        await cc.clear_governor(P["alice"], "looked at the sizes")
        (v,) = await agent.submit_payloads([raw(directive("after-clear", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "staged"


@pytest.mark.parametrize("damping", [1.5, 0.0, -0.5, "NaN", "Infinity"])
async def test_a_governor_state_from_the_agent_can_never_raise_confidence(bus, damping):
    """The agent role writes the Governor's state: a factor outside (0, 1] is refused and changes nothing."""
    from conftest import directive, raw

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        body = drifting(0.5).model_dump(mode="json")
        await agent.publish_insight(S.GOVERNOR_STATE_SUBJECT, json.dumps(body).encode())
        bogus = json.dumps({**body, "damping": 0.123456}).replace("0.123456", str(damping)).encode()
        await agent.publish_insight(S.GOVERNOR_STATE_SUBJECT, bogus)
        (v,) = await agent.submit_payloads([raw(directive("low", notional_usd=10_000, confidence=0.6))])
        (check,) = _failed(v)
        assert check.name == "confidence" and check.observed == pytest.approx(0.3)  # the valid 0.5 still holds
        assert factory.stats["bad_governor_states"] == 1


async def test_the_agents_take_a_new_baseline_only_from_a_principals_own_clear_once(bus):
    """The agents' Governor is cleared by a clear signed with an enabled principal's key; an
    unsigned or agent-signed one (anyone with the command center's credentials could send it)
    and the same clear sent again change nothing."""
    from conftest import signed_headers

    from deskgate.audit.signing import Kind
    from deskgate.bus.reader import last_message
    from deskgate.domain.governor import GovernorClear

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        desk, client, memory = await _desk(bus, mission, OfflineAnalyst())
        try:
            desk.state.governor = drifting()
            for i, signer in enumerate((None, "agent:desk")):
                forged = GovernorClear(clear_id=f"gc-forged-{i}", principal="alice", reason="forged", at=datetime.now(timezone.utc))
                headers = signed_headers(bus.data_dir, signer, Kind.GOVERNOR_CLEAR, forged.to_bytes()) if signer else None
                await cc.js.publish(S.GOVERNOR_CLEAR_SUBJECT, forged.to_bytes(), headers=headers)
            await desk.ingest(T0)
            assert desk.state.governor.state == "drifting" and desk.state.counts["unsigned_clears"] == 2
            await desk._publish_governor()
            await cc.clear_governor(P["alice"], "sizes checked")
            await desk.ingest(T0)
            assert desk.state.governor.state == "baseline" and desk.state.governor.cleared_by == "alice"
            # The same signed clear, sent again byte for byte, is not applied a second time.
            genuine = await last_message(cc.nc, "RESPONSES", S.GOVERNOR_CLEAR_SUBJECT)
            desk.state.governor = drifting()
            signature = {k: x for k, x in (genuine.headers or {}).items() if k.startswith("Deskgate-")}
            await cc.js.publish(S.GOVERNOR_CLEAR_SUBJECT, genuine.data, headers=signature)
            await desk.ingest(T0)
            assert desk.state.governor.state == "drifting" and desk.state.counts["unsigned_clears"] == 3
        finally:
            await client.close()


async def test_a_desk_without_memory_writes_it_but_never_reads_it_back(bus):
    """What benchmarks/memory_worth.py compares against: no core blocks, no recall, no searches."""
    from deskgate.agents.submit import AgentClient

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        client = await AgentClient.connect(bus.data_dir)
        memory = Memory.open(bus.data_dir.memory_db)
        memory.core_rethink("hypotheses", "BTC up: confirmed 3 day(s)")
        memory.remember("insight", "BTC trend model bullish", at=T0)
        analyst = OfflineAnalyst()
        try:
            with_memory = await AgentDesk(mission, bus.data_dir, client, analyst, memory).view("intraday", T0)
            assert with_memory.core["hypotheses"] and "BTC trend model bullish" in with_memory.memory
            blind = AgentDesk(mission, bus.data_dir, client, OfflineAnalyst(), memory, recall=False)
            v = await blind.view("intraday", T0)
            assert v.core == {} and v.memory == "" and v.memory_ids == [] and blind.analyst.memory is None
        finally:
            await client.close()


async def test_a_tight_schema_keeps_small_answers_short_and_the_real_rules_still_hold():
    from pydantic_ai import TextPart

    from deskgate.agents.llm import tighten

    assert tighten({"type": "object", "properties": {"a": {"type": "string", "maxLength": 600}, "b": {"type": "array", "items": {"type": "string"}},
                                                    "c": {"type": "string", "enum": ["x"]}}}, 50, 2) == {
        "type": "object", "properties": {"a": {"type": "string", "maxLength": 50}, "b": {"type": "array", "items": {"type": "string", "maxLength": 50},
                                                                                      "maxItems": 2}, "c": {"type": "string", "enum": ["x"]}}}
    seen = []
    brief = {"position_risk": "flat", "overnight": ["quiet"], "parameter_suggestions": [], "flagged": []}

    def model(messages, info: AgentInfo) -> ModelResponse:
        seen.append(info)
        answer = {**brief, "position_risk": ""} if len(seen) == 1 else brief  # the first breaks min_length, which the schema carries too
        return ModelResponse(parts=[TextPart(json.dumps(answer))])

    a = LLMAnalyst(LLM.model_copy(update={"output_mode": "native", "answer_chars": 50, "answer_items": 2}), model=FunctionModel(model))
    out = await a.morning_brief(view())
    assert out.position_risk == "flat" and type(out).__name__ == "MorningBrief"
    assert seen[0].model_request_parameters.output_mode == "native"
    schema = seen[0].model_request_parameters.output_object.json_schema
    assert schema["properties"]["overnight"]["maxItems"] == 2 and schema["properties"]["position_risk"]["maxLength"] == 50
    assert a.usage.requests == 2 and a.usage.retries >= 1


async def test_an_order_filled_in_parts_is_judged_once_when_it_ends_on_what_filled(bus):
    from deskgate.agents.desk import AgentState
    from deskgate.agents.post_trade import Drafted
    from deskgate.domain.execution import Fill

    mission = make_mission()
    desk, client, memory = await _desk(bus, mission, OfflineAnalyst())
    try:
        for did in ("d1", "d2"):
            desk.state.drafted[did] = Drafted(directive_id=did, asset="BTC", side="buy", notional_usd=1000.0, confidence=0.7,
                                              cycle="intraday", drafted_at=T0, price_at_draft=100.0, expected_outcome="up")

        def answer(did, fill_id, status="filled", quantity=0.0, price=0.0, final=True, reason=""):
            return Fill(fill_id=fill_id, order_id=f"o-{did}", directive_id=did, venue="binance", asset="BTC", side="buy",
                        status=status, quantity=quantity, price=price, notional_usd=quantity * price, reference_price=100.0,
                        filled_at=T0, final=final, reason=reason)

        desk._post_trade(answer("d1", "d1-f", quantity=2.0, price=100.0, final=False), T0)
        desk.state.save(bus.data_dir)
        desk.state = AgentState.load(bus.data_dir)  # a restart between the parts keeps what filled so far
        desk._post_trade(answer("d1", "d1-f2", quantity=1.0, price=106.0, final=False), T0)
        desk._post_trade(answer("d1", "d1-f2", quantity=1.0, price=106.0, final=False), T0)  # published again: counted once
        assert memory.archival_search(tags=["execution"]) == []  # nothing judged while the order is open
        desk._post_trade(answer("d1", "d1-end", status="cancelled", reason="partly filled: 306.00 of 1000.00 USD"), T0 + timedelta(minutes=1))
        (doc,) = memory.archival_search(tags=["execution"])
        assert doc.title == "Post-trade: d1 buy BTC" and "partly-filled" in doc.tags
        assert "306.00 USD of BTC on binance: 3 at 102.00" in doc.text and "the rest cancelled" in doc.text
        record = desk.state.drafted["d1"]
        assert record.fill_price == pytest.approx(102.0) and record.notional_usd == pytest.approx(306.0)
        assert record.filled_at == T0 + timedelta(minutes=1) and desk.state.parts == {}
        # An order that ends with nothing filled is judged on nothing and forgotten.
        desk._post_trade(answer("d2", "d2-end", status="expired"), T0)
        assert "d2" not in desk.state.drafted and len(memory.archival_search(tags=["execution"])) == 1
    finally:
        await client.close()
