"""Time, injected. Services ask a clock; checks never read one."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class MarketClock:
    """Time as the market tells it: the newest bar's timestamp, never going back.

    For a replay, whose bars carry simulated time, so what the factory and the executor
    stamp (snapshots, equity points, expiries, fills) is in the replay's time and its
    charts show the replayed days. Before the first bar it falls back to the system
    clock; `known` says whether it has seen one."""

    def __init__(self) -> None:
        self.latest: datetime | None = None

    def observe(self, ts: datetime) -> None:
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        if self.latest is None or ts > self.latest:
            self.latest = ts

    @property
    def known(self) -> bool:
        return self.latest is not None

    def now(self) -> datetime:
        return self.latest or datetime.now(timezone.utc)


def clock_for(mission) -> SystemClock | MarketClock:
    return MarketClock() if getattr(mission, "clock", "system") == "market" else SystemClock()
