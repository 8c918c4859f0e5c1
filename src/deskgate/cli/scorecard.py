"""`deskgate scorecard`: hits, calibration and P&L of the executed directives, at their horizon."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, handle_errors, print_json, resolve
from deskgate.cli.ops import as_principal


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


@app.command("scorecard")
@handle_errors
def scorecard(
    horizon_hours: float = typer.Option(None, "--horizon-hours", min=0.5, help="Judge each fill this long after it (default: agents.outcome_horizon_hours)."),
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Whether the directives were any good: hit rate, calibration (reliability, Brier), P&L at the horizon, why not."""
    from deskgate.scorecard_feed import gather

    mission, root = resolve(mission_path, data_dir)
    hours = horizon_hours if horizon_hours is not None else mission.agents.outcome_horizon_hours
    card = as_principal(root, lambda cc: gather(cc, timedelta(hours=hours)))
    if json_out:
        print_json(card.model_dump(mode="json"))
        return
    d = card.desk
    console.print(
        f"[bold]scorecard[/] as of {card.at:%Y-%m-%d %H:%M} UTC, each fill judged {card.horizon_hours:g} h after it: "
        f"{d.executed} executed, {d.judged} judged, {card.pending} not yet at their horizon"
    )
    t = Table("", "executed", "judged", "hit rate", "Brier", "P&L at horizon (USD)")
    t.add_row("[bold]desk[/]", str(d.executed), str(d.judged), _pct(d.hit_rate), _num(d.brier), f"{d.pnl_usd:+,.2f}")
    for title, lines in (("agent", card.by_agent), ("cycle", card.by_cycle)):
        for name, ln in lines.items():
            t.add_row(f"{title} {escape(name)}", str(ln.executed), str(ln.judged), _pct(ln.hit_rate), _num(ln.brier), f"{ln.pnl_usd:+,.2f}")
    console.print(t)
    r = Table("confidence", "directives", "mean confidence", "hit rate", title="calibration (reliability)")
    for b in card.reliability:
        if b.count:
            r.add_row(f"{b.low:.1f}-{b.high:.1f}", str(b.count), _num(b.mean_confidence, ".2f"), _pct(b.hit_rate))
    console.print(r if any(b.count for b in card.reliability) else "calibration: nothing judged yet")
    why = Table("why not", "reason", "count")
    for kind, reasons in (("policy engine", card.policy_rejections_by_reason), ("human", card.human_rejections_by_reason),
                          ("invalidated at approval", card.invalidations_by_reason)):
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            why.add_row(kind, escape(reason), str(n))
    why.add_row("Governor", "interventions (drift caught)", str(card.governor_interventions))
    why.add_row("Governor", "directives drafted while damped", str(card.governor_damped))
    console.print(why)
