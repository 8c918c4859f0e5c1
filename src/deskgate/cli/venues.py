"""`deskgate venues`: check each real venue from here, see what the factory thinks of
them, and acknowledge a venue's mismatch with the book as a principal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.markup import escape

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
    print_json,
    resolve,
    resolve_data_dir,
)
from deskgate.cli.ops import Decider, as_principal

venues_app = typer.Typer(help="Real venues (binance, bybit, okx through ccxt): check, status, acknowledge a mismatch.",
                         no_args_is_help=True)
app.add_typer(venues_app, name="venues")


async def check_venue(name: str, settings) -> list[tuple[str, bool, str]]:
    """Each step of using a venue, in order, with what happened; stops at the first that fails."""
    from deskgate.execution.ccxt_venue import CcxtVenue
    from deskgate.execution.credentials import CredentialsError, read_credentials
    from deskgate.execution.follow import endpoint_of
    from deskgate.execution.venue import VenueError

    steps: list[tuple[str, bool, str]] = []
    where = endpoint_of(settings, name).split(" ", 1)[0].replace("live", "LIVE")  # sandbox, demo (binance with derivatives) or LIVE
    try:
        creds = read_credentials(name, settings)
        endpoint = settings.api_url.split("?", 1)[0] if settings.api_url else ""
        steps.append(("keys", True, f"read ({where}{', ' + endpoint if endpoint else ''})"))
    except CredentialsError as exc:
        return [("keys", False, str(exc))]
    venue = CcxtVenue(name, settings, creds)

    async def markets() -> tuple[bool, str]:
        await venue.load_markets()
        listed = venue.exchange.markets.values()
        spot = sum(1 for m in listed if m.get("spot"))
        if not settings.derivatives:
            return True, f"{spot} spot markets"
        perps = sum(1 for m in listed if m.get("swap") and m.get("linear") and m.get("settle") == settings.quote)
        return perps > 0, f"{spot} spot markets, {perps} linear perpetuals settled in {settings.quote}"

    async def clock() -> tuple[bool, str]:
        skew = await venue.clock_skew_ms()
        return abs(skew) <= settings.max_clock_skew_ms, f"off by {skew:+.0f} ms (limit {settings.max_clock_skew_ms:g})"

    async def account() -> tuple[bool, str]:
        return True, f"key accepted; {len(await venue.balances())} currencies held"

    async def open_orders() -> tuple[bool, str]:
        return True, f"{len(await venue.open_orders())} open"

    async def positions() -> tuple[bool, str]:
        held = await venue.positions()
        return True, ", ".join(f"{a} {q:+g}" for a, q in sorted(held.items())) or "no perpetual positions"

    probes = [("markets", markets), ("clock", clock), ("account", account), ("open orders", open_orders)]
    if settings.derivatives:
        probes.append(("positions", positions))
    try:
        for step, probe in probes:
            try:
                ok, detail = await probe()
            except VenueError as exc:
                steps.append((step, False, str(exc)))
                break
            steps.append((step, ok, detail))
    finally:
        await venue.close()
    return steps


@venues_app.command("check")
@handle_errors
def venues_check(json_out: bool = JsonOption, mission_path: Path = MissionOption) -> None:
    """Connect to each configured venue (its sandbox when set) and report what works. Places no order."""
    mission, _ = resolve(mission_path, None)
    configured = mission.venues.configured()
    if not configured:
        if json_out:
            print_json({})
            return
        console.print("no real venues under `venues:` in mission.yaml: every order fills on the paper venue")
        return

    async def one(name, s):
        try:
            return await check_venue(name, s)
        except Exception as exc:  # noqa: BLE001 - one venue's surprise does not hide the others' answers
            return [("connect", False, f"{type(exc).__name__}: {str(exc)[:300]}")]

    async def all_of_them():
        return {name: await one(name, s) for name, s in configured.items()}

    results = asyncio.run(all_of_them())
    if json_out:
        print_json({n: [{"step": s, "ok": ok, "detail": d} for s, ok, d in steps] for n, steps in results.items()})
    else:
        for name, steps in results.items():
            good = all(ok for _, ok, _ in steps)
            console.print(f"[bold]{name}[/]: " + ("[green]ready[/]" if good else "[bold red]not usable[/]"))
            for step, ok, detail in steps:
                console.print(f"  {'[green]ok[/]' if ok else '[red]FAILED[/]'} {step}: {escape(detail)}")
    if not all(ok for steps in results.values() for _, ok, _ in steps):
        raise typer.Exit(1)


@venues_app.command("status")
@handle_errors
def venues_status(json_out: bool = JsonOption, mission_path: Path = MissionOption, data_dir: Path = DataDirOption) -> None:
    """What the running desk's factory thinks of each real venue: health, mismatches, holds."""
    statuses = as_principal(resolve_data_dir(mission_path, data_dir), lambda cc: cc.venues())
    if json_out:
        print_json([s.model_dump(mode="json") for s in statuses])
        return
    if not statuses:
        console.print("the factory has published no venue status (no real venues configured, or the desk is not up)")
        return
    for st in statuses:
        colour = "green" if st.healthy else "bold red"
        console.print(f"[bold]{st.venue}[/]: [{colour}]{st.state}[/]" + (f" — {escape(st.observed)}" if st.observed else ""))
        if st.reason:
            console.print(f"  {escape(st.reason)}")
        for m in st.mismatches:
            usd = f" ({m.difference_usd:,.2f} USD)" if m.difference_usd is not None else " (no price)"
            console.print(f"  {m.asset}: venue {m.venue:g}, book {m.book:g}, baseline {m.baseline:g}, difference {m.difference:+g}{usd}")
        if st.unknown_orders:
            console.print(f"  {len(st.unknown_orders)} open order(s) this desk never sent: {escape(', '.join(st.unknown_orders[:5]))}")
        if st.review is not None:
            console.print(f"  review {st.review} is open: `deskgate venues ack {st.venue} --review {st.review} --note ...`")


@venues_app.command("ack")
@handle_errors
def venues_ack(
    venue: str = typer.Argument(..., help="The venue whose mismatch you acknowledge."),
    review: int = typer.Option(..., "--review", help="The open review's number (`deskgate venues status`)."),
    note: str = typer.Option(..., "--note", "-n", help="What you checked at the venue (required, recorded)."),
    principal: str = PrincipalOption,
    password_file: Path = PasswordFileOption,
    password_stdin: bool = PasswordStdinOption,
    json_out: bool = JsonOption,
    mission_path: Path = MissionOption,
    data_dir: Path = DataDirOption,
) -> None:
    """Accept the venue's balances as they were in the review: the difference is held outside deskgate from now on."""
    if not note.strip():
        fail("an acknowledgement needs a note saying what you checked")
    decider = Decider(mission_path, data_dir, principal, password_file, password_stdin)
    ack = as_principal(decider.root, lambda cc: cc.acknowledge_venue(venue, review, decider.signer, note.strip()))
    decider.record("acknowledge_venue", f"{venue}-{review}", reason=note.strip())
    if json_out:
        print_json(ack.model_dump(mode="json"))
        return
    console.print(f"[green]acknowledgement of review {review} of {escape(venue)} sent[/] by {escape(ack.principal)}; "
                  "the factory checks it and lifts the hold at its next read (`deskgate venues status`)")

