"""Memory of a running `deskgate up`: the supervisor, nats-server and every service, as PSS.

Starts `deskgate up` (the CLI, as an operator does) on a fresh data directory,
measures its whole process tree at rest, then sends a load of signed directives as
the agent (from this process, which is not part of the tree) and measures again.

The measure is PSS (proportional set size, `Pss` in /proc/PID/smaps_rollup): a page
mapped by n processes counts 1/n in each, so the sum over the tree is what the desk
costs the machine. Summed RSS counts every shared page (the interpreter, shared
libraries, and since the fork server every page a service has not written since it
was forked) once per process, and overstates it; it is printed beside.

    python benchmarks/memory.py [--directives 20000] [--rest 5] [--settle 10] [--baseline]

--baseline also measures the desk with every service exec'd as its own interpreter
(DESKGATE_FORKSERVER=0), as before the fork server, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
sys.path.insert(0, SRC)

from deskgate.agents.submit import desk_signer  # noqa: E402
from deskgate.audit.signing import Kind  # noqa: E402
from deskgate.bus.connect import connect_as  # noqa: E402
from deskgate.bus.subjects import Role  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402

MEMO = {"signal_evidence": "m", "position_context": "m", "proposed_action": "m", "expected_outcome": "m"}
FIELDS = ("Pss", "Rss", "Pss_Anon", "Pss_File")


def rollup(pid: int) -> dict[str, int] | None:
    """The kB figures of /proc/PID/smaps_rollup we report, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            text = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in FIELDS:
            out[key] = int(rest.split()[0])
    return out


def children(pid: int) -> list[int]:
    """Every descendant of pid (from /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except FileNotFoundError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as fh:
                    kids = [int(p) for p in fh.read().split()]
            except FileNotFoundError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def label(pid: int, names: dict[int, str]) -> str:
    if pid in names:
        return names[pid]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read()
    except FileNotFoundError:
        return f"pid {pid}"
    if b"nats-server" in cmd:
        return "nats-server"
    if b"deskgate.forkserver" in cmd:
        return "forkserver"
    return f"pid {pid}"


def tree_memory(supervisor: int, root: DataDir) -> dict[str, dict[str, float]]:
    """MB per process of the supervisor's tree, and the total."""
    run = json.loads(root.run_file.read_text())
    names = {pid: name for name, pid in run["services"].items()}
    rows: dict[str, dict[str, float]] = {}
    for name, pid in [("supervisor", supervisor)] + [(label(p, names), p) for p in children(supervisor)]:
        figures = rollup(pid)
        if figures is None:
            continue
        row = rows.setdefault(name, {f: 0.0 for f in FIELDS})
        for f in FIELDS:
            row[f] += figures.get(f, 0) / 1024
    rows["total"] = {f: sum(r[f] for r in rows.values()) for f in FIELDS}
    return {name: {f.lower(): round(v, 1) for f, v in row.items()} for name, row in rows.items()}


async def load(root: DataDir, n: int) -> None:
    agent, _ = await connect_as(root, Role.AGENT, reconnect=False)
    js = agent.jetstream()
    signer = desk_signer(root)
    pending = []
    for i in range(n):
        body = {"directive_id": f"m{i}", "asset": "BTC", "venue": "binance", "side": "buy" if i % 2 else "sell",
                "notional_usd": 10.0, "confidence": 0.8, "memo": MEMO}
        data = json.dumps(body).encode()
        pending.append(asyncio.ensure_future(js.publish("consciousness.directives.BTC", data, headers=signer.headers(Kind.DIRECTIVE, data))))
        if len(pending) >= 200:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await agent.close()


def table(at_rest: dict, loaded: dict, n: int) -> str:
    order = ["supervisor", "nats-server", "forkserver", "factory", "executor", "marketdata", "agents", "audit", "web"]
    seen = [k for k in {**at_rest, **loaded} if k != "total"]
    names = sorted(seen, key=lambda k: (order.index(k) if k in order else len(order), k)) + ["total"]
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for title, rows in (("at rest, PSS", at_rest), (f"after {n:,} directives, PSS", loaded),
                        ("at rest, RSS", at_rest), (f"after {n:,} directives, RSS", loaded)):
        key = "pss" if "PSS" in title else "rss"
        cells = [f"{rows[k][key]:.0f} MB" if k in rows else "—" for k in names]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


MISSION = """\
data_dir: {data}
paper:
  starting_equity_usd: 1000000000000
approvals:
  expiry_seconds: 86400
web:
  port: 0
"""


def measure(args, forkserver: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="deskgate-mem-"))
    (tmp / "mission.yaml").write_text(MISSION.format(data=tmp / "data"))
    root = DataDir.at(tmp / "data")
    env = {**os.environ, "PYTHONPATH": os.path.abspath(SRC), "DESKGATE_FORKSERVER": "1" if forkserver else "0", "COLUMNS": "200"}
    up = subprocess.Popen([sys.executable, "-m", "deskgate", "up", "--mission", str(tmp / "mission.yaml")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    try:
        seen = b""
        while b"desk running" not in seen:
            line = up.stdout.readline()
            if not line:
                raise SystemExit(f"deskgate up did not start:\n{seen.decode()}")
            seen += line
        time.sleep(args.rest)
        at_rest = tree_memory(up.pid, root)
        started = time.monotonic()
        asyncio.run(load(root, args.directives))
        published = time.monotonic() - started
        time.sleep(args.settle)
        loaded = tree_memory(up.pid, root)
    finally:
        up.terminate()
        up.communicate(timeout=60)
    return {"at_rest": at_rest, "loaded": loaded, "publish_seconds": round(published, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--directives", type=int, default=20_000)
    ap.add_argument("--rest", type=float, default=5.0, help="seconds after start before the at-rest measure")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after the load before the second measure")
    ap.add_argument("--baseline", action="store_true", help="also measure with the fork server off, in the same run")
    args = ap.parse_args()
    runs = {}
    if args.baseline:
        runs["services exec'd (DESKGATE_FORKSERVER=0)"] = measure(args, forkserver=False)
    runs["fork server"] = measure(args, forkserver=True)
    with open("/proc/cpuinfo") as fh:
        cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} vCPUs ({cpu}), Python {platform.python_version()}",
                      "runs": runs}, indent=2))
    for title, run in runs.items():
        print(f"\n{title}:\n")
        print(table(run["at_rest"], run["loaded"], args.directives))


if __name__ == "__main__":
    main()
