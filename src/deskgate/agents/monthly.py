"""The monthly review: a month of the desk's own record, read back from memory and archived.

Written at the month's last end-of-day review (or at the first one after, if the
desk was down then), from what memory holds: the daily regime calls, the outcomes of
executed directives at their horizon, execution against the venue model, and the
Governor's interventions. The morning brief cites it (tag `monthly-review`), and a
model finds it with `archival_memory_search`. A pure function of its inputs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

from deskgate.agents.post_trade import Analysis
from deskgate.memory.store import Document, RecallEntry


def month_bounds(day: datetime) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, 1, tzinfo=timezone.utc)
    end = datetime(day.year + (day.month == 12), day.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


def previous_month(day: datetime) -> datetime:
    return month_bounds(day)[0] - timedelta(days=1)


def title_for(start: datetime) -> str:
    return f"Monthly review {start:%Y-%m}"


def _regime_line(doc: Document) -> str:
    lines = doc.text.splitlines()
    if "## Regime" in lines:
        i = lines.index("## Regime")
        if i + 1 < len(lines):
            return lines[i + 1][:160]
    return "(no regime line)"


def monthly_review(start: datetime, eod: list[Document], outcomes: list[Document], executions: list[Document],
                   governor: list[RecallEntry]) -> Analysis:
    """The month that begins at `start`, from its end-of-day reviews, horizon outcomes, execution analyses and Governor notes."""
    regimes = [f"- {d.at:%m-%d}: {_regime_line(d)}" for d in eod]
    by_asset: dict[str, Counter] = defaultdict(Counter)
    for d in outcomes:
        asset = next((t for t in d.tags if t not in ("post-trade", "outcome", "hit", "miss")), "?")
        by_asset[asset]["hit" if "hit" in d.tags else "miss"] += 1
    hits = sum(c["hit"] for c in by_asset.values())
    judged = sum(sum(c.values()) for c in by_asset.values())
    worked = [
        f"- {a.upper()}: {c['hit']} of {c['hit'] + c['miss']} went the directive's way"
        for a, c in sorted(by_asset.items(), key=lambda kv: (-kv[1]["hit"] / max(1, sum(kv[1].values())), kv[0]))
    ]
    over = sum("slippage-over-model" in d.tags for d in executions)
    started = [g for g in governor if "started damping" in g.text]
    cleared = [g for g in governor if g.text.startswith("Governor cleared")]
    text = "\n".join([
        f"# Monthly review {start:%Y-%m}",
        "## Regime history",
        *(regimes or ["- no end-of-day reviews this month"]),
        "## What worked",
        f"{hits} of {judged} executed directives judged at their horizon went their way ({hits / judged:.0%})." if judged else "No executed directive reached its horizon this month.",
        *worked,
        "## Execution",
        f"{len(executions)} fills analysed; {over} with slippage over the venue model." if executions else "No fills this month.",
        "## Governor",
        f"Damping started {len(started)} time(s), cleared by a principal {len(cleared)} time(s)."
        + (f" First: {started[0].at:%m-%d} {started[0].text[:160]}" if started else ""),
    ])
    return Analysis(title=title_for(start), text=text, tags=["monthly-review", "regime"])


def write_due(memory, at: datetime) -> list[int]:
    """At an end-of-day review: the month just ending (if `at` is its last day) and the month before
    (if it has none yet: the desk was down at its end). Returns the archival ids written."""
    days = [previous_month(at)]
    if (at + timedelta(days=1)).month != at.month:
        days.append(at)
    written = []
    for day in days:
        start, end = month_bounds(day)
        if memory.has_document(title_for(start)):
            continue
        eod = memory.documents_between(start, end, tags=["eod-review"])
        if not eod:
            continue
        review = monthly_review(
            start, eod,
            memory.documents_between(start, end, tags=["post-trade", "outcome"]),
            memory.documents_between(start, end, tags=["post-trade", "execution"]),
            memory.search("governor", since=start, until=end, kinds=["note"], limit=500),
        )
        written.append(memory.archive(review.title, review.text, tags=review.tags, at=at))
    return written
