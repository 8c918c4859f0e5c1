"""A `Status` header a publisher stores with its message is never taken for the server's own.

nats-server answers a read with a status line (204 end of batch, 404 nothing, 503 no
responders), which nats-py hands over as a `Status` header; a stored message may carry
a `Status` header of its publisher's too. Taken at its word, one agent message with
`Status: 404` would end every read of its stream there, and one with `Status: 503` would
make every read fail; a directive carrying one would never be evaluated.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from conftest import directive, raw
from test_factory import make_mission, running

from deskgate.audit.signing import Kind
from deskgate.bus.reader import last_message, read_stream
from deskgate.domain.review import ReviewRequest

FORGED = ("204", "404", "408", "409", "503")


async def test_reads_go_past_stored_status_headers(bus):
    from deskgate.bus.subjects import Role

    agent, _ = await bus.connect(Role.AGENT)
    cc, _ = await bus.connect(Role.COMMAND_CENTER)
    try:
        js = agent.jetstream()
        for i, status in enumerate(FORGED):
            await js.publish("consciousness.insights.intraday", f"{i}".encode(), headers={"Status": status, "Description": "forged"})
        await js.publish("consciousness.insights.intraday", b"last")
        read = [m async for m in read_stream(cc, "INSIGHTS", "consciousness.insights.>", batch=2)]
        assert [m.data for m in read] == [b"0", b"1", b"2", b"3", b"4", b"last"]
        assert read[1].headers["Status"] == "404"  # kept as the publisher's header, for whoever reads it
        for status in FORGED:
            await js.publish("consciousness.insights.intraday", status.encode(), headers={"Status": status})
            newest = await last_message(cc, "INSIGHTS", "consciousness.insights.intraday")
            assert newest is not None and newest.data == status.encode()
        assert await last_message(cc, "INSIGHTS", "consciousness.insights.nothing") is None  # the server's own 404
    finally:
        await agent.close()
        await cc.close()


async def test_a_directive_with_a_status_header_is_evaluated_like_any_other(bus):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        payload = raw(directive("with-status", notional_usd=5_000))
        headers = {**agent.signer.headers(Kind.DIRECTIVE, payload), "Status": "408"}
        await agent.js.publish("consciousness.directives.BTC", payload, headers=headers)
        (v,) = await agent.submit_payloads([raw(directive("after-it", notional_usd=5_000))])
        assert v.decision == "staged"
        assert (await cc.item("with-status")).staged.directive.directive_id == "with-status"
        assert factory.funnel().received == 2


async def test_a_review_with_a_status_header_hides_none_after_it(bus):
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        for rid, status in (("rv-a", "404"), ("rv-b", "503"), ("rv-c", None)):
            req = ReviewRequest(review_id=rid, kind="drift", summary=f"look at {rid}", created_at=datetime.now(timezone.utc))
            data = req.to_bytes()
            headers = {**agent.signer.headers(Kind.REVIEW, data), **({"Status": status} if status else {})}
            await agent.js.publish(f"approvals.queue.review.{rid}", data, headers=headers)
        assert [r.request.review_id for r in await cc.reviews()] == ["rv-a", "rv-b", "rv-c"]


async def test_a_read_from_the_leader_gives_what_a_direct_get_gives_and_the_servers_own_fields(bus):
    """`current=True` reads `$JS.API.STREAM.MSG.GET`, whose answer holds the stored headers only:
    the stream, subject, sequence and time are the server's own fields, whatever headers of those
    names the publisher stored, exactly as a direct get presents them."""
    from deskgate.bus.reader import newest_accepted
    from deskgate.bus.subjects import Role

    agent, _ = await bus.connect(Role.AGENT)
    cc, _ = await bus.connect(Role.COMMAND_CENTER)
    try:
        js = agent.jetstream()
        forged = {"Nats-Sequence": "1", "Nats-Subject": "factory.status.portfolio", "Nats-Time-Stamp": "2000-01-01T00:00:00Z",
                  "Nats-Stream": "STATUS", "Status": "404", "Note": "kept"}
        acks = [await js.publish("consciousness.insights.intraday", f"{i}".encode(), headers=forged) for i in range(3)]
        await js.publish("consciousness.insights.morning_brief", b"")  # no headers, no data
        for subject in ("consciousness.insights.intraday", "consciousness.insights.morning_brief", "consciousness.insights.nothing"):
            assert await last_message(cc, "INSIGHTS", subject, current=True) == await last_message(cc, "INSIGHTS", subject)
        newest = await last_message(cc, "INSIGHTS", "consciousness.insights.intraday", current=True)
        assert newest.seq == acks[-1].seq and newest.headers["Nats-Sequence"] == str(acks[-1].seq)
        assert newest.subject == newest.headers["Nats-Subject"] == "consciousness.insights.intraday"
        assert newest.headers["Nats-Stream"] == "INSIGHTS" and newest.time == newest.headers["Nats-Time-Stamp"] != forged["Nats-Time-Stamp"]
        assert newest.headers["Note"] == "kept" and newest.data == b"2"
        # A batch of direct gets also says how many are left (Nats-Num-Pending, Nats-Last-Sequence); one message a request does not.
        whole = [dataclasses.replace(m, headers={k: v for k, v in m.headers.items() if k not in ("Nats-Num-Pending", "Nats-Last-Sequence")})
                 async for m in read_stream(cc, "INSIGHTS", "consciousness.insights.>")]
        assert [m async for m in read_stream(cc, "INSIGHTS", "consciousness.insights.>", current=True)] == whole
        assert [m async for m in read_stream(cc, "INSIGHTS", "consciousness.insights.intraday", start_seq=acks[1].seq, current=True)] == whole[1:3]
        # The walk back past refused ones, from the leader too.
        first = await newest_accepted(cc, "INSIGHTS", "consciousness.insights.intraday", lambda m: m if m.data == b"0" else None, window=1, current=True)
        assert first == (whole[0], 2)
    finally:
        await agent.close()
        await cc.close()
