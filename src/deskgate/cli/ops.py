"""Working the desk: submit directives, decide approvals, the breaker, the book, the funnel."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from deskgate.cli import (
    DataDirOption,
    JsonOption,
    MissionOption,
    PasswordFileOption,
    PasswordStdinOption,
    PrincipalOption,
    app,
    console,
    fail,
    handle_errors,
    principal_name,
    print_json,
    read_password,
    resolve,
    resolve_data_dir,
    run_async,
)
from deskgate.cli.tables import compact_table, id_column, text_column, value_column

directive_app = typer.Typer(help="Submit directives as the agent role.", no_args_is_help=True)
approvals_app = typer.Typer(help="The approval queue, as a principal.", no_args_is_help=True)
breaker_app = typer.Typer(help="The circuit breaker.", no_args_is_help=True)
app.add_typer(directive_app, name="directive")
app.add_typer(approvals_app, name="approvals")
app.add_typer(breaker_app, name="breaker")


def _money(x: float) -> str:
    return f"{x:,.2f}"


# -- directives --------------------------------------------------------------------


# What `deskgate directive submit` exits with (the README's "Exit codes"); 2 stays usage,
# input and connection errors, as for every command.
EXIT_ALL_STAGED = 0
EXIT_NOT_STAGED = 1  # every line got a verdict, and at least one was rejected or a duplicate
EXIT_NO_VERDICT = 3  # at least one line got no verdict within --wait: its fate is unknown


def submit_exit_code(verdicts) -> int:
    """Unknown outranks refused: a script must not take a missing verdict for a known one."""
    if any(v is None for v in verdicts):
        return EXIT_NO_VERDICT
    if any(v.decision != "staged" for v in verdicts):
        return EXIT_NOT_STAGED
    return EXIT_ALL_STAGED


@directive_app.command("submit")
@handle_errors
def submit(
    source: str = typer.Argument(..., help="A file of directives (one JSON object per line, or one JSON document), or - for stdin."),
    wait: float = typer.Option(10.0, help="Seconds to wait for the factory's verdicts."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Publish directives with the agent role's credentials and show the policy engine's verdicts.

    Exit codes: 0 all staged; 1 any rejected or duplicate; 3 any without a verdict within --wait; 2 usage, input or bus errors.
    """
    from deskgate.agents.submit import AgentClient

    text = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    payloads = _split_payloads(text)
    if not payloads:
        fail("no directives to submit")
    root = resolve_data_dir(mission_path, data_dir)

    async def go():
        async with await AgentClient.connect(root) as agent:
            return await agent.submit_payloads(payloads, wait=wait)

    verdicts = run_async(go())
    if json_out:
        print_json([v.model_dump(mode="json") if v else None for v in verdicts])
    else:
        console.print(verdicts_table(payloads, verdicts))
    code = submit_exit_code(verdicts)
    if code != EXIT_ALL_STAGED:
        raise typer.Exit(code)


def verdicts_table(payloads: list[bytes], verdicts) -> Table:
    from deskgate.policy.engine import id_claimed

    t = compact_table("policy engine verdicts")
    value_column(t, "#", justify="right")
    id_column(t, "directive")
    value_column(t, "decision")
    value_column(t, "explicit")
    text_column(t, "why")
    for i, (payload, v) in enumerate(zip(payloads, verdicts), 1):
        if v is None:
            t.add_row(str(i), escape(id_claimed(payload) or "?"), "[yellow]no verdict[/]", "",
                      "the factory did not answer in time; check `deskgate stats`")
            continue
        failed = [c for c in v.evaluation.checks if not c.passed]
        why = "; ".join(f"{c.name}: {c.reason}" for c in failed[:3])
        colour = {"staged": "green", "rejected": "red", "duplicate": "yellow"}[v.decision]
        t.add_row(str(i), v.directive_id or "-", f"[{colour}]{v.decision}[/]", "yes" if v.evaluation.explicit_approval else "", escape(why))
    return t


def _split_payloads(text: bytes) -> list[bytes]:
    """One JSON document (object or array), or JSON lines. Lines are sent as-is, even if broken."""
    import json

    stripped = text.strip()
    if not stripped:
        return []
    try:
        doc = json.loads(stripped)
    except ValueError:
        doc = None
    if isinstance(doc, list):
        return [json.dumps(d).encode() for d in doc]
    if isinstance(doc, dict):
        return [stripped]
    return [line for line in stripped.splitlines() if line.strip()]


