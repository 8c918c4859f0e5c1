"""The factory's durable state: every evaluation, intention, decision, order, fill, the book.

SQLite under the data directory by default, PostgreSQL by URL (SQLAlchemy Core).
Uniqueness is enforced by the database, not by hope: one evaluation per stream
message, one non-duplicate evaluation per directive id, one order per directive,
one fill per fill id. Everything the factory publishes goes through the outbox
table in the same transaction as the state change it announces, so a crash
between the two publishes it after restart instead of losing it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from deskgate.bus.lease import LeaseLost
from deskgate.factory.tables import (  # noqa: F401 - re-exported: the tests read the tables through the store
    RESERVING_STATES,
    breaker_mirror,
    fence,
    decisions,
    equity_history,
    evaluations,
    fills,
    intentions,
    ledger_state,
    metadata,
    orders,
    outbox,
    refused_messages,
    signed_decisions,
)
from deskgate.migrations import open_store
from deskgate.storage import Checkpointer, utc


class DriverInsert:
    """An INSERT handed straight to the database driver, with the column types' own bind
    processing: on the directive path SQLAlchemy's per-statement bookkeeping cost more
    than the row (about 25 µs of ~60 per insert on SQLite). Same SQL, same stored values;
    rows are dicts keyed by column, as for `conn.execute(table.insert(), rows)`."""

    def __init__(self, engine, table: Table):
        dialect = engine.dialect
        self.columns = [c.name for c in table.columns]
        self._processors = [(c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in table.columns]
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in self.columns)
        style = dialect.paramstyle
        if style == "qmark":
            marks = ", ".join("?" for _ in self.columns)
        elif style == "format":
            marks = ", ".join("%s" for _ in self.columns)
        elif style == "pyformat":
            marks = ", ".join(f"%({c})s" for c in self.columns)
        elif style == "named":
            marks = ", ".join(f":{c}" for c in self.columns)
        else:
            raise ValueError(f"unsupported driver paramstyle {style!r}")
        self._named = style in ("pyformat", "named")
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"

    def run(self, conn: Connection, rows: list[dict]) -> None:
        params = []
        for row in rows:
            values = [(name, proc(row[name]) if proc is not None else row[name]) for name, proc in self._processors]
            params.append(dict(values) if self._named else tuple(v for _, v in values))
        conn.exec_driver_sql(self.sql, params if len(params) > 1 else params[0])


@dataclass
class Outgoing:
    id: int
    subject: str
    msg_id: str
    payload: bytes


class FactoryStore:
    def __init__(self, url: str, *, legacy_sqlite=None):
        """`legacy_sqlite`: with a PostgreSQL `url`, the desk's factory.db, carried in once if it
        has rows. Tables from before stores had schemas of their own (the URL's schema) are adopted."""
        self.engine = open_store(url, "factory", adopt_tables=metadata.tables, background_checkpoint=True,
                                 legacy_sqlite=legacy_sqlite, legacy_tables=metadata.tables.values())
        self._checkpointer = Checkpointer(self.engine).start()
        # Statements built once: the directive path runs them thousands of times a second.
        self._insert_evaluation = DriverInsert(self.engine, evaluations)
        self._insert_intention = DriverInsert(self.engine, intentions)
        self._insert_decision = DriverInsert(self.engine, decisions)
        self._insert_signed_decision = signed_decisions.insert()
        self._insert_order = orders.insert()
        self._select_intention = select(intentions).where(intentions.c.directive_id == bindparam("did"))
        self._intention_agent = select(intentions.c.agent).where(intentions.c.directive_id == bindparam("did"))
        self._move_intention = (
            update(intentions)
            .where(intentions.c.directive_id == bindparam("did"))
            .values(state=bindparam("state"), outcome_reason=bindparam("reason"), updated_at=bindparam("at"))
        )
        self._select_response = select(decisions.c.seq, decisions.c.approval_id).where(
            (decisions.c.seq == bindparam("seq")) | (decisions.c.approval_id == bindparam("approval_id"))
        )
        # Counted approvals, each with the signed decision it rests on (an order carries them all).
        self._select_approvals = (
            select(decisions, signed_decisions.c.signed)
            .join(signed_decisions, signed_decisions.c.approval_id == decisions.c.approval_id, isouter=True)
            .where(decisions.c.directive_id == bindparam("did"), decisions.c.decision == "approve", decisions.c.result == "counted")
            .order_by(decisions.c.seq)
        )
        self._insert_outbox = outbox.insert()
        self._raise_fence = update(fence).where(fence.c.name == "factory", fence.c.epoch <= bindparam("e")).values(epoch=bindparam("e"))
        self._select_seqs = select(evaluations.c.seq).where(evaluations.c.seq.in_(bindparam("seqs", expanding=True)))
        self._mark = update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True))).values(published=True)
        self._mark_verdicts = (
            update(evaluations).where(evaluations.c.seq.in_(bindparam("seqs", expanding=True))).values(published=True)
        )
        self._mark_staged = (
            update(intentions)
            .where(intentions.c.directive_id.in_(bindparam("ids", expanding=True)))
            .values(staged_published=True)
        )
        # One connection for the service's life: the factory is single-threaded and
        # checking a connection out of the pool per batch costs more than the batch.
        self._conn: Connection | None = None
        self._count_outbox()
        self._seed_fence()

    def _seed_fence(self) -> None:
        """The fence's one row, there before any factory writes: raising it is then one UPDATE that
        locks the row, with no race between two first writers (PostgreSQL locks no missing row)."""
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(fence.c.epoch).where(fence.c.name == "factory")).scalar() is None:
                    conn.execute(fence.insert().values(name="factory", epoch=0))
        except IntegrityError:
            pass  # another store made it first

    def fence_epoch(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(fence.c.epoch).where(fence.c.name == "factory")).scalar() or 0

    def _count_outbox(self) -> None:
        with self.engine.connect() as conn:
            self._next_outbox_id = (conn.execute(select(func.max(outbox.c.id))).scalar() or 0) + 1

    def take_over(self, epoch: int) -> None:
        """Write from now on under lease `epoch` (bus/lease.py), after whatever the last holder wrote."""
        self.epoch = epoch
        with self.begin():
            pass  # the fence: refused here, before anything, if a later holder has written
        self._count_outbox()

    @contextmanager
    def begin(self):
        """A transaction on the store's own connection; fenced by `epoch` when it is set."""
        if self._conn is None or self._conn.closed:
            self._conn = self.engine.connect()
        with self._conn.begin():
            # Without standbys this instance writes under epoch 0: a standby factory started beside
            # it by mistake makes its next transaction fail, and it stops.
            self._fence(self._conn, self.epoch if self.epoch is not None else 0)
            yield self._conn

    #: The lease epoch this instance writes under (bus/lease.py), or None without standbys.
    epoch: int | None = None

    def _fence(self, conn: Connection, epoch: int) -> None:
        """Raise the store's epoch to ours, or refuse the transaction if a later holder has written:
        a factory that lost its lease cannot write after the one that took it over."""
        if conn.execute(self._raise_fence, {"e": epoch}).rowcount:
            return
        stored = conn.execute(select(fence.c.epoch).where(fence.c.name == "factory")).scalar()
        if self.epoch is None:
            raise LeaseLost(f"a standby factory has written this store (lease epoch {stored}): a factory without "
                            "standby.enabled stops; set standby.enabled on every factory")
        raise LeaseLost(f"the store was written under lease epoch {stored}, later than ours ({epoch}): another factory is active")

    def connect(self):
        """A separate connection, for readers outside the service loop."""
        return self.engine.connect()

    def close(self) -> None:
        self._checkpointer.stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    # -- evaluations ----------------------------------------------------------

    def evaluated_seqs(self, conn: Connection, seqs: list[int]) -> set[int]:
        if not seqs:
            return set()
        return {r[0] for r in conn.execute(self._select_seqs, {"seqs": seqs})}

    def known_directive_ids(self, conn: Connection) -> set[str]:
        """Every directive id ever evaluated (the factory keeps them in memory to refuse repeats)."""
        rows = conn.execute(select(evaluations.c.directive_id).where(evaluations.c.directive_id.is_not(None), evaluations.c.decision != "duplicate"))
        return {r[0] for r in rows}

    def unpublished_verdicts(self, conn: Connection) -> list[tuple[int, str | None, bytes]]:
        rows = conn.execute(
            select(evaluations.c.seq, evaluations.c.directive_id, evaluations.c.verdict)
            .where(evaluations.c.published.is_(False))
            .order_by(evaluations.c.seq)
        )
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def unpublished_staged(self, conn: Connection) -> list[tuple[str, bytes]]:
        rows = conn.execute(
            select(intentions.c.directive_id, intentions.c.staged).where(intentions.c.staged_published.is_(False))
        )
        return [(r[0], bytes(r[1])) for r in rows]

    def mark_directives_published(self, conn: Connection, seqs: list[int], ids: list[str]) -> None:
        if seqs:
            conn.execute(self._mark_verdicts, {"seqs": seqs})
        if ids:
            conn.execute(self._mark_staged, {"ids": ids})

    def record_evaluations(self, conn: Connection, rows: list[dict]) -> None:
        if rows:
            self._insert_evaluation.run(conn, rows)

    def add_intentions(self, conn: Connection, rows: list[dict]) -> None:
        if rows:
            self._insert_intention.run(conn, rows)

    # -- intentions -----------------------------------------------------------

    def intention(self, conn: Connection, directive_id: str) -> dict | None:
        row = conn.execute(self._select_intention, {"did": directive_id}).mappings().first()
        return _utc_row(row) if row else None

    def set_intention_state(self, conn: Connection, directive_id: str, state: str, reason: str | None, at: datetime) -> str | None:
        """Move an intention; returns the agent that drafted it (for that agent's funnel)."""
        conn.execute(self._move_intention, {"did": directive_id, "state": str(state), "reason": reason, "at": at})
        return conn.execute(self._intention_agent, {"did": directive_id}).scalar()

    def reserving_intentions(self, conn: Connection) -> list[dict]:
        rows = conn.execute(select(intentions).where(intentions.c.state.in_(RESERVING_STATES))).mappings().all()
        out = [_utc_row(r) for r in rows]
        for r in out:
            if r["state"] == "ordered":  # part of it may have filled: only the rest is still reserved
                r["notional_usd"] = max(0.0, r["notional_usd"] - self.filled_notional(conn, r["directive_id"]))
        return [r for r in out if r["notional_usd"] > 0 or r["state"] != "ordered"]

    def held_intentions(self, conn: Connection) -> list[dict]:
        rows = conn.execute(select(intentions).where(intentions.c.state == "held").order_by(intentions.c.expires_at)).mappings().all()
        return [_utc_row(r) for r in rows]

    def expired_intentions(self, conn: Connection, now: datetime) -> list[str]:
        rows = conn.execute(
            select(intentions.c.directive_id).where(
                intentions.c.state.in_(("staged", "awaiting_second_approval", "held")), intentions.c.expires_at < now
            )
        ).all()
        return [r[0] for r in rows]

    # -- decisions ------------------------------------------------------------

    def response_seen(self, conn: Connection, seq: int, approval_id: str) -> str | None:
        """None if new; "redelivered" if this stream message was handled; "replayed" if its id was used."""
        rows = conn.execute(self._select_response, {"seq": seq, "approval_id": approval_id}).all()
        if not rows:
            return None
        return "redelivered" if any(r[0] == seq and r[1] == approval_id for r in rows) else "replayed"

    def add_decision(self, conn: Connection, **values: Any) -> None:
        self._insert_decision.run(conn, [values])

    def approvals_for(self, conn: Connection, directive_id: str) -> list[dict]:
        """Counted approvals in stream order; `signed` is the decision as signed (JSON), if kept."""
        rows = conn.execute(self._select_approvals, {"did": directive_id}).mappings().all()
        return [_utc_row(r) for r in rows]

    # -- orders and fills -----------------------------------------------------

    def add_signed_decision(self, conn: Connection, approval_id: str, directive_id: str, signed) -> None:
        conn.execute(self._insert_signed_decision, {"approval_id": approval_id, "directive_id": directive_id, "signed": signed.model_dump(mode="json")})

    def add_order(self, conn: Connection, order: dict, at: datetime) -> None:
        conn.execute(self._insert_order, {"order_id": order["order_id"], "directive_id": order["directive_id"], "order": order, "at": at})

    def order(self, conn: Connection, order_id: str) -> dict | None:
        row = conn.execute(select(orders.c.order).where(orders.c.order_id == order_id)).first()
        return row[0] if row else None

    def fill_seen(self, conn: Connection, fill_id: str) -> bool:
        return conn.execute(select(fills.c.fill_id).where(fills.c.fill_id == fill_id)).first() is not None

    def fills_of_order(self, conn: Connection, order_id: str) -> list[dict]:
        return [r[0] for r in conn.execute(select(fills.c.fill).where(fills.c.order_id == order_id)).all()]

    def filled_notional(self, conn: Connection, directive_id: str) -> float:
        """What the parts filled so far of a directive's order came to (a partly filled order reserves the rest)."""
        rows = conn.execute(select(fills.c.fill).where(fills.c.directive_id == directive_id)).all()
        return sum(r[0].get("notional_usd", 0.0) for r in rows if r[0].get("status") == "filled")

    def add_fill(self, conn: Connection, fill: dict, at: datetime) -> None:
        conn.execute(
            insert(fills).values(fill_id=fill["fill_id"], order_id=fill["order_id"], directive_id=fill["directive_id"], fill=fill, at=at)
        )

    # -- ledger, equity, breaker -----------------------------------------------

    def load_ledger(self, conn: Connection) -> dict | None:
        row = conn.execute(select(ledger_state.c.state).where(ledger_state.c.id == 1)).first()
        return row[0] if row else None

    def save_ledger(self, conn: Connection, state: dict, at: datetime) -> None:
        if conn.execute(select(ledger_state.c.id).where(ledger_state.c.id == 1)).first():
            conn.execute(update(ledger_state).where(ledger_state.c.id == 1).values(state=state, updated_at=at))
        else:
            conn.execute(insert(ledger_state).values(id=1, state=state, updated_at=at))

    def add_equity_point(self, conn: Connection, at: datetime, equity: float, cash: float, gross: float, drawdown: float) -> None:
        conn.execute(
            insert(equity_history).values(at=at, equity_usd=equity, cash_usd=cash, gross_exposure_usd=gross, drawdown_pct=drawdown)
        )

    def equity_points(self, conn: Connection) -> int:
        return conn.execute(select(func.count()).select_from(equity_history)).scalar_one()

    def load_breaker(self, conn: Connection) -> dict | None:
        row = conn.execute(select(breaker_mirror).where(breaker_mirror.c.id == 1)).mappings().first()
        return dict(row) if row else None

    def save_breaker(
        self, conn: Connection, tripped: bool, trip: dict | None, revision: int | None, reset_applied_for: int | None, at: datetime
    ) -> None:
        values = dict(tripped=tripped, trip=trip, trip_revision=revision, reset_applied_for=reset_applied_for, updated_at=at)
        if conn.execute(select(breaker_mirror.c.id).where(breaker_mirror.c.id == 1)).first():
            conn.execute(update(breaker_mirror).where(breaker_mirror.c.id == 1).values(**values))
        else:
            conn.execute(insert(breaker_mirror).values(id=1, **values))

    def refuse(self, conn: Connection, stream: str, seq: int, reason: str, payload: bytes, at: datetime) -> bool:
        """Keep a message we could not use, once; False if it was already kept."""
        if conn.execute(
            select(refused_messages.c.id).where(refused_messages.c.stream == stream, refused_messages.c.seq == seq)
        ).first():
            return False
        conn.execute(insert(refused_messages).values(stream=stream, seq=seq, reason=reason, payload=payload[:65536], at=at))
        return True

    # -- outbox ---------------------------------------------------------------

    def enqueue(self, conn: Connection, items: list[tuple[str, str, bytes]], at: datetime) -> list[Outgoing]:
        """Add messages to the outbox; ids are handed out here (the factory is the only writer)."""
        if not items:
            return []
        out = []
        for subject, msg_id, payload in items:
            out.append(Outgoing(self._next_outbox_id, subject, msg_id, payload))
            self._next_outbox_id += 1
        conn.execute(
            self._insert_outbox,
            [{"id": o.id, "subject": o.subject, "msg_id": o.msg_id, "payload": o.payload, "published": False, "at": at} for o in out],
        )
        return out

    def unpublished(self, conn: Connection, limit: int = 5000) -> list[Outgoing]:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.subject, outbox.c.msg_id, outbox.c.payload)
            .where(outbox.c.published.is_(False))
            .order_by(outbox.c.id)
            .limit(limit)
        ).all()
        return [Outgoing(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def mark_published(self, conn: Connection, ids: list[int]) -> None:
        if ids:
            conn.execute(self._mark, {"ids": ids})

    # -- the funnel -----------------------------------------------------------------

    def load_funnel(self, conn: Connection, counter) -> None:
        """Seed the funnel counters (the whole desk's and each agent's) from what is stored."""
        q = select(evaluations.c.decision, evaluations.c.primary_reason, evaluations.c.agent, func.count()).group_by(
            evaluations.c.decision, evaluations.c.primary_reason, evaluations.c.agent
        )
        for decision, reason, agent, n in conn.execute(q):
            counter.seed(decision, reason, agent, n)
        q = select(intentions.c.state, intentions.c.outcome_reason, intentions.c.agent, func.count()).group_by(
            intentions.c.state, intentions.c.outcome_reason, intentions.c.agent
        )
        for state, reason, agent, n in conn.execute(q):
            counter.seed_state(state, reason, agent, n)

    def drafts_since(self, conn: Connection, since: datetime) -> dict[str, int]:
        """Directives each agent had evaluated since `since`, as intake.DailyDrafts counts them: with
        an id (a refusal for the signature, e.g. by a retired or revoked key, takes none) and not repeated."""
        q = (
            select(evaluations.c.agent, func.count())
            .where(
                evaluations.c.agent.is_not(None), evaluations.c.directive_id.is_not(None),
                evaluations.c.decision != "duplicate", evaluations.c.at >= since,
            )
            .group_by(evaluations.c.agent)
        )
        return {agent: n for agent, n in conn.execute(q)}

    def max_evaluated_seq(self, conn: Connection) -> int:
        return conn.execute(select(func.max(evaluations.c.seq))).scalar() or 0

    def next_expiry(self, conn: Connection) -> datetime | None:
        return utc(
            conn.execute(
                select(func.min(intentions.c.expires_at)).where(intentions.c.state.in_(("staged", "awaiting_second_approval", "held")))
            ).scalar()
        )


def _utc_row(row) -> dict:
    out = dict(row)
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = utc(v)
    return out
