"""What `deskgate.client` takes and returns: plain pydantic models, stable, and JSON all the way,
so outside code can store them, print them, or hand them to a model.

The wire's own models are reused where they already say what an agent needs:
`Check` is the policy engine's check (name, passed, observed, limit, reason), `Fill`
the executor's fill, `Book` the factory's portfolio snapshot.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from deskgate.config import ApprovalSettings, Guardrails
from deskgate.domain.approval import ApprovalOutcome
from deskgate.domain.directive import DecisionMemo, Directive, DirectiveId, Side
from deskgate.domain.evaluation import CheckResult, PolicyVerdict
from deskgate.domain.execution import Fill
from deskgate.domain.market import MarketSummary, Signal
from deskgate.domain.portfolio import PortfolioSnapshot

Check = CheckResult
Book = PortfolioSnapshot

__all__ = [
    "Book", "Check", "DeskFacts", "DirectiveDraft", "Fill", "MarketView", "MemoChanges", "Outcome", "Revision", "Verdict",
    "describe_errors", "revised_id",
]


def _about(field: str) -> str | None:
    return Directive.model_fields[field].description


class DirectiveDraft(BaseModel):
    """A directive as an agent drafts it. Leave out `directive_id` and a fresh one is made;
    leave out `agent` and the client's own agent name is used. Numbers must be numbers."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False, title="directive draft")

    asset: str = Field(min_length=1, max_length=64, description=_about("asset"))
    venue: str = Field(min_length=1, max_length=64, description=_about("venue"))
    side: Side
    notional_usd: float = Field(gt=0, le=1e12, description=_about("notional_usd"))
    leverage: float = Field(1.0, gt=0, le=1000, description=_about("leverage"))
    confidence: float = Field(ge=0, le=1, description=_about("confidence"))
    memo: DecisionMemo = Field(description="Why, from what, and what is expected: what a principal reads before deciding.")
    directive_id: DirectiveId | None = Field(None, description="Unique id (letters, digits, '_' or '-'); made for you when left out.")
    agent: str | None = Field(None, min_length=1, max_length=64, description="The drafting agent; your own agent's name when left out.")
    created_at: datetime | None = Field(None, strict=False, description="When it was drafted (ISO 8601).")

    def to_directive(self, agent: str) -> Directive:
        data = self.model_dump(mode="json")
        data["directive_id"] = self.directive_id or new_directive_id(agent)
        data["agent"] = self.agent or agent
        return Directive.model_validate(data | {"memo": self.memo, "created_at": self.created_at})


class MemoChanges(BaseModel):
    """The memo fields a revision rewrites; the others stay."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    signal_evidence: str | None = Field(None, min_length=1, max_length=4000)
    position_context: str | None = Field(None, min_length=1, max_length=4000)
    proposed_action: str | None = Field(None, min_length=1, max_length=4000)
    expected_outcome: str | None = Field(None, min_length=1, max_length=4000)


class Revision(BaseModel):
    """What a revision changes (nothing: the same directive again, e.g. after it expired).
    The revised directive gets a new id (`<id>-r<n>`): a directive id is evaluated once,
    so a revision is always a new directive."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    asset: str | None = Field(None, min_length=1, max_length=64)
    venue: str | None = Field(None, min_length=1, max_length=64)
    side: Side | None = None
    notional_usd: float | None = Field(None, gt=0, le=1e12)
    leverage: float | None = Field(None, gt=0, le=1000)
    confidence: float | None = Field(None, ge=0, le=1)
    memo: MemoChanges | None = None
    directive_id: DirectiveId | None = Field(None, description="The new id; `<old id>-r<n>` when left out.")

    def apply(self, directive: Directive) -> Directive:
        changes = self.model_dump(exclude_none=True, exclude={"memo", "directive_id"})
        if self.memo is not None:
            changes["memo"] = directive.memo.model_copy(update=self.memo.model_dump(exclude_none=True))
        changes["directive_id"] = self.directive_id or revised_id(directive.directive_id)
        return Directive.model_validate(directive.model_dump() | changes)


_REVISION = re.compile(r"^(?P<stem>.*)-r(?P<n>\d{1,6})$")


def revised_id(directive_id: str) -> str:
    """`d1` → `d1-r1` → `d1-r2`, always within the 64 characters an id may have."""
    m = _REVISION.match(directive_id)
    stem, n = (m["stem"], int(m["n"]) + 1) if m else (directive_id, 1)
    suffix = f"-r{n}"
    return stem[: 64 - len(suffix)] + suffix


def new_directive_id(agent: str) -> str:
    return f"{agent[:40]}-{uuid.uuid4().hex[:16]}"


def describe_errors(exc: ValidationError, what: str = "directive") -> str:
    """Each problem as `field: message (got value)`, the way the policy engine reports a schema failure."""
    parts = []
    for err in exc.errors(include_url=False)[:8]:
        loc = ".".join(str(p) for p in err["loc"]) or "(the whole thing)"
        if err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown field")
            continue
        got = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(got, (dict, list)) else f" (got {got!r})"[:80]
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}{shown}")
    return f"{what} does not validate: " + "; ".join(parts)


DIRECTIVE_NOTE = "The directive as this client sent or checked it (schema: `deskgate schema directive`): what a revision starts from."


