"""The Governor's state counts only when the desk's own agents signed it with their current key.

Every agent identity may publish on consciousness.insights.>, so without this another
agent could lift the desk's drift damping, damp the desk at will, or hide the genuine
state from the Command Center and from the agents' own restart.
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import timedelta

from conftest import agent_signer, directive, raw, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from test_agent_identities import add_agent, connect_agent
from test_agents import T0, _desk, drifting
from test_factory import make_mission, running

from deskgate.agents.offline import OfflineAnalyst
from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import Kind, Signer
from deskgate.bus import subjects as S
from deskgate.bus.reader import read_stream
from deskgate.bus.subjects import Role
from deskgate.domain.governor import GovernorState, signed_governor_state
from deskgate.factory.governor import HoldRecord, fold_hold
from deskgate.bus.credentials import ensure_credentials
from deskgate.identity.registry import AgentRegistry
from deskgate.paths import DataDir

# -- the pure fold: forged states change nothing -----------------------------------------------

_KEYS: dict = {}


def _desk_keys():
    """One data directory for every example: the desk's agent and another, as `deskgate init` and `agent add` make them."""
    if not _KEYS:
        data_dir = DataDir.at(tempfile.mkdtemp(prefix="gov-signed-")).ensure()
        ensure_credentials(data_dir)
        old = agent_signer(data_dir, "desk")
        rotated = AgentRegistry.open(data_dir).rotate("desk", [])  # as `deskgate agent rotate desk` does
        _KEYS.update(
            keys=KeyStore.for_desk(data_dir), desk=Signer.of(rotated.signer, rotated.signing_key()), desk_old=old,
            other=agent_signer(data_dir, "other"),
        )
    return _KEYS


HOW = ["genuine", "other_agent", "unsigned", "claims_desk_with_other_key", "desk_rotated_out", "wrong_kind", "tampered"]


def _publish_as(how: str, state: GovernorState) -> tuple[bytes, dict | None]:
    k = _desk_keys()
    data = state.to_bytes()
    if how == "genuine":
        return data, k["desk"].headers(Kind.INSIGHT, data)
    if how == "other_agent":
        return data, k["other"].headers(Kind.INSIGHT, data)
    if how == "unsigned":
        return data, None
    if how == "desk_rotated_out":
        return data, k["desk_old"].headers(Kind.INSIGHT, data)
    if how == "claims_desk_with_other_key":
        return data, Signer.of("agent:desk", k["other"]._key).headers(Kind.INSIGHT, data)
    if how == "wrong_kind":
        return data, k["desk"].headers(Kind.DIRECTIVE, data)
    # tampered: the desk signed one state; a lower damping is sent under its signature
    headers = k["desk"].headers(Kind.INSIGHT, data)
    return state.model_copy(update={"damping": state.damping / 2}).to_bytes(), headers


states = st.builds(
    lambda damping, applied: drifting(damping, applied) if damping < 1 else GovernorState(applied_clear_seq=applied),
    st.sampled_from([1.0, 0.9, 0.5, 0.3, 0.1]),
    st.integers(0, 3),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(states, st.sampled_from(HOW)), max_size=12), st.sampled_from([None, 0.5]))
def test_forged_governor_states_never_change_the_hold(published, held):
    """For any mix of genuine and forged states, the hold is what the genuine ones alone make."""
    keys = _desk_keys()["keys"].deciding
    start = HoldRecord(hold=held, held_since_seq=1 if held else 0)
    read, genuine_only = [], []
    for seq, (state, how) in enumerate(published, start=2):
        data, headers = _publish_as(how, state)
        checked = signed_governor_state(keys, data, headers)
        assert (checked is not None) == (how == "genuine")
        read.append((seq, checked))
        if how == "genuine":
            genuine_only.append((seq, state))
    mixed, clean = fold_hold(start, [], read), fold_hold(start, [], genuine_only)
    assert dataclasses.replace(mixed.record, state_seq=0) == dataclasses.replace(clean.record, state_seq=0)
    assert mixed.ignored == len(published) - len(genuine_only)


