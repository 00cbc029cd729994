"""The opsuite CLI end to end on the local stack: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli import EXIT_CONFIG, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from tests.helpers import write_config


@pytest.fixture
def config(tmp_path: Path) -> str:
    return str(write_config(tmp_path))


def test_seed_backup_list_verify_restore(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "seed"]) == EXIT_OK
    assert "seeded 14 tables" in capsys.readouterr().out
    assert main(["--config", config, "backup", "--dry-run", "--json"]) == EXIT_OK
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["plan"]) == 4

    assert main(["--config", config, "backup", "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    run_id = out["manifest"]["run_id"]
    assert out["manifest"]["status"] == "complete"

    assert main(["--config", config, "backups", "list", "--json"]) == EXIT_OK
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["run_id"], run["status"], run["tables"]) == (run_id, "complete", 4)

    assert main(["--config", config, "verify", run_id]) == EXIT_OK
    assert "verified" in capsys.readouterr().out

    table = "nba_analytics.player_game_summary"
    assert main(["--config", config, "restore", "--run", run_id, "--table", table]) == EXIT_USAGE
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["--config", config, "restore", "--run", run_id, "--table", table,
                 "--target-dataset", "drill", "--json"]) == EXIT_OK  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["tables"][0]["rows_restored"] == 5400


def test_partial_backup_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(
        write_config(tmp_path, tables=["nba_analytics.player_game_summary", "nba_analytics.gone"])
    )
    main(["--config", config, "seed"])
    assert main(["--config", config, "backup"]) == EXIT_PROBLEMS
    assert "FAILED nba_analytics.gone" in capsys.readouterr().out


def test_usage_and_config_errors(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--config", config, "backup", "--bogus"])
    assert info.value.code == EXIT_USAGE
    assert main(["--config", config, "backup", "--table", "x; DROP TABLE y"]) == EXIT_USAGE
    bad = tmp_path / "bad.yaml"
    bad.write_text("backups: {bucket: b, tables: [a.b], colour: red}")
    assert main(["--config", str(bad), "backups", "list"]) == EXIT_CONFIG
    assert "backups.colour: unknown key" in capsys.readouterr().err


def test_demo(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "demo"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "complete, 4/4 tables" in out
    # the default sample: the smallest table with rows (2700) and the largest (5400)
    assert "restore drill   passed: 8100/8100 rows, content equal" in out
    # the demo ends by writing the report and printing where
    [line] = [x for x in out.splitlines() if x.startswith("report          ")]
    path = Path(line.split()[1])
    assert path.name == "report.html" and path.read_text().startswith("<!doctype html>")


def test_health_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = write_config(tmp_path)
    body = yaml.safe_load(path.read_text())
    body["health"] = {"freshness": {"tables": [{"table": "nba_analytics.player_game_summary"}]}}
    path.write_text(yaml.safe_dump(body))
    config = str(path)
    main(["--config", config, "seed"])
    assert main(["--config", config, "health", "--checks", "backups"]) == 2  # no backup yet
    main(["--config", config, "backup"])
    capsys.readouterr()
    assert main(["--config", config, "health", "--checks", "freshness,backups"]) == EXIT_OK
    assert "overall: PASS" in capsys.readouterr().out
    assert main(["--config", config, "health", "--mode", "full", "--json"]) == 2  # failing phases
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "fail" and "phase_5:successRatio" in doc["checks"]
    body["health"]["freshness"]["tables"][0]["warn_after"] = {"count": 1, "period": "hour"}
    path.write_text(yaml.safe_dump(body))
    assert main(["--config", config, "health", "--checks", "freshness"]) == EXIT_PROBLEMS
    assert main(["--config", config, "health", "--checks", "nope"]) == EXIT_USAGE
