"""The ``slos:`` section: the seeds' six SLAs, validated like the rest (errors name the path)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.config import (
    DetectionSli,
    FreshnessSli,
    RatioSli,
    RecoveryTimeSli,
    ThresholdSli,
    load_settings,
    parse_settings,
)
from shared.errors import BadInput, ConfigError
from tests.helpers import ROOT

BACKUPS = {"bucket": "nba-props-backups", "tables": ["nba_analytics.player_game_summary"]}
MAE = {
    "name": "model_accuracy",
    "description": "MAE of graded predictions below 4.5",
    "objective": 0.95,
    "severity": "P2",
    "sli": {"kind": "threshold", "table": "nba_predictions.prediction_accuracy",
            "column": "absolute_error", "time_column": "game_date", "bound": 4.5},
}  # fmt: skip


def _with(*objectives: dict[str, Any], **slos: Any) -> dict[str, Any]:
    return {"backups": BACKUPS, "slos": {**slos, "objectives": list(objectives)}}


def _changed(path: str, value: Any) -> dict[str, Any]:
    slo = copy.deepcopy(MAE)
    node = slo
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return slo


def test_the_example_config_ships_the_seeds_six_slas() -> None:
    slos = load_settings(ROOT / "config" / "opsuite.example.yaml").slos
    by_name = {s.name: s for s in slos.objectives}
    assert list(by_name) == [
        "data_freshness", "pipeline_availability", "phase_success_rate", "model_accuracy",
        "incident_detection", "bigquery_recovery_time",
    ]  # fmt: skip
    assert by_name["pipeline_availability"].objective == 0.99
    assert by_name["pipeline_availability"].severity == "P0"
    assert isinstance(by_name["phase_success_rate"].sli, RatioSli)
    assert by_name["phase_success_rate"].objective == 0.95
    mae = by_name["model_accuracy"].sli
    assert isinstance(mae, ThresholdSli)
    assert (mae.bound, mae.baseline, mae.good_when) == (4.5, 4.27, "below")
    fresh = by_name["data_freshness"].sli
    assert isinstance(fresh, FreshnessSli) and fresh.max_age.seconds == 24 * 3600
    assert isinstance(by_name["incident_detection"].sli, DetectionSli)
    assert by_name["incident_detection"].sli.max_minutes == 30
    rto = by_name["bigquery_recovery_time"].sli
    assert isinstance(rto, RecoveryTimeSli) and rto.max_hours == 8
    assert all(s.window.seconds == 28 * 86400 for s in slos.objectives)  # the default window
    assert [(b.long_window.seconds, b.short_window.seconds, b.rate) for b in slos.burn_rates] == [
        (3600, 900, 14.4), (6 * 3600, 3600, 6.0), (3 * 86400, 6 * 3600, 1.0),
    ]  # fmt: skip
    assert slos.cadence_minutes == 15


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _with(_changed("sli.colour", "blue")),
            "slos.objectives[0].sli.threshold.colour: unknown key",
        ),
        (_with(_changed("sli.kind", "vibes")), "slos.objectives[0].sli: "),
        (_with(_changed("objective", 1.0)), "slos.objectives[0].objective: "),
        (_with(_changed("objective", 0)), "slos.objectives[0].objective: "),
        (_with(_changed("severity", "P5")), "slos.objectives[0].severity: "),
        (_with(_changed("name", "Model Accuracy")), "slos.objectives[0].name: "),
        (_with(_changed("sli.column", "a`b")), "slos.objectives[0].sli.threshold.column: "),
        (
            _with(_changed("sli.table", "ds.t; DROP TABLE x")),
            "slos.objectives[0].sli.threshold.table",
        ),
        (_with(_changed("runbook", "javascript:alert(1)")), "slos.objectives[0].runbook: "),
        (_with(_changed("runbook", "../../etc/passwd")), "slos.objectives[0].runbook: "),
        (_with(MAE, MAE), "model_accuracy appears twice"),
        (_with(_changed("window", {"count": 5, "period": "minute"})), "shorter than the cadence"),
        (
            _with(
                MAE,
                burn_rates=[
                    {
                        "long_window": {"count": 1, "period": "hour"},
                        "short_window": {"count": 2, "period": "hour"},
                        "rate": 2,
                    }
                ],
            ),
            "short_window must be shorter than long_window",
        ),
        (
            _with({**MAE, "sli": {"kind": "freshness", "tables": ["nba_raw.not_configured"]}}),
            "freshness tables must be listed under health.freshness.tables: nba_raw.not_configured",
        ),
        (_with(MAE, history={"dataset": "ops`; DROP"}), "slos.history.dataset: "),
        (_with(MAE, history={"table": "t` x"}), "slos.history.table: "),
        (_with(MAE, runbook_base_url="javascript:alert(1)"), "slos.runbook_base_url: "),
        (_with(MAE, time_budget_seconds=600), "slos.time_budget_seconds: "),
        (
            _with(MAE, cadence_minutes=60),
            "burn_rates[0]: short_window (15 minute) is shorter than cadence_minutes (60)",
        ),
        (
            {
                "backups": {**BACKUPS, "drill": {"scratch_dataset": "nba_analytics"}},
                "slos": {"objectives": [MAE]},
            },
            "drill.scratch_dataset 'nba_analytics' is a backed-up dataset",
        ),
    ],
)
def test_bad_slo_config_names_the_path(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, "opsuite.yaml")
    assert expected in str(caught.value)


def test_runbooks_may_be_urls_or_repository_sections() -> None:
    for runbook in ("https://wiki.example.com/runbooks/bq#restore", "README.md#restore"):
        slos = parse_settings(_with(_changed("runbook", runbook))).slos
        assert slos.objectives[0].runbook == runbook


def test_unknown_slo_names_are_bad_input_listing_the_valid_ones() -> None:
    slos = parse_settings(_with(MAE)).slos
    assert [s.name for s in slos.named(["model_accuracy"])] == ["model_accuracy"]
    with pytest.raises(BadInput, match=r"unknown SLO 'nope' \(configured: model_accuracy\)"):
        slos.named(["nope"])


def test_no_slos_section_means_none_configured() -> None:
    slos = parse_settings({"backups": BACKUPS}).slos
    assert slos.objectives == [] and slos.trigger_topic == "opsuite-sla-trigger"
