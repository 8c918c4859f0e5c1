"""The docs stay in step with the code they describe."""

from __future__ import annotations

from pathlib import Path

from deskgate.bus.streams import STREAMS
from deskgate.bus.subjects import SUBJECTS
from deskgate.domain.evaluation import CHECK_NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_every_subject_family_and_stream_is_documented():
    text = (ROOT / "docs" / "BUS.md").read_text()
    for family in SUBJECTS:
        assert f"`{family.pattern}`" in text, family.pattern
    for stream in STREAMS:
        assert f"| {stream.name} |" in text, stream.name


def test_every_check_is_documented():
    text = (ROOT / "docs" / "POLICY.md").read_text()
    for name in (*CHECK_NAMES, "expiry", "price_band", "duplicate"):
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
