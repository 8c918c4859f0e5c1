"""The factory's durable state: every evaluation, intention, decision, order, fill, the book.

SQLite under the data directory by default, PostgreSQL by URL (SQLAlchemy Core).
Uniqueness is enforced by the database, not by hope: one evaluation per stream
message, one non-duplicate evaluation per directive id, one order per directive,
one fill per fill id. Everything the factory publishes goes through the outbox
table in the same transaction as the state change it announces, so a crash
between the two publishes it after restart instead of losing it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from deskgate.storage import make_engine, utc

metadata = MetaData()

evaluations = Table(
    "evaluations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # DIRECTIVES stream sequence
    Column("directive_id", String(64), nullable=True),
    Column("decision", String(16), nullable=False),  # staged | rejected | duplicate
    Column("primary_reason", String(32), nullable=True),
    Column("evaluation", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index(
    "evaluations_one_per_directive",
    evaluations.c.directive_id,
    unique=True,
    sqlite_where=evaluations.c.decision != "duplicate",
    postgresql_where=evaluations.c.decision != "duplicate",
)

# States of an intention: staged -> (awaiting_second_approval) -> ordered -> executed,
# or -> rejected | expired | invalidated | venue_rejected. Staged, awaiting and
# ordered reserve exposure.
RESERVING_STATES = ("staged", "awaiting_second_approval", "ordered")

intentions = Table(
    "intentions",
    metadata,
    Column("directive_id", String(64), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("notional_usd", Float, nullable=False),
    Column("explicit", Boolean, nullable=False),
    Column("four_eyes", Boolean, nullable=False),
    Column("price_at_staging", Float, nullable=False),
    Column("staged_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("staged", JSON, nullable=False),  # the StagedDirective as published
    Column("outcome_reason", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("intentions_state", intentions.c.state)

decisions = Table(
    "decisions",
    metadata,
    Column("approval_id", String(128), primary_key=True),
    Column("seq", Integer, nullable=False),  # RESPONSES stream sequence
    Column("directive_id", String(64), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("batch_id", String(128), nullable=True),
    Column("result", String(32), nullable=False),  # what the factory made of it
    Column("result_reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("decisions_by_directive", decisions.c.directive_id)
Index("decisions_seq", decisions.c.seq, unique=True)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(80), primary_key=True),
    Column("directive_id", String(64), nullable=False, unique=True),
    Column("order", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

fills = Table(
    "fills",
    metadata,
    Column("fill_id", String(96), primary_key=True),
    Column("order_id", String(80), nullable=False),
    Column("directive_id", String(64), nullable=False),
    Column("fill", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

ledger_state = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("state", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

equity_history = Table(
    "equity_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("equity_usd", Float, nullable=False),
    Column("cash_usd", Float, nullable=False),
    Column("gross_exposure_usd", Float, nullable=False),
    Column("drawdown_pct", Float, nullable=False),
)

breaker_mirror = Table(
    "breaker",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tripped", Boolean, nullable=False),
    Column("trip", JSON, nullable=True),
    Column("trip_revision", Integer, nullable=True),
    # The trip revision whose reset has been applied (peak re-based), so it is applied once.
    Column("reset_applied_for", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

refused_messages = Table(
    "refused_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("refused_once", refused_messages.c.stream, refused_messages.c.seq, unique=True)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(256), nullable=False),
    Column("msg_id", String(160), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("published", Boolean, nullable=False, default=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("outbox_unpublished", outbox.c.id, sqlite_where=outbox.c.published.is_(False), postgresql_where=outbox.c.published.is_(False))


@dataclass
class Outgoing:
    id: int
    subject: str
    msg_id: str
    payload: bytes


class FactoryStore:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        metadata.create_all(self.engine)

    def begin(self):
        return self.engine.begin()

    def connect(self):
        return self.engine.connect()

    # -- evaluations ----------------------------------------------------------

    def seq_evaluated(self, conn: Connection, seq: int) -> bool:
        return conn.execute(select(evaluations.c.seq).where(evaluations.c.seq == seq)).first() is not None

    def directive_known(self, conn: Connection, directive_id: str) -> bool:
        row = conn.execute(
            select(evaluations.c.seq).where(evaluations.c.directive_id == directive_id, evaluations.c.decision != "duplicate")
        ).first()
        return row is not None

    def record_evaluation(
        self, conn: Connection, seq: int, directive_id: str | None, decision: str, primary: str | None, evaluation: dict, at: datetime
    ) -> None:
        conn.execute(
            insert(evaluations).values(
                seq=seq, directive_id=directive_id, decision=decision, primary_reason=primary, evaluation=evaluation, at=at
            )
        )

    def evaluation_of(self, conn: Connection, directive_id: str) -> dict | None:
        row = conn.execute(
            select(evaluations.c.evaluation).where(evaluations.c.directive_id == directive_id, evaluations.c.decision != "duplicate")
        ).first()
        return row[0] if row else None

    # -- intentions -----------------------------------------------------------

    def add_intention(self, conn: Connection, **values: Any) -> None:
        conn.execute(insert(intentions).values(**values))

    def intention(self, conn: Connection, directive_id: str) -> dict | None:
        row = conn.execute(select(intentions).where(intentions.c.directive_id == directive_id)).mappings().first()
        return _utc_row(row) if row else None

    def set_intention_state(self, conn: Connection, directive_id: str, state: str, reason: str | None, at: datetime) -> None:
        conn.execute(
            update(intentions)
            .where(intentions.c.directive_id == directive_id)
            .values(state=state, outcome_reason=reason, updated_at=at)
        )

    def reserving_intentions(self, conn: Connection) -> list[dict]:
        rows = conn.execute(select(intentions).where(intentions.c.state.in_(RESERVING_STATES))).mappings().all()
        return [_utc_row(r) for r in rows]

    def expired_intentions(self, conn: Connection, now: datetime) -> list[str]:
        rows = conn.execute(
            select(intentions.c.directive_id).where(
                intentions.c.state.in_(("staged", "awaiting_second_approval")), intentions.c.expires_at < now
            )
        ).all()
        return [r[0] for r in rows]

    # -- decisions ------------------------------------------------------------

    def response_seen(self, conn: Connection, seq: int, approval_id: str) -> bool:
        row = conn.execute(
            select(decisions.c.approval_id).where((decisions.c.seq == seq) | (decisions.c.approval_id == approval_id))
        ).first()
        return row is not None

    def add_decision(self, conn: Connection, **values: Any) -> None:
        conn.execute(insert(decisions).values(**values))

    def approvals_for(self, conn: Connection, directive_id: str) -> list[dict]:
        rows = conn.execute(
            select(decisions)
            .where(decisions.c.directive_id == directive_id, decisions.c.decision == "approve", decisions.c.result == "counted")
            .order_by(decisions.c.seq)
        ).mappings().all()
        return [_utc_row(r) for r in rows]

    # -- orders and fills -----------------------------------------------------

    def add_order(self, conn: Connection, order: dict, at: datetime) -> None:
        conn.execute(insert(orders).values(order_id=order["order_id"], directive_id=order["directive_id"], order=order, at=at))

    def order(self, conn: Connection, order_id: str) -> dict | None:
        row = conn.execute(select(orders.c.order).where(orders.c.order_id == order_id)).first()
        return row[0] if row else None

    def fill_seen(self, conn: Connection, fill_id: str) -> bool:
        return conn.execute(select(fills.c.fill_id).where(fills.c.fill_id == fill_id)).first() is not None

    def add_fill(self, conn: Connection, fill: dict, at: datetime) -> None:
        conn.execute(
            insert(fills).values(fill_id=fill["fill_id"], order_id=fill["order_id"], directive_id=fill["directive_id"], fill=fill, at=at)
        )

    def recent_fills(self, conn: Connection, limit: int = 50) -> list[dict]:
        rows = conn.execute(select(fills.c.fill).order_by(fills.c.at.desc()).limit(limit)).all()
        return [r[0] for r in rows]

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

    def prune_outbox(self, conn: Connection, before: datetime) -> None:
        from sqlalchemy import delete

        conn.execute(delete(outbox).where(outbox.c.published.is_(True), outbox.c.at < before))

    # -- outbox ---------------------------------------------------------------

    def enqueue(self, conn: Connection, items: list[tuple[str, str, bytes]], at: datetime) -> None:
        if items:
            conn.execute(
                insert(outbox),
                [{"subject": s, "msg_id": m, "payload": p, "published": False, "at": at} for s, m, p in items],
            )

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
            conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published=True))

    # -- the funnel -----------------------------------------------------------

    def funnel_counts(self, conn: Connection, since: datetime | None = None) -> dict:
        q = select(evaluations.c.decision, evaluations.c.primary_reason, func.count()).group_by(
            evaluations.c.decision, evaluations.c.primary_reason
        )
        if since is not None:
            q = q.where(evaluations.c.at >= since)
        out: dict = {
            "received": 0,
            "duplicates": 0,
            "staged": 0,
            "policy_rejected": 0,
            "policy_rejections_by_reason": Counter(),
        }
        for decision, reason, n in conn.execute(q):
            out["received"] += n
            if decision == "duplicate":
                out["duplicates"] += n
            elif decision == "staged":
                out["staged"] += n
            else:
                out["policy_rejected"] += n
                out["policy_rejections_by_reason"][reason or "unknown"] += n
        iq = select(intentions.c.state, intentions.c.outcome_reason, func.count()).group_by(
            intentions.c.state, intentions.c.outcome_reason
        )
        if since is not None:
            iq = iq.where(intentions.c.staged_at >= since)
        states: Counter = Counter()
        invalid: Counter = Counter()
        human: Counter = Counter()
        for state, reason, n in conn.execute(iq):
            states[state] += n
            if state == "invalidated":
                invalid[_reason_key(reason)] += n
            if state == "rejected":
                human[(reason or "no reason given").strip()[:80]] += n
        out.update(
            approved=states["ordered"] + states["executed"] + states["venue_rejected"] + states["invalidated"],
            human_rejected=states["rejected"],
            human_rejections_by_reason=human,
            ordered=states["ordered"] + states["executed"] + states["venue_rejected"],
            executed=states["executed"],
            venue_rejected=states["venue_rejected"],
            invalidated=states["invalidated"],
            invalidations_by_reason=invalid,
            expired=states["expired"],
            pending=states["staged"] + states["awaiting_second_approval"],
        )
        return out


def _reason_key(reason: str | None) -> str:
    """Invalidation reasons start with a check name or a short code before ':'."""
    if not reason:
        return "unknown"
    return reason.split(":", 1)[0].strip()[:40]


def _utc_row(row) -> dict:
    out = dict(row)
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = utc(v)
    return out


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()
