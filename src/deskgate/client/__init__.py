"""deskgate.client: the public, typed, async way for an agent to reach the desk.

    from deskgate.client import DeskClient

    async with await DeskClient.connect("research.json") as desk:
        verdict = await desk.check(draft)            # dry run: nothing is staged
        verdict = await desk.submit(draft)           # signed; the verdict with every check
        if not verdict.staged:
            verdict = await desk.revise(verdict, notional_usd=5_000)
        outcome = await desk.outcome(verdict.directive_id, wait=600)

What this package exports is kept stable: outside code imports it. See docs/CLIENT.md.
"""

from deskgate.client.client import DeskClient
from deskgate.client.errors import (
    BusRefused,
    CredentialsError,
    DeskClientError,
    DeskMismatch,
    DeskUnreachable,
    InvalidDirective,
    NotPublished,
    VerdictTimeout,
)
from deskgate.client.models import (
    Book,
    Check,
    DeskFacts,
    DirectiveDraft,
    Fill,
    MarketView,
    MemoChanges,
    Outcome,
    Revision,
    Verdict,
)
from deskgate.domain.directive import DecisionMemo, Directive

__all__ = [
    "Book", "BusRefused", "Check", "CredentialsError", "DecisionMemo", "DeskClient", "DeskClientError", "DeskFacts",
    "DeskMismatch", "DeskUnreachable", "Directive", "DirectiveDraft", "Fill", "InvalidDirective", "MarketView",
    "MemoChanges", "NotPublished", "Outcome", "Revision", "Verdict", "VerdictTimeout",
]