# -- approvals -----------------------------------------------------------------------


def as_principal(root, call):
    """Run `call(command_center)` over one connection with the command_center role's rights."""
    from deskgate.approvals.client import CommandCenter

    async def go():
        async with await CommandCenter.connect(root) as cc:
            return await call(cc)

    return run_async(go())


class Decider:
    """A principal about to decide from the CLI: their account checked, their sealed key
    opened with their own password, and their decisions recorded in their account's
    activity exactly as the Command Center records them."""

    def __init__(self, mission_path, data_dir, principal, password_file, password_stdin):
        from deskgate.people.accounts import Accounts
        from deskgate.people.principals import Principals

        mission, self.root = resolve(mission_path, data_dir)
        self.name = principal_name(principal).strip().lower()
        if not self.root.accounts_db.exists() and self.root.storage_url() is None:
            fail(f"no accounts in {self.root.root} (no {self.root.accounts_db.name}): is this the desk's data directory? "
                 "`deskgate user add NAME --role principal` makes the first")
        self.accounts = Accounts.open(self.root)
        principals = Principals(self.accounts, legacy_dir=self.root.keys)
        principals.migrate_unsealed_keys()  # a plain key file from an earlier version is retired, never used
        refusal = principals.refusal(self.name)
        if refusal and not principals.can_seal(self.name):
            fail(refusal)  # no account, disabled or a viewer: no password asked at all
        if self._has_passkey(principals):
            fail(f"{self.name} decides with a passkey: the factory counts their decisions only with its assertion, so decide in the Command Center")
        password = read_password(self.name, password_file, password_stdin)
        w = mission.web
        self.signer = principals.signer(self.name, password, failures_allowed=w.login_failures_allowed, max_wait_s=w.lockout_max_seconds)

    def _has_passkey(self, principals) -> bool:
        return bool(getattr(principals, "passkeys", lambda _n: [])(self.name))

    def record(self, action: str, target: str = "", **detail) -> None:
        self.accounts.record(self.name, action, target, via="cli", **detail)


def _left(expires_at: datetime) -> str:
    seconds = (expires_at - datetime.now(timezone.utc)).total_seconds()
    if seconds <= 0:
        return "expired"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@approvals_app.command("list")
