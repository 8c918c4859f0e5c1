"""The CLI's tables at 80 columns: ids stay whole on one line; free text wraps instead.

Each table is rendered from real domain objects (verdicts from the real policy
engine) by the same function the command uses, on a rich Console 80 columns wide.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import directive
from rich.console import Console

from deskgate.approvals.client import QueueItem
from deskgate.audit.chain import Entry
from deskgate.audit.signing import SignatureStatus
from deskgate.cli.audit import trace_table
from deskgate.cli.memory import recall_table
from deskgate.cli.ops import fills_table, queue_table, verdicts_table
from deskgate.config import Mission
from deskgate.domain.approval import PositionContext, StagedDirective
from deskgate.domain.directive import Directive
from deskgate.domain.evaluation import PolicyEvaluation, PolicyVerdict
from deskgate.domain.execution import Fill
from deskgate.memory.store import RecallEntry
from deskgate.policy.beliefs import BeliefsFile
from deskgate.policy.engine import evaluate_payload

NOW = datetime(2026, 1, 5, 0, 30, tzinfo=timezone.utc)
# The agents' longest usual form (a revision of a second draft), and a UUID from an outside agent.
IDS = ["ag-202601050030-BTC-sell-2-r2", "0e5e7f7c-1f0b-4a6b-9d65-6f3c7c1f2a9e"]
LONG_REASON = "the order's approvals do not verify: principal:mallory is not a signer of this desk; refused"


def render(table) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(table)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    return lines


def assert_whole(lines: list[str], *ids: str) -> None:
    for i in ids:
        assert any(i in line for line in lines), f"{i} is not whole on any line:\n" + "\n".join(lines)


def staged_item(did: str, state: str = "awaiting_second_approval") -> QueueItem:
    d = Directive.model_validate(directive(did, notional_usd=120_000.0))
    staged = StagedDirective(
        directive=d, evaluation=PolicyEvaluation(directive_id=did, decision="staged", explicit_approval=True, checks=[]),
        asset="BTC", venue="binance", explicit=True, four_eyes=True, price_at_staging=65_000.0, staged_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
        context=PositionContext(equity_usd=1e6, current_position_usd=0, pending_same_side_usd=0, post_trade_position_usd=120_000.0,
                                post_trade_position_pct=12.0, gross_leverage_after=0.12, drawdown_pct=0),
    )
    return QueueItem(staged=staged, state=state, outcomes=[])


@pytest.mark.parametrize("did", IDS)
def test_verdicts_keep_ids_whole_and_wrap_the_reasons(did):
    beliefs = BeliefsFile(equity_usd=100_000.0, peak_equity_usd=100_000.0, prices={"BTC": 65_000.0}).to_beliefs()
    payloads = [
        json.dumps(directive(did, notional_usd=120_000.0)).encode(),
        json.dumps(directive(did + "-x", asset="LUNA", venue="kraken", confidence=0.1)).encode(),
        json.dumps(directive(did + "-y")).encode(),
    ]
    verdicts = []
    for seq, payload in enumerate(payloads[:2], 1):
        ev = evaluate_payload(payload, beliefs, Mission().guardrails)
        verdicts.append(PolicyVerdict(directive_id=ev.directive_id, seq=seq, decision="rejected", primary_reason=ev.primary_reason,
                                      evaluation=ev.to_model(), at=NOW))
    verdicts.append(None)  # no verdict in time: the id it claimed is still shown
    lines = render(verdicts_table(payloads, verdicts))
    assert_whole(lines, did, did + "-x", did + "-y")
    text = " ".join(" ".join(line.split()) for line in lines)
    assert "is below 0.65" in text and "120.00% of" in text  # the reasons wrapped, not cut


@pytest.mark.parametrize("did", IDS)
def test_the_approval_queue_keeps_ids_whole(did):
    lines = render(queue_table([staged_item(did), staged_item(did[:-1] + "z", "staged")], all_items=True))
    assert_whole(lines, did, did[:-1] + "z", "4 eyes")
    assert "120,000.00" in " ".join(lines)


@pytest.mark.parametrize("did", IDS)
def test_fills_keep_ids_whole_and_wrap_the_reason(did):
    filled = Fill(fill_id="f1", order_id=f"{did}-o", directive_id=did, venue="binance", asset="BTC", side="buy", status="filled",
                  quantity=120_000.0 / 65_012.5, price=65_012.5, notional_usd=120_000.0, fee_usd=120.0, slippage_bps=5.0, filled_at=NOW)
    refused = Fill(fill_id="f2", order_id=f"{did}2-o", directive_id=did + "2", venue="binance", asset="BTC", side="sell",
                   status="rejected", filled_at=NOW, reason=LONG_REASON)
    lines = render(fills_table([filled, refused]))
    assert_whole(lines, did, did + "2", "120,000.00")
    assert "refused" in " ".join(lines)


@pytest.mark.parametrize("did", IDS)
def test_a_trace_names_the_directive_whole_and_shows_its_subjects(did):
    def entry(seq, kind, subject, signer):
        return Entry(seq=seq, kind=kind, subject=subject, ref=did, source=f"S:{seq}", recorded_at=NOW, signer=signer, payload="{}",
                     prev_hash="0" * 64)

    rows = [
        (entry(5, "directive", "consciousness.directives.BTC", "agent:desk"), SignatureStatus.VALID),
        (entry(11, "approval", f"approvals.response.{did}", "principal:simulated-principal"), SignatureStatus.VALID),
        (entry(13, "outcome", f"factory.status.approval.{did}", "factory"), SignatureStatus.UNKNOWN_SIGNER),
    ]
    lines = render(trace_table(did, rows))
    assert_whole(lines, f"decision chain of {did}", "approvals.response.<id>", "factory.status.approval.<id>", "consciousness.directives.BTC")
    assert not any(did[:8] in line for line in lines[1:]), "a subject shows a piece of the id"


@pytest.mark.parametrize("did", IDS)
def test_recall_keeps_refs_whole(did):
    entries = [RecallEntry(id=12, at=NOW, kind="directive", ref=did, meta={},
                           text=f"{did} staged: buy 120,000 USD of BTC on binance; 12% of equity after, awaiting a principal")]
    lines = render(recall_table(entries))
    assert_whole(lines, did)
    assert "principal" in " ".join(lines)

