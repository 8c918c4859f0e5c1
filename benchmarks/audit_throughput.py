"""Audit log: append-and-sign and verify rates (DESIGN §10: ≥ 5,000 appended and
signed entries/s, ≥ 20,000 verified entries/s), beside the raw Ed25519 rates
measured in the same run.

Baselines: one core signing and verifying messages of the benchmark's size, with
libsodium (PyNaCl, what the desk uses) and with OpenSSL (`cryptography`, what it
used before), and libsodium verifying on every core at once (nothing else, warm
workers). Verifying every signature cannot beat the raw libsodium rate times the
cores, so the pooled verify rate is also printed as a fraction of that ceiling and
of what the cores gave together.

Append-and-sign does per entry what the desk does: a role signs the message it
publishes (Ed25519 over the exact bytes), and the audit log checks that signature
and appends the entry to the hash chain and the Merkle tree, in batches of 500 as
the audit service reads them, with a signed checkpoint every 1,000 entries, on
SQLite in a temporary directory. Verify reads the log back and checks every
entry's signature, the chain and every checkpoint (`deskgate audit verify`): in one
process, then on every core (audit/pool.py, pool start included); it is also timed
with signatures off (chain and signed checkpoints only), and on an export file with
no database (`audit verify --file`). The VM is shared, so each rate but append is
the best of three tries.

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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from deskgate.audit import ed25519  # noqa: E402
from deskgate.audit.chain import EXPECTED_SIGNER, verify_log  # noqa: E402
from deskgate.audit.export import verify_export  # noqa: E402
from deskgate.audit.keys import KeyStore, raw_public  # noqa: E402
from deskgate.audit.log import AuditLog, Record  # noqa: E402
from deskgate.audit.pool import SignaturePool, cores  # noqa: E402
from deskgate.audit.signing import Kind, Signer, signed_message, verify  # noqa: E402


def payload(i: int) -> bytes:
    return (
        '{"directive_id":"bench-%08d","asset":"BTC","venue":"binance","side":"buy","notional_usd":%d.0,"leverage":1.0,'
        '"confidence":0.74,"memo":{"signal_evidence":"momentum +1.4 sigma over 4h, summary su-BTC-%d","position_context":'
        '"flat, 0.0%% of equity","proposed_action":"buy 1.2%% of equity","expected_outcome":"+1.5%% over 2 days"},'
        '"agent":"dispatcher","created_at":"2026-11-24T03:00:00Z"}' % (i, 1000 + i % 9000, i)
    ).encode()


REPEAT = 3  # every rate but append-and-sign is the best of this many tries: the VM is shared


def best_time(fn, repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rate(n: int, fn) -> float:
    return n / best_time(fn)


def raw_rates(n: int = 5000) -> dict[str, float]:
    """The benchmark's messages: sign and verify with libsodium and with OpenSSL on one
    core, and verify with libsodium on every core at once."""
    key = Ed25519PrivateKey.generate()
    openssl_public = key.public_key()
    public, secret = raw_public(openssl_public), ed25519.secret_key(key.private_bytes_raw())
    messages = [signed_message(Kind.DIRECTIVE, payload(i)) for i in range(n)]
    sigs = [key.sign(m) for m in messages]
    pairs = list(zip(sigs, messages))
    return {
        "libsodium sign": rate(n, lambda: [ed25519.sign(secret, m) for m in messages]),
        "libsodium verify": rate(n, lambda: [ed25519.verify(public, s, m) for s, m in pairs]),
        "OpenSSL sign": rate(n, lambda: [key.sign(m) for m in messages]),
        "OpenSSL verify": rate(n, lambda: [openssl_public.verify(s, m) for s, m in pairs]),
        f"libsodium verify, {cores()} processes at once": all_cores(public, pairs),
    }


def all_cores(public: bytes, pairs: list[tuple[bytes, bytes]], rounds: int = 4) -> float:
    """Nothing but signature checks, in chunks on the pool's warm workers: what the cores
    really give together (two vCPUs may share a physical core)."""
    checks = [ed25519.Check((public,), s, m) for s, m in pairs] * rounds
    with SignaturePool() as pool:
        pool.submit(checks[:100]).result()  # the workers are up

        def run():
            futures = [pool.submit(checks[i : i + 1000]) for i in range(0, len(checks), 1000)]
            assert all(all(f.result()) for f in futures)

        return rate(len(checks), run)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=50_000)
    args = ap.parse_args()
    n = args.entries
    baseline = raw_rates()
    with tempfile.TemporaryDirectory() as tmp:
        keys = KeyStore(Path(tmp) / "keys")
        keys.ensure_roles()
        # The shared agent key of earlier desks: a file key, verified as an agent identity's is
        # (both cached after the first read); this benchmark needs no accounts database.
        keys.create("agent")
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

        def verify_with(**kw):
            report = verify_log(log.entries(), log.checkpoints(), keys, **kw)
            assert report.ok and report.entries == n, report.problems[:3]

        timings = {"serial": best_time(lambda: verify_with(workers=1)), "pooled": best_time(lambda: verify_with())}
        integrity_s = best_time(lambda: verify_with(signatures=False))
        export = Path(tmp) / "audit.jsonl"
        export_s = best_time(lambda: log.export(export, at))

        def verify_file():
            report, _ = verify_export(export, keys)
            assert report.ok and report.entries == n

        file_s = best_time(verify_file)

    ncores = cores()
    ceiling = baseline["libsodium verify"] * ncores
    pooled = n / timings["pooled"]
    print(f"machine: {cpu_model()}, {ncores} CPUs, Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"entries: {n:,} ({len(payload(0))} byte payloads), checkpoint every 1,000; append once, every other rate the best of {REPEAT}")
    print("baselines, raw Ed25519 over the same messages (one core unless said):")
    for name, value in baseline.items():
        each = f" ({1e6 / value:.0f} µs each)" if "at once" not in name else ""
        print(f"  {name + ':':<56}{value:,.0f} /s{each}")
    print(f"append and sign (role signs, audit checks and appends): {n / append_s:,.0f} entries/s ({append_s:.2f} s)")
    print(f"verify, one process (every signature, chain, checkpts): {n / timings['serial']:,.0f} entries/s ({timings['serial']:.2f} s)")
    together = baseline[f"libsodium verify, {ncores} processes at once"]
    print(f"verify, {ncores} workers (every signature, chain, checkpts): {pooled:,.0f} entries/s ({timings['pooled']:.2f} s, pool start included)")
    print(f"  = {pooled / ceiling:.0%} of raw libsodium verify x {ncores} cores ({ceiling:,.0f} /s), "
          f"{pooled / together:.0%} of raw libsodium verify on {ncores} processes at once ({together:,.0f} /s)")
    print(f"verify without signatures (chain, checkpoints):         {n / integrity_s:,.0f} entries/s ({integrity_s:.2f} s)")
    print(f"export:                                                 {n / export_s:,.0f} entries/s ({export_s:.2f} s)")
    print(f"verify an export, no database, {ncores} workers:              {n / file_s:,.0f} entries/s ({file_s:.2f} s)")


if __name__ == "__main__":
    main()
