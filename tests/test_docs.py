"""The docs stay in step with the code they describe."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest

from conftest import publish_bar

from deskgate.bus.streams import STREAMS
from deskgate.bus.subjects import SUBJECTS
from deskgate.domain.evaluation import CHECK_NAMES, MANDATE_CHECK_NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_every_subject_family_and_stream_is_documented():
    text = (ROOT / "docs" / "BUS.md").read_text()
    for family in SUBJECTS:
        assert f"`{family.pattern}`" in text, family.pattern
    for stream in STREAMS:
        assert f"| {stream.name} |" in text, stream.name


def test_every_check_is_documented():
    text = (ROOT / "docs" / "POLICY.md").read_text()
    for name in (*CHECK_NAMES, *MANDATE_CHECK_NAMES, "expiry", "price_band", "duplicate"):
        assert f"`{name}`" in text, name


def test_the_readme_quickstart_is_exactly_the_two_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quickstart", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    assert block.strip().splitlines() == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_example_mission_is_the_template():
    from deskgate.config import render_mission_template

    assert (ROOT / "examples" / "mission.yaml").read_text() == render_mission_template()


def test_the_architecture_names_every_process_and_role_and_links_stay_inside_the_repository():
    from deskgate.bus.subjects import SERVICE_ROLES
    from deskgate.services import SERVICES

    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for name in SERVICES:
        assert f"**{name}**" in text, name
    for role in SERVICE_ROLES:
        assert f"`{role.value}`" in text, role.value
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target:
                continue
            resolved = (doc.parent / target).resolve()
            assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{doc.name} links to {target}"
    assert "shared/DESIGN" not in (ROOT / "README.md").read_text()


# -- the examples mean what they say ----------------------------------------------------

EXAMPLES = ROOT / "examples"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9]+", text))


def _usd_k(text: str) -> float:
    return float(text) * 1000


def test_each_example_memo_is_about_its_own_directive():
    """Asset, side, size, venue and leverage in the memo are the directive's own, and no
    memo names another asset of the examples as its subject."""
    from deskgate.domain.directive import Directive
    from deskgate.policy.symbols import normalise_symbol, normalise_venue

    examples = [Directive.model_validate_json(line) for line in (EXAMPLES / "directives.jsonl").read_text().splitlines()]
    beliefs = json.loads((EXAMPLES / "beliefs.json").read_text())
    assets = {normalise_symbol(d.asset).base for d in examples} | {normalise_symbol(a).base for a in beliefs["positions"]}
    assert len(examples) >= 3
    for d in examples:
        base = normalise_symbol(d.asset).base
        memo = " ".join(d.memo.model_dump().values())
        assert base in _words(memo), d.directive_id
        assert not (assets - {base}) & _words(memo), f"{d.directive_id}'s memo names {(assets - {base}) & _words(memo)}"
        action = d.memo.proposed_action
        assert action.split()[0].lower() == d.side, d.directive_id
        assert not ({"buy", "sell"} - {d.side}) & {w.lower() for w in _words(action)}, d.directive_id
        size = re.search(r"(\d+(?:\.\d+)?)k USD of (\w+)", action)
        assert size and _usd_k(size.group(1)) == d.notional_usd and size.group(2) == base, d.directive_id
        assert f" on {normalise_venue(d.venue)}" in action, d.directive_id
        if d.leverage != 1.0:
            assert f"at {d.leverage:g}x" in action, d.directive_id


def test_the_examples_numbers_are_those_of_the_example_beliefs():
    """Each memo's stated position, pending and equity are examples/beliefs.json's, and every
    "N% of equity" it claims is what the policy engine computes there (`deskgate policy check`)."""
    from deskgate.cli.policy import check_lines
    from deskgate.config import load_mission
    from deskgate.domain.directive import Directive
    from deskgate.policy.beliefs import BeliefsFile
    from deskgate.policy.symbols import normalise_symbol

    lines = (EXAMPLES / "directives.jsonl").read_bytes().splitlines()
    beliefs_file = BeliefsFile.model_validate_json((EXAMPLES / "beliefs.json").read_text())
    verdicts = list(check_lines(lines, beliefs_file.to_beliefs(), load_mission(EXAMPLES / "mission.yaml")))
    positions = {normalise_symbol(a).base: v for a, v in beliefs_file.positions.items()}
    for line, verdict in zip(lines, verdicts):
        d = Directive.model_validate_json(line)
        base = normalise_symbol(d.asset).base
        context, action = d.memo.position_context, d.memo.proposed_action

        held = re.search(rf"\b(Long|Short) (\d+(?:\.\d+)?)k USD of {base}\b", context)
        stated = 0.0 if re.search(rf"\bNo {base} held\b", context) else (1 if held.group(1) == "Long" else -1) * _usd_k(held.group(2))
        assert stated == positions.get(base, 0.0), d.directive_id
        equity = re.search(r"\bon (\d+(?:\.\d+)?)k equity\b", context)
        assert equity and _usd_k(equity.group(1)) == beliefs_file.equity_usd, d.directive_id
        pending = [p for p in beliefs_file.pending if normalise_symbol(p.asset).base == base]
        for p in pending:
            assert f"{p.notional_usd / 1000:g}k {p.side} pending ({p.directive_id})" in context, d.directive_id
        if not pending:
            assert "pending" not in context or f"nothing pending in {base}" in context, d.directive_id

        position = next(c for c in verdict["checks"] if c["name"] == "position")["observed"]
        claims = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)% of equity", action)]
        if position is None:
            assert not claims, f"{d.directive_id} claims {claims}% but the engine computes no position"
        else:
            assert claims and all(abs(c - position) < 0.005 for c in claims), (d.directive_id, claims, position)


# -- the README's three ways in work as printed -------------------------------------------------


def readme_integration_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block in the README's "Connecting your own agent", in order."""
    section = (ROOT / "README.md").read_text().split("## Connecting your own agent", 1)[1].split("\n## ", 1)[0]
    section = section.split("### The directive wire format", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


# What each Python block prints against a desk that stages everything it is sent but LUNA.
EXPECTED_OUTPUT = [
    ["staged research", "rejected asset"],  # the MCP server
    ["staged", "staged []", "staged"],  # deskgate.client: dry run, submit, outcome (a principal has not decided)
    ["staged research None"],  # raw NATS
]


@pytest.fixture
def bus_dir(tmp_path):
    """The desk's data directory where the README expects it: ./deskgate-data."""
    return tmp_path / "deskgate-data"


def test_the_readme_shows_the_three_ways_in_and_the_command_that_makes_an_identity():
    blocks = readme_integration_blocks()
    assert [lang for lang, _ in blocks] == ["sh", "python", "python", "python"]
    assert blocks[0][1].strip() == "deskgate agent add research --out research.json"
    assert "deskgate.client" not in blocks[3][1] and "from deskgate" not in blocks[3][1]  # raw: nothing of ours imported


async def test_the_readme_integration_blocks_work_as_printed(bus, mission, tmp_path):
    from deskgate.approvals.client import CommandCenter
    from deskgate.bus.subjects import Role
    from deskgate.factory.service import Factory

    md, _ = await bus.connect(Role.MARKETDATA)
    for asset, price in (("BTC", 65_000.0), ("ETH", 3_200.0), ("SOL", 150.0)):
        await publish_bar(md, asset, price)
    factory = Factory(mission, bus.data_dir)
    ready = asyncio.Event()
    task = asyncio.create_task(factory.run(ready=ready))
    # As a user with deskgate installed runs them: the `deskgate` command on PATH, from the desk's directory.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    async def run(*argv: str) -> str:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, (argv, err.decode())
        return out.decode()

    try:
        await asyncio.wait_for(ready.wait(), 10)
        (_, make_identity), *python_blocks = readme_integration_blocks()
        await run("sh", "-c", make_identity)
        assert (tmp_path / "research.json").stat().st_mode & 0o777 == 0o600
        for (_, code), expected in zip(python_blocks, EXPECTED_OUTPUT, strict=True):
            script = tmp_path / "block.py"
            script.write_text(code)
            assert (await run(sys.executable, str(script))).splitlines() == expected, code
        async with await CommandCenter.connect(bus.data_dir) as cc:
            item = await cc.item("research-0001")
            queue = await cc.pending()
        assert item.pending and item.staged.signed_directive.signer == "agent:research"
        assert sorted(i.staged.asset for i in queue) == ["BTC", "ETH", "SOL"]
        assert {i.staged.signed_directive.signer for i in queue} == {"agent:research"}
        assert factory.stats["unsigned_directives"] == 0
    finally:
        factory.stop()
        await asyncio.gather(task, return_exceptions=True)
        await md.close()