# -- on the real bus: no state but the desk's own reaches the factory, the Command Center or the agents --


def _forge(agent, state: GovernorState, signer: Signer | None, extra: dict | None = None):
    """A state published over the desk agents' own connection (their bus password, say,
    without their signing key), signed by `signer` or not at all."""
    data = state.to_bytes()
    headers = {**(signer.headers(Kind.INSIGHT, data) if signer else {}), **(extra or {})}
    return agent.js.publish(S.GOVERNOR_STATE_SUBJECT, data, headers=headers or None)


async def test_only_the_desks_own_agents_may_publish_the_governors_state(bus, tmp_path):
    mallory_creds = add_agent(bus, "mallory", tmp_path)
    mallory_nc, events = await connect_agent(mallory_creds)
    mallory = Signer.of(mallory_creds.signer, mallory_creds.signing_key())
    data = drifting(0.1).to_bytes()
    try:
        await mallory_nc.publish(S.GOVERNOR_STATE_SUBJECT, data, headers=mallory.headers(Kind.INSIGHT, data))
        ack = await mallory_nc.jetstream().publish("consciousness.insights.intraday", b"{}")  # its other insights are its own
        await mallory_nc.flush()
        await wait_for(lambda: events.refused(S.GOVERNOR_STATE_SUBJECT))
    finally:
        await mallory_nc.close()
    cc, _ = await bus.connect(Role.COMMAND_CENTER)
    try:
        stored = [m.subject async for m in read_stream(cc, "INSIGHTS", "consciousness.insights.>")]
        assert stored == ["consciousness.insights.intraday"] and ack.seq == 1
    finally:
        await cc.close()


