"""Signatures per agent: a directive counts as an agent's only when signed with that agent's
current key while the agent is not revoked; the verdict, the funnel, the Command Center
and the audit log name the agent whose key signed it.

The property test drives the factory's intake core without a bus (as tests/test_factory_cores.py
does); the last test runs the factory and the executor on a real nats-server and revokes an
agent under them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from conftest import P, agent_signer, directive, raw, wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_audit import make_order
from test_factory import make_mission, running, submit
from test_factory_cores import make_factory

from deskgate.agents.submit import AgentClient
from deskgate.audit.chain import signature_status, verify_log
from deskgate.audit.keys import KeyStore
from deskgate.audit.log import AuditLog, Record
from deskgate.audit.order_chain import order_problem
from deskgate.audit.signing import Kind, Signer
from deskgate.bus.subjects import Role
from deskgate.domain.evaluation import PolicyVerdict
from deskgate.factory.outbox import PendingKind
from deskgate.identity.registry import AgentRegistry
from deskgate.web.periods import period_funnel

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def last_verdict(factory) -> PolicyVerdict:
    pending = [p for p in factory.outbox._outgoing if p.kind is PendingKind.VERDICT]
    return PolicyVerdict.model_validate_json(pending[-1].payload)


def failed(v: PolicyVerdict):
    return [c for c in v.evaluation.checks if not c.passed]


# -- who may sign, property-tested on the intake core -----------------------------------------

# Who the headers claim signed it; the keys that may have made the signature.
CLAIMS = ["agent:alpha", "agent:beta", "agent:gamma", "agent:ghost", "factory", "principal:alice", "agent", None]
KEYS = ["alpha current", "alpha retired", "beta current", "gamma (revoked)", "a stranger's", "the factory's", "alice's", "the shared agent key"]
OWNER = {"alpha current": "alpha", "alpha retired": "alpha", "beta current": "beta", "gamma (revoked)": "gamma"}
CURRENT = {"alpha": "alpha current", "beta": "beta current"}  # gamma is revoked: it has no key that signs now


@pytest.fixture
def desk(tmp_path):
    """A factory whose registry holds alpha (rotated once), beta, and gamma (revoked); the
    desk's keys directory also holds the shared agent key of an earlier version."""
    factory = make_factory(tmp_path)
    d = factory.data_dir
    registry = AgentRegistry.open(d)
    alpha_retired = agent_signer(d, "alpha")
    rotated = registry.rotate("alpha", [])
    beta, gamma = agent_signer(d, "beta"), agent_signer(d, "gamma")
    registry.revoke("gamma", by="alice")
    store = KeyStore(d.keys)
    store.create("agent")  # as `deskgate init` made it before per-agent keys
    keys = {
        "alpha current": Signer.of(rotated.signer, rotated.signing_key())._key,
        "alpha retired": alpha_retired._key,
        "beta current": beta._key,
        "gamma (revoked)": gamma._key,
        "a stranger's": Ed25519PrivateKey.generate(),
        "the factory's": store.private("factory"),
        "alice's": P["alice"]._key,
        "the shared agent key": store.private("agent"),
    }
    return factory, keys, registry


