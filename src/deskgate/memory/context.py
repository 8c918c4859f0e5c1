"""Assembling an agent's context within a token budget, never dropping anything silently.

Core blocks always go in (they are small and bounded). Then the recall entries most
relevant to this cycle's focus (its assets, regime and open positions; found by words
and meaning, search.py), then the newest entries, as many as fit. What does not fit
is summarised: the summary is written to recall (so it can be searched later) and a
line naming it goes into the context, so the agent knows what it is not seeing and
where to look.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

from deskgate.memory.store import RECALL_KINDS, CoreBlock, Memory, RecallEntry

log = logging.getLogger(__name__)

# A token is about four characters of English; the budget is an estimate, and a
# conservative one for the structured text the desk writes.
CHARS_PER_TOKEN = 4
SUMMARY_ROOM = 200  # tokens kept free for the summary line (summarise() writes at most ~160)


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass
class Context:
    text: str
    tokens: int
    included: list[int] = field(default_factory=list)  # recall ids in the context
    summarised: list[int] = field(default_factory=list)  # recall ids covered by a summary instead
    summary_id: int | None = None


def render_core(blocks: list[CoreBlock]) -> str:
    parts = []
    for b in blocks:
        parts.append(f"<{b.label} chars={b.used}/{b.limit}>\n{b.value}\n</{b.label}>")
    return "## core memory\n" + "\n".join(parts)


def render_entry(e: RecallEntry) -> str:
    ref = f" ref={e.ref}" if e.ref else ""
    return f"[#{e.id} {e.at:%Y-%m-%d %H:%M} {e.kind}{ref}] {e.text}"


def summarise(entries: list[RecallEntry], max_chars: int = 600) -> str:
    """A deterministic digest of entries left out of a context: what, how many, when, and where to find them."""
    if not entries:
        return ""
    kinds = Counter(e.kind for e in entries)
    first, last = min(entries, key=lambda e: e.id), max(entries, key=lambda e: e.id)
    head = (
        f"{len(entries)} older entries not shown (recall #{first.id}..#{last.id}, "
        f"{first.at:%Y-%m-%d %H:%M} to {last.at:%Y-%m-%d %H:%M} UTC): "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + ". Search recall for details. Latest lines: "
    )
    lines = []
    for e in sorted(entries, key=lambda e: e.id, reverse=True):
        line = e.text.splitlines()[0][:120] if e.text else ""
        if len(head) + sum(len(x) + 3 for x in lines) + len(line) > max_chars:
            break
        lines.append(line)
    return (head + " | ".join(lines))[:max_chars]


def plan(core_text: str, entries: list[RecallEntry], budget: int, reserve_for_summary: int = 200) -> tuple[list[RecallEntry], list[RecallEntry]]:
    """Split newest-first `entries` into what fits in the budget and what must be summarised."""
    used = tokens(core_text) + tokens("## recall (newest first)\n")
    fits: list[RecallEntry] = []
    for i, e in enumerate(entries):
        cost = tokens(render_entry(e)) + 1
        room = budget - reserve_for_summary if i < len(entries) - 1 else budget
        if used + cost > room:
            return fits, entries[i:]
        fits.append(e)
        used += cost
    return fits, []


RELEVANT = 8  # entries chosen for relevance before the newest


def assemble(
    memory: Memory, budget: int, *, window: int = 200, kinds: list[str] | None = None, focus: str | None = None,
    relevant: int = RELEVANT,
) -> Context:
    """The core blocks, the `relevant` entries best matching `focus`, and the newest `window`
    recall entries, within `budget` tokens.

    Earlier summaries are not part of the window (they would pile up and push real
    entries out); they stay in recall, where a search finds them."""
    if window < 1:
        raise ValueError("window must be at least 1")
    kinds = kinds or sorted(RECALL_KINDS - {"summary"})
    core_text = render_core(memory.core())
    if tokens(core_text) + SUMMARY_ROOM > budget:
        raise ValueError(
            f"the core blocks need {tokens(core_text)} tokens and a summary up to {SUMMARY_ROOM}, over the budget of {budget}; raise it"
        )
    entries = memory.recent(window, kinds=kinds)
    older = 0
    if len(entries) == window:
        older = memory.recall_count(kinds=kinds, before_id=entries[-1].id)
    core_part = core_text + (f"\n({older} older entries are in recall, not summarised here: search them)" if older else "")
    chosen: list[RecallEntry] = []
    if focus and focus.strip() and relevant > 0:
        newest = {e.id for e in entries[:relevant]}  # shown below anyway
        try:
            chosen = [h.entry for h in memory.find(focus, kinds=kinds, limit=2 * relevant) if h.entry.id not in newest][:relevant]
        except Exception:  # noqa: BLE001 - relevance is a help: without it the context is the newest, as before
            log.exception("choosing the entries relevant to this cycle failed; the context has the newest only")
    if chosen:
        # Relevance first, within a quarter of the budget, so the newest entries keep most of it.
        header = tokens("\n## recall (most relevant to this cycle)\n") + tokens("## recall (newest first)\n")
        room = max(0, min(budget // 4, budget - tokens(core_part) - SUMMARY_ROOM) - header)
        kept, used = [], 0
        for e in chosen:
            cost = tokens(render_entry(e)) + 1
            if used + cost > room:
                break
            kept.append(e)
            used += cost
        chosen = kept
    if chosen:
        core_part += "\n## recall (most relevant to this cycle)\n" + "\n".join(render_entry(e) for e in chosen)
        shown = {e.id for e in chosen}
        entries = [e for e in entries if e.id not in shown]
    fits, overflow = plan(core_part, entries, budget, SUMMARY_ROOM)
    body = [core_part, "## recall (newest first)", *(render_entry(e) for e in fits)]
    ctx = Context(text="", tokens=0, included=[e.id for e in chosen] + [e.id for e in fits])
    if overflow:
        digest = summarise(overflow)
        ctx.summary_id = memory.remember("summary", digest, ref=f"recall:{overflow[-1].id}-{overflow[0].id}")
        ctx.summarised = [e.id for e in overflow]
        body.append(f"[#{ctx.summary_id} summary] {digest}")
    ctx.text = "\n".join(body)
    ctx.tokens = tokens(ctx.text)
    return ctx
