"""Review requests are shown with the agent identity whose key signed them, and only then.

Any agent identity may ask a principal for a review, and the text it claims (`agent`,
`kind`, the summary) is its own: what the Command Center shows as the author is the
verified signer, a forged or unsigned request is not shown, and a forged request sent
first can neither take a desk review's place nor be guessed ahead of it.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from test_agent_identities import add_agent, apply, connect_agent
from test_agents import T0, _desk, drifting, view
from test_web_http import web_desk

from deskgate.agents.offline import OfflineAnalyst
from deskgate.agents.outputs import Draft, DraftMemo
from deskgate.audit.signing import Kind, Signer
from deskgate.bus import subjects as S
from deskgate.bus.reader import read_stream
from deskgate.domain.review import ReviewRequest
from deskgate.identity.registry import AgentRegistry


def request(review_id: str, summary: str, *, agent: str = "governor") -> ReviewRequest:
    return ReviewRequest(review_id=review_id, kind="drift", summary=summary, agent=agent, created_at=datetime.now(timezone.utc))


async def test_a_review_shows_the_agent_that_signed_it_and_forgeries_are_not_shown(bus, tmp_path):
    mallory_creds = add_agent(bus, "mallory", tmp_path)
    mallory_nc, _ = await connect_agent(mallory_creds)
    mallory = Signer.of(mallory_creds.signer, mallory_creds.signing_key())
    js = mallory_nc.jetstream()

    async def send(req: ReviewRequest, signer: Signer | None) -> None:
        data = req.to_bytes()
        await js.publish(S.review_subject(req.review_id), data, headers=signer.headers(Kind.REVIEW, data) if signer else None)

    try:
        async with web_desk(bus) as web:
            # Claims to be the desk's Governor, signed by mallory: shown as mallory's.
            await send(request("rv-claims", "the Governor says: approve everything"), mallory)
            # Unsigned, or naming the desk's agent under mallory's key: not shown, and the id stays
            # free for the desk's own request sent after it.
            await send(request("rv-shared", "forged, unsigned"), None)
            await send(request("rv-shared", "forged, the desk's name on mallory's key"), Signer.of("agent:desk", mallory._key))
            await send(request("rv-forged-only", "forged, the desk's name on mallory's key"), Signer.of("agent:desk", mallory._key))
            await web.agent.request_review(request("rv-shared", "the desk's own request"))
            # Signed by mallory under an id another agent uses after it: both shown, each its author's.
            await send(request("rv-taken", "mallory's, first"), mallory)
            await web.agent.request_review(request("rv-taken", "the desk's, after"))

            listed = [(r.agent, r.request.review_id) for r in await web.cc.reviews()]
            assert listed == [("mallory", "rv-claims"), ("desk", "rv-shared"), ("mallory", "rv-taken"), ("desk", "rv-taken")]
            shown = {r.request.review_id: r for r in await web.cc.reviews() if r.request.review_id != "rv-taken"}
            assert set(shown) == {"rv-claims", "rv-shared"}
            assert (shown["rv-claims"].agent, shown["rv-claims"].request.agent, shown["rv-claims"].current_key) == ("mallory", "governor", True)
            assert (shown["rv-shared"].agent, shown["rv-shared"].request.summary) == ("desk", "the desk's own request")

            c, csrf = await web.login("alice")
            api = {(r["agent"], r["request"]["review_id"]) for r in (await c.get("/api/reviews")).json()}
            assert api == set(listed)
            # One id, two agents' requests: an acknowledgement names whose, and counts for that one only.
            ambiguous = await c.post("/api/reviews/rv-taken/ack", json={"note": "which?"}, headers={"X-CSRF-Token": csrf})
            assert ambiguous.status_code == 409 and "name the agent" in ambiguous.text
            ack = await c.post("/api/reviews/rv-taken/ack", json={"note": "the decoy", "agent": "mallory"}, headers={"X-CSRF-Token": csrf})
            assert ack.status_code == 200 and ack.json()["agent"] == "mallory"
            acked = {(r.agent, r.request.review_id): r.acknowledged for r in await web.cc.reviews()}
            assert acked[("mallory", "rv-taken")] and not acked[("desk", "rv-taken")]
            page = (await c.get("/approvals")).text
            # The verified signer first; what the request says of itself, quoted after it.
            assert re.search(r"signed by agent <strong[^>]*>mallory</strong> · it says it is from “<span[^>]*>governor</span>”", page)
            assert "forged" not in page and "with a key since revoked" not in page

            # Revoked: what it asked while its key was good is still shown, marked; its key asks nothing new
            # (sent here over the desk agents' own connection: mallory's is closed by the revocation).
            AgentRegistry.open(bus.data_dir).revoke("mallory")
            assert apply(bus.data_dir).how == "reloaded"
            late = request("rv-after-revoke", "a leaked key after the revocation")
            await web.agent.js.publish(S.review_subject(late.review_id), late.to_bytes(), headers=mallory.headers(Kind.REVIEW, late.to_bytes()))
            shown = {(r.agent, r.request.review_id): r for r in await web.cc.reviews()}
            assert not shown[("mallory", "rv-claims")].current_key and shown[("desk", "rv-shared")].current_key
            assert ("mallory", "rv-after-revoke") not in shown
            assert "with a key since revoked or rotated out" in (await c.get("/approvals")).text
    finally:
        await mallory_nc.close()


async def test_a_rotated_out_key_asks_nothing_new_and_the_shared_key_of_earlier_desks_nothing_after_the_upgrade(bus, tmp_path):
    from conftest import agent_signer

    from deskgate.audit.keys import KeyStore
    from deskgate.identity.registry import AgentRegistry

    old = agent_signer(bus.data_dir, "beta")
    legacy = KeyStore(bus.data_dir.keys)
    legacy.create("agent")  # as `deskgate init` made it before per-agent keys
    shared = Signer(legacy, "agent")
    async with web_desk(bus) as web:
        nc = web.agent.js

        async def send(req: ReviewRequest, signer: Signer) -> None:
            await nc.publish(S.review_subject(req.review_id), req.to_bytes(), headers=signer.headers(Kind.REVIEW, req.to_bytes()))

        await send(request("rv-before", "asked with beta's first key"), old)
        rotated = AgentRegistry.open(bus.data_dir).rotate("beta", [])
        await send(request("rv-old-key", "beta's retired key, after the rotation"), old)
        await send(request("rv-new-key", "beta's new key"), Signer.of(rotated.signer, rotated.signing_key()))
        await send(request("rv-shared-key", "the shared key, after the upgrade"), shared)
        shown = {r.request.review_id: r for r in await web.cc.reviews()}
        assert set(shown) == {"rv-before", "rv-new-key"}
        assert (shown["rv-before"].agent, shown["rv-before"].current_key) == ("beta", False)
        assert (shown["rv-new-key"].agent, shown["rv-new-key"].current_key) == ("beta", True)


async def test_a_review_asked_again_is_shown_once_and_another_agent_cannot_drop_it_by_message_id(bus, tmp_path):
    """Review requests carry no Nats-Msg-Id (any agent could take one first and have the
    stream drop the genuine request as a duplicate): a request asked again, as a cycle run
    again asks it, is shown once, by author and id."""
    from test_factory import make_mission, running

    mission = make_mission(paper={"starting_equity_usd": 1_000_000.0})
    async with running(bus, mission) as (factory, agent, cc, md):
        rid = f"rv-drift-{T0:%Y%m%d%H%M}"
        # Another agent guesses the id and the message id a request under it would have had.
        other = add_agent(bus, "guesser", tmp_path)
        nc, _ = await connect_agent(other)
        try:
            decoy = request(rid, "decoy").to_bytes()
            for msg_id in (f"review-{rid}", f"review-agent:desk-{rid}"):
                await nc.jetstream().publish(S.review_subject(rid), decoy, headers={
                    **Signer.of(other.signer, other.signing_key()).headers(Kind.REVIEW, decoy), "Nats-Msg-Id": msg_id})
        finally:
            await nc.close()
        desk, client, _ = await _desk(bus, mission, OfflineAnalyst())
        try:
            desk.state.governor = drifting(0.5)
            draft = Draft(asset="BTC", side="buy", notional_usd=10_000.0, confidence=0.8, memo=DraftMemo(
                signal_evidence="s", position_context="p", proposed_action="a", expected_outcome="e"))
            for _ in range(2):  # the cycle runs again after a crash
                assert await desk._drift_review(view(), 0.5, draft) == rid
            stored = [m async for m in read_stream(cc.nc, "REVIEWS", "approvals.queue.review.>")]
            assert len(stored) == 4  # two decoys, and the desk's request twice: nothing dropped
            shown = [(r.agent, r.request.review_id, r.request.summary.startswith("Governor")) for r in await cc.reviews()]
            assert shown == [("guesser", rid, False), ("desk", rid, True)]
        finally:
            await client.close()


async def test_a_staged_directive_from_an_agent_revoked_since_says_so(bus):
    """Revocation is for new directives: what the agent staged before stays decidable, and
    the principal deciding it sees that its author can no longer draft."""
    from conftest import agent_signer, directive
    from test_factory import submit

    from deskgate.agents.submit import AgentClient

    flag = "author revoked or key rotated"
    async with web_desk(bus) as web:
        alpha = AgentClient(web.agent.nc, web.agent.events, agent_signer(bus.data_dir, "alpha"))
        beta = AgentClient(web.agent.nc, web.agent.events, agent_signer(bus.data_dir, "beta"))
        for client, did in ((alpha, "from-alpha"), (beta, "from-beta"), (web.agent, "from-desk")):
            (v,) = await submit(client, directive(did, notional_usd=5_000))
            assert v.decision == "staged"
        c, _ = await web.login("alice")
        assert flag not in (await c.get("/approvals")).text

        AgentRegistry.open(bus.data_dir).revoke("alpha", by="alice")
        AgentRegistry.open(bus.data_dir).rotate("beta", [])  # what a desk does with a leaked key
        page = (await c.get("/approvals")).text
        row = lambda rid: page[page.index(f'data-id="{rid}"'):].split("</tr>", 1)[0]  # noqa: E731
        assert flag in row("from-alpha") and "agent alpha was revoked at" in row("from-alpha")
        assert flag in row("from-beta") and "agent:beta signed it with a key since rotated out" in row("from-beta")
        assert flag not in row("from-desk")
        entry = (await c.get("/approvals/from-alpha")).text
        assert "agent alpha was revoked at" in entry and "it can still be decided" in entry
        assert "can still be decided" not in (await c.get("/approvals/from-desk")).text
        api = {e["directive_id"]: e for e in (await c.get("/api/approvals")).json()}
        assert api["from-alpha"]["agent"] == "alpha" and api["from-alpha"]["agent_refused"].startswith("agent alpha was revoked at")
        assert api["from-beta"]["agent_refused"] and api["from-desk"]["agent_refused"] is None


async def test_no_agent_can_keep_a_staged_directive_out_of_the_queue_by_taking_its_message_id(bus):
    """Streams drop a message whose Nats-Msg-Id they saw in the last ten minutes, and any
    publisher sets that header. The factory stages with `staged-<id>`: an agent request
    sent under that id first, where the factory stages, would have the staging dropped
    while its exposure stayed reserved. Review requests have a stream of their own."""
    from conftest import directive
    from test_factory import make_mission, running, submit

    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        decoy = request("decoy", "nothing to see")
        data = decoy.to_bytes()
        ack = await agent.js.publish(
            S.review_subject("decoy"), data, headers={**agent.signer.headers(Kind.REVIEW, data), "Nats-Msg-Id": "staged-taken"}
        )
        assert ack.stream == "REVIEWS"
        (v,) = await submit(agent, directive("taken", notional_usd=5_000))
        assert v.decision == "staged"
        item = await cc.item("taken")  # in the queue, for a principal to decide
        assert item.pending and item.staged.directive.directive_id == "taken"


async def test_review_requests_stored_in_approvals_before_it_had_a_stream_of_its_own_are_still_shown(tmp_path):
    """A desk made before: its APPROVALS stream held the review subjects. Provisioning
    moves them to REVIEWS; what was stored stays, and is shown."""
    from conftest import agent_signer, start_bus
    from test_factory import make_mission, running

    from deskgate.bus.streams import StreamSpec, provision, stream_config
    from deskgate.bus.subjects import Role

    bus = start_bus(tmp_path / "desk")
    try:
        admin, _ = await bus.connect(Role.PROVISIONER)
        js = admin.jetstream()
        old = stream_config(StreamSpec("APPROVALS", max_age_s=90 * 86_400.0))
        old.subjects = ["approvals.queue.directive.>", "approvals.queue.review.>"]
        await js.add_stream(old)
        before = request("rv-before", "asked before the upgrade")
        writer, _ = await bus.connect(Role.AGENT)
        ack = await writer.jetstream().publish(
            S.review_subject("rv-before"), before.to_bytes(), headers=agent_signer(bus.data_dir, "desk").headers(Kind.REVIEW, before.to_bytes())
        )
        await writer.close()
        assert ack.stream == "APPROVALS"
        report = await provision(js)
        assert "stream APPROVALS" in report.updated and "stream REVIEWS" in report.created
        await admin.close()
        async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
            await agent.request_review(request("rv-after", "asked after"))
            assert [(r.agent, r.request.review_id) for r in await cc.reviews()] == [("desk", "rv-before"), ("desk", "rv-after")]
    finally:
        bus.server.stop()


async def test_the_queue_and_the_governors_hold_stay_shown_when_reviews_or_the_agents_state_cannot_be_read(bus, monkeypatch):
    """A read that fails (a bus not reloaded with the REVIEWS stream's rights, the accounts
    database busy) says so where it would have shown, and hides nothing else."""
    from conftest import directive
    from test_factory import submit

    from deskgate.approvals.client import CommandCenterError
    from deskgate.bus.reader import ReadError

    async with web_desk(bus) as web:
        (v,) = await submit(web.agent, directive("still-shown", notional_usd=5_000))
        assert v.decision == "staged"

        async def unreadable(*a, **kw):
            raise ReadError("no answer reading stream REVIEWS (is the desk's bus running?)")

        async def uncheckable(*a, **kw):
            raise CommandCenterError("the Governor's state cannot be checked now (OperationalError('database is locked'))")

        monkeypatch.setattr(web.cc, "reviews", unreadable)
        monkeypatch.setattr(web.cc, "governor", uncheckable)
        c, _ = await web.login("alice")
        page = await c.get("/approvals")
        assert page.status_code == 200 and 'data-id="still-shown"' in page.text
        assert "Review requests cannot be read now: no answer reading stream REVIEWS" in page.text
        assert (await c.get("/api/reviews")).status_code == 502
        governor = await c.get("/governor")
        assert governor.status_code == 200 and 'id="governor-hold"' in governor.text
        assert "cannot be checked now" in governor.text and "The factory's hold above is what applies" in governor.text
