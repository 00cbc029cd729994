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


def test_demo_routes_a_breach_and_its_resolution_then_log_active_and_silences(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", config, "demo"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "7/7 alert router" in out
    routed = [line for line in out.splitlines() if "-> oncall" in line]
    assert any(line.split()[0] == "firing" and line.endswith("sent") for line in routed)
    assert any(line.split()[0] == "resolved" and line.endswith("sent") for line in routed)
    # delivered to the local files standing in for PagerDuty (no secrets on this machine)
    oncall = [
        json.loads(x) for x in (tmp_path / "local/alerts/oncall.jsonl").read_text().splitlines()
    ]
    assert {n["status"] for n in oncall} == {"firing", "resolved"}

    assert main(["--config", config, "alerts", "log", "--json"]) == EXIT_OK
    log = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in log} >= {"firing", "resolved", "suppressed"}
    first = [r for r in log if r["status"] == "firing" and r.get("detection_seconds") is not None]
    assert first and all(r["detection_seconds"] >= 0 for r in first)
    assert main(["--config", config, "alerts", "active", "--json"]) == EXIT_OK
    firing = json.loads(capsys.readouterr().out)
    assert firing and all(a["status"] == "firing" for a in firing)
    assert "data_freshness" not in {a["labels"].get("slo") for a in firing
                                    if a["labels"].get("condition") == "sli"}  # fmt: skip

    add = ["--config", config, "silence", "add", "--matcher", 'slo="model_accuracy"',
           "--for", "2h", "--comment", "retraining", "--json"]  # fmt: skip
    assert main(add) == EXIT_OK
    silence = json.loads(capsys.readouterr().out)
    assert main(["--config", config, "silence", "list", "--json"]) == EXIT_OK
    assert [s["id"] for s in json.loads(capsys.readouterr().out)] == [silence["id"]]
    assert main(["--config", config, "silence", "expire", silence["id"]]) == EXIT_OK
    capsys.readouterr()
    assert main(["--config", config, "silence", "list", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == []
    # a silence needs matchers that parse, a reason, and a bounded duration
    bad = ["--config", config, "silence", "add", "--matcher", "slo=~(", "--for", "2h",
           "--comment", "x"]  # fmt: skip
    assert main(bad) == EXIT_USAGE
    assert main([*bad[:4], "--matcher", 'slo="x"', "--for", "400d", "--comment", "x"]) == EXIT_USAGE
    assert main(["--config", config, "silence", "expire", "nope"]) != EXIT_OK
    # matchers that all match an empty value would silence everything: refused
    for matcher in ('team=""', 'severity!="P9"', 'alertname=~".*"'):
        everything = ["--config", config, "silence", "add", "--matcher", matcher,
                      "--for", "2h", "--comment", "x"]  # fmt: skip
        assert main(everything) == EXIT_USAGE, matcher


def test_the_detection_sli_counts_incidents_from_the_router_ledger(tmp_path: Path) -> None:
    """An incident that started 40 min before its first notification is late (> 30 min);
    one notified 10 min after its start is on time; both land in the next evaluation."""
    import hashlib
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from shared.models import Alert
    from shared.services.alert_router import RouterDeps, handle_alert
    from shared.services.sla import SlaDeps, SlaRequest, evaluate
    from shared.services.sla_budget import floor_to_cadence
    from tests.helpers import make_example_stack

    stack = make_example_stack(tmp_path)
    q = timedelta(minutes=15)
    at = floor_to_cadence(datetime.now(UTC), q)
    notified = at - timedelta(minutes=5)  # inside (at - 15 min, at]
    router = replace(RouterDeps.of(stack.settings, stack.adapters), now=lambda: notified)
    for name, started in (("late", notified - timedelta(minutes=40)),
                          ("on_time", notified - timedelta(minutes=10))):  # fmt: skip
        labels = {"alertname": name, "severity": "P3", "test": "true"}  # → the local receiver
        fingerprint = hashlib.sha256(name.encode()).hexdigest()[:32]
        alert = Alert(fingerprint, "firing", "P3", labels, {"summary": name},
                      started, None, "monitoring", name)  # fmt: skip
        handle_alert(alert, router)

    deps = SlaDeps.of(stack.settings, stack.adapters)
    outcome = evaluate(
        SlaRequest(at=at, slos=("incident_detection",)), replace(deps, now=lambda: at)
    )
    (detection,) = outcome.assessments
    r = detection.record
    assert (r.good, r.good_events, r.total_events) == (False, 1, 2)
    assert r.value == 40.0  # the worst, in minutes: the SLI's metric (slo/sli)
    assert json.loads(r.detail)["late"] == 1
