"""The factory's own work per directive and per approval, without the bus (issue 12 §2).

Drives the factory's cores in-process on a real store in a temporary directory, one
directive or one decision at a time (as they arrive at 500/s), and measures CPU time
(`time.process_time`, so other load on the machine inflates it less than wall time):

- per directive: the agent's signature checked, every policy check, staging, the
  verdict, the SQLite commit, and the factory's signatures on the verdict and the
  staged item (what the outbox signs when it publishes);
- per approval: the principal's signature and passkeys, the gate, the re-check, the
  order, the commit, and the signatures on the order and the outcome;
- beside them, in the same run: a raw Ed25519 sign and verify, and an SQLite insert
  and commit of one row with nothing else.

    python benchmarks/factory_cores.py [--directives 5000] [--approvals 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.agents.submit import desk_signer  # noqa: E402
from deskgate.audit.signing import Kind, digest, kind_of  # noqa: E402
from deskgate.bus import subjects as S  # noqa: E402
from deskgate.bus.credentials import ensure_credentials  # noqa: E402
from deskgate.config import Mission  # noqa: E402
from deskgate.domain.approval import ApprovalResponse, StagedDirective  # noqa: E402
from deskgate.domain.market import Bar  # noqa: E402
from deskgate.factory.service import Factory  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.people.principals import scripted_principal  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MEMO = {"signal_evidence": "bench", "position_context": "bench", "proposed_action": "bench", "expected_outcome": "bench"}


class FixedClock:
    def now(self) -> datetime:
        return T0


def payload(i: int) -> bytes:
    return json.dumps({
        "directive_id": f"b{i}", "asset": "BTC", "venue": "binance", "side": "buy" if i % 2 == 0 else "sell",
        "notional_usd": 100.0, "leverage": 1.0, "confidence": 0.8, "memo": MEMO, "created_at": T0.isoformat(),
    }).encode()


def cpu_us(fn, n: int) -> float:
    t = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - t) / n * 1e6


def main(args) -> None:
    root = DataDir.at(tempfile.mkdtemp(prefix="deskgate-cores-")).ensure()
    ensure_credentials(root)
    principal = scripted_principal(root, "bench")
    mission = Mission.model_validate({"paper": {"starting_equity_usd": 1e13}, "marketdata": {"source": "none", "assets": ["BTC"]},
                                      "approvals": {"expiry_seconds": 86_400}})
    factory = Factory(mission, root, clock=FixedClock())
    factory.load_state()
    factory.book.apply_bar(Bar(asset="BTC", ts=T0, open=65_000, high=65_000, low=65_000, close=65_000, volume=1, interval_seconds=60,
                               source="bench").to_bytes())
    agent = desk_signer(root)  # the desk's own agent identity (ensure_credentials made it)
    n, m = args.directives, args.approvals
    directives = [(i + 1, payload(i), agent.headers(Kind.DIRECTIVE, payload(i))) for i in range(n)]

    def one_directive(i: int) -> None:
        factory.evaluate_directives([directives[i]])
        for o in factory.outbox._outgoing:
            factory.signer.headers(kind_of(o.subject), o.payload)
        factory.outbox._outgoing.clear()

    report = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"}
    report["directive_cpu_us"] = round(cpu_us(one_directive, n), 1)

    decisions = []
    for i in range(m):
        did = f"b{i}"
        with factory.store.connect() as conn:
            staged = StagedDirective.model_validate_json(factory.store.intention(conn, did)["staged"])
        resp = ApprovalResponse(approval_id=f"ap{i}", directive_id=did, decision="approve", principal="bench", decided_at=T0,
                                directive_digest=digest(staged.signed_directive.data)).to_bytes()
        decisions.append((i + 1, S.response_subject(did), resp, principal.headers(Kind.APPROVAL, resp)))

    def one_approval(i: int) -> None:
        outcome = factory.decide(*decisions[i])
        assert outcome.outcome == "ordered", outcome
        for o in factory.outbox._outgoing:
            factory.signer.headers(kind_of(o.subject), o.payload)
        factory.outbox._outgoing.clear()

    report["approval_cpu_us"] = round(cpu_us(one_approval, m), 1)

    # Baselines, same run.
    body = directives[0][1]
    header = directives[0][2]
    from deskgate.audit.signing import verify_headers

    report["baseline_sign_us"] = round(cpu_us(lambda i: agent.sign(Kind.DIRECTIVE, body), 5000), 1)
    report["baseline_verify_us"] = round(cpu_us(lambda i: verify_headers(factory.keys, Kind.DIRECTIVE, body, header, expect="agent:"), 5000), 1)
    db = sqlite3.connect(str(root.root / "bare.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    blob = b"x" * 1500

    def bare_commit(i: int) -> None:
        db.execute("BEGIN")
        db.execute("INSERT INTO t VALUES (?, ?)", (i, blob))
        db.execute("COMMIT")

    report["baseline_sqlite_insert_commit_us"] = round(cpu_us(bare_commit, 5000), 1)
    report["directive_in_raw_verifies"] = round(report["directive_cpu_us"] / report["baseline_verify_us"], 2)
    report["approval_in_raw_verifies"] = round(report["approval_cpu_us"] / report["baseline_verify_us"], 2)
    factory.store.close()
    factory.verifier.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--directives", type=int, default=5000)
    p.add_argument("--approvals", type=int, default=1000)
    main(p.parse_args())
