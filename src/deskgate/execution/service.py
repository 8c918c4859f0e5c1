"""The executor: the paper venue. Fills each approved order once, at the latest price.

Before filling it checks the order's whole chain (audit/order_chain.py): the
factory's signature, the agent's signed directive, and a principal's signed
approval of exactly that directive. An order that does not verify is never
filled; the refusal is recorded, and when the factory really sent the order it
gets a signed "rejected" fill saying why, so the exposure it reserved is released.
It keeps its own record of every order it has answered (SQLite), so a redelivered
order is answered with the same fill, never a second one.
"""

from __future__ import annotations

import asyncio
import logging

import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text, insert, select, update

from deskgate.audit.keys import KeyStore
from deskgate.audit.order_chain import order_problem
from deskgate.audit.signing import Kind, SignatureStatus, Signer, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.live import read_live
from deskgate.bus.pull import PullConsumer
from deskgate.bus.reader import ReadError, last_message
from deskgate.clock import Clock, MarketClock, clock_for
from deskgate.config import Mission
from deskgate.domain.execution import Fill, Order
from deskgate.domain.market import Bar
from deskgate.execution.paper import fill_order, refused
from deskgate.paths import DataDir
from deskgate.people.pins import Pins, enroll_everyone_once
from deskgate.storage import make_engine

log = logging.getLogger("deskgate.executor")

metadata = MetaData()
filled_orders = Table(
    "filled_orders",
    metadata,
    Column("order_id", String(80), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("fill", JSON, nullable=False),
    Column("published", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
# Each directive is answered once: a second order for it, under any order id, is refused.
answered_directives = Table(
    "answered_directives",
    metadata,
    Column("directive_id", String(64), primary_key=True),
    Column("order_id", String(80), nullable=False),
)
refused_orders = Table(
    "refused_orders",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


class Executor:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, store_url: str | None = None):
        self.mission = mission
        self.data_dir = data_dir
        self.clock = clock or clock_for(mission)
        self.engine = make_engine(store_url or data_dir.sqlite_url("executor"))
        metadata.create_all(self.engine)
        self.prices: dict[str, float] = {}
        self.events = SecurityEvents()
        self.keys = KeyStore.for_desk(data_dir, pins=Pins.for_service(data_dir, "executor"))
        enroll_everyone_once(self.keys.pins, self.keys.principals)  # a data directory from before pins
        self.signer = Signer(self.keys, "executor")
        self.refused = 0
        self._stop = asyncio.Event()
        self.nc = None
        self.js = None

    async def run(self, ready: asyncio.Event | None = None) -> None:
        self.nc, _ = await connect_as(self.data_dir, S.Role.EXECUTOR, events=self.events, name="deskgate-executor")
        self.js = self.nc.jetstream()
        bars = await self.nc.subscribe(S.BARS, cb=self._on_bar)
        await self._republish_unpublished()
        orders = await PullConsumer(self.nc, "ORDERS", "executor_orders", window=16).start()
        if ready is not None:
            ready.set()
        log.info("executor running (paper venue)")
        while not self._stop.is_set():
            msgs = await orders.next_batch(wait=0.5)
            for m in msgs:
                await self.handle_order(m)
        await bars.unsubscribe()
        try:
            await self.nc.drain()
        except Exception:
            pass

    def stop(self) -> None:
        self._stop.set()

    async def _on_bar(self, msg: Msg) -> None:
        bar = read_live(msg, "MARKET", Bar)
        if bar is not None:
            self.prices[bar.asset] = bar.close
            if isinstance(self.clock, MarketClock):
                self.clock.observe(bar.ts)

    async def _price(self, asset: str) -> float | None:
        if asset not in self.prices:
            try:
                stored = await last_message(self.nc, "MARKET", S.bar_subject(asset))
            except (ReadError, nats.errors.Error):
                stored = None
            if stored is not None:
                try:
                    self.prices[asset] = Bar.model_validate_json(stored.data).close
                except ValidationError:
                    pass
        return self.prices.get(asset)

    async def handle_order(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        now = self.clock.now()
        try:
            order = Order.model_validate_json(msg.data)
        except ValidationError as exc:
            reason = f"invalid order: {exc.errors(include_url=False)[:3]}"
            with self.engine.begin() as conn:
                if not conn.execute(select(refused_orders.c.seq).where(refused_orders.c.seq == seq)).first():
                    conn.execute(insert(refused_orders).values(seq=seq, reason=reason, payload=msg.data[:65536], at=now))
            log.warning("refused order at seq %d: %s", seq, reason)
            await msg.ack()
            return
        with self.engine.begin() as conn:
            row = conn.execute(select(filled_orders.c.fill).where(filled_orders.c.order_id == order.order_id)).first()
        problem = (
            order_problem(
                self.keys.deciding, order, msg.data, msg.headers,
                explicit_above_usd=self.mission.guardrails.require_human_approval_above_usd,
                four_eyes_above_usd=self.mission.approvals.four_eyes_above_usd,
            )
            if row is None
            else None
        )
        if row is None and problem is None:
            with self.engine.begin() as conn:
                earlier = conn.execute(
                    select(answered_directives.c.order_id).where(answered_directives.c.directive_id == order.directive_id)
                ).scalar()
            if earlier is not None:
                problem = f"directive {order.directive_id} was already answered as order {earlier}; an approval is used once"
        if problem is not None:
            self.refused += 1
            log.warning("SECURITY: refused order %s at seq %d: %s", order.order_id, seq, problem)
            with self.engine.begin() as conn:
                if not conn.execute(select(refused_orders.c.seq).where(refused_orders.c.seq == seq)).first():
                    conn.execute(insert(refused_orders).values(seq=seq, reason=problem, payload=msg.data[:65536], at=now))
            if verify_headers(self.keys, Kind.ORDER, msg.data, msg.headers, expect="factory") is not SignatureStatus.VALID:
                await msg.ack()  # not the factory's order: nothing of the factory's to release
                return
            fill = refused(order, problem, now)
            with self.engine.begin() as conn:
                conn.execute(
                    insert(filled_orders).values(order_id=order.order_id, seq=seq, fill=fill.model_dump(mode="json"), published=False, at=now)
                )
        elif row is None:
            fill = fill_order(order, await self._price(order.asset), self.mission.paper.slippage_bps, self.mission.paper.fee_bps, now)
            with self.engine.begin() as conn:
                conn.execute(
                    insert(filled_orders).values(order_id=order.order_id, seq=seq, fill=fill.model_dump(mode="json"), published=False, at=now)
                )
                conn.execute(insert(answered_directives).values(directive_id=order.directive_id, order_id=order.order_id))
        else:
            fill = Fill.model_validate(row[0])
        await self._publish(fill)
        await msg.ack()

    async def _publish(self, fill: Fill) -> None:
        while True:
            try:
                payload = fill.to_bytes()
                await self.js.publish(S.fill_subject(fill.venue), payload, headers=self.signer.headers(Kind.FILL, payload, {"Nats-Msg-Id": fill.fill_id}))
                break
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("could not publish fill %s yet: %s", fill.fill_id, exc)
                await asyncio.sleep(0.5)
        with self.engine.begin() as conn:
            conn.execute(update(filled_orders).where(filled_orders.c.order_id == fill.order_id).values(published=True))

    async def _republish_unpublished(self) -> None:
        with self.engine.begin() as conn:
            rows = conn.execute(select(filled_orders.c.fill).where(filled_orders.c.published.is_(False))).all()
        for (data,) in rows:
            await self._publish(Fill.model_validate(data))