def test_a_directive_is_staged_only_when_its_agents_current_key_signed_it(desk):
    factory, keys, _ = desk
    ids = itertools.count(1)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(claim=st.sampled_from(CLAIMS), key=st.sampled_from(KEYS), field=st.sampled_from([None, "alpha", "beta", "gamma", "ghost"]))
    def attempt(claim, key, field):
        n = next(ids)
        d = directive(f"p{n}", notional_usd=10.0)
        if field is not None:
            d["agent"] = field
        data = raw(d)
        headers = Signer.of(claim, keys[key]).headers(Kind.DIRECTIVE, data) if claim is not None else None
        decision = factory.evaluate_directives([(n, data, headers)])[0]
        v = last_verdict(factory)
        assert v.seq == n
        name = claim.removeprefix("agent:") if claim and claim.startswith("agent:") else None
        counts = name in CURRENT and CURRENT[name] == key
        expected = counts and field in (None, name)
        assert (decision == "staged") is expected, (claim, key, field, v.evaluation.checks)
        # Who signed it is named whenever one of the named agent's own keys made the signature.
        assert v.agent == (name if name is not None and OWNER.get(key) == name else None), (claim, key, v.agent)
        if expected:
            return
        check = failed(v)[0]
        assert v.primary_reason == check.name and check.reason
        if claim is None:
            assert (check.name, check.observed) == ("signature", "unsigned (no signer)")
        elif name is None:
            assert check.name == "signature" and check.observed.startswith("not an agent")
            if claim == "agent":
                assert "shared agent key" in check.reason
        elif name == "ghost":
            assert check.name == "agent" and check.observed == "unknown agent (agent:ghost)" and "no agent named ghost" in check.reason
        elif OWNER.get(key) == name and name == "gamma":
            assert check.name == "agent" and "agent gamma was revoked at" in check.reason
        elif OWNER.get(key) == name and key != CURRENT.get(name):
            assert check.name == "signature" and "retired" in check.reason and "rotation" in check.reason
        elif OWNER.get(key, name) != name:
            assert check.name == "signature" and f"with agent {OWNER[key]}'s key" in check.reason
        elif not counts:
            assert check.name == "signature" and "does not verify with any key" in check.reason
        else:  # its own current key, but the directive names another agent
            assert check.name == "agent" and check.observed == f"names {field}, signed by agent:{name}"
            assert v.directive_id == f"p{n}"  # signed genuinely by the agent: it answers for the id it used
        if check.name == "signature" or claim == "agent:ghost" or claim == "agent:gamma":
            assert v.directive_id is None  # not that agent's: its id is not taken from it

    attempt()
    f = factory.funnel()
    assert set(f.agents) <= {"alpha", "beta", "gamma"} and f.agents, f.agents
    assert sum(a.received for a in f.agents.values()) < f.received  # unsigned and forged ones belong to nobody
    assert f.staged == sum(a.staged for a in f.agents.values())


def test_revocation_rotation_and_a_new_agent_are_seen_at_the_very_next_directive(desk):
    """No restart and no reload: the registry's answers are kept only until accounts.db changes."""
    factory, keys, registry = desk

    def send(seq, claim, key, did):
        data = raw(directive(did, notional_usd=10.0))
        return factory.evaluate_directives([(seq, data, Signer.of(claim, key).headers(Kind.DIRECTIVE, data))])[0]

    assert send(1, "agent:beta", keys["beta current"], "b1") == "staged"
    assert send(2, "agent:beta", keys["beta current"], "b2") == "staged"  # answered from what is kept
    registry.revoke("beta", by="alice")
    assert send(3, "agent:beta", keys["beta current"], "b3") == "rejected"
    assert "agent beta was revoked at" in failed(last_verdict(factory))[0].reason
    current = keys["alpha current"]
    assert send(4, "agent:alpha", current, "a1") == "staged"
    again = registry.rotate("alpha", [])
    assert send(5, "agent:alpha", current, "a2") == "rejected"
    assert "retired" in failed(last_verdict(factory))[0].reason
    assert send(6, "agent:alpha", again.signing_key(), "a3") == "staged"
    newcomer = AgentRegistry.open(factory.data_dir).add("delta", [])
    assert send(7, "agent:delta", newcomer.signing_key(), "d1") == "staged"
    assert last_verdict(factory).agent == "delta"
    # The funnel, as restored from the database, keeps each agent's counts.
    f = factory.funnel()
    factory.load_state()
    g = factory.funnel()
    assert g.agents == f.agents and g.agents["beta"].policy_rejections_by_reason == {"agent": 1}
    assert (g.agents["alpha"].received, g.agents["alpha"].staged) == (3, 2)


