"""`deskgate governor`: the Governor's state, and a principal's clear."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from deskgate.approvals.client import CommandCenterError
from deskgate.cli import (
    DataDirOption,
    JsonOption,
    MissionOption,
    PasswordFileOption,
    PasswordStdinOption,
    PrincipalOption,
    app,
    console,
    handle_errors,
    print_json,
    resolve_data_dir,
)
from deskgate.cli.ops import Decider, as_principal

governor_app = typer.Typer(help="The Governor: drift in the Dispatcher, confidence damping, a principal's clear.", no_args_is_help=True)
app.add_typer(governor_app, name="governor")


def print_governor(state) -> None:
    if state is None:
        console.print("the Governor has published nothing yet (the agents have drafted no directive)")
        return
    colour = {"drifting": "bold red", "watching": "green", "baseline": "cyan"}[state.state]
    console.print(f"Governor: [{colour}]{state.state}[/]; confidence damping x{state.damping:g}")
    if state.state == "baseline":
        console.print(f"  taking a baseline: {len(state.baseline_proximity)} directives so far")
    else:
        console.print(
            f"  CUSUM proximity {state.cusum_proximity:.2f}, confidence {state.cusum_confidence:.2f} (threshold {state.threshold:g}); "
            f"baseline proximity {state.mean_proximity:.2f} ± {state.sd_proximity:.2f}, confidence {state.mean_confidence:.2f} ± {state.sd_confidence:.2f}"
        )
    if state.state == "drifting":
        since = f"{state.drifting_since:%Y-%m-%d %H:%M} UTC" if state.drifting_since else "?"
        console.print(f"  drifting since {since} (review {escape(state.review_id or '-')}); clear it with `deskgate governor clear --reason ...`")
    console.print(f"  {state.interventions} intervention(s), {state.damped} directive(s) damped, {state.observed} observed")
    if state.cleared_by:
        console.print(f"  last cleared by {escape(state.cleared_by)} at {state.cleared_at:%Y-%m-%d %H:%M} UTC: {escape(state.clear_reason or '')}")


@governor_app.command("status")
@handle_errors
def governor_status(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """The Governor's state as the agents last published it."""
    state, hold = as_principal(resolve_data_dir(mission_path, data_dir), _both)
    if json_out:
        print_json({"agents": state.model_dump(mode="json") if state else None, "factory_hold": hold.model_dump(mode="json") if hold else None})
        return
    print_governor(state)
    if hold is not None and hold.fail_closed_damping is not None:
        console.print(
            f"[bold red]the factory cannot read the Governor's state and damps confidence x{hold.fail_closed_damping:g}[/] until it can"
            " (a clear does not lift this; see the factory's log)"
        )
    if hold is not None and hold.damping < 1.0:
        console.print(f"[bold red]the factory is damping confidence x{hold.damping:g}[/] and holds it until a principal clears it")
    elif hold is not None:
        console.print("the factory applies no damping")


async def _both(cc):
    """The factory's hold even when the agents' state cannot be checked: it is what applies."""
    try:
        state = await cc.governor()
    except CommandCenterError as exc:
        console.print(f"[yellow]{escape(str(exc))}[/]")
        state = None
    return state, await cc.governor_hold()


@governor_app.command("clear")
@handle_errors
def governor_clear(
    reason: str = typer.Option(..., "--reason", "-r", help="What you looked at and why the damping can end (required, recorded)."),
    principal: str = PrincipalOption,
    password_file: Path = PasswordFileOption,
    password_stdin: bool = PasswordStdinOption,
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """End the damping, as a principal (their password); the agents apply it at their next cycle and take a new baseline."""
    decider = Decider(mission_path, data_dir, principal, password_file, password_stdin)
    clear = as_principal(decider.root, lambda cc: cc.clear_governor(decider.signer, reason))
    decider.record("clear_governor", clear.clear_id, reason=reason.strip())
    if json_out:
        print_json(clear.model_dump(mode="json"))
        return
    console.print(f"[green]Governor cleared[/] by {escape(clear.principal)} ({clear.clear_id}); the agents apply it at their next cycle")
