"""``opsuite sla``, ``opsuite metrics`` and ``opsuite drill`` on the local stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli import EXIT_FAILED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from tests.helpers import write_config, write_example_config


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = str(write_example_config(tmp_path))
    assert main(["--config", path, "seed"]) == EXIT_OK
    return path


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_evaluate_dry_run_then_for_real_then_status_and_history(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    # the demo data breaches: exit 1, and a dry run records nothing
    assert main(["--config", config, "sla", "evaluate", "--dry-run", "--json"]) == EXIT_PROBLEMS
    dry = _json(capsys)
    assert isinstance(dry, dict) and dry["dry_run"] and dry["metrics"] is None
    assert dry["events"] == [] and not dry["recorded"]
    assert main(["--config", config, "sla", "status", "--json"]) == EXIT_PROBLEMS
    status = _json(capsys)
    assert isinstance(status, list) and all(s["evaluated"] is False for s in status)

    assert main(["--config", config, "sla", "evaluate", "--json"]) == EXIT_PROBLEMS
    real = _json(capsys)
    assert isinstance(real, dict) and real["recorded"] and real["metrics"]["written"] > 0
    by = {s["slo"]: s for s in real["slos"]}
    assert by["data_freshness"]["state"]["breaching"] is True
    assert by["incident_detection"]["measured"] is True  # from the alert router's ledger
    published = [e for e in real["events"] if e["published_now"]]
    assert published, "the first evaluation announces the breaches"

    # the same instant again: replayed, nothing published twice
    assert main(["--config", config, "sla", "evaluate", "--json"]) == EXIT_PROBLEMS
    again = _json(capsys)
    assert isinstance(again, dict) and sorted(again["replayed"]) == sorted(by)
    assert not any(e["published_now"] for e in again["events"])
    assert again["metrics"]["written"] == 0

    assert main(["--config", config, "sla", "status"]) == EXIT_PROBLEMS
    table = capsys.readouterr().out
    assert "data_freshness" in table and "BREACHING" in table and "incident_detection" in table
    assert main(["--config", config, "sla", "history", "model_accuracy", "--json"]) == EXIT_OK
    rows = _json(capsys)
    assert isinstance(rows, list) and len(rows) == 1 and rows[0]["value"] > 4


def test_backfill_then_metrics(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "sla", "backfill", "--days", "2", "--dry-run", "--json"]) == 0
    dry = _json(capsys)
    assert isinstance(dry, dict) and dry["dry_run"] and dry["load_jobs"] == 0
    assert main(["--config", config, "sla", "history", "data_freshness", "--json"]) == EXIT_OK
    assert _json(capsys) == []

    assert main(["--config", config, "sla", "backfill", "--days", "2", "--json"]) == EXIT_OK
    filled = _json(capsys)
    assert isinstance(filled, dict)
    assert filled["slots"] == 2 * 96 - 1 and filled["load_jobs"] in (2, 3)
    assert set(filled["skipped"]) == {
        "pipeline_availability",
        "incident_detection",
        "bigquery_recovery_time",
    }
    assert filled["points_written"] > 0
    # a second back-fill keeps what is recorded
    assert main(["--config", config, "sla", "backfill", "--days", "2", "--json"]) == EXIT_OK
    second = _json(capsys)
    assert isinstance(second, dict) and second["rows_computed"] == 0
    assert second["rows_kept"] == filled["rows_computed"]

    assert main(["--config", config, "metrics", "list"]) == EXIT_OK
    assert "custom.googleapis.com/opsuite/slo/compliance" in capsys.readouterr().out
    assert main(["--config", config, "metrics", "query", "slo/compliance", "--json"]) == 0
    points = _json(capsys)
    assert isinstance(points, list) and {p["labels"]["slo"] for p in points} >= {"data_freshness"}
    assert main(["--config", config, "metrics", "query", "slo/nope"]) == EXIT_USAGE
    assert "opsuite metrics list" in capsys.readouterr().err


def test_bad_names_are_usage_errors(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "sla", "evaluate", "--slo", "nope"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "unknown SLO 'nope'" in err and "data_freshness" in err
    assert main(["--config", config, "sla", "history", "nope"]) == EXIT_USAGE
    with pytest.raises(SystemExit) as info:
        main(["--config", config, "sla", "evaluate", "--at", "tomorrow"])
    assert info.value.code == EXIT_USAGE
    with pytest.raises(SystemExit):
        main(["--config", config, "sla", "backfill", "--days", "-1"])


def test_no_slos_configured_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    assert main(["--config", config, "sla", "evaluate"]) == EXIT_USAGE
    assert "no SLOs are configured" in capsys.readouterr().err


def test_drill_passes_after_a_backup_and_is_recorded_once(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", config, "drill"]) == EXIT_FAILED  # no backup yet: failed drill
    assert "no backup" in capsys.readouterr().out.lower()


def test_drill_dry_run_and_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_example_config(tmp_path))
    main(["--config", config, "seed"])
    main(["--config", config, "backup"])
    capsys.readouterr()
    assert main(["--config", config, "drill", "--dry-run", "--json"]) == EXIT_OK
    plan = _json(capsys)
    assert isinstance(plan, dict) and plan["outcome"] == "dry_run" and plan["plan"]
    table = "nba_analytics.player_game_summary"
    assert main(["--config", config, "drill", "--table", table, "--json"]) == EXIT_OK
    record = _json(capsys)
    assert isinstance(record, dict) and record["record"]["passed"] is True
    assert record["record"]["tables"][0]["source"] == table
    # one record a day: a second drill reports it
    assert main(["--config", config, "drill"]) == EXIT_OK
    assert "already recorded" in capsys.readouterr().out