def test_the_past_verifies_for_retired_revoked_and_shared_keys_and_the_present_only_for_current_ones(desk):
    factory, keys, registry = desk
    store = KeyStore.for_desk(factory.data_dir)
    assert len(store.public_keys("agent:alpha")) == 2 and len(store.deciding.public_keys("agent:alpha")) == 1
    assert len(store.public_keys("agent:gamma")) == 1 and store.deciding.public_keys("agent:gamma") == ()
    assert store.public_keys("agent") and store.deciding.public_keys("agent") == ()
    assert store.public_keys("agent:ghost") == () and "no agent named ghost" in store.deciding.why_not("agent:ghost")
    assert "revoked" in store.deciding.why_not("agent:gamma") and store.deciding.why_not("agent:beta") is None
    assert {"agent:alpha", "agent:beta", "agent:gamma", "agent:desk", "agent"} <= set(store.all_keys())

    # An audit log of what each of them signed back then verifies now.
    records = []
    for i, (claim, key) in enumerate([("agent:alpha", "alpha retired"), ("agent:gamma", "gamma (revoked)"), ("agent", "the shared agent key"),
                                      ("agent:beta", "beta current")]):
        body = raw(directive(f"old{i}"))
        h = Signer.of(claim, keys[key]).headers(Kind.DIRECTIVE, body)
        records.append(Record("directive", "consciousness.directives.BTC", f"old{i}", f"DIRECTIVES:{i + 1}", claim, h["Deskgate-Signature"], "valid", body.decode()))
    log = AuditLog(f"sqlite:///{factory.data_dir.root / 'audit-test.db'}", store)
    log.append(records, NOW)
    log.checkpoint(NOW)
    report = verify_log(log.entries(), log.checkpoints(), store)
    assert report.ok and report.signatures == {"valid": 4}, report
    assert [signature_status(store, e).value for e in log.entries()] == ["valid"] * 4

    # A directive a principal approved before its agent was revoked stays executable: the
    # executor (deciding keys) checks the directive against every key the agent had.
    gamma = Signer.of("agent:gamma", keys["gamma (revoked)"])
    order, body, headers = make_order(store, d=directive("approved-before", notional_usd=1_000), agent=gamma)
    assert order_problem(store.deciding, order, body, headers) is None
    forged = Signer.of("agent:gamma", keys["a stranger's"])
    order, body, headers = make_order(store, d=directive("never", notional_usd=1_000), agent=forged)
    assert "directives must be signed by an agent's own key" in order_problem(store.deciding, order, body, headers)


# -- on a real bus -------------------------------------------------------------------------------


async def test_revoking_an_agent_refuses_its_next_directive_at_once_and_the_desk_names_who_signed(bus, tmp_path):
    from deskgate.audit.service import AuditService

    mission = make_mission()
    alpha, beta = agent_signer(bus.data_dir, "alpha"), agent_signer(bus.data_dir, "beta")
    async with running(bus, mission) as (factory, desk_agent, cc, _):
        as_alpha = AgentClient(desk_agent.nc, desk_agent.events, alpha)
        as_beta = AgentClient(desk_agent.nc, desk_agent.events, beta)
        (first,) = await submit(as_alpha, directive("alpha-1", notional_usd=5_000))
        assert first.decision == "staged" and first.agent == "alpha"

        AgentRegistry.open(bus.data_dir).revoke("alpha", by="alice")  # what `deskgate agent revoke alpha` writes
        (refused,) = await submit(as_alpha, directive("alpha-2", notional_usd=5_000))
        assert refused.decision == "rejected" and refused.primary_reason == "agent" and refused.directive_id is None
        assert "agent alpha was revoked at" in failed(refused)[0].reason and refused.agent == "alpha"
        other, named_other = await submit(as_beta, directive("beta-1", notional_usd=5_000, agent="beta"),
                                          directive("beta-2", notional_usd=5_000, agent="alpha"))
        assert other.decision == "staged" and other.agent == "beta"
        assert named_other.primary_reason == "agent" and failed(named_other)[0].observed == "names alpha, signed by agent:beta"
        (own,) = await submit(desk_agent, directive("desk-1", notional_usd=1_000))
        assert own.agent == "desk"

        # What alpha staged before its revocation is still decided and executed.
        item = await cc.item("alpha-1")
        assert item.staged.signed_directive.signer == "agent:alpha" and item.staged.drafted_by == "alpha"
        assert [o.outcome for o in await cc.decide("alpha-1", "approve", P["alice"])] == ["ordered", "executed"]

        f = factory.funnel()
        assert (f.agents["alpha"].received, f.agents["alpha"].staged, f.agents["alpha"].executed) == (2, 1, 1)
        assert f.agents["alpha"].policy_rejections_by_reason == {"agent": 1}
        assert (f.agents["beta"].received, f.agents["beta"].staged) == (2, 1) and f.agents["desk"].received == 1
        published = await wait_for(lambda: _funnel_with(cc, "alpha", executed=1))
        assert published.agents["beta"].policy_rejections_by_reason == {"agent": 1}
        cut = period_funnel(await cc.verdicts(), await cc.outcomes(), None, datetime.now(timezone.utc))
        assert cut.of_agent("alpha").model_dump(exclude={"at"}) == f.agents["alpha"].model_dump(exclude={"at"})

    # The audit log records each directive with the agent that signed it, and still verifies
    # the revoked agent's signatures.
    audit = AuditService(mission, bus.data_dir)
    audit.nc, _ = await bus.connect(Role.OBSERVER)
    try:
        await wait_for(_recorded(audit, "alpha-1", "fill"), timeout=15)
    finally:
        await audit.nc.close()
        audit.log.checkpoint(datetime.now(timezone.utc))
        audit.log.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deskgate", "audit", "trace", "alpha-1", "--json", "--data-dir", str(bus.data_dir.root),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    trace = {e["kind"]: e for e in json.loads(out)}
    assert trace["directive"]["signer"] == "agent:alpha" and trace["directive"]["signature_now"] == "valid"
    assert trace["approval"]["signer"] == "principal:alice" and all(e["signature_now"] == "valid" for e in trace.values())


