"""``opsuite alerts route`` over the shipped example configuration; alerting config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.cli import EXIT_CONFIG, EXIT_OK, EXIT_USAGE, main
from tests.helpers import write_example_config


@pytest.fixture
def config(tmp_path: Path) -> str:
    return str(write_example_config(tmp_path))


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # the default: P0/P1 → PagerDuty + Slack, P2 → Slack, P3 → Slack
        ("severity=P0,slo=pipeline_availability", ["oncall", "slack-incidents"]),
        ("severity=P1", ["oncall", "slack-incidents"]),
        ("severity=P2,table=nba_analytics.player_game_summary", ["slack-incidents"]),
        ("severity=P3", ["slack-incidents"]),
        ("severity=P1,test=true", ["local"]),  # a test notification never pages
        ("alertname=unknown", ["local"]),  # nothing matches: the root's receiver
    ],
)
def test_route_prints_the_receivers_in_order(
    config: str, labels: str, receivers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", config, "alerts", "route", "--labels", labels, "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["receivers"] == receivers
    assert [r["receiver"] for r in out["routes"]] == receivers
    assert all(r["group_key"].startswith("{}") for r in out["routes"])

    assert main(["--config", config, "alerts", "route", "--labels", labels]) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[0] == ",".join(receivers)


def test_label_flags_combine_and_bad_labels_are_usage_errors(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", config, "alerts", "route", "--labels", "severity=P2", "--json"]
    assert main([*args, "--label", "summary=a, b and c"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["labels"]["summary"] == "a, b and c"
    assert main([*args[:-1], "--label", "severity=P1"]) == EXIT_USAGE
    assert "given twice" in capsys.readouterr().err
    assert main(["--config", config, "alerts", "route", "--labels", "not-a-label"]) == EXIT_USAGE


def test_alerting_config_errors_name_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_example_config(tmp_path)
    body = yaml.safe_load(path.read_text())
    body["alerting"]["route"]["routes"][1]["receiver"] = "pager"
    path.write_text(yaml.safe_dump(body))
    assert main(["--config", str(path), "alerts", "route", "--labels", "a=b"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "alerting.route.routes[1].receiver" in err and "'pager'" in err

    body["alerting"]["route"]["routes"][1]["receiver"] = "oncall"
    body["alerting"]["receivers"][1]["pagerduty_configs"] = [{"routing_key": "R0UT1NGKEY"}]
    path.write_text(yaml.safe_dump(body))
    assert main(["--config", str(path), "alerts", "route", "--labels", "a=b"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "routing_key_secret" in err and "R0UT1NGKEY" not in err
