"""The memory as a model's tools, after Letta: search recall and archival, insert into archival,
edit core blocks. Every step of an LLM analyst has them.

Each tool answers in text the model reads, and never raises: a refusal says why.
The tools are coroutines that never wait: pydantic-ai runs a step's calls as tasks
on the event loop, so they take their turns in the order the model made them and
never touch the memory from two threads at once.
Each step has a budget (`LIMITS`): past it, a tool refuses, so a model looping on
searches cannot run up a bill or fill the archive. Every call, done or refused, is
recorded in memory's `tool_calls` table with what the model was told.

What a model inserts into archival is its own words: it is tagged `by-model`, so a
reader (and a later search) can tell it from what the desk wrote.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

from pydantic_ai import RunContext

from deskgate.memory.context import render_entry
from deskgate.memory.store import RECALL_KINDS, Memory, MemoryError_

log = logging.getLogger(__name__)

EDITABLE = ("desk_state", "regime", "hypotheses")  # `instructions` is the principals' block, not the model's
LIMITS = {"search": 6, "insert": 2, "edit": 4}  # calls per step
MAX_HITS = 10
MAX_DOC_CHARS = 4000
# The desk's own archival records (post_trade.py, monthly.py, the end-of-day review): a model may not
# write a document that could pass for one, or stand in for one the desk has yet to write.
RESERVED_TITLES = ("post-trade:", "outcome at horizon:", "monthly review", "end-of-day review")
RESERVED_TAGS = frozenset({"post-trade", "execution", "outcome", "hit", "miss", "monthly-review", "eod-review", "regime", "by-model"})
EXCERPT = 400


@dataclass
class MemoryAccess:
    """One step's access to memory: whose, for which step, and what is left of its budget."""

    memory: Memory | None
    by: str
    function: str
    used: dict[str, int] = field(default_factory=dict)

    def spend(self, kind: str) -> str | None:
        """None if the call may go ahead; else the refusal."""
        if self.used.get(kind, 0) >= LIMITS[kind]:
            return f"refused: at most {LIMITS[kind]} {kind} calls per step; answer with what you have"
        self.used[kind] = self.used.get(kind, 0) + 1
        return None


def _run(ctx: RunContext[MemoryAccess], tool: str, kind: str, args: dict, work) -> str:
    access = ctx.deps
    if access is None or access.memory is None:
        return "memory is not available in this run"
    refusal = access.spend(kind)
    if refusal is None:
        try:
            answer, ok = work(access.memory), True
        except MemoryError_ as exc:
            answer, ok = f"refused: {exc}", False
        except Exception as exc:  # noqa: BLE001 - a tool never ends the step: the model is told, the desk logs it
            log.exception("memory tool %s failed", tool)
            answer, ok = f"failed: the memory could not answer ({type(exc).__name__}); go on without it", False
    else:
        answer, ok = refusal, False
    try:
        access.memory.record_tool_call(by=access.by, function=access.function, tool=tool, args=_cut(args), ok=ok, outcome=answer)
    except Exception:  # noqa: BLE001 - the record is kept when the database allows; the answer stands
        log.exception("recording the memory tool call %s failed", tool)
    return answer


def _cut(args: dict) -> dict:
    return {k: (v[:200] if isinstance(v, str) else [str(x)[:40] for x in v[:10]] if isinstance(v, list) else v) for k, v in args.items()}


