"""Best-first recall search: FTS5's exact bm25 ranking over every match, read from the rank index."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from deskgate.memory import ranking
from deskgate.memory.store import FTS_DDL, Memory, metadata
from deskgate.storage import make_engine

T0 = datetime(2026, 11, 20, 5, 30, tzinfo=timezone.utc)


def _stored(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def fts5_best_first(path, query: str, *, since=None, until=None, kinds=None, limit=20) -> list[tuple[int, float]]:
    """What FTS5 ranks by itself, scoring every match: bm25, ties newest (highest id) first."""
    where, params = ["recall_fts MATCH ?"], [" ".join(f'"{w}"' for w in query.split())]
    if since is not None:
        where.append("r.at >= ?")
        params.append(_stored(since))
    if until is not None:
        where.append("r.at < ?")
        params.append(_stored(until))
    if kinds:
        where.append(f"r.kind IN ({','.join('?' * len(kinds))})")
        params += kinds
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT r.id, -bm25(recall_fts) FROM recall_fts JOIN recall r ON r.id = recall_fts.rowid "
            f"WHERE {' AND '.join(where)} ORDER BY bm25(recall_fts), r.id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()


def ranked(memory: Memory, query: str, **kw) -> list[tuple[int, float]]:
    return [(r.entry.id, r.score) for r in memory.rank(query, **kw)]


@pytest.fixture(autouse=True, params=[1, 10_000], ids=["indexed", "tail"])
def batch(request, monkeypatch):
    """Every test runs twice: with each entry indexed for ranking as it is written, and with all of them
    left in the tail that a search scores itself (writers index in batches of `ranking.BATCH`)."""
    monkeypatch.setattr(ranking, "BATCH", request.param)
    return request.param


@pytest.fixture
def path(tmp_path):
    return tmp_path / "memory.db"


def test_an_entry_that_says_it_more_densely_ranks_above_one_that_mentions_it_once(path):
    m = Memory.open(path)
    once = m.remember("observation", "BTC rallied while funding, basis, open interest and skew all moved overnight", at=T0)
    dense = m.remember("insight", "BTC funding: BTC basis wide, BTC skew bid", at=T0)
    short = m.remember("observation", "BTC quiet", at=T0)
    m.remember("observation", "ETH funding flat", at=T0)
    best = m.rank("btc")
    assert [r.entry.id for r in best] == [dense, short, once]
    assert [r.score for r in best] == sorted((r.score for r in best), reverse=True) and best[-1].score > 0
    assert ranked(m, "btc") == fts5_best_first(path, "btc")  # the very same scores FTS5 computes
    # Every word must appear; the rarer word weighs more.
    assert [r.entry.id for r in m.rank("btc funding")] == [dense, once]
    assert m.search("btc", order="relevance") == [r.entry for r in best]


def test_best_first_honours_the_date_and_kind_filters(path):
    m = Memory.open(path)
    ids = {}
    for day in range(40):
        for kind in ("observation", "outcome"):
            ids[day, kind] = m.remember(kind, f"SOL range {'SOL ' * (day % 3)}day {day}", at=T0 + timedelta(days=day, hours=3))
    m.remember("note", "SOL SOL SOL SOL late note about an early day", at=T0 - timedelta(days=30))
    since, until = T0 + timedelta(days=10), T0 + timedelta(days=12)
    got = m.rank("sol", since=since, until=until, kinds=["outcome"])
    assert sorted(r.entry.id for r in got) == [ids[10, "outcome"], ids[11, "outcome"]]
    assert ranked(m, "sol", since=since, until=until, kinds=["outcome"]) == fts5_best_first(
        path, "sol", since=since, until=until, kinds=["outcome"]
    )
    # A window spanning months, an open end, and the entry written late about an earlier day.
    for kw in ({"since": T0 + timedelta(days=20)}, {"until": T0 + timedelta(days=5)}, {"until": T0}, {"kinds": ["note"]}):
        assert ranked(m, "sol", **kw) == fts5_best_first(path, "sol", **kw), kw
    assert m.rank("sol", kinds=["gossip"]) == []
    assert m.rank("sol", since=T0 + timedelta(days=400)) == []


def test_ties_are_broken_newest_first_and_the_order_is_stable(path):
    m = Memory.open(path)
    ids = [m.remember("observation", "ETH volume twice its norm", at=T0 + timedelta(minutes=i)) for i in range(30)]
    late = m.remember("observation", "ETH volume twice its norm", at=T0 - timedelta(days=2))  # written last, about earlier
    first = m.rank("eth volume", limit=10)
    assert len({r.score for r in first}) == 1
    assert [r.entry.id for r in first] == [late, *ids[::-1][:9]]  # newest recorded (highest id) first
    assert m.rank("eth volume", limit=10) == first


def test_a_word_repeated_many_times_is_scored_from_the_text(path):
    m = Memory.open(path)
    for n in (1, 2, 5, 8, 9, 12, 30):
        m.remember("note", " ".join(["vol"] * n + ["spike", "in", "the", "tape"] * 3), at=T0)
        m.remember("note", " ".join(["vol"] * n + ["crush"]), at=T0)
    assert ranked(m, "vol", limit=14) == fts5_best_first(path, "vol", limit=14)
    assert ranked(m, "vol spike", limit=14) == fts5_best_first(path, "vol spike", limit=14)


def test_words_fts5_splits_or_folds_rank_as_fts5_ranks_them(path):
    m = Memory.open(path)
    for i, line in enumerate([
        "Café CAFE café crème", "cafe au lait", "naïve_x position", "naive x", "straße STRASSE", "x² and x",
        "日本 日本 円", "a_b a b a_b", "Ǖ ǖ u",
    ]):
        m.remember("observation", line, at=T0 + timedelta(minutes=i))
    reader = Memory.open(path, read_only=True)  # FTS5 tokenizes the query words in a temporary table, read-only too
    for q in ("cafe", "CAFÉ crème", "naïve_x", "a_b", "x", "日本", "ǖ", "_ cafe"):
        assert ranked(m, q) == fts5_best_first(path, q) == ranked(reader, q), q
    assert m.rank("_") == []  # a word FTS5 reads as no token at all


def test_the_rank_index_keeps_up_with_writes_and_counts(path):
    m = Memory.open(path)
    m.remember_many([{"at": T0, "kind": "observation", "text": f"BTC bar {i} {'funding ' * (i % 4)}"} for i in range(300)])
    before = ranked(m, "btc funding")
    assert before == fts5_best_first(path, "btc funding")
    # New entries change every word's entry count (idf) and the average length: scores follow at once.
    m.remember_many([{"at": T0, "kind": "observation", "text": "funding funding everywhere"} for _ in range(200)])
    m.remember("observation", "BTC funding", at=T0)
    after = ranked(m, "btc funding")
    assert after == fts5_best_first(path, "btc funding") and after != before
    reader = Memory.open(path, read_only=True)
    assert ranked(reader, "btc funding") == after


def test_an_old_memory_file_is_upgraded_in_place_without_losing_entries(tmp_path):
    path = tmp_path / "memory.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)  # the tables and full-text index as they were before the rank index
    with engine.begin() as conn:
        for ddl in FTS_DDL:
            conn.execute(text(ddl))
        for i in range(500):
            conn.execute(
                text("INSERT INTO recall(at, kind, text, ref, meta) VALUES (:at, :kind, :text, :ref, '{}')"),
                {"at": _stored(T0 + timedelta(hours=i)), "kind": ("observation", "outcome")[i % 2],
                 "text": f"ETH {'basis ' * (i % 5)}note {i}", "ref": f"bar:{i}"},
            )
    engine.dispose()
    with sqlite3.connect(path) as conn:
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'recall_rank'").fetchall()
    old_reader = Memory.open(path, read_only=True)  # a person looking in before any writer upgraded it
    assert ranked(old_reader, "eth basis", kinds=["outcome"]) == fts5_best_first(path, "eth basis", kinds=["outcome"])

    m = Memory.open(path, core_limits={"regime": 40})
    assert m.recall_count() == 500
    assert [e.ref for e in m.recent(3)] == ["bar:499", "bar:498", "bar:497"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT upto FROM recall_rank_state").fetchone() == (500,)
    for q, kw in (("eth basis", {}), ("eth", {"kinds": ["outcome"]}), ("basis", {"since": T0 + timedelta(days=3)})):
        assert ranked(m, q, **kw) == fts5_best_first(path, q, **kw)
    new = m.remember("outcome", "ETH basis basis basis basis basis", at=T0)
    assert m.rank("eth basis", limit=1)[0].entry.id == new
    assert Memory.open(path).recall_count() == 501  # opening again changes nothing


def test_ranking_arithmetic_matches_fts5_internals():
    assert ranking.varints(bytes.fromhex("bd8440")) == [1_000_000]
    assert ranking.varints(b"\x81\x00\x05") == [128, 5]
    assert ranking.key_id(ranking.rank_key(17, 42)) == 42 and ranking.key_length(ranking.rank_key(17, 42)) == 17
    assert ranking.rank_key(3, 10) < ranking.rank_key(3, 9) < ranking.rank_key(4, 1_000)  # shorter, then newer, first
    assert ranking.idf(10, 9) == 1e-6  # a word in most entries still counts, barely
    assert ranking.months("202611", "202602") == [] and ranking.months("202611", "202702") == [
        "202611", "202612", "202701", "202702"]
    # A short window is narrowed by the days stored in it, a longer one by month, a very long one not at all.
    assert ranking.when(["2026-11-30", "2026-12-01"]) == ["d20261130", "d20261201"]
    days = [f"2026-{m:02d}-{d:02d}" for m in (10, 11) for d in range(25, 29)]
    assert ranking.when(days) == ["m202610", "m202611"]
    assert ranking.when(["2020-01-01", *days]) is None


WORDS = ["btc", "BTC", "eth", "vol", "funding", "Café", "cafe", "naïve", "x_y", "a"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    entries=st.lists(
        st.tuples(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12),
                  st.sampled_from(["observation", "outcome", "note"]), st.integers(0, 24 * 120)),
        min_size=1, max_size=60,
    ),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    window=st.one_of(st.none(), st.tuples(st.integers(0, 24 * 120), st.integers(1, 24 * 90))),
    kinds=st.one_of(st.none(), st.lists(st.sampled_from(["observation", "outcome", "note"]), min_size=1, max_size=2)),
    limit=st.integers(1, 12),
)
def test_best_first_is_fts5_bm25_over_every_match(tmp_path_factory, entries, query, window, kinds, limit):
    path = tmp_path_factory.mktemp("m") / "memory.db"
    m = Memory.open(path)
    m.remember_many([{"at": T0 + timedelta(hours=h), "kind": kind, "text": " ".join(words)} for words, kind, h in entries])
    kw = {"kinds": kinds, "limit": limit}
    if window:
        kw["since"] = T0 + timedelta(hours=window[0])
        kw["until"] = kw["since"] + timedelta(hours=window[1])
    q = " ".join(query)
    assert ranked(m, q, **kw) == fts5_best_first(path, q, **kw)


def test_a_rank_index_of_another_version_is_rebuilt_on_open(path):
    m = Memory.open(path)
    m.remember_many([{"at": T0, "kind": "note", "text": f"SOL {'funding ' * (i % 3)}{i}"} for i in range(50)])
    expected = ranked(m, "sol funding")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE recall_rank_state SET version = version + 1")
    assert ranked(Memory.open(path, read_only=True), "sol funding") == expected  # not trusted: FTS5 ranks instead
    Memory.open(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT upto, version FROM recall_rank_state").fetchone() == (50, ranking.VERSION)
        assert conn.execute("SELECT entries FROM recall_terms WHERE term = 'sol'").fetchone() == (50,)  # counted once
    assert ranked(Memory.open(path), "sol funding") == expected


def test_a_tail_too_long_to_score_is_ranked_by_fts5(path, monkeypatch):
    m = Memory.open(path)
    m.remember_many([{"at": T0, "kind": "note", "text": f"XRP {'basis ' * (i % 4)}{i}"} for i in range(40)])
    monkeypatch.setattr(ranking, "MAX_TAIL", 3)
    assert ranked(m, "xrp basis") == fts5_best_first(path, "xrp basis")