@handle_errors
def approvals_list(
    all_items: bool = typer.Option(False, "--all", help="Include decided items."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Staged directives awaiting a principal."""
    root = resolve_data_dir(mission_path, data_dir)

    queue = as_principal(root, lambda cc: cc.queue())
    items = sorted((i for i in queue.values() if all_items or i.pending), key=lambda i: i.staged.staged_at)
    if json_out:
        print_json([{"state": i.state, **i.staged.model_dump(mode="json")} for i in items])
        return
    console.print(queue_table(items, all_items) if items else "nothing awaiting a decision")


def queue_table(items, all_items: bool = False) -> Table:
    t = compact_table("approval queue" + (" (all)" if all_items else " (pending)"))
    id_column(t, "directive")
    text_column(t, "state")
    text_column(t, "order")
    value_column(t, "explicit")
    value_column(t, "expires", justify="right")
    for i in items:
        s = i.staged
        d = s.directive
        t.add_row(
            d.directive_id,
            i.state.replace("_", " "),
            f"{d.side} {_money(d.notional_usd)} USD of {s.asset} on {s.venue}: "
            f"{s.context.post_trade_position_pct:.2f}% of equity after, confidence {d.confidence:.2f}",
            ("[bold]4 eyes[/]" if s.four_eyes else "[bold]yes[/]") if s.explicit else "",
            _left(s.expires_at) if i.pending else "",
        )
    return t


@approvals_app.command("show")
@handle_errors
def approvals_show(
    directive_id: str,
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """One staged directive: memo, every check, the portfolio around it, its outcome."""
    root = resolve_data_dir(mission_path, data_dir)

    item = as_principal(root, lambda cc: cc.item(directive_id))
    if json_out:
        print_json({"state": item.state, "staged": item.staged.model_dump(mode="json"), "outcomes": [o.model_dump(mode="json") for o in item.outcomes]})
        return
    s, d = item.staged, item.staged.directive
    console.print(
        Panel(
            f"[bold]{d.side.upper()} {_money(d.notional_usd)} USD of {s.asset} on {s.venue}[/]  "
            f"(leverage {d.leverage:g}x, confidence {d.confidence:.2f}, agent {escape(s.drafted_by)})\n"
            f"state: [bold]{item.state}[/]   staged {s.staged_at:%Y-%m-%d %H:%M:%S} UTC at {s.price_at_staging:,.4f}   "
            f"expires {s.expires_at:%H:%M:%S} UTC ({_left(s.expires_at) if item.pending else '-'})"
            + ("\n[bold yellow]explicit approval: approve this one on its own[/]" if s.explicit else "")
            + ("\n[bold yellow]four eyes: needs two different principals[/]" if s.four_eyes else ""),
            title=f"directive {d.directive_id}",
        )
    )
    memo = Table(title="decision memo", show_header=False)
    memo.add_column(style="bold")
    memo.add_column()
    memo.add_row("signal evidence", d.memo.signal_evidence)
    memo.add_row("position context", d.memo.position_context)
    memo.add_row("proposed action", d.memo.proposed_action)
    memo.add_row("expected outcome", d.memo.expected_outcome)
    console.print(memo)
    checks = Table(title="policy checks at staging")
    for col in ("check", "result", "observed", "limit", "reason"):
        checks.add_column(col)
    for c in s.evaluation.checks:
        checks.add_row(c.name, "[green]pass[/]" if c.passed else "[red]fail[/]", str(c.observed), str(c.limit), c.reason)
    console.print(checks)
    ctx = s.context
    console.print(
        f"portfolio at staging: equity {_money(ctx.equity_usd)}, {s.asset} position {_money(ctx.current_position_usd)} "
        f"(+{_money(ctx.pending_same_side_usd)} pending) -> {_money(ctx.post_trade_position_usd)} "
        f"({ctx.post_trade_position_pct:.2f}% of equity), gross leverage after {ctx.gross_leverage_after:.3f}x, "
        f"drawdown {ctx.drawdown_pct:.2f}%"
    )
    for o in item.outcomes:
        console.print(f"  {o.at:%H:%M:%S} {o.outcome} {', '.join(o.principals)} {o.reason}")


def _print_outcomes(outcomes, json_out: bool) -> None:
    if json_out:
        print_json([o.model_dump(mode="json") for o in outcomes])
        return
    if not outcomes:
        console.print("[yellow]no answer from the factory yet[/]; `deskgate approvals show ID` will tell")
    for o in outcomes:
        colour = {"executed": "green", "ordered": "green", "awaiting_second_approval": "cyan", "held": "yellow"}.get(o.outcome, "red")
        line = f"[{colour}]{o.outcome}[/] {o.reason}"
        if o.fill is not None and o.fill.status == "filled":
            f = o.fill
            line += f"  filled {f.quantity:.6f} {f.asset} at {f.price:,.4f} ({_money(f.notional_usd)} USD, fee {_money(f.fee_usd)})"
        console.print(line)


@approvals_app.command("approve")
@handle_errors
def approvals_approve(
    directive_id: str,
    principal: str = PrincipalOption,
    password_file: Path = PasswordFileOption,
    password_stdin: bool = PasswordStdinOption,
    yes: bool = typer.Option(False, "--yes", "-y", help="Skip the typed confirmation of explicit directives."),
    wait: float = typer.Option(10.0, help="Seconds to wait for the order and fill."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Approve one staged directive, as a principal (their password). The factory re-checks it
    against current beliefs before ordering; nothing is approved while the breaker is tripped."""
    decider = Decider(mission_path, data_dir, principal, password_file, password_stdin)
    root = decider.root

    item = as_principal(root, lambda cc: cc.item(directive_id))
    if not item.pending:
        fail(f"directive {directive_id} is {item.state}, not awaiting a decision")
    if any(o.outcome == "awaiting_second_approval" and decider.name in (p.lower() for p in o.principals) for o in item.outcomes):
        fail(f"{decider.name} already approved {directive_id}; the second approval must come from another principal")
    s = item.staged
    if s.explicit and not yes:
        console.print(
            f"[bold yellow]explicit directive[/]: {s.directive.side} {_money(s.directive.notional_usd)} USD of {s.asset} on {s.venue}"
        )
        typed = typer.prompt(f"type the directive id ({directive_id}) to approve it")
        if typed.strip() != directive_id:
            fail("confirmation did not match; nothing approved")

    outcomes = as_principal(root, lambda cc: cc.decide(directive_id, "approve", decider.signer, wait=wait))
    decider.record("approve", directive_id, outcomes=[o.outcome for o in outcomes])
    _print_outcomes(outcomes, json_out)
    raise typer.Exit(_decision_exit_code(outcomes))


@approvals_app.command("reject")
@handle_errors
def approvals_reject(
    directive_id: str,
    reason: str = typer.Option(..., "--reason", "-r", help="Why (required, recorded)."),
    principal: str = PrincipalOption,
    password_file: Path = PasswordFileOption,
    password_stdin: bool = PasswordStdinOption,
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Reject one staged directive, with a reason, as a principal (their password)."""
    if not reason.strip():
        fail("a rejection needs a reason")
    decider = Decider(mission_path, data_dir, principal, password_file, password_stdin)

    outcomes = as_principal(decider.root, lambda cc: cc.decide(directive_id, "reject", decider.signer, reason, wait=10.0))
    decider.record("reject", directive_id, reason=reason.strip())
    _print_outcomes(outcomes, json_out)
    raise typer.Exit(_decision_exit_code(outcomes))


def _decision_exit_code(outcomes) -> int:
    """0: the factory counted the decision; 1: it refused it; 3: no answer in time (the
    decision was sent: `deskgate approvals show ID` tells what became of it)."""
    if not outcomes:
        return 3
    return 1 if all(o.outcome == "refused" for o in outcomes) else 0


# -- breaker -----------------------------------------------------------------------------


@breaker_app.command("status")
@handle_errors
def breaker_status(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """Whether the circuit breaker is armed or tripped, and why."""
    root = resolve_data_dir(mission_path, data_dir)

    state = as_principal(root, lambda cc: cc.breaker())
    if json_out:
        print_json(state.model_dump(mode="json"))
        return
    _print_breaker(state)


def _print_breaker(state) -> None:
    if state.state == "armed":
        console.print("[green]circuit breaker armed[/]" + (f" (last reset by {state.reset.principal}: {state.reset.reason})" if state.reset else ""))
        return
    console.print("[bold red]circuit breaker TRIPPED[/]: every directive is refused until a principal resets it")
    if state.trip:
        console.print(f"  tripped {state.trip.at:%Y-%m-%d %H:%M:%S} UTC: {state.trip.reason}")
    if state.note:
        console.print(f"  {state.note}")


@breaker_app.command("reset")
@handle_errors
def breaker_reset(
    reason: str = typer.Option(..., "--reason", "-r", help="Why it is safe to trade again (required, recorded)."),
    principal: str = PrincipalOption,
    password_file: Path = PasswordFileOption,
    password_stdin: bool = PasswordStdinOption,
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Reset a tripped breaker, as a principal (their password)."""
    if not reason.strip():
        fail("a breaker reset needs a reason")
    decider = Decider(mission_path, data_dir, principal, password_file, password_stdin)

    state = as_principal(decider.root, lambda cc: cc.reset_breaker(decider.signer, reason.strip()))
    decider.record("reset_breaker", str(state.trip_revision or ""), reason=reason.strip())
    if json_out:
        print_json(state.model_dump(mode="json"))
        return
    _print_breaker(state)


# -- the book and the funnel ------------------------------------------------------------


@app.command()
@handle_errors
def portfolio(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """Positions, cash, equity, drawdown and leverage, as the factory last published them."""
    root = resolve_data_dir(mission_path, data_dir)

    snap = as_principal(root, lambda cc: cc.portfolio())
    if snap is None:
        fail("the factory has not published a portfolio yet")
    if json_out:
        print_json(snap.model_dump(mode="json"))
        return
    console.print(portfolio_table(snap))


def portfolio_table(snap) -> Table:
    t = Table(title=f"portfolio at {snap.at:%Y-%m-%d %H:%M:%S} UTC")
    for col in ("asset", "venue", "quantity", "price", "notional USD"):
        t.add_column(col, justify="right" if col not in ("asset", "venue") else "left")
    for p in snap.positions:
        t.add_row(p.asset, p.venue, f"{p.quantity:,.6f}", f"{p.price:,.4f}", _money(p.notional_usd))
    t.caption = (
        f"cash {_money(snap.cash_usd)} | equity {_money(snap.equity_usd)} | peak {_money(snap.peak_equity_usd)} | "
        f"drawdown {snap.drawdown_pct:.2f}% (breaker: {snap.breaker_drawdown_pct:.2f}% since its last reset) | gross {_money(snap.gross_exposure_usd)} | leverage {snap.leverage:.3f}x | "
        f"fees {_money(snap.fees_paid_usd)} | {snap.pending_intentions} pending reserving {_money(snap.reserved_usd)}"
    )
    return t


@app.command()
@handle_errors
def fills(
    limit: int = typer.Option(20, help="How many of the latest fills."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """The latest fills from the venue."""
    root = resolve_data_dir(mission_path, data_dir)

    rows = as_principal(root, lambda cc: cc.fills(limit))
    if json_out:
        print_json([f.model_dump(mode="json") for f in rows])
        return
    console.print(fills_table(rows))


def fills_table(rows) -> Table:
    t = compact_table("fills")
    id_column(t, "directive")
    text_column(t, "fill")
    value_column(t, "notional USD", justify="right")
    value_column(t, "fee", justify="right")
    for f in rows:
        if f.status == "filled":
            what = f"filled: {f.side} {f.quantity:,.6f} {f.asset} at {f.price:,.4f} on {f.venue}, slippage {f.slippage_bps:.1f} bps"
        else:
            what = f"{f.status}: {f.side} {f.asset} on {f.venue}: {escape(f.reason)}"
        t.add_row(f.directive_id, what, _money(f.notional_usd), _money(f.fee_usd))
    return t


@app.command()
@handle_errors
def stats(
    agent: str = typer.Option(None, "--agent", help="Only this agent's directives (those signed with its own key)."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """The funnel: directives received, staged, approved, executed; rejections by reason; per agent with --agent."""
    root = resolve_data_dir(mission_path, data_dir)

    funnel = as_principal(root, lambda cc: cc.funnel())
    if funnel is None:
        fail("the factory has not published a funnel yet (no directive received?)")
    if agent is not None:
        if agent not in funnel.agents:
            known = ", ".join(funnel.agents) or "none yet"
            fail(f"no directive signed by agent {agent!r} has reached the factory (agents in the funnel: {known})")
        funnel = funnel.agents[agent]
    if json_out:
        print_json(funnel.model_dump(mode="json"))
        return
    console.print(funnel_table(funnel, agent))


def funnel_table(f, agent: str | None = None) -> Table:
    t = Table(title=f"the funnel{f' of agent {escape(agent)}' if agent else ''} (as of {f.at:%Y-%m-%d %H:%M:%S} UTC)")
    t.add_column("stage")
    t.add_column("count", justify="right")
    t.add_row("directives received", str(f.received))
    t.add_row("  staged by the policy engine", f"[green]{f.staged}[/]")
    t.add_row("    approved by humans", str(f.approved))
    t.add_row("      executed", f"[bold green]{f.executed}[/]")
    t.add_row("      invalidated at approval", str(f.invalidated))
    t.add_row("      rejected by the venue", str(f.venue_rejected))
    t.add_row("    rejected by humans", str(f.human_rejected))
    t.add_row("    expired undecided", str(f.expired))
    t.add_row("    pending", str(f.pending))
    t.add_row("  rejected by the policy engine", f"[red]{f.policy_rejected}[/]")
    for reason, n in sorted(f.policy_rejections_by_reason.items(), key=lambda kv: -kv[1]):
        t.add_row(f"    {reason}", str(n))
    t.add_row("  duplicates refused", str(f.duplicates))
    if f.human_rejections_by_reason:
        t.add_row("human rejections by reason", "")
        for reason, n in sorted(f.human_rejections_by_reason.items(), key=lambda kv: -kv[1]):
            t.add_row(f"    {reason}", str(n))
    if f.invalidations_by_reason:
        t.add_row("invalidations by reason", "")
        for reason, n in sorted(f.invalidations_by_reason.items(), key=lambda kv: -kv[1]):
            t.add_row(f"    {reason}", str(n))
    if f.agents:
        t.add_row("received by agent (staged, executed)", "")
        for name, a in f.agents.items():
            t.add_row(f"    {escape(name)}", f"{a.received} ({a.staged}, {a.executed})")
    return t