async def _funnel_with(cc, agent: str, executed: int):
    f = await cc.funnel()
    return f if f is not None and agent in f.agents and f.agents[agent].executed == executed else None


def _recorded(audit, did: str, kind: str):
    async def check():
        await audit.read_once()
        return any(e.kind == kind for e in audit.log.trace(did))

    return check


# -- directive ids under an agent's name are that agent's ------------------------------------


def test_no_agent_can_take_another_agents_ids_first(tmp_path):
    """The desk's own agents' ids are predictable (`desk-<minute>-<ASSET>-<side>`, agents/desk.py): an id
    under another agent's name is refused without being taken, even a schema-invalid one, so its owner's
    directive is still evaluated; ids under no agent's name stay first come, first served."""
    factory = make_factory(tmp_path)
    mallory, desk = agent_signer(factory.data_dir, "mallory"), agent_signer(factory.data_dir, "desk")
    for seq, squat in enumerate((raw({"directive_id": "desk-202611241230-BTC-buy"}), raw(directive("desk-202611241230-BTC-buy"))), 1):
        assert factory.evaluate_directives([(seq, squat, mallory.headers(Kind.DIRECTIVE, squat))]) == ["rejected"]
        v = last_verdict(factory)
        assert v.directive_id is None and v.agent == "mallory" and v.primary_reason == "agent"
        assert "reserved for agent desk" in failed(v)[0].reason
    mine = raw(directive("desk-202611241230-BTC-buy", notional_usd=10_000.0))
    assert factory.evaluate_directives([(3, mine, desk.headers(Kind.DIRECTIVE, mine))]) == ["staged"]
    # The longest name owns an id: `desk-ops-...` is desk-ops', not desk's.
    agent_signer(factory.data_dir, "desk-ops")
    theirs = raw(directive("desk-ops-1", notional_usd=1_000.0))
    assert factory.evaluate_directives([(4, theirs, desk.headers(Kind.DIRECTIVE, theirs))]) == ["rejected"]
    assert "reserved for agent desk-ops" in failed(last_verdict(factory))[0].reason
    # An id under nobody's name: the first to send it has it.
    free = raw(directive("free-form-id", notional_usd=1_000.0))
    assert factory.evaluate_directives([(5, free, mallory.headers(Kind.DIRECTIVE, free))]) == ["staged"]
    assert factory.evaluate_directives([(6, free, desk.headers(Kind.DIRECTIVE, free))]) == ["duplicate"]


def test_a_rotated_agents_old_key_cannot_spend_its_daily_budget(tmp_path):
    """Refusals for the signature (a retired or revoked key) take no id and are not counted against
    the agent's daily budget, in memory or when a restarted factory counts the day's evaluations."""
    factory = make_factory(tmp_path, mandates={"alpha": {"daily_directives": 2}})
    old = agent_signer(factory.data_dir, "alpha")
    new = AgentRegistry.open(factory.data_dir).rotate("alpha", [])
    fresh = Signer.of(new.signer, new.signing_key())
    for seq in range(1, 6):
        data = raw(directive(f"leaked-{seq}", notional_usd=100.0))
        assert factory.evaluate_directives([(seq, data, old.headers(Kind.DIRECTIVE, data))]) == ["rejected"]
    factory.load_state()  # as a restart does
    for seq, did in ((6, "alpha-1"), (7, "alpha-2")):
        data = raw(directive(did, notional_usd=100.0))
        assert factory.evaluate_directives([(seq, data, fresh.headers(Kind.DIRECTIVE, data))]) == ["staged"], last_verdict(factory)
    data = raw(directive("alpha-3", notional_usd=100.0))
    assert factory.evaluate_directives([(8, data, fresh.headers(Kind.DIRECTIVE, data))]) == ["rejected"]
    assert last_verdict(factory).primary_reason == "mandate_budget"
