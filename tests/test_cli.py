"""The command line, run as a user would: real processes, real bus, SIGTERM to stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import directive

DESKGATE = [sys.executable, "-m", "deskgate"]
PASSWORD = "correct horse battery staple"


def run(*args, input: bytes | None = None, cwd=None, timeout=60, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*DESKGATE, *args], input=input, capture_output=True, cwd=cwd, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode != 0:
        raise AssertionError(f"deskgate {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout.decode()}\n{proc.stderr.decode()}")
    return proc


def test_a_desk_hashes_its_bus_passwords_at_its_own_cost(tmp_path):
    """The suite's in-process desks hash at bcrypt's lowest cost (conftest.py); a real desk at 10, every
    bus user: the six roles and the built-in agent."""
    import re

    run("init", str(tmp_path / "desk"))
    data = tmp_path / "desk" / "deskgate-data"
    run("bus-config", "--data-dir", str(data))
    hashes = re.findall(r'"password": "([^"]+)"', (data / "bus" / "nats-server.conf").read_text())
    assert len(hashes) == 7 and all(h.startswith("$2b$10$") for h in hashes), hashes


def test_init_writes_the_article_guardrails_and_private_credentials(tmp_path):
    run("init", str(tmp_path / "desk"))
    text = (tmp_path / "desk" / "mission.yaml").read_text()
    for line in ("max_drawdown_pct: 15.0", "max_position_pct: 25.0", "min_confidence: 0.65", 'forbidden_assets: ["LUNA", "UST"]',
                 'allowed_venues: ["binance", "bybit", "okx"]', "max_leverage: 3.0", "require_human_approval_above_usd: 50000"):
        assert line in text
    creds = tmp_path / "desk" / "deskgate-data" / "bus" / "credentials.json"
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    token = tmp_path / "desk" / "deskgate-data" / "state" / "metrics.token"  # as the README's data directory lists it
    assert len(token.read_text().strip()) >= 32 and oct(token.stat().st_mode & 0o777) == "0o600"
    again = run("init", str(tmp_path / "desk"), check=False)
    assert again.returncode == 2 and b"already exists" in again.stderr


def test_schema_directive_is_a_json_schema_an_agent_can_use():
    schema = json.loads(run("schema", "directive").stdout)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"directive_id", "asset", "venue", "side", "notional_usd", "confidence", "memo"}
    beliefs = json.loads(run("schema", "beliefs").stdout)
    assert set(beliefs["required"]) >= {"equity_usd", "peak_equity_usd"}
    assert run("schema", "nope", check=False).returncode == 2


def test_policy_check_one_line_out_per_line_in_with_reservations(tmp_path):
    run("init", str(tmp_path))
    beliefs = tmp_path / "beliefs.json"
    beliefs.write_text(json.dumps({
        "equity_usd": 100_000, "peak_equity_usd": 100_000, "positions": {"BTC": 5_000},
        "pending": [{"directive_id": "p0", "asset": "BTC", "side": "buy", "notional_usd": 5_000}], "breaker": "armed",
    }))
    lines = [
        json.dumps(directive("a", notional_usd=10_000)),  # 20%: staged
        json.dumps(directive("b", notional_usd=5_000.01)),  # over 25% with a's reservation
        "{broken",
        "",
        json.dumps(directive("a", notional_usd=1)),  # repeated id
        json.dumps(directive("c", asset="LUΝA")),
        json.dumps(directive("d", asset="ETH", notional_usd=60_000)),  # explicit
    ]
    out = run("policy", "check", "--mission", str(tmp_path / "mission.yaml"), "--beliefs", str(beliefs),
              input=("\n".join(lines) + "\n").encode()).stdout.decode().splitlines()
    assert len(out) == len(lines)
    rows = [json.loads(x) for x in out]
    assert all(set(r) == {"directive_id", "decision", "explicit_approval", "checks"} for r in rows)
    assert all(set(c) == {"name", "passed", "observed", "limit", "reason"} for r in rows for c in r["checks"])
    assert [r["decision"] for r in rows] == ["staged", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected"]
    assert next(c for c in rows[1]["checks"] if c["name"] == "position")["passed"] is False
    assert rows[2]["directive_id"] is None and rows[2]["checks"][0]["name"] == "schema"
    assert rows[4]["checks"][0]["name"] == "duplicate"
    assert "look-alike of forbidden LUNA" in next(c for c in rows[5]["checks"] if c["name"] == "asset")["reason"]
    assert rows[6]["explicit_approval"] is True  # staged? no: 60% of equity; still flagged
    bad = tmp_path / "bad.json"
    bad.write_text('{"equity_usd": 1}')
    err = run("policy", "check", "--mission", str(tmp_path / "mission.yaml"), "--beliefs", str(bad), input=b"", check=False)
    assert err.returncode == 2 and b"peak_equity_usd" in err.stderr


def test_a_bad_mission_starts_nothing(tmp_path):
    (tmp_path / "mission.yaml").write_text("guardrails:\n  max_position_pct: -1\n  allowed_venues: []\n")
    proc = run("up", "--mission", str(tmp_path / "mission.yaml"), check=False)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "guardrails.max_position_pct" in err and "guardrails.allowed_venues" in err
    assert not (tmp_path / "deskgate-data" / "bus" / "endpoint.json").exists()


def _start_up(mission: Path) -> subprocess.Popen:
    proc = subprocess.Popen([*DESKGATE, "up", "--mission", str(mission), "--web-port", "0", "--no-agents"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 60
    seen = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if b"desk running" in line:
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"deskgate up did not start:\n{seen.decode()}")


def _stop(proc: subprocess.Popen) -> str:
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {alive}"
    return out.decode()


@pytest.mark.slow
def test_up_serves_the_cli_stops_on_sigterm_and_resumes(tmp_path):
    run("init", str(tmp_path))
    mission = tmp_path / "mission.yaml"
    mission.write_text(mission.read_text().replace("interval_seconds: 1.0", "interval_seconds: 0.2")
                       .replace("starting_equity_usd: 1000000", "starting_equity_usd: 200000"))
    data = tmp_path / "deskgate-data"
    proc = _start_up(mission)
    try:
        d = ["--data-dir", str(data)]
        kwargs = json.loads(run("creds", "agent", *d).stdout)
        assert set(kwargs) >= {"servers", "user", "password", "inbox_prefix"} and kwargs["user"] == "agent-desk"  # the built-in agent
        assert run("creds", "root", *d, check=False).returncode == 2
        time.sleep(1.0)  # first prices
        batch = tmp_path / "batch.jsonl"
        batch.write_text("\n".join([
            json.dumps(directive("k1", notional_usd=20_000)),
            json.dumps(directive("k2", asset="ETH", notional_usd=30_000)),
            json.dumps(directive("k3", asset="SOL", notional_usd=10_000)),
            json.dumps(directive("k4", asset="luna", notional_usd=10_000)),
        ]))
        submitted = run("directive", "submit", str(batch), "--json", *d, check=False)
        assert submitted.returncode == 1  # one line rejected
        verdicts = json.loads(submitted.stdout)
        assert [v["decision"] for v in verdicts] == ["staged", "staged", "staged", "rejected"]
        listed = json.loads(run("approvals", "list", "--json", *d).stdout)
        assert [i["directive"]["directive_id"] for i in listed] == ["k1", "k2", "k3"]
        shown = run("approvals", "show", "k1", *d).stdout.decode()
        assert "decision memo" in shown and "position" in shown
        password = tmp_path / "alice.password"
        password.write_text(PASSWORD + "\n")
        no_account = run("approvals", "approve", "k1", "--principal", "alice", "--password-file", str(password), "--json", *d, check=False)
        assert no_account.returncode == 2 and b"alice has no account" in no_account.stderr
        no_key = run("keys", "principal", "alice", "--password-file", str(password), *d, check=False)
        assert no_key.returncode == 2 and b"alice has no account" in no_key.stderr  # keys need accounts
        for who in ("alice", "bob"):
            added = run("user", "add", who, "--role", "principal", "--password-stdin", *d, input=(PASSWORD + "\n").encode()).stdout.decode()
            assert "sealed with their password" in added
        assert run("keys", "principal", "bob", "--password-stdin", *d, input=(PASSWORD + "\n").encode(), check=False).returncode == 2  # never replaced silently
        wrong = run("approvals", "approve", "k1", "--principal", "alice", "--password-stdin", "--json", *d, input=b"not her password\n", check=False)
        assert wrong.returncode == 2 and b"wrong password for alice" in wrong.stderr
        approved = json.loads(run("approvals", "approve", "k1", "--principal", "alice", "--password-file", str(password), "--json", *d).stdout)
        assert [o["outcome"] for o in approved] == ["ordered", "executed"]
        rejected = json.loads(run(
            "approvals", "reject", "k2", "--reason", "too late in the day", "--principal", "bob", "--password-stdin", "--json", *d,
            input=(PASSWORD + "\n").encode(),
        ).stdout)
        assert rejected[0]["outcome"] == "rejected" and rejected[0]["principals"] == ["bob"]
        assert run("approvals", "reject", "k3", "--reason", " ", *d, check=False).returncode == 2
        # The CLI's decisions are in the account's activity, as the Command Center's are.
        from deskgate.paths import DataDir
        from deskgate.people.accounts import Accounts

        done = [(a["name"], a["action"], a["target"], a["detail"].get("via")) for a in Accounts.open(DataDir.at(data)).actions()]
        assert ("alice", "approve", "k1", "cli") in done and ("bob", "reject", "k2", "cli") in done
        breaker = json.loads(run("breaker", "status", "--json", *d).stdout)
        assert breaker["state"] == "armed"
        assert run("breaker", "reset", "--reason", "nothing to reset", "--principal", "alice", "--password-file", str(password), *d, check=False).returncode == 2
        time.sleep(2.5)
        portfolio = json.loads(run("portfolio", "--json", *d).stdout)
        assert [p["asset"] for p in portfolio["positions"]] == ["BTC"]
        stats = json.loads(run("stats", "--json", *d).stdout)
        assert (stats["received"], stats["staged"], stats["approved"], stats["executed"], stats["human_rejected"]) == (4, 3, 1, 1, 1)
        assert stats["policy_rejections_by_reason"] == {"asset": 1}
        assert "the funnel" in run("stats", *d).stdout.decode()
        # Every directive here was the desk's own agent's (its key signed them): its funnel is the desk's.
        desk_only = json.loads(run("stats", "--agent", "desk", "--json", *d).stdout)
        assert (desk_only["received"], desk_only["staged"], desk_only["executed"]) == (4, 3, 1)
        nobody = run("stats", "--agent", "ghost", *d, check=False)
        assert nobody.returncode == 2 and "no directive signed by agent 'ghost'" in nobody.stderr.decode()

        # The audit service recorded the whole chain of k1, each link signed by its own key.
        trace = json.loads(run("audit", "trace", "k1", "--json", *d).stdout)
        by_kind = {e["kind"]: e for e in trace}
        assert {"directive", "evaluation", "staged", "approval", "order", "fill"} <= set(by_kind)
        assert all(e["signature_now"] == "valid" for e in trace)
        assert by_kind["directive"]["signer"] == "agent:desk" and by_kind["approval"]["signer"] == "principal:alice"
        assert by_kind["order"]["signer"] == "factory" and by_kind["fill"]["signer"] == "executor"
        verified = run("audit", "verify", *d).stdout.decode()
        assert "verified" in verified
        export = tmp_path / "audit.jsonl"
        run("audit", "export", str(export), *d)
        report = json.loads(run("audit", "verify", "--file", str(export), "--keys", str(data / "keys"), "--json").stdout)
        assert report["ok"] and report["entries"] >= 6 and report["checkpoints"] >= 1
    finally:
        out = _stop(proc)
    assert "stopped cleanly" in out

    proc = _start_up(mission)
    try:
        listed = json.loads(run("approvals", "list", "--json", *d).stdout)
        assert [i["directive"]["directive_id"] for i in listed] == ["k3"]
        time.sleep(1.0)
        portfolio = json.loads(run("portfolio", "--json", *d).stdout)
        assert [p["asset"] for p in portfolio["positions"]] == ["BTC"]
        stats = json.loads(run("stats", "--json", *d).stdout)
        assert stats["received"] == 4
    finally:
        _stop(proc)


def test_cli_without_a_running_desk_says_so(tmp_path):
    proc = run("approvals", "list", "--data-dir", str(tmp_path / "nothing"), check=False)
    assert proc.returncode == 2
    assert b"deskgate up" in proc.stderr


@pytest.mark.slow
def test_an_external_bus_configured_from_bus_config(tmp_path):
    """With bus.url set, `up` starts no server; the operator applies `deskgate bus-config`."""
    from deskgate.bus.server import free_port, nats_server_binary

    data = tmp_path / "data"
    conf = run("bus-config", "--data-dir", str(data)).stdout.decode()
    (tmp_path / "deskgate.conf").write_text(conf)
    port = free_port()
    (tmp_path / "operator.conf").write_text(
        f'listen: "127.0.0.1:{port}"\njetstream {{ store_dir: "{tmp_path / "js"}" }}\ninclude "deskgate.conf"\n'
    )
    server = subprocess.Popen([str(nats_server_binary()), "-c", str(tmp_path / "operator.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        mission = tmp_path / "mission.yaml"
        mission.write_text(
            f"bus: {{url: 'nats://127.0.0.1:{port}'}}\ndata_dir: ./data\n"
            "marketdata: {interval_seconds: 0.2}\n"
        )
        proc = _start_up(mission)
        try:
            endpoint = json.loads((data / "bus" / "endpoint.json").read_text())
            assert endpoint["servers"] == [f"nats://127.0.0.1:{port}"] and endpoint["embedded"] is False
            time.sleep(1.0)
            batch = tmp_path / "one.json"
            batch.write_text(json.dumps(directive("ext-1", notional_usd=1_000)))
            verdicts = json.loads(run("directive", "submit", str(batch), "--json", "--data-dir", str(data)).stdout)
            assert verdicts[0]["decision"] == "staged"
        finally:
            out = _stop(proc)
        assert "stopped cleanly" in out and "then the bus" not in out
        assert server.poll() is None  # ours to stop, not deskgate's
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
def test_a_supervisor_killed_hard_takes_its_processes_with_it(tmp_path):
    run("init", str(tmp_path))
    mission = tmp_path / "mission.yaml"
    proc = _start_up(mission)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) == 7  # nats-server, the fork server, factory, executor, marketdata, audit, web
    assert {c.ppid() for c in children} == {proc.pid}  # every service is the supervisor's own child, forked or not
    proc.kill()  # kill -9 the supervisor
    proc.wait(10)
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"orphans left running: {alive}"
    again = _start_up(mission)  # nothing left holding the data directory
    _stop(again)


def test_up_refuses_while_an_earlier_desks_processes_run(tmp_path):
    run("init", str(tmp_path))
    data = tmp_path / "deskgate-data"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "deskgate-leftover"])
    try:
        (data / "run.json").write_text(json.dumps({"nats": {"pid": sleeper.pid}, "services": {}}))
        proc = run("up", "--mission", str(tmp_path / "mission.yaml"), check=False)
        assert proc.returncode == 2 and str(sleeper.pid).encode() in proc.stderr
    finally:
        sleeper.kill()


@pytest.mark.slow
def test_demo_replays_the_desk_and_ends_with_the_funnel_the_governor_a_brief_and_a_review(tmp_path):
    proc = run("demo", "--days", "2", "--keep", timeout=300)
    out = proc.stdout.decode()
    for text in ("replayed 2 days", "desk days per minute", "the funnel", "directives received", "simulated principal",
                 "the Governor", "P&L", "max drawdown", "morning brief 2026-01-06 05:30 UTC, by the offline analyst",
                 "end-of-day review 2026-01-06 by the offline analyst", "deskgate up --no-agents --mission", "desk stopped cleanly"):
        assert text in out, text
    import re

    kept = Path(re.search(r"This run's data is in (/\S*deskgate-demo-\w+)", out).group(1))
    try:
        # The kept run can be looked into afterwards, with no desk running.
        core = run("memory", "core", "--data-dir", str(kept / "data"))
        assert b"hypotheses" in core.stdout and b"confirmed" in core.stdout
        docs = run("memory", "archival", "end-of-day", "--data-dir", str(kept / "data"))
        assert b"End-of-day review 2026-01-05" in docs.stdout and b"End-of-day review 2026-01-06" in docs.stdout
    finally:
        import shutil

        shutil.rmtree(kept, ignore_errors=True)


def test_governor_commands_need_a_running_desk_and_a_reason(tmp_path):
    missing = run("governor", "clear", "--data-dir", str(tmp_path / "nothing"), check=False)
    assert missing.returncode == 2 and b"--reason" in missing.stderr
    no_desk = run("governor", "status", "--data-dir", str(tmp_path / "nothing"), check=False)
    assert no_desk.returncode == 2 and b"no credentials" in no_desk.stderr
