"""The executor's own record: every order it answered or sent, and every fill it owes
the factory, so a crash or a redelivery can never answer twice or send twice.

An order for a real venue is written here (state "sending", attempts counted) before
each send, so a restart knows the order may be at the venue and looks it up by its
client id before anything else.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text, func, inspect, insert, select, update
from sqlalchemy.engine import Engine

from deskgate.bus.lease import LeaseLost
from deskgate.domain.execution import Fill, Order
from deskgate.execution.reports import Answered
from deskgate.execution.venue import OrderTicket
from deskgate.migrations import open_store, upgrade

metadata = MetaData()
# One row per order the executor took on: how far it got at the venue.
venue_orders = Table(
    "venue_orders",
    metadata,
    Column("order_id", String(80), primary_key=True),
    Column("directive_id", String(64), nullable=False, index=True),
    # True for an order taken on for its directive (an approval is used once); False for
    # one answered only with the executor's refusal of its chain.
    Column("answers_directive", Boolean, nullable=False),
    Column("venue", String(32), nullable=False),
    Column("client_id", String(40), nullable=False),
    Column("order", JSON, nullable=False),
    Column("ticket", JSON),  # None: answered without sending (refused, or a local venue)
    Column("state", String(16), nullable=False),  # sending | open | ended
    Column("attempts", Integer, nullable=False, default=0),  # sends begun: at most one, ever
    Column("send_started_at", DateTime(timezone=True)),  # wall clock, when the one send began
    # Where it was sent (sandbox or live, and the REST base): never followed anywhere else.
    Column("endpoint", String(300), nullable=False, default=""),
    Column("answered", JSON, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# Every fill owed to the factory, kept until published (and after, for redelivery).
order_fills = Table(
    "order_fills",
    metadata,
    Column("fill_id", String(96), primary_key=True),
    Column("order_id", String(80), nullable=False, index=True),
    Column("fill", JSON, nullable=False),
    Column("rank", Integer, nullable=False),  # the order's fills in the order they were answered
    Column("published", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
refused_orders = Table(
    "refused_orders",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
# The lease epoch of the executor that last wrote (bus/lease.py): with standbys, each
# transaction raises it to its own or is refused (migrations/versions/executor_0002_fence.py).
fence = Table(
    "fence",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)
# Before venues: one answer per order. Read once at start and carried into the tables above.
_legacy_filled = Table(
    "filled_orders",
    MetaData(),
    Column("order_id", String(80), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("fill", JSON, nullable=False),
    Column("published", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


class ExecutionStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        upgrade(engine, "executor")
        self._carry_legacy()

    #: The lease epoch this instance writes under (bus/lease.py), or None without standbys.
    epoch: int | None = None

    @contextmanager
    def begin(self):
        """A writing transaction, fenced by `epoch` when it is set: an executor that lost its lease
        finds a later holder's epoch here and is refused before it writes (or sends) anything.
        Reads use plain connections: what a stale holder reads changes nothing."""
        with self.engine.begin() as conn:
            # Without standbys this instance writes under epoch 0: once a standby executor has
            # written (started beside it, by mistake), this one is refused at its next transaction.
            epoch = self.epoch if self.epoch is not None else 0
            raised = conn.execute(update(fence).where(fence.c.name == "executor", fence.c.epoch <= epoch).values(epoch=epoch)).rowcount
            if not raised:
                stored = conn.execute(select(fence.c.epoch).where(fence.c.name == "executor")).scalar()
                if self.epoch is None:
                    raise LeaseLost(f"a standby executor has written this store (lease epoch {stored}): an executor without "
                                    "standby.enabled stops; set standby.enabled on every executor")
                raise LeaseLost(f"the executor's store was written under lease epoch {stored}, later than ours "
                                f"({self.epoch}): another executor is active")
            yield conn

    def take_over(self, epoch: int) -> None:
        """Write from now on under lease `epoch`, after whatever the last holder wrote."""
        self.epoch = epoch
        with self.begin():
            pass  # the fence: refused here, before anything, if a later holder has written

    def fence_epoch(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(fence.c.epoch).where(fence.c.name == "executor")).scalar() or 0

    @classmethod
    def open(cls, data_dir, url: str | None = None) -> ExecutionStore:
        """The executor's store: its SQLite file, or its schema of the shared PostgreSQL (a
        desk whose executor kept a file before has its record carried over once)."""
        path = data_dir.state / "executor.db"
        url = url or data_dir.storage_url()
        if url is None:
            return cls(open_store(f"sqlite:///{path}", "executor"))
        if path.exists():  # a file from before venues folds its answers in first, so they are carried too
            cls(open_store(f"sqlite:///{path}", "executor")).engine.dispose()
        return cls(open_store(url, "executor", legacy_sqlite=path, legacy_tables=metadata.tables.values()))

    def _carry_legacy(self) -> None:
        """A data directory from before venues keeps every answer it gave."""
        if not inspect(self.engine).has_table("filled_orders"):
            return
        with self.begin() as conn:
            for order_id, seq, data, published, at in conn.execute(select(_legacy_filled)).all():
                if conn.execute(select(venue_orders.c.order_id).where(venue_orders.c.order_id == order_id)).first():
                    continue
                fill = Fill.model_validate(data)
                conn.execute(
                    insert(venue_orders).values(
                        order_id=order_id, directive_id=fill.directive_id, answers_directive=not fill.reason.startswith("refused by the executor"), venue=fill.venue, client_id="", order={}, ticket=None,
                        state="ended", attempts=0, answered=asdict(Answered(count=1, ended=True)), seq=seq, sent_at=at, updated_at=at,
                    )
                )
                conn.execute(insert(order_fills).values(fill_id=fill.fill_id, order_id=order_id, fill=data, rank=0, published=published, at=at))
            _legacy_filled.drop(conn)

    # -- orders ---------------------------------------------------------------

    def known(self, order_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(venue_orders.c.order_id).where(venue_orders.c.order_id == order_id)).first() is not None

    def answered_as(self, directive_id: str) -> str | None:
        """The order id a directive was already answered under, if any."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(venue_orders.c.order_id).where(venue_orders.c.directive_id == directive_id, venue_orders.c.answers_directive.is_(True))
            ).scalar()

    def take_on(
        self, conn, order: Order, seq: int, client_id: str, ticket: OrderTicket | None, state: str, now: datetime, *,
        answers_directive: bool = True, endpoint: str = "",
    ) -> None:
        conn.execute(
            insert(venue_orders).values(
                order_id=order.order_id, directive_id=order.directive_id, answers_directive=answers_directive, venue=order.venue,
                client_id=client_id, endpoint=endpoint,
                order=order.model_dump(mode="json"), ticket=None if ticket is None else ticket.model_dump(mode="json"),
                state=state, attempts=0, answered=asdict(Answered()), seq=seq, sent_at=now, updated_at=now,
            )
        )

    def begin_send(self, order_id: str, now: datetime) -> None:
        """Record the one send before it happens: after a crash, the order is only ever looked up."""
        with self.begin() as conn:
            done = conn.execute(
                update(venue_orders)
                .where(venue_orders.c.order_id == order_id, venue_orders.c.attempts == 0)
                .values(attempts=1, send_started_at=now, updated_at=now)
            ).rowcount
        if done != 1:
            raise RuntimeError(f"order {order_id} was already sent once; it is never sent twice")

    def set_ticket(self, order_id: str, ticket: OrderTicket) -> None:
        with self.begin() as conn:
            conn.execute(update(venue_orders).where(venue_orders.c.order_id == order_id).values(ticket=ticket.model_dump(mode="json")))

    def record(self, conn, order_id: str, fills: list[Fill], answered: Answered, state: str, now: datetime) -> None:
        """New fills and the order's account, in the caller's transaction."""
        rank = conn.execute(select(func.count()).select_from(order_fills).where(order_fills.c.order_id == order_id)).scalar_one()
        for i, fill in enumerate(fills):
            conn.execute(
                insert(order_fills).values(
                    fill_id=fill.fill_id, order_id=order_id, fill=fill.model_dump(mode="json"), rank=rank + i, published=False, at=now
                )
            )
        conn.execute(update(venue_orders).where(venue_orders.c.order_id == order_id).values(answered=asdict(answered), state=state, updated_at=now))

    def unfinished(self) -> list[dict]:
        """Orders still sending or open at a venue: the executor resumes them at start."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(venue_orders).where(venue_orders.c.state != "ended")).mappings().all()
        return [dict(r) for r in rows]

    def ahead_on(self, venue: str, endpoint: str, symbol: str, *, order_id: str, seq: int) -> list[str]:
        """Orders of ours on `symbol` at `venue` (where it is now, `endpoint`) that go before `order_id`:
        those sent (or being sent) and not ended, and those waiting to be sent that came first."""
        return [r["order_id"] for r in self.unfinished()
                if r["venue"] == venue and r["endpoint"] == endpoint and r["order_id"] != order_id
                and (r["ticket"] or {}).get("symbol") == symbol and (r["attempts"] > 0 or r["seq"] < seq)]

    def perpetual_on_order(self, venue: str, asset: str) -> float:
        """The base amount of `asset` our unfinished perpetual orders at `venue` could still add, signed."""
        total = 0.0
        for r in self.unfinished():
            if r["venue"] != venue or r["order"].get("asset") != asset or not r["ticket"]:
                continue
            ticket = OrderTicket.model_validate(r["ticket"])
            if ticket.perpetual:
                total += ticket.base_amount() if ticket.side == "buy" else -ticket.base_amount()
        return total

    def unfinished_assets(self, venue: str) -> set[str]:
        """Assets with an order of ours at `venue` still being sent or open."""
        return {r["order"].get("asset") for r in self.unfinished() if r["venue"] == venue}

    def assets(self, venue: str) -> set[str]:
        """Every asset this executor ever took an order on at `venue`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(venue_orders.c.order).where(venue_orders.c.venue == venue)).all()
        return {r[0].get("asset") for r in rows if r[0].get("asset")}

    def client_ids(self, venue: str, *, unfinished: bool = False) -> set[str]:
        """Client ids this executor sent to `venue` (only those of orders not ended, if `unfinished`)."""
        q = select(venue_orders.c.client_id).where(venue_orders.c.venue == venue, venue_orders.c.client_id != "")
        if unfinished:
            q = q.where(venue_orders.c.state != "ended")
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return {r[0] for r in rows}

    def load(self, order_id: str) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(venue_orders).where(venue_orders.c.order_id == order_id)).mappings().one())

    # -- fills ----------------------------------------------------------------

    def unpublished(self, order_id: str | None = None) -> list[Fill]:
        q = select(order_fills.c.fill).where(order_fills.c.published.is_(False))
        if order_id is not None:
            q = q.where(order_fills.c.order_id == order_id)
        with self.engine.connect() as conn:
            return [Fill.model_validate(r[0]) for r in conn.execute(q.order_by(order_fills.c.at, order_fills.c.rank)).all()]

    def published(self, fill_id: str) -> None:
        with self.begin() as conn:
            conn.execute(update(order_fills).where(order_fills.c.fill_id == fill_id).values(published=True))

    # -- refusals -------------------------------------------------------------

    def refuse(self, seq: int, reason: str, payload: bytes, now: datetime) -> None:
        with self.begin() as conn:
            if not conn.execute(select(refused_orders.c.seq).where(refused_orders.c.seq == seq)).first():
                conn.execute(insert(refused_orders).values(seq=seq, reason=reason, payload=payload[:65536], at=now))
