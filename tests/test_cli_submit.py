"""`deskgate directive submit` exit codes, against a real desk: nats-server, streams, the factory.

0: every line staged; 1: every line answered, some rejected or duplicate; 3: some line
got no verdict in time; 2: usage, input or connection errors (nothing published).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import asynccontextmanager

from conftest import directive, publish_bar

from deskgate.bus.subjects import Role
from deskgate.config import Mission
from deskgate.factory.service import Factory

MISSION = Mission.model_validate({"paper": {"starting_equity_usd": 100_000.0}, "marketdata": {"assets": ["BTC", "ETH"]}})


async def deskgate(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """The CLI in its own process, awaited, so the factory in this process keeps working meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deskgate", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    return proc.returncode, out.decode(), err.decode()


@asynccontextmanager
async def factory_running(bus):
    md, _ = await bus.connect(Role.MARKETDATA)
    for asset, price in {"BTC": 65_000.0, "ETH": 3_500.0}.items():
        await publish_bar(md, asset, price)
    factory = Factory(MISSION, bus.data_dir)
    ready = asyncio.Event()
    task = asyncio.create_task(factory.run(ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield factory
    finally:
        factory.stop()
        await asyncio.gather(task, return_exceptions=True)
        await md.close()


def lines(*ds: dict) -> bytes:
    return ("\n".join(json.dumps(d) for d in ds) + "\n").encode()


async def test_exit_codes_say_whether_everything_was_staged(bus, tmp_path):
    d = ["--data-dir", str(bus.data_dir.root)]
    async with factory_running(bus) as factory:
        code, out, err = await deskgate("directive", "submit", "-", "--json", *d, stdin=lines(directive("x1", notional_usd=5_000)))
        assert code == 0, err
        assert [v["decision"] for v in json.loads(out)] == ["staged"]

        batch = lines(directive("x2", notional_usd=5_000), directive("x3", asset="LUNA"), directive("x1", notional_usd=1_000))
        code, out, err = await deskgate("directive", "submit", "-", "--json", *d, stdin=batch)
        assert code == 1, err
        assert [v["decision"] for v in json.loads(out)] == ["staged", "rejected", "duplicate"]

        # The same in a table: the exit code does not depend on --json.
        code, out, _ = await deskgate("directive", "submit", "-", *d, stdin=lines(directive("x4", asset="ETH", notional_usd=500_000)))
        assert code == 1 and "rejected" in out and "x4" in out
        assert set(factory.beliefs.pending) == {"x1", "x2"}


async def test_no_verdict_in_time_is_its_own_exit_code(bus):
    """No factory running: the bus stores the directive, and nobody answers."""
    code, out, err = await deskgate(
        "directive", "submit", "-", "--wait", "0.5", "--data-dir", str(bus.data_dir.root), stdin=lines(directive("late-1"))
    )
    assert code == 3, err
    assert "late-1" in out and "no verdict" in out


async def test_usage_input_and_connection_errors_exit_2(bus, tmp_path):
    d = ["--data-dir", str(bus.data_dir.root)]
    empty = await deskgate("directive", "submit", "-", *d, stdin=b"\n  \n")
    assert empty[0] == 2 and "no directives" in empty[2]
    missing = await deskgate("directive", "submit", str(tmp_path / "nope.jsonl"), *d)
    assert missing[0] == 2 and "nope.jsonl" in missing[2]
    no_desk = await deskgate("directive", "submit", "-", "--data-dir", str(tmp_path / "nothing"), stdin=lines(directive("n1")))
    assert no_desk[0] == 2 and "deskgate init" in no_desk[2]
    bus.server.stop()
    down = await deskgate("directive", "submit", "-", *d, stdin=lines(directive("n2")))
    assert down[0] == 2 and "cannot reach the desk's bus" in down[2]
