"""Cassettes: a day drafted by a model, recorded, then re-run offline without the model: the same directives."""

from __future__ import annotations

import json

import pytest
from llm_server import LocalLLM, Script
from test_factory import running
from test_replay import desk_mission

from deskgate.agents.cassette import Cassette, CassetteMismatch
from deskgate.agents.llm import LLMAnalyst
from deskgate.bus.reader import read_stream
from deskgate.config import ModelSettings
from deskgate.replay import REPLAY_START, Replay

pytestmark = pytest.mark.slow


async def _day(root, mission, analyst, start=REPLAY_START):
    """One replayed day on a desk of its own; the directives and verdicts it left on the bus."""
    from conftest import provision_bus, start_bus

    bus = start_bus(root)
    try:
        await provision_bus(bus)
        async with running(bus, mission, prices={}) as (factory, agent, cc, md):
            r = await Replay(mission, bus.data_dir, analyst, days=1, start=start).run()
        nc, _ = await bus.connect("observer")
        try:
            kept = [(m.subject, m.data) async for m in read_stream(nc, "DIRECTIVES", "consciousness.directives.>")]
            kept += [(m.subject, m.data) async for m in read_stream(nc, "STATUS", "factory.status.policy.>")]
        finally:
            await nc.close()
    finally:
        bus.server.stop()
    return r, kept


async def test_a_recorded_day_plays_back_without_the_model_and_sends_the_same_directives(tmp_path, monkeypatch):
    monkeypatch.setenv("DESKGATE_TEST_LLM_KEY", "sk-local-test")
    mission = desk_mission(clock="market")
    settings = ModelSettings(provider="openai-compatible", name="local-scripted", base_url="http://placeholder/v1",
                             api_key_env="DESKGATE_TEST_LLM_KEY", output_retries=2)
    tape = tmp_path / "day.cassette.jsonl"
    with LocalLLM(Script(invalid_first=set())) as llm:
        live = settings.model_copy(update={"base_url": llm.base_url})
        recorded, kept = await _day(tmp_path / "recorded", mission, LLMAnalyst(live, cassette=Cassette.record(tape, live.model_dump(mode="json"))))
        asked = len(llm.script.requests)
    assert asked > 0 and recorded.counts["submitted"] > 0
    lines = tape.read_text().splitlines()
    assert json.loads(lines[0])["model"]["name"] == "local-scripted" and len(lines) > 1
    # The server is gone: the cassette answers, and the desk does exactly what it did.
    cassette = Cassette.replay(tape)
    played, again = await _day(tmp_path / "played", mission, LLMAnalyst(ModelSettings.model_validate(cassette.model), cassette=cassette))
    cassette.finished()
    assert again == kept and played.counts == recorded.counts
    assert cassette.position == len(lines) - 1
    # Another day is another set of prompts: refused at the first call, saying why.
    other = Cassette.replay(tape)
    with pytest.raises(CassetteMismatch, match=r"call 1 of .*day\.cassette\.jsonl \(\w+\): this run's prompt differs"):
        await _day(tmp_path / "other", mission, LLMAnalyst(ModelSettings.model_validate(other.model), cassette=other),
                   start=REPLAY_START.replace(day=REPLAY_START.day + 7))


def test_a_file_that_is_not_a_cassette_is_refused_by_name(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    with pytest.raises(CassetteMismatch, match="notes.txt is not a cassette: line 1 is not JSON"):
        Cassette.replay(bad)
    with pytest.raises(CassetteMismatch, match="cannot read the cassette"):
        Cassette.replay(tmp_path / "missing.jsonl")
