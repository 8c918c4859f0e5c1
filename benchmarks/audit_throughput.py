"""Audit log: append-and-sign and verify rates (DESIGN §10: ≥ 5,000 appended and
signed entries/s, ≥ 20,000 verified entries/s).

Append-and-sign does per entry what the desk does: a role signs the message it
publishes (Ed25519 over the exact bytes), and the audit log checks that signature
and appends the entry to the hash chain and the Merkle tree, in batches of 500 as
the audit service reads them, with a signed checkpoint every 1,000 entries, on
SQLite in a temporary directory. Verify reads the log back and checks every
entry's signature, the chain and every checkpoint (`deskgate audit verify`); it is
also timed with signatures off (chain and signed checkpoints only), and on an
export file with no database (`audit verify --file`).

    python benchmarks/audit_throughput.py [--entries 50000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.audit.chain import EXPECTED_SIGNER, verify_log  # noqa: E402
from deskgate.audit.export import verify_export  # noqa: E402
from deskgate.audit.keys import KeyStore  # noqa: E402
from deskgate.audit.log import AuditLog, Record  # noqa: E402
from deskgate.audit.signing import Kind, Signer, verify  # noqa: E402


def payload(i: int) -> bytes:
    return (
        '{"directive_id":"bench-%08d","asset":"BTC","venue":"binance","side":"buy","notional_usd":%d.0,"leverage":1.0,'
        '"confidence":0.74,"memo":{"signal_evidence":"momentum +1.4 sigma over 4h, summary su-BTC-%d","position_context":'
        '"flat, 0.0%% of equity","proposed_action":"buy 1.2%% of equity","expected_outcome":"+1.5%% over 2 days"},'
        '"agent":"dispatcher","created_at":"2026-11-24T03:00:00Z"}' % (i, 1000 + i % 9000, i)
    ).encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=50_000)
    args = ap.parse_args()
    n = args.entries
    with tempfile.TemporaryDirectory() as tmp:
        keys = KeyStore(Path(tmp) / "keys")
        keys.ensure_roles()
        agent = Signer(keys, "agent")
        log = AuditLog(f"sqlite:///{tmp}/audit.db", keys, checkpoint_every=1000)
        at = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        batch: list[Record] = []
        for i in range(n):
            body = payload(i)
            sig = agent.sign(Kind.DIRECTIVE, body)  # the role signs what it publishes
            status = verify(keys, Kind.DIRECTIVE, body, "agent", sig, expect=EXPECTED_SIGNER[Kind.DIRECTIVE])  # the audit service checks it
            batch.append(Record("directive", "consciousness.directives.BTC", f"bench-{i:08d}", f"DIRECTIVES:{i + 1}", "agent", sig, status.value, body.decode()))
            if len(batch) == 500:
                log.append(batch, at, cursor=("DIRECTIVES:>", i + 1))
                batch = []
        if batch:
            log.append(batch, at, cursor=("DIRECTIVES:>", n))
        log.checkpoint(at)
        append_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        report = verify_log(log.entries(), log.checkpoints(), keys)
        verify_s = time.perf_counter() - t0
        assert report.ok and report.entries == n, report.problems[:3]

        t0 = time.perf_counter()
        report = verify_log(log.entries(), log.checkpoints(), keys, signatures=False)
        integrity_s = time.perf_counter() - t0
        assert report.ok

        export = Path(tmp) / "audit.jsonl"
        t0 = time.perf_counter()
        log.export(export, at)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report, _ = verify_export(export, keys)
        file_s = time.perf_counter() - t0
        assert report.ok and report.entries == n

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"entries: {n:,} ({len(payload(0))} byte payloads), checkpoint every 1,000")
    print(f"append and sign (role signs, audit checks and appends): {n / append_s:,.0f} entries/s ({append_s:.2f} s)")
    print(f"verify (every signature, chain, checkpoints):           {n / verify_s:,.0f} entries/s ({verify_s:.2f} s)")
    print(f"verify without signatures (chain, checkpoints):         {n / integrity_s:,.0f} entries/s ({integrity_s:.2f} s)")
    print(f"export:                                                 {n / export_s:,.0f} entries/s ({export_s:.2f} s)")
    print(f"verify an export, no database (every signature):        {n / file_s:,.0f} entries/s ({file_s:.2f} s)")


if __name__ == "__main__":
    main()
