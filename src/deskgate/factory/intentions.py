"""An intention's moves: its new state, the funnel's count and the outcome announcing
it, written in the caller's transaction. Approvals and the book both move intentions;
this is the one place that does it."""

from __future__ import annotations

from datetime import datetime

from deskgate.bus import subjects as S
from deskgate.domain.approval import ApprovalOutcome
from deskgate.factory.funnel import FunnelCounter
from deskgate.factory.outbox import Effects
from deskgate.factory.store import FactoryStore


def move(store: FactoryStore, counter: FunnelCounter, conn, did: str, old: str, new: str, reason: str | None, now: datetime) -> None:
    agent = store.set_intention_state(conn, did, new, reason, now)
    counter.moved(old, new, reason, agent)


def emit(store: FactoryStore, conn, outcome: ApprovalOutcome, msg_id: str, now: datetime, effects: Effects) -> None:
    effects.queue(store.enqueue(conn, [(S.approval_status_subject(outcome.directive_id), msg_id, outcome.to_bytes())], now))
