"""Memory after Letta: core blocks with limits, recall and archival search, persistence, context within a budget."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_postgres import pg_url  # noqa: F401 - the fixture: a fresh schema on the machine's PostgreSQL

from deskgate.memory.context import assemble, tokens
from deskgate.memory.store import Memory, MemoryError_, fts_query
from deskgate.migrations import open_store

T0 = datetime(2026, 11, 20, 5, 30, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def memory(request, tmp_path):
    """The same memory on its SQLite file and on PostgreSQL (storage.url: words through postings)."""
    if request.param == "sqlite":
        return Memory.open(tmp_path / "memory.db", core_limits={"desk_state": 60, "regime": 40})
    return Memory(open_store(request.getfixturevalue("pg_url"), "memory"), core_limits={"desk_state": 60, "regime": 40})


def test_core_blocks_are_edited_by_append_replace_and_rethink_within_their_limits(memory):
    memory.core_append("regime", "low vol")
    memory.core_append("regime", "BTC trending")
    assert memory.block("regime").value == "low vol\nBTC trending"
    memory.core_replace("regime", "low vol", "high vol")
    assert memory.block("regime").value == "high vol\nBTC trending"
    with pytest.raises(MemoryError_, match="over its limit of 40"):
        memory.core_append("regime", "x" * 30)
    assert memory.block("regime").value == "high vol\nBTC trending"  # nothing changed
    with pytest.raises(MemoryError_, match="does not occur"):
        memory.core_replace("regime", "sideways", "up")
    memory.core_append("regime", "vol")
    with pytest.raises(MemoryError_, match="occurs 2 times"):
        memory.core_replace("regime", "vol", "VOL")
    memory.core_rethink("regime", "calm")
    assert memory.block("regime").value == "calm" and memory.block("regime").version == 5
    with pytest.raises(MemoryError_, match="no core memory block"):
        memory.core_append("nope", "x")
    ops = [h["op"] for h in memory.core_history("regime")]
    assert ops == ["rethink", "append", "replace", "append", "append"]  # every edit kept, newest first


def test_recall_search_by_words_dates_and_kinds(memory):
    memory.remember("observation", "BTC realised vol doubled overnight", at=T0, ref="bar:BTC:1")
    memory.remember("observation", "ETH volume twice its norm", at=T0 + timedelta(days=1))
    memory.remember("insight", "BTC vol regime shifted to high", at=T0 + timedelta(days=2))
    memory.remember("outcome", "d-7 executed: BTC buy 10,000 USD", at=T0 + timedelta(days=3))
    assert [e.kind for e in memory.search("btc vol")] == ["insight", "observation"]  # newest first, every word
    assert [e.text for e in memory.search("BTC", kinds=["outcome"])] == ["d-7 executed: BTC buy 10,000 USD"]
    assert len(memory.search("BTC", since=T0 + timedelta(days=1))) == 2
    assert len(memory.search("BTC", until=T0 + timedelta(days=1))) == 1
    assert memory.search("BTC vol")[1].ref == "bar:BTC:1"
    # Entries written out of time order (a late observation about an earlier bar) are still found by date.
    memory.remember("observation", "BTC late print", at=T0 - timedelta(days=10))
    assert [e.text for e in memory.search("BTC", until=T0)] == ["BTC late print"]
    assert memory.search("BTC", since=T0 + timedelta(days=30)) == []
    # Operators and stray quotes are only words: never a syntax error, never a different query.
    assert memory.search('BTC" OR "ETH') == []
    assert memory.search("vol* NOT ETH") == []
    with pytest.raises(MemoryError_, match="nothing to search"):
        memory.search('" * -')
    assert fts_query('a"b') == '"a" "b"'


def test_archival_documents_with_tags(memory):
    memory.archive("EOD review 2026-11-20", "BTC long closed +1.2%; slippage 3 bps against 5 modelled", ["eod", "review"], at=T0)
    memory.archive("Regime note", "Volatility regime turned high after CPI", ["regime"], at=T0)
    assert [d.title for d in memory.archival_search("slippage")] == ["EOD review 2026-11-20"]
    assert [d.title for d in memory.archival_search(tags=["regime"])] == ["Regime note"]
    assert memory.archival_search("slippage", tags=["regime"]) == []
    with pytest.raises(MemoryError_, match="tags"):
        memory.archive("t", "x", ["not a tag!"])


def test_memory_survives_a_restart(tmp_path):
    m = Memory.open(tmp_path / "memory.db")
    m.core_append("hypotheses", "ETH mean-reverts after volume spikes")
    m.remember("observation", "overnight: SOL range 4% wider than usual", at=T0)
    m.archive("EOD review", "quiet day", ["eod"])
    m.engine.dispose()
    again = Memory.open(tmp_path / "memory.db")
    assert again.block("hypotheses").value == "ETH mean-reverts after volume spikes"
    assert again.search("SOL range")[0].at == T0
    assert again.archival_search(tags=["eod"])[0].text == "quiet day"


def test_context_fits_the_budget_and_summarises_what_does_not(memory):
    memory.core_append("desk_state", "flat; equity 1,000,000")
    for i in range(50):
        memory.remember("observation", f"observation number {i}: BTC moved {i / 10:.1f}% " + "detail " * 10, at=T0 + timedelta(minutes=i))
    ctx = assemble(memory, budget=600)
    assert ctx.tokens <= 600
    assert ctx.included and ctx.summarised
    assert sorted(ctx.included + ctx.summarised) == list(range(1, 51))  # every entry shown or summarised
    summary = memory.search("older entries not shown", kinds=["summary"])[0]
    assert summary.id == ctx.summary_id and f"#{min(ctx.summarised)}..#{max(ctx.summarised)}" in summary.text
    assert "observation number 49" in ctx.text and "flat; equity" in ctx.text
    with pytest.raises(ValueError, match="over the budget"):
        assemble(memory, budget=50)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(sizes=st.lists(st.integers(1, 400), min_size=0, max_size=40), budget=st.integers(260, 3000))
def test_context_never_exceeds_the_budget_and_never_silently_drops(tmp_path_factory, sizes, budget):
    m = Memory.open(tmp_path_factory.mktemp("m") / "memory.db", core_limits={"desk_state": 100})
    for i, n in enumerate(sizes):
        m.remember("note", "w" * n, at=T0 + timedelta(seconds=i))
    ctx = assemble(m, budget=budget)
    assert ctx.tokens <= budget
    assert sorted(ctx.included + ctx.summarised) == list(range(1, len(sizes) + 1))
    assert (ctx.summary_id is not None) == bool(ctx.summarised)
    assert tokens(ctx.text) == ctx.tokens


WORDS = ["btc", "eth", "sol", "funding", "breaker", "drawdown", "regime", "fill", "slippage", "volatility"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    entries=st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=60), max_size=40),
    focus=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
    budget=st.integers(300, 2000),
    window=st.integers(1, 30),
    relevant=st.integers(0, 10),
)
def test_context_with_relevant_entries_still_fits_and_drops_nothing_silently(tmp_path_factory, entries, focus, budget, window, relevant):
    m = Memory.open(tmp_path_factory.mktemp("m") / "memory.db", core_limits={"desk_state": 100})
    for i, words in enumerate(entries):
        m.remember("note", " ".join(words), at=T0 + timedelta(seconds=i))
    ctx = assemble(m, budget=budget, window=window, focus=" ".join(focus), relevant=relevant)
    assert ctx.tokens <= budget and tokens(ctx.text) == ctx.tokens
    in_window = set(range(max(1, len(entries) - window + 1), len(entries) + 1))
    assert in_window <= set(ctx.included) | set(ctx.summarised)
    assert not set(ctx.included) & set(ctx.summarised) and len(ctx.included) == len(set(ctx.included))
    for i in ctx.included:
        assert f"[#{i} " in ctx.text


def test_a_person_can_look_inside_with_the_cli(tmp_path):
    import json
    import subprocess
    import sys

    from deskgate.paths import DataDir

    root = DataDir.at(tmp_path / "desk").ensure()
    m = Memory.open(root.memory_db)
    m.core_append("regime", "high vol since CPI")
    m.remember("observation", "BTC realised vol doubled overnight", at=T0)
    m.remember("observation", "ETH quiet", at=T0 + timedelta(days=2))
    m.archive("EOD review 2026-11-20", "BTC long closed +1.2%", ["eod"], at=T0)

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "deskgate", "memory", *args, "--data-dir", str(root.root)],
                             capture_output=True, timeout=60)
        return out

    core = json.loads(run("core", "--json").stdout)
    assert {b["label"]: b["value"] for b in core}["regime"] == "high vol since CPI"
    found = json.loads(run("search", "btc vol", "--until", "2026-11-21", "--json").stdout)
    assert [e["text"] for e in found] == ["BTC realised vol doubled overnight"]
    assert json.loads(run("search", "ETH", "--since", "2026-11-23", "--json").stdout) == []
    docs = json.loads(run("archival", "--tag", "eod", "--json").stdout)
    assert docs[0]["title"] == "EOD review 2026-11-20"
    bad = run("search", "btc", "--since", "yesterday")
    assert bad.returncode == 2 and b"not a date" in bad.stderr


def test_odd_input_gets_a_clear_error_and_the_cli_never_changes_memory(tmp_path, monkeypatch):
    m = Memory.open(tmp_path / "memory.db", core_limits={"regime": 40})
    with pytest.raises(MemoryError_, match="unknown recall kind"):
        m.remember("gossip", "x")
    with pytest.raises(MemoryError_, match="not a tag"):
        m.archival_search(tags=["%"])
    with pytest.raises(MemoryError_, match="out of range"):
        m.search("x", until=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))
    m.remember("note", "[/x] [red]markup[/red] stays text", at=T0)
    # A naive time is UTC, whatever the machine's zone.
    monkeypatch.setenv("TZ", "America/New_York")
    __import__("time").tzset()
    assert [e.text for e in m.search("markup", since=datetime(2026, 11, 20, 5, 0))] == ["[/x] [red]markup[/red] stays text"]
    monkeypatch.delenv("TZ")
    __import__("time").tzset()
    ro = Memory.open(tmp_path / "memory.db", read_only=True)
    assert {b.label: b.limit for b in ro.core()} == {"regime": 40}  # no defaults added, limits kept
    assert Memory.open(tmp_path / "memory.db").block("regime").limit == 40  # a writer without limits keeps them too


def test_summaries_do_not_pile_up_across_contexts(memory):
    for i in range(40):
        memory.remember("observation", f"obs {i} " + "x" * 80, at=T0 + timedelta(minutes=i))
    first = assemble(memory, budget=400)
    second = assemble(memory, budget=400)
    assert first.included == second.included  # the first summary did not push real entries out
    assert second.summary_id != first.summary_id and first.summary_id not in second.included


def test_postgresql_ranks_and_finds_recall_exactly_as_fts5_does(tmp_path, pg_url):  # noqa: F811
    """bm25 from the postings (pg_words.py) against FTS5's own: the same entries, in the same
    order, with the same scores, for queries of common and rare words, with filters."""
    import random

    rng = random.Random(7)
    vocab = ["btc", "eth", "sol", "funding", "basis", "drawdown", "breaker", "correlation", "vol", "régime", "Carry", "liquidity"]
    sqlite_memory = Memory.open(tmp_path / "memory.db")
    pg_memory = Memory(open_store(pg_url, "memory"))
    kinds = ["observation", "insight", "outcome"]
    rows = [
        {"at": T0 + timedelta(minutes=7 * i), "kind": kinds[i % 3], "text": " ".join(rng.choices(vocab, k=rng.randint(1, 14)))}
        for i in range(400)
    ]
    # Long entries of a word in most entries: bm25's idf is clamped to 1e-6, scores are tiny and close.
    rows += [{"at": T0 + timedelta(days=5, minutes=i), "kind": "note", "text": "btc " + " ".join(["filler"] * (1000 + i))} for i in range(3)]
    for m in (sqlite_memory, pg_memory):
        m.remember_many(rows[:250])
        for r in rows[250:]:
            m.remember(r["kind"], r["text"], at=r["at"])
    queries = [rng.sample(vocab, k) for k in (1, 1, 1, 2, 2, 2, 3)] + [["regime"], ["CARRY", "btc"], ["nowhere"], ["btc"], ["filler", "btc"]]
    for words in queries:
        q = " ".join(words)
        for filters in ({}, {"kinds": ["insight"]}, {"since": T0 + timedelta(hours=10), "until": T0 + timedelta(hours=30)}, {"kinds": ["note"]}):
            a, b = sqlite_memory.rank(q, limit=60, **filters), pg_memory.rank(q, limit=60, **filters)
            assert [r.entry.id for r in a] == [r.entry.id for r in b], (q, filters)
            assert [r.score for r in b] == pytest.approx([r.score for r in a], rel=1e-9)
            newest = sqlite_memory.search(q, limit=40, **filters)
            assert [e.id for e in newest] == [e.id for e in pg_memory.search(q, limit=40, **filters)]
