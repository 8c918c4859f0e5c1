"""The approvals queue as a table: which rows, in which order, from the page's query string.

static/app.js sorts and filters the same rows in the browser without a reload (so
a batch selection survives); this is the same rule on the server, so the table
works, and a sorted or filtered view can be linked to, without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deskgate.web.desk import QueueEntry

SortKey = Literal["staged", "id", "asset", "side", "notional", "explicit", "confidence", "position", "agent", "expires"]

# Each column's sort key; ties keep the oldest first.
SORT_KEYS: dict[str, Callable[[QueueEntry], Any]] = {
    "staged": lambda e: e.staged_at,
    "id": lambda e: e.directive_id,
    "asset": lambda e: (e.asset, e.venue),
    "side": lambda e: e.side,
    "notional": lambda e: e.notional_usd,
    "explicit": lambda e: (e.explicit, e.four_eyes),
    "confidence": lambda e: e.confidence,
    "position": lambda e: e.context.post_trade_position_pct,
    "agent": lambda e: e.agent,
    "expires": lambda e: e.expires_at,
}
# The direction a first click on a column sorts in: the biggest, or the soonest, first.
FIRST_DIRECTION: dict[str, str] = {"notional": "desc", "confidence": "desc", "position": "desc", "explicit": "desc"}


class QueueQuery(BaseModel):
    """The approvals page's query string. Unknown parameters are ignored; bad values are an error."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sort: SortKey = "staged"
    dir: Literal["asc", "desc"] = "asc"
    q: str = Field("", max_length=100, description="text in the id, asset, venue or agent (any case)")
    side: Literal["", "buy", "sell"] = ""
    kind: Literal["", "standard", "explicit"] = ""

    @property
    def filtered(self) -> bool:
        return bool(self.q.strip() or self.side or self.kind)


class QueueQueryError(ValueError):
    pass


def parse_query(params: Mapping[str, str]) -> QueueQuery:
    """The query, or a QueueQueryError naming each bad parameter and what it may be."""
    try:
        return QueueQuery.model_validate(dict(params))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise QueueQueryError(f"bad queue view: {problems}") from None


def matches(e: QueueEntry, query: QueueQuery) -> bool:
    text = query.q.strip().lower()
    if text and not any(text in s.lower() for s in (e.directive_id, e.asset, e.venue, e.agent)):
        return False
    if query.side and e.side != query.side:
        return False
    if query.kind and e.explicit != (query.kind == "explicit"):
        return False
    return True


def queue_rows(entries: Sequence[QueueEntry], query: QueueQuery) -> list[QueueEntry]:
    """The entries the view shows, in its order (oldest first among equals)."""
    rows = sorted((e for e in entries if matches(e, query)), key=lambda e: e.staged_at)
    return sorted(rows, key=SORT_KEYS[query.sort], reverse=query.dir == "desc")


def sort_links(query: QueueQuery) -> dict[str, dict[str, str]]:
    """Per column: the link that sorts by it (or reverses it) and its aria-sort state."""
    out = {}
    for key in SORT_KEYS:
        if key == query.sort:
            direction, state = ("asc" if query.dir == "desc" else "desc"), ("descending" if query.dir == "desc" else "ascending")
        else:
            direction, state = FIRST_DIRECTION.get(key, "asc"), "none"
        params = {"sort": key, "dir": direction, "q": query.q, "side": query.side, "kind": query.kind}
        out[key] = {"href": "?" + urlencode({k: v for k, v in params.items() if v}), "aria": state}
    return out
