"""The factory's tables: what `FactoryStore` (factory/store.py) reads and writes.

One evaluation per stream message, one non-duplicate evaluation per directive id, one
order per directive, one fill per fill id: the database enforces each of them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
)

metadata = MetaData()

# The tables as the code reads them. The database's schema follows them through Alembic
# revisions (migrations/versions/factory_*.py): a change here needs a new revision there.

evaluations = Table(
    "evaluations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # DIRECTIVES stream sequence
    Column("directive_id", String(64), nullable=True),
    Column("decision", String(16), nullable=False),  # staged | rejected | duplicate
    Column("primary_reason", String(32), nullable=True),
    # The PolicyVerdict exactly as published on factory.status.policy.<id>.
    Column("verdict", LargeBinary, nullable=False),
    Column("published", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # The agent whose key verified the signature (PolicyVerdict.agent); None: nobody's.
    Column("agent", String(64), nullable=True),
)
Index("evaluations_unpublished", evaluations.c.seq, sqlite_where=evaluations.c.published.is_(False), postgresql_where=evaluations.c.published.is_(False))
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
RESERVING_STATES = ("staged", "awaiting_second_approval", "held", "ordered")

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
    # The StagedDirective exactly as published on approvals.queue.directive.<id>.
    Column("staged", LargeBinary, nullable=False),
    Column("staged_published", Boolean, nullable=False),
    Column("outcome_reason", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The agent that drafted it: the one whose current key signed it (factory/authors.py).
    Column("agent", String(64), nullable=True),
)
Index("intentions_state_expiry", intentions.c.state, intentions.c.expires_at)
Index(
    "intentions_unpublished",
    intentions.c.directive_id,
    sqlite_where=intentions.c.staged_published.is_(False),
    postgresql_where=intentions.c.staged_published.is_(False),
)

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

# Each counted approval exactly as its principal signed it: the order carries these
# to the executor, which fills only what verifies back to them.
signed_decisions = Table(
    "signed_decisions",
    metadata,
    Column("approval_id", String(128), primary_key=True),
    Column("directive_id", String(64), nullable=False, index=True),
    Column("signed", JSON, nullable=False),
)

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


# The epoch of the factory instance that last wrote (bus/lease.py): with standbys, every
# transaction raises it to its own or finds a larger one and is refused (FactoryStore.begin).
fence = Table(
    "fence",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)
