"""`make demo` / `deskgate demo`: the desk, replayed over several days in about a minute.

A real nats-server, factory, paper executor and Command Center, each its own
process, in a temporary directory; the replay plays a seeded market and the clock;
the agents (offline analyst) draft; the simulated principal decides by the rule in
replay.py. At the end: the funnel, P&L and drawdown, guardrail rejections, the
Governor's interventions, a morning brief and an end-of-day review.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deskgate.agents.offline import OfflineAnalyst
from deskgate.config import load_mission, render_mission_template
from deskgate.paths import DataDir
from deskgate.replay import PRINCIPAL, Replay, ReplayResult
from deskgate.stack import Stack

EQUITY = 1_000_000.0
DEMO_SERVICES = ("factory", "executor", "audit", "web")  # the replay plays the market and runs the agents itself


def demo_mission(root: Path) -> Path:
    text = render_mission_template(data_dir="./data", desk_name="deskgate demo desk")
    text = text.replace("  port: 8700\n", "  port: 0\n")  # the Command Center on any free port
    text = text.replace("  expiry_seconds: 900\n", "  expiry_seconds: 86400\n")  # a day of desk time: the simulated principal looks each cycle
    # The replay plays the market itself; browsing the run afterwards with `deskgate up`
    # moves no prices, so the desk stays at the replay's last moment.
    text = text.replace("  source: simulator", "  source: none")
    text += "\n# The factory and the executor take the replayed market's time as theirs, so the charts show the replayed days.\nclock: market\n"
    path = root / "mission.yaml"
    path.write_text(text)
    return path


def run_demo(console: Console, *, days: int = 5, keep: bool = False, analyst=None) -> ReplayResult:
    root = Path(tempfile.mkdtemp(prefix="deskgate-demo-"))
    started = time.monotonic()
    mission = load_mission(demo_mission(root))
    data_dir = DataDir.at(mission.data_dir)
    console.rule(f"[bold]deskgate demo[/]: {days} desk days, replayed")
    console.print(
        "A real nats-server (JetStream on disk, one account per role), the factory, the paper executor and the\n"
        "Command Center run as their own processes in a temporary directory. The replay plays a seeded market and\n"
        + ("the clock; the agents draft with the [bold]offline analyst[/] (deterministic rules, no LLM, no network);\n" if analyst is None
           else f"the clock; the agents draft with the [bold]{analyst.label}[/];\n")
        + f"a [bold yellow]simulated principal[/] ({PRINCIPAL}) decides the approvals by a documented rule\n"
        "(approve when confidence after the Governor's damping is at least 0.70; clear the Governor at the next\n"
        "morning brief; see src/deskgate/replay.py).\n"
    )
    with console.status("starting the desk..."):
        stack = Stack(mission, data_dir, services=DEMO_SERVICES).start()
    try:
        progress = Progress(
            TextColumn("[bold]replaying[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} days"),
            TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
        )
        with progress:
            task = progress.add_task("", total=days)

            def on_progress(t, done):
                progress.update(task, completed=done, description=f"desk time {t:%a %Y-%m-%d %H:%M} UTC")

            result = asyncio.run(Replay(mission, data_dir, analyst or OfflineAnalyst(), days=days, on_progress=on_progress).run())
        cassette = getattr(analyst, "cassette", None)
        if cassette is not None:
            cassette.finished()
            done = f"played back all {cassette.position} answers from" if cassette.mode == "replay" else f"recorded {cassette.kept} answers of the model to"
            console.print(f"{done} {cassette.path}")
        show(console, result)
        show_audit(console, data_dir)
        console.print(
            Panel(
                f"This run's data is in {root}.\n"
                f"Browse it in the Command Center: `deskgate user add you --role viewer --data-dir {data_dir.root}`, then\n"
                f"`deskgate up --no-agents --mission {root / 'mission.yaml'}` and open the address it prints (funnel,\n"
                "portfolio in the replay's days, reviews, the Governor); `--no-agents` keeps the agents from trading on,\n"
                "and no prices move. Look inside the agents' memory:\n"
                f"`deskgate memory core|search QUERY|archival QUERY --data-dir {data_dir.root}`."
                if keep
                else "Run `deskgate demo --keep` to keep the data and browse the run in the Command Center afterwards\n"
                "(`deskgate up --no-agents --mission <dir>/mission.yaml`), or look inside the agents' memory with `deskgate memory`.",
                title="browse it",
            )
        )
        return result
    finally:
        with console.status("shutting down: services first, then the bus..."):
            stack.stop()
        console.print(f"[green]desk stopped cleanly[/] after {time.monotonic() - started:.1f}s")
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def show_audit(console: Console, data_dir: DataDir, settle_seconds: float = 1.0, timeout: float = 20.0) -> None:
    """The audit service's log of the run: verified, and one executed directive's chain."""
    import json

    from deskgate.audit.chain import signature_status
    from deskgate.audit.log import AuditLog

    deadline = time.monotonic() + timeout
    with console.status("waiting for the audit log to take in the last messages..."):
        last, stable_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            log = AuditLog.open(data_dir)
            size = log.size
            log.close()
            if size != last:
                last, stable_since = size, time.monotonic()
            elif time.monotonic() - stable_since >= settle_seconds:
                break
            time.sleep(0.2)
    log = AuditLog.open(data_dir)
    try:
        with console.status(f"verifying {log.size:,} audit entries (every signature, the chain, the checkpoints)..."):
            report = log.verify()
        verdict = "[bold green]verified[/]" if report.ok else f"[bold red]FAILED[/] at entry {report.first.seq}: {report.first.what}"
        console.print(
            f"audit log: {report.entries:,} signed entries, {report.checkpoints} signed Merkle checkpoints: {verdict}"
            + (f"; {report.unverified_count} unsigned messages recorded as such" if report.unverified_count else "")
        )
        executed = next(
            (e.ref for e in log.entries() if e.kind == "fill" and json.loads(e.payload).get("status") == "filled" and e.ref),
            None,
        )
        if executed:
            t = Table(title=f"one decision chain, as `deskgate audit trace {executed}` shows it")
            for col in ("#", "what", "signed by", "signature"):
                t.add_column(col)
            for e in log.trace(executed):
                st = signature_status(log.keys, e).value
                t.add_row(str(e.seq), e.kind, e.signer or "-", f"[green]{st}[/]" if st == "valid" else f"[red]{st}[/]")
            console.print(t)
    finally:
        log.close()


def show(console: Console, r: ReplayResult) -> None:
    per_min = r.days / r.wall_seconds * 60 if r.wall_seconds > 0 else 0.0
    console.print(
        f"replayed {r.days} days ({r.start:%Y-%m-%d} to {r.end:%Y-%m-%d}) in {r.wall_seconds:.1f}s "
        f"= [bold]{per_min:.0f} desk days per minute[/]; {r.bars:,} bars, {r.summaries} summaries, {r.signals} signals; "
        f"cycles: {r.cycles['morning_brief']} morning briefs, {r.cycles['intraday']} intraday, {r.cycles['eod_review']} end-of-day reviews"
    )
    from deskgate.cli.ops import funnel_table

    if r.funnel is not None:
        console.print(funnel_table(r.funnel))
    c = r.counts
    agents = Table(title="the agents (offline analyst)")
    agents.add_column("step")
    agents.add_column("count", justify="right")
    for label, key in (
        ("insights kept (every citation checked)", "insights"),
        ("invented citations dropped", "invented_citations"),
        ("insights dropped (no real citation)", "dropped_insights"),
        ("principles", "principles"),
        ("directives drafted", "drafts"),
        ("sent to the factory (revisions included)", "submitted"),
        ("revised after a policy rejection", "revisions"),
        ("withdrawn as outside the guardrails", "withdrawn"),
        ("review requests posted", "reviews"),
    ):
        agents.add_row(label, str(c.get(key, 0)))
    book = Table(title="P&L and risk")
    book.add_column("")
    book.add_column("", justify="right")
    if r.last is not None:
        pnl = r.last.equity_usd - EQUITY
        book.add_row("equity", f"{r.last.equity_usd:,.0f} USD")
        book.add_row("P&L", f"[{'green' if pnl >= 0 else 'red'}]{pnl:+,.0f} USD ({pnl / EQUITY * 100:+.2f}%)[/]")
        book.add_row("fees paid", f"{r.last.fees_paid_usd:,.0f} USD")
        book.add_row("gross leverage now", f"{r.last.leverage:.2f}x")
        for p in r.last.positions:
            book.add_row(f"  {p.asset} on {p.venue}", f"{p.notional_usd:,.0f} USD")
    book.add_row("max drawdown (the factory's, seen at each cycle)", f"{r.max_drawdown_pct:.2f}%")
    governor = Table(title="the Governor")
    governor.add_column("")
    governor.add_column("", justify="right")
    governor.add_row("times it started damping", str(r.governor_interventions))
    governor.add_row("directives drafted while damped", str(r.governor_damped))
    governor.add_row("cleared by the simulated principal", str(r.governor_clears))
    governor.add_row("review requests acknowledged", str(r.reviews_acknowledged))
    principal = Table(title=f"the simulated principal ({PRINCIPAL})")
    principal.add_column("decision")
    principal.add_column("count", justify="right")
    tally: dict[str, int] = {}
    for d in r.decisions:
        key = f"{d.decision} -> {d.outcome}"
        tally[key] = tally.get(key, 0) + 1
    for k, n in sorted(tally.items()):
        principal.add_row(k, str(n))
    tables = [agents, book, governor, principal]
    if r.scorecard is not None:
        card, d = r.scorecard, r.scorecard.desk
        score = Table(title=f"the scorecard (each fill judged {card.horizon_hours:g} h after it)")
        score.add_column("")
        score.add_column("", justify="right")
        score.add_row("executed / judged / not yet at horizon", f"{d.executed} / {d.judged} / {card.pending}")
        score.add_row("hit rate", "-" if d.hit_rate is None else f"{d.hit_rate:.0%}")
        score.add_row("Brier score (0 perfect, 0.25 a coin at 0.5)", "-" if d.brier is None else f"{d.brier:.3f}")
        score.add_row("P&L at the horizon", f"{d.pnl_usd:+,.0f} USD")
        score.add_row("more", "deskgate scorecard")
        tables.append(score)
    console.print(Group(*tables))
    if r.briefs:
        b = r.briefs[-1]
        console.print(
            Panel(
                "\n".join(
                    [
                        f"[bold]position risk[/]: {b.brief.position_risk}",
                        "[bold]overnight[/]:",
                        *(f"  - {x}" for x in b.brief.overnight),
                        "[bold]suggested parameter changes[/]:",
                        *(f"  - {x}" for x in b.brief.parameter_suggestions),
                        "[bold]flagged for review[/]:",
                        *(f"  - {x}" for x in b.brief.flagged or ["nothing"]),
                    ]
                ),
                title=f"morning brief {b.at:%Y-%m-%d %H:%M} UTC, by the {b.analyst}",
            )
        )
    if r.reviews:
        v = r.reviews[-1]
        console.print(
            Panel(
                "\n".join(
                    [
                        f"[bold]results against expectations[/]: {v.review.results_vs_expectations}",
                        f"[bold]execution quality[/]: {v.review.execution_quality}",
                        "[bold]observations[/]:",
                        *(f"  - {x}" for x in v.review.observations),
                        f"[bold]regime[/] (written to core memory): {v.review.regime_assessment}",
                        "[bold]hypotheses for tomorrow[/] (core memory):",
                        *(f"  - {x}" for x in v.review.hypotheses),
                        f"(archived as document #{v.archival_id})",
                    ]
                ),
                title=f"end-of-day review {v.at:%Y-%m-%d} by the {v.analyst}",
            )
        )
