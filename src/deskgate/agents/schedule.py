"""The daily cycle: which agent cycles fall due between two instants. Pure; the clock is the caller's.

Morning synthesis at `morning_utc`, intraday every `intraday_minutes` (aligned to
midnight UTC), end-of-day review at `eod_utc`. A replay asks for every cycle due in
the stretch it just played; a live desk asks every few seconds. Each cycle is due
exactly once: in (after, upto].
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from deskgate.agents.view import CycleKind
from deskgate.config import CycleTimes

ORDER: dict[str, int] = {"morning_brief": 0, "intraday": 1, "eod_review": 2}


def due(times: CycleTimes, after: datetime, upto: datetime) -> list[tuple[CycleKind, datetime]]:
    """Every cycle in (after, upto], in time order; at one instant the brief comes first and the review last."""
    if upto <= after:
        return []
    out: list[tuple[CycleKind, datetime]] = []
    day = after.astimezone(timezone.utc).date()
    last_day = upto.astimezone(timezone.utc).date()
    step = timedelta(minutes=times.intraday_minutes)
    morning, eod = time.fromisoformat(times.morning_utc), time.fromisoformat(times.eod_utc)
    while day <= last_day:
        midnight = datetime.combine(day, time(0), tzinfo=timezone.utc)
        for kind, at in (
            ("morning_brief", datetime.combine(day, morning, tzinfo=timezone.utc)),
            ("eod_review", datetime.combine(day, eod, tzinfo=timezone.utc)),
        ):
            if after < at <= upto:
                out.append((kind, at))
        t = midnight
        while t < midnight + timedelta(days=1):
            if after < t <= upto:
                out.append(("intraday", t))
            t += step
        day += timedelta(days=1)
    out.sort(key=lambda p: (p[1], ORDER[p[0]]))
    return out


def next_due(times: CycleTimes, after: datetime) -> dict[str, datetime]:
    """The next time each cycle kind is due after `after` (within two days: every kind runs daily)."""
    out: dict[str, datetime] = {}
    for kind, at in due(times, after, after + timedelta(days=2)):
        out.setdefault(kind, at)
    return out


def first_due(times: CycleTimes, after: datetime) -> tuple[str, datetime]:
    """The next cycle of any kind after `after`."""
    return min(next_due(times, after).items(), key=lambda kv: (kv[1], ORDER[kv[0]]))