class Verdict(BaseModel):
    """The policy engine's verdict on one directive, with every check it ran.

    `decision` is `staged` (every guardrail passed: it waits for a principal),
    `rejected` (see `failed` for the checks, each with observed, limit and reason)
    or `duplicate` (the id was evaluated before). A dry run (`check`) has no `seq`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    directive_id: str | None
    decision: Literal["staged", "rejected", "duplicate"]
    primary_reason: str | None = Field(description="The first failed check's name; None when staged.")
    explicit_approval: bool = Field(description="Above the desk's threshold: a principal approves it on its own, never in a batch.")
    checks: list[Check]
    seq: int | None = Field(None, description="The directive's DIRECTIVES stream sequence; None for a dry run.")
    agent: str | None = Field(None, description="The agent whose current key signed it, as the factory verified; None when none did (or a dry run).")
    at: datetime | None = None
    dry_run: bool = False
    notes: list[str] = Field(default_factory=list)
    # The directive's own schema carries an `$id`, which would re-root every `$ref` inside it
    # when nested here; its schema is the `deskgate schema directive` one, referred to by name.
    directive: Annotated[Directive | None, WithJsonSchema({"type": ["object", "null"], "description": DIRECTIVE_NOTE})] = None

    @property
    def staged(self) -> bool:
        return self.decision == "staged"

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def reasons(self) -> list[str]:
        """`name: reason` for each failed check."""
        return [f"{c.name}: {c.reason}" for c in self.failed]

    @classmethod
    def of(cls, verdict: PolicyVerdict, directive: Directive | None = None) -> Verdict:
        ev = verdict.evaluation
        return cls(
            directive_id=verdict.directive_id, decision=verdict.decision, primary_reason=verdict.primary_reason,
            explicit_approval=ev.explicit_approval, checks=ev.checks, seq=verdict.seq, agent=verdict.agent, at=verdict.at,
            directive=directive,
        )


OutcomeState = Literal[
    "unknown", "not_staged", "staged", "awaiting_second_approval", "approved",
    "executed", "venue_rejected", "rejected", "expired", "invalidated",
]
FINAL_STATES = frozenset({"not_staged", "executed", "venue_rejected", "rejected", "expired", "invalidated"})
# A later outcome moves a staged directive on, except past an end; a fill always lands.
_ENDED = frozenset({"approved", *FINAL_STATES})
_STATE_OF = {"ordered": "approved"}


class Outcome(BaseModel):
    """Where a directive stands after the policy engine.

    `unknown`: no verdict yet (not submitted, or not evaluated yet). `not_staged`: the
    policy engine rejected it (`reason`, `checks`). `staged`, then
    `awaiting_second_approval` (four eyes), then `approved` (a principal approved, the
    factory re-checked it and sent the order), then `executed` with the `fill` or
    `venue_rejected`. Or it ends `rejected` (by a principal, with their reason),
    `expired` (nobody decided in time) or `invalidated` (approved, but it no longer
    passed the guardrails against the book at that moment: `checks`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    directive_id: str
    state: OutcomeState
    final: bool
    reason: str = ""
    principals: list[str] = Field(default_factory=list)
    order_id: str | None = None
    fill: Fill | None = None
    checks: list[Check] = Field(default_factory=list)
    at: datetime | None = None
    history: list[ApprovalOutcome] = Field(default_factory=list, description="The factory's outcomes, in order, refused decisions included.")

    @classmethod
    def fold(cls, directive_id: str, verdict: PolicyVerdict | None, outcomes: list[ApprovalOutcome]) -> Outcome:
        """The state after the verdict and the outcomes, in the order the factory published them."""
        if verdict is None and not outcomes:
            return cls(directive_id=directive_id, state="unknown", final=False)
        if verdict is not None and verdict.decision != "staged" and not outcomes:
            reason = next((f"{c.name}: {c.reason}" for c in verdict.evaluation.checks if not c.passed), verdict.decision)
            return cls(directive_id=directive_id, state="not_staged", final=True, reason=reason, checks=verdict.evaluation.checks, at=verdict.at)
        state, fields = "staged", {"at": verdict.at if verdict else None}
        for o in outcomes:
            new = _STATE_OF.get(o.outcome, o.outcome)
            if o.outcome == "refused" or (state in _ENDED and new not in ("executed", "venue_rejected")):
                continue  # a refused decision changes nothing; nothing moves a directive back
            state = new
            fields.update(reason=o.reason, at=o.at)
            fields["principals"] = o.principals or fields.get("principals", [])
            fields["order_id"] = o.order_id or fields.get("order_id")
            if o.fill is not None:
                fields["fill"] = o.fill
            if o.evaluation is not None:
                fields["checks"] = o.evaluation.checks
        return cls(directive_id=directive_id, state=state, final=state in FINAL_STATES, history=outcomes, **fields)


class DeskFacts(BaseModel):
    """The desk as the factory describes it to agents (factory.status.desk), with this agent's mandate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    desk_id: str
    desk_name: str
    agent: str = Field(description="The agent this client acts as.")
    guardrails: Guardrails
    approvals: ApprovalSettings
    mandate: dict[str, Any] | None = Field(None, description="This agent's mandate: limits that only tighten the guardrails; None when it has none.")
    assets: tuple[str, ...] = ()
    max_directive_bytes: int
    at: datetime


class MarketView(BaseModel):
    """The latest of one asset: its last price, its window summary and its signal (None until published)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset: str
    price: float | None = None
    price_at: datetime | None = None
    summary: MarketSummary | None = None
    signal: Signal | None = None
