"""`deskgate agents status`: each cycle's last run and next, model errors, tokens and cost today."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from deskgate.cli import DataDirOption, JsonOption, MissionOption, app, console, handle_errors, print_json, resolve
from deskgate.cli.ops import as_principal

agents_app = typer.Typer(help="The desk's own agents at work (their identities are `deskgate agent`).", no_args_is_help=True)
app.add_typer(agents_app, name="agents")

NAMES = {"morning_brief": "morning brief", "intraday": "intraday watch", "eod_review": "end-of-day review"}


@agents_app.command("status")
@handle_errors
def status(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """The agents' last and next cycle of each kind, what the last did or why it failed, errors, usage today."""
    from deskgate.cli.desk import first_cycle_line

    mission, root = resolve(mission_path, data_dir)
    st = as_principal(root, lambda cc: cc.agents_status())
    if json_out:
        print_json(st.model_dump(mode="json") if st else None)
        return
    if st is None:
        console.print("the agents have not finished a cycle yet")
        console.print(first_cycle_line(mission, root))
        return
    console.print(f"[bold]{escape(st.analyst)}[/]" + (f", model at {escape(st.endpoint)}" if st.endpoint else "") + f"; as of {st.at:%Y-%m-%d %H:%M} UTC")
    if st.endpoint_problem:
        console.print(f"[bold red]{escape(st.endpoint_problem)}[/]")
    t = Table("cycle", "last run (UTC)", "result", "took", "next due (UTC)")
    for kind, name in NAMES.items():
        run = st.last.get(kind)
        nxt = st.next_due.get(kind)
        result = "" if run is None else (f"[green]ok[/]: {escape(run.outcome)}" if run.ok else f"[red]failed[/]: {escape(run.outcome)}")
        t.add_row(name, f"{run.at:%Y-%m-%d %H:%M}" if run else "not yet", result, f"{run.duration_s:.1f} s" if run else "",
                  f"{nxt:%Y-%m-%d %H:%M}" if nxt else "")
    console.print(t)
    u = st.usage_today
    cost = "unknown" if u.cost_usd is None else f"{u.cost_usd:,.4f} USD"
    console.print(f"model errors {st.model_errors}, other cycle errors {st.cycle_errors}; today ({st.usage_day}): {u.calls} calls, "
                  f"{u.input_tokens} tokens in, {u.output_tokens} out, cost {cost}")