async def test_a_state_not_signed_by_the_desks_current_key_neither_damps_lifts_nor_hides(bus, tmp_path):
    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    mallory = agent_signer(bus.data_dir, "mallory")
    claims_desk = Signer.of("agent:desk", mallory._key)
    async with running(bus, mission) as (factory, agent, cc, md):
        # Damping the desk at will: another agent's key, the desk's name on another key, or no signature.
        for signer in (mallory, claims_desk, None):
            await _forge(agent, drifting(0.1), signer)
        await wait_for(lambda: factory.stats.get("bad_governor_states", 0) >= 3)
        (v,) = await agent.submit_payloads([raw(directive("after-forged-damping", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "staged"
        assert (await cc.governor()) is None  # nothing genuine published yet, and the forgeries are not shown

        # The desk's own agents drift, with a `Status` header of their own on it: still a stored state, read as one.
        genuine = drifting(0.5).model_copy(update={"updated_at": T0})  # as a finished cycle publishes it
        await _forge(agent, genuine, agent.signer, {"Status": "404"})
        await wait_for(lambda: _held(cc, 0.5))
        # Lifting it, or hiding it behind newer states (whose `Status` headers would end a careless read).
        lifted = GovernorState(updated_at=T0 + timedelta(hours=1))
        for signer, extra in ((mallory, None), (claims_desk, {"Status": "404"}), (None, {"Status": "503"})):
            await _forge(agent, lifted, signer, extra)
        await wait_for(lambda: factory.stats.get("bad_governor_states", 0) >= 6)
        (v,) = await agent.submit_payloads([raw(directive("after-forged-lift", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "rejected" and "damped x0.5 by the Governor" in next(c.reason for c in v.evaluation.checks if c.name == "confidence")
        assert (await cc.governor_hold()).damping == 0.5
        assert (await cc.governor()) == genuine

        # The agents' own restart takes back the genuine state, not the newer forged ones.
        desk, client, _ = await _desk(bus, mission, OfflineAnalyst())
        try:
            await desk.restore()
            assert desk.state.governor == genuine
        finally:
            await client.close()


async def test_the_newest_genuine_state_is_found_behind_many_refused_ones_and_the_walk_is_bounded(bus):
    from deskgate.bus.reader import newest_accepted

    desk = agent_signer(bus.data_dir, "desk")
    agent, _ = await bus.connect(Role.AGENT)
    cc, _ = await bus.connect(Role.COMMAND_CENTER)
    try:
        js = agent.jetstream()
        await js.publish("consciousness.insights.intraday", b"{}")  # other subjects in between
        first = drifting(0.5).to_bytes()
        await js.publish(S.GOVERNOR_STATE_SUBJECT, first, headers=desk.headers(Kind.INSIGHT, first))
        for i in range(20):
            await js.publish("consciousness.insights.intraday" if i % 3 == 0 else S.GOVERNOR_STATE_SUBJECT, GovernorState().to_bytes())
        keys = KeyStore.for_desk(bus.data_dir).deciding

        def genuine(m):
            return m if signed_governor_state(keys, m.data, m.headers) is not None else None

        for window in (1, 2, 3, 64):  # the growing windows, each way the walk can end
            m, refused = await newest_accepted(cc, "INSIGHTS", S.GOVERNOR_STATE_SUBJECT, genuine, window=window)
            assert (m.seq, m.data, refused) == (2, first, 13), window
        m, refused = await newest_accepted(cc, "INSIGHTS", S.GOVERNOR_STATE_SUBJECT, genuine, window=2, limit=5)
        assert m is None and 5 <= refused <= 13
        m, refused = await newest_accepted(cc, "INSIGHTS", S.GOVERNOR_STATE_SUBJECT, lambda m: None, window=4)
        assert (m, refused) == (None, 14)
    finally:
        await agent.close()
        await cc.close()


async def _held(cc, damping: float) -> bool:
    hold = await cc.governor_hold()
    return hold is not None and hold.damping == damping


async def test_a_state_that_cannot_be_checked_is_read_again_and_a_long_failure_damps(bus, monkeypatch):
    """A state the factory cannot check now (the accounts database busy, a bad record) is
    never skipped: the same state is read again. Failing for long, the factory damps at
    the configured factor until a read succeeds."""
    import deskgate.factory.governor as factory_governor

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    real = factory_governor.signed_governor_state
    broken = {"on": True}

    def flaky(*a, **kw):
        if broken["on"]:
            raise RuntimeError("database is locked")
        return real(*a, **kw)

    monkeypatch.setattr(factory_governor, "signed_governor_state", flaky)
    monkeypatch.setattr(factory_governor, "GOVERNOR_FAIL_CLOSED_AFTER_S", 0.0)
    from test_web_http import web_desk

    async with web_desk(bus, mission) as web:
        factory, agent, cc = web.factory, web.agent, web.cc
        await agent.publish_insight(S.GOVERNOR_STATE_SUBJECT, drifting(0.5).to_bytes())
        # Failing: the configured damping (0.8), not the undamped 1.0 it had.
        (v,) = await agent.submit_payloads([raw(directive("while-failing", notional_usd=10_000, confidence=0.8))])
        confidence = next(c for c in v.evaluation.checks if c.name == "confidence")
        assert "damped x0.8 by the Governor" in confidence.reason and factory.governor.record.state_seq == 0
        # Said where a principal looks; the hold itself is not one a clear would lift.
        hold = await cc.governor_hold()
        assert hold.fail_closed_damping == 0.8 and hold.damping == 1.0
        c, _ = await web.login("alice")
        page = (await c.get("/governor")).text
        assert "cannot read the Governor&#39;s state and damps confidence x0.8" in page or "cannot read the Governor's state and damps confidence x0.8" in page
        assert "A clear does not lift this" in page
        broken["on"] = False
        # Readable again: the state it could not check before is applied, not skipped.
        await wait_for(lambda: _held(cc, 0.5))
        assert (await cc.governor_hold()).fail_closed_damping is None
        (v,) = await agent.submit_payloads([raw(directive("after", notional_usd=10_000, confidence=0.8))])
        assert v.decision == "rejected" and "damped x0.5 by the Governor" in next(c.reason for c in v.evaluation.checks if c.name == "confidence")
        assert factory.stats.get("bad_governor_states", 0) == 0