def _day(value: str | None, name: str, end: bool = False) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        d = date.fromisoformat(value[:10])
    except ValueError:
        raise MemoryError_(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None
    return datetime.combine(d, time.max if end else time.min, tzinfo=timezone.utc)


async def conversation_search(
    ctx: RunContext[MemoryAccess], query: str, since: str | None = None, until: str | None = None,
    kinds: list[str] | None = None, limit: int = 5,
) -> str:
    """Search recall (every observation, insight, directive, outcome and review the desk kept) by words
    and meaning, best first. `since`/`until` are dates (YYYY-MM-DD, inclusive); `kinds` any of
    observation, insight, principle, directive, outcome, review, summary, note."""

    def work(m: Memory) -> str:
        unknown = sorted(set(kinds or []) - RECALL_KINDS)
        if unknown:
            raise MemoryError_(f"unknown kinds {unknown}; any of {', '.join(sorted(RECALL_KINDS))}")
        hits = m.find(query, since=_day(since, "since"), until=_day(until, "until", end=True), kinds=kinds, limit=min(max(limit, 1), MAX_HITS))
        if not hits:
            return "no recall entries found"
        return "\n".join(render_entry(h.entry)[:300] for h in hits)

    return _run(ctx, "conversation_search", "search", {"query": query, "since": since, "until": until, "kinds": kinds, "limit": limit}, work)


async def archival_memory_search(ctx: RunContext[MemoryAccess], query: str, tags: list[str] | None = None, limit: int = 3) -> str:
    """Search archival memory (end-of-day and monthly reviews, post-trade analyses, notes) by words and meaning."""

    def work(m: Memory) -> str:
        hits = m.find_documents(query, tags=tags, limit=min(max(limit, 1), 5))
        if not hits:
            return "no archival documents found"
        return "\n\n".join(
            f"[doc #{h.entry.id} {h.entry.at:%Y-%m-%d} {h.entry.title} tags={','.join(h.entry.tags)}]\n{h.entry.text[:EXCERPT]}" for h in hits
        )

    return _run(ctx, "archival_memory_search", "search", {"query": query, "tags": tags, "limit": limit}, work)


async def archival_memory_insert(ctx: RunContext[MemoryAccess], title: str, text: str, tags: list[str] | None = None) -> str:
    """Keep a document in archival memory for later (a lesson, an analysis). Title up to 120 characters,
    text up to 4000, up to 5 tags of a-z, 0-9, '_' or '-'."""

    def work(m: Memory) -> str:
        if len(title) > 120 or len(text) > MAX_DOC_CHARS:
            raise MemoryError_(f"title up to 120 and text up to {MAX_DOC_CHARS} characters (got {len(title)} and {len(text)})")
        if len(tags or []) > 5:
            raise MemoryError_(f"at most 5 tags, got {len(tags or [])}")
        if title.strip().lower().startswith(RESERVED_TITLES):
            raise MemoryError_(f"titles starting {', '.join(repr(t) for t in RESERVED_TITLES)} are the desk's own records; choose another")
        taken = sorted({t.strip().lower() for t in tags or []} & RESERVED_TAGS)
        if taken:
            raise MemoryError_(f"tags {taken} are the desk's own; choose others")
        doc = m.archive(title, text, tags=[*(tags or []), "by-model"])
        return f"kept as archival doc #{doc}"

    return _run(ctx, "archival_memory_insert", "insert", {"title": title, "text": text[:200], "tags": tags}, work)


def _edit(ctx: RunContext[MemoryAccess], tool: str, label: str, args: dict, op) -> str:
    def work(m: Memory) -> str:
        if label not in EDITABLE:
            raise MemoryError_(f"block {label!r} cannot be edited by the agent; editable: {', '.join(EDITABLE)}")
        block = op(m)
        return f"{label} ({block.used}/{block.limit} chars):\n{block.value}"

    return _run(ctx, tool, "edit", {"label": label, **args}, work)


async def core_append(ctx: RunContext[MemoryAccess], label: str, text: str) -> str:
    """Append a line to a core memory block."""
    return _edit(ctx, "core_append", label, {"text": text[:200]}, lambda m: m.core_append(label, text, by=ctx.deps.by))


async def core_replace(ctx: RunContext[MemoryAccess], label: str, old: str, new: str) -> str:
    """Replace one exact passage of a core memory block."""
    return _edit(ctx, "core_replace", label, {"old": old[:200], "new": new[:200]}, lambda m: m.core_replace(label, old, new, by=ctx.deps.by))


async def core_rethink(ctx: RunContext[MemoryAccess], label: str, text: str) -> str:
    """Rewrite a core memory block entirely."""
    return _edit(ctx, "core_rethink", label, {"text": text[:200]}, lambda m: m.core_rethink(label, text, by=ctx.deps.by))


TOOLS = [conversation_search, archival_memory_search, archival_memory_insert, core_append, core_replace, core_rethink]
