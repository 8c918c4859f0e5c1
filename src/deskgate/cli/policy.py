"""`deskgate policy check`: the factory's own evaluation, offline, one JSON line per input line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import typer
from pydantic import ValidationError

from deskgate.cli import app, err_console, fail, handle_errors
from deskgate.config import Mandate, load_mission

policy_app = typer.Typer(help="The policy engine, offline.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("check")
@handle_errors
def check(
    mission: Path = typer.Option(..., "--mission", "-m", help="mission.yaml with the guardrails."),
    beliefs: Path = typer.Option(..., "--beliefs", "-b", help="Beliefs JSON (see `deskgate schema beliefs`)."),
    agent: str | None = typer.Option(None, "--agent", help="Apply this agent's mandate from the mission (now = the current UTC time)."),
    used_today: int = typer.Option(0, "--used-today", min=0, help="With --agent: directives the agent already had evaluated today (UTC)."),
) -> None:
    """Read directives as JSON lines on stdin; write one verdict per line, in order.

    A staged directive reserves exposure for the lines after it, exactly as in the
    factory. A line that is not a valid directive yields a rejected line; the run
    goes on. With `--agent`, each evaluated line also counts toward the agent's
    daily budget for the lines after it.
    """
    from deskgate.identity.names import AgentNameError, check_agent_name
    from deskgate.policy.beliefs import BeliefsFile

    loaded = load_mission(mission)
    mandate = None
    if agent is None:
        if used_today:
            fail("--used-today counts an agent's directives: give the agent with --agent NAME")
    else:
        try:
            check_agent_name(agent)
        except AgentNameError as exc:
            fail(f"--agent: {exc}")
        mandate = loaded.mandate_for(agent)
        if mandate is None:
            err_console.print(f"agent {agent} has no mandate in {mission}; only the desk's guardrails apply", highlight=False)
    try:
        text = beliefs.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"beliefs file {beliefs} does not exist")
    try:
        state = BeliefsFile.model_validate_json(text).to_beliefs()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors(include_url=False)
        )
        fail(f"{beliefs} is not valid beliefs: {problems}")
    except ValueError as exc:
        fail(f"{beliefs} is not valid beliefs: {exc}")
    out = sys.stdout
    now = datetime.now(timezone.utc)  # the checks never read a clock; the tool does, once
    for verdict in check_lines(sys.stdin.buffer, state, loaded, mandate, now=now, used_today=used_today):
        out.write(json.dumps(verdict, default=str) + "\n")
        out.flush()


def check_lines(lines, state, mission, mandate: Mandate | None = None, *, now: datetime | None = None, used_today: int = 0) -> Iterator[dict]:
    """The factory's path, offline: evaluate each line, refuse repeated ids, stage (reserve).

    Under a `mandate`, every line evaluated (staged or rejected, not an empty line or a
    repeated id) counts toward the agent's daily budget from `used_today` on.
    """
    from deskgate.policy.engine import duplicate_rejection, evaluate_payload, schema_rejection, stage

    seen: set[str] = set()
    for raw in lines:
        line = raw.rstrip(b"\r\n") if isinstance(raw, bytes) else raw.rstrip("\r\n").encode()
        if not line.strip():
            evaluation = schema_rejection(None, "empty line", state)
        else:
            evaluation = evaluate_payload(line, state, mission.guardrails, mission.max_directive_bytes, mandate, now, used_today)
            did = evaluation.directive_id
            if did is not None and did in seen:
                evaluation = duplicate_rejection(did)
            else:
                if did is not None:
                    seen.add(did)
                used_today += 1
                stage(evaluation, state)
        yield evaluation.to_dict()
