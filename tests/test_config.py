"""mission.yaml: the article's defaults, and a clear refusal of anything half-valid."""

from __future__ import annotations

import pytest

from deskgate.config import Mission, MissionError, load_mission, render_mission_template


def write(tmp_path, text: str):
    p = tmp_path / "mission.yaml"
    p.write_text(text)
    return p


def test_template_is_valid_and_carries_the_article_guardrails(tmp_path):
    mission = load_mission(write(tmp_path, render_mission_template()))
    g = mission.guardrails
    assert (g.max_drawdown_pct, g.max_position_pct, g.min_confidence) == (15.0, 25.0, 0.65)
    assert g.forbidden_assets == ("LUNA", "UST")
    assert g.allowed_venues == ("binance", "bybit", "okx")
    assert (g.max_leverage, g.require_human_approval_above_usd) == (3.0, 50_000.0)
    assert mission == Mission.model_validate({**mission.model_dump(), "data_dir": mission.data_dir})


def test_relative_paths_are_relative_to_the_mission_file(tmp_path):
    mission = load_mission(write(tmp_path, "data_dir: ./state-here\nmarketdata: {source: csv, csv: {path: bars.csv}}\n"))
    assert mission.data_dir == str(tmp_path / "state-here")
    assert mission.marketdata.csv.path == str(tmp_path / "bars.csv")


@pytest.mark.parametrize(
    "text, named, problem",
    [
        ("guardrails: {max_levrage: 3}", "guardrails.max_levrage", "unknown key"),
        ("desk: {}", "desk", "unknown key"),
        ("guardrails: {max_leverage: '3'}", "guardrails.max_leverage", "valid number"),
        ("guardrails: {max_position_pct: -5}", "guardrails.max_position_pct", "greater than 0"),
        ("guardrails: {require_human_approval_above_usd: -1}", "guardrails.require_human_approval_above_usd", "greater than or equal to 0"),
        ("guardrails: {min_confidence: 1.5}", "guardrails.min_confidence", "less than or equal to 1"),
        ("guardrails: {allowed_venues: []}", "guardrails.allowed_venues", "must not be empty"),
        ("guardrails: {max_drawdown_pct: .inf}", "guardrails.max_drawdown_pct", "finite"),
        ("guardrails: {forbidden_assets: ['LUΝA']}", "guardrails.forbidden_assets", "not plain ASCII"),
        ("paper: {starting_equity_usd: 0}", "paper.starting_equity_usd", "greater than 0"),
        ("bus: {port: 70000}", "bus.port", "less than or equal to 65535"),
        ("bus: {sync_interval: sometimes}", "bus.sync_interval", "always"),
        ("marketdata: {source: csv}", "marketdata.csv.path", "required"),
        ("marketdata: {seed: true}", "marketdata.seed", "valid integer"),
    ],
)
def test_a_bad_mission_is_refused_naming_the_key(tmp_path, text, named, problem):
    with pytest.raises(MissionError) as err:
        load_mission(write(tmp_path, text))
    message = str(err.value)
    assert named in message
    assert problem in message


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(MissionError) as err:
        load_mission(write(tmp_path, "guardrails: {max_leverage: -1, min_confidence: 2}\npaper: {fee_bps: -1}"))
    text = str(err.value)
    assert "guardrails.max_leverage" in text and "guardrails.min_confidence" in text and "paper.fee_bps" in text


def test_not_yaml_and_not_a_mapping_and_missing(tmp_path):
    with pytest.raises(MissionError, match="not valid YAML"):
        load_mission(write(tmp_path, "guardrails: [unclosed"))
    with pytest.raises(MissionError, match="must be a mapping"):
        load_mission(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(MissionError, match="does not exist"):
        load_mission(tmp_path / "nope.yaml")


def test_symbols_in_the_mission_are_normalised(tmp_path):
    mission = load_mission(write(tmp_path, "guardrails: {forbidden_assets: [' luna ', 'ust'], allowed_venues: [' Binance ']}"))
    assert mission.guardrails.forbidden_assets == ("LUNA", "UST")
    assert mission.guardrails.allowed_venues == ("binance",)
