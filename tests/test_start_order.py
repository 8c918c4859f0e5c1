"""Two races the suite met under load: a port picked for nats-server taken before it bound it,
and a verdict stored before the staged item it announces."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import directive
from deskgate.bus import server as bus_server
from deskgate.bus.credentials import active_agents, ensure_credentials
from deskgate.bus.server import BusError, lost_port_race, start_nats
from deskgate.factory.outbox import FLUSH_BATCH, Pending, PendingKind, batch_end
from deskgate.paths import DataDir
from test_factory import make_mission, running, submit

TAKEN = '[FTL] Error listening on port: 127.0.0.1:35391, "listen tcp 127.0.0.1:35391: bind: address already in use"'


def test_a_port_taken_meanwhile_is_a_race_lost_unless_the_caller_named_it():
    assert lost_port_race("nats-server exited with code 1; see log:\n" + TAKEN, 0)
    assert lost_port_race(TAKEN, 4223)  # the caller named another port: the taken one was ours
    assert not lost_port_race(TAKEN, 35391)
    assert not lost_port_race("nats-server exited with code 1; see log:\n[FTL] bad config", 0)
    assert not lost_port_race(TAKEN.replace("35391", "353910"), 353910)
    assert lost_port_race(TAKEN.replace("35391", "353910"), 35391)  # a prefix is not the port


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_nats_server_picks_new_ports_when_one_it_picked_is_taken(tmp_path, monkeypatch):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    squatter = _listener()
    picks = iter([squatter.getsockname()[1]])
    real = bus_server.free_port
    monkeypatch.setattr(bus_server, "free_port", lambda host="127.0.0.1": next(picks, None) or real(host))
    try:
        server = start_nats(data_dir, ensure_credentials(data_dir), active_agents(data_dir))
        try:
            assert server.alive() and not server.url.endswith(f":{squatter.getsockname()[1]}")
            assert "address already in use" in data_dir.nats_log.read_text()  # it did meet the taken port
        finally:
            server.stop()
    finally:
        squatter.close()


def test_a_port_the_caller_named_and_is_taken_fails_at_once_with_the_reason(tmp_path):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    squatter = _listener()
    port = squatter.getsockname()[1]
    try:
        with pytest.raises(BusError, match="address already in use"):
            start_nats(data_dir, ensure_credentials(data_dir), active_agents(data_dir), port=port)
        assert data_dir.nats_log.read_text().count("address already in use") == 1  # not retried
    finally:
        squatter.close()


def test_a_monitor_port_answered_by_another_nats_server_is_not_taken_for_ours(tmp_path, monkeypatch):
    """A port picked as free can become another nats-server's monitor port before ours binds
    it: that server's "healthy" must not be read as ours (which has exited)."""
    first_dir = DataDir.at(tmp_path / "first").ensure()
    first = start_nats(first_dir, ensure_credentials(first_dir), active_agents(first_dir))
    try:
        picks = iter([0, int(first.monitor_url.rsplit(":", 1)[1])])  # the client port, then the monitor's
        real = bus_server.free_port
        monkeypatch.setattr(bus_server, "free_port", lambda host="127.0.0.1": next(picks, 0) or real(host))
        second_dir = DataDir.at(tmp_path / "second").ensure()
        second = start_nats(second_dir, ensure_credentials(second_dir), active_agents(second_dir))
        try:
            assert second.alive() and second.monitor_url != first.monitor_url
            with urllib.request.urlopen(second.monitor_url + "/varz", timeout=5) as resp:
                assert json.loads(resp.read())["port"] == int(second.url.rsplit(":", 1)[1])
        finally:
            second.stop()
    finally:
        first.stop()


def test_an_earlier_runs_port_error_in_the_log_is_not_read_as_this_ones(tmp_path, monkeypatch):
    data_dir = DataDir.at(tmp_path / "desk").ensure()
    data_dir.nats_log.write_text(TAKEN + "\n")
    data_dir.jetstream.parent.mkdir(parents=True, exist_ok=True)
    data_dir.jetstream.write_text("not a directory")  # a real failure, not a port race
    launches = []
    real = bus_server.launch
    monkeypatch.setattr(bus_server, "launch", lambda *a, **k: launches.append(1) or real(*a, **k))
    with pytest.raises(BusError) as failed:
        start_nats(data_dir, ensure_credentials(data_dir), active_agents(data_dir))
    assert len(launches) == 1 and "35391" not in str(failed.value)


def _pending(kind: PendingKind, i: int) -> Pending:
    return Pending(kind, i, f"s.{i}", f"m-{i}", b"")


@given(st.lists(st.sampled_from(list(PendingKind)), max_size=2 * FLUSH_BATCH + 5))
def test_a_batch_never_sends_anything_after_staged_items_in_the_same_round(kinds):
    outgoing = [_pending(k, i) for i, k in enumerate(kinds)]
    sent = 0
    while outgoing[sent:]:
        n = batch_end(outgoing[sent:])
        batch = outgoing[sent : sent + n]
        assert 1 <= n <= FLUSH_BATCH
        assert not any(a.kind is PendingKind.STAGED and b.kind is not PendingKind.STAGED for a, b in zip(batch, batch[1:]))
        rest = outgoing[sent + n :]
        # as large as it may be: it stops only at the limit or where staged items end
        assert not rest or n == FLUSH_BATCH or (batch[-1].kind is PendingKind.STAGED and rest[0].kind is not PendingKind.STAGED)
        sent += n
    assert sent == len(outgoing)


async def test_every_staged_item_is_stored_before_its_verdict_is_sent(bus, monkeypatch):
    """Each publish round is acknowledged before the next is sent; a verdict saying "staged"
    must never share a round with, or precede, the staged item it announces."""
    async with running(bus, make_mission(), executor=False) as (factory, agent, cc, _):
        rounds: list[list[str]] = []
        publisher = factory.outbox.publisher
        real = publisher.publish_all

        async def recording(items):
            rounds.append([subject for subject, *_ in items])
            return await real(items)

        monkeypatch.setattr(publisher, "publish_all", recording)
        verdicts = await submit(agent, *[directive(f"o{i}", notional_usd=1_000) for i in range(12)])
        assert [v.decision for v in verdicts] == ["staged"] * 12
        for i in range(12):
            assert (await cc.item(f"o{i}")).pending
        staged_round = {s.rsplit(".", 1)[-1]: n for n, r in enumerate(rounds) for s in r if s.startswith("approvals.queue.directive.")}
        verdict_round = {s.rsplit(".", 1)[-1]: n for n, r in enumerate(rounds) for s in r if s.startswith("factory.status.policy.")}
        assert set(staged_round) == {f"o{i}" for i in range(12)}
        assert all(staged_round[d] < verdict_round[d] for d in staged_round)
