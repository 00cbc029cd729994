from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config import parse_settings
from shared.errors import BadInput, ConfigError
from shared.services.health import (
    CHECKS,
    CheckEntry,
    HealthReport,
    freshness_status,
    parse_health_params,
    ratio_status,
    worst,
)

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "expected"),
    [(0, "pass"), (3600, "pass"), (3601, "warn"), (7200, "warn"), (7201, "fail")],
)
def test_freshness_thresholds_are_dbt_like(age: float, expected: str) -> None:
    assert freshness_status(age, warn_after=3600, error_after=7200) == expected


@pytest.mark.parametrize(
    ("ratio", "expected"), [(1.0, "pass"), (0.95, "pass"), (0.9, "warn"), (0.79, "fail")]
)
def test_success_ratio_thresholds(ratio: float, expected: str) -> None:
    assert ratio_status(ratio, warn_below=0.95, fail_below=0.8) == expected


def test_worst() -> None:
    assert worst([]) == "pass"
    assert worst(["pass", "warn", "pass"]) == "warn"
    assert worst(["warn", "fail", "pass"]) == "fail"


def test_params_defaults_and_subset() -> None:
    assert parse_health_params({}).mode == "quick"
    assert parse_health_params({}).checks == CHECKS
    request = parse_health_params({"mode": ["full"], "checks": ["backups, freshness,backups"]})
    assert (request.mode, request.checks) == ("full", ("backups", "freshness"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": ["slow"]}, "unknown mode"),
        ({"mode": ["quick", "full"]}, "given 2 times"),
        ({"checks": ["freshness,bogus"]}, "unknown check 'bogus'"),
        ({"checks": [" , "]}, "checks is empty"),
        ({"mode": ["x" * 201]}, "longer than 200"),
        ({"verbose": ["1"]}, "unknown parameter"),
        ({"checks": ["pipeline"]}, "use mode=full"),
    ],
)
def test_bad_params(params: dict[str, list[str]], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_health_params(params)


def test_document_follows_the_health_check_draft() -> None:
    report = HealthReport(
        "quick",
        [
            CheckEntry("a.t:freshness", "a.t", "datastore", "pass", NOW, 10, "s"),
            CheckEntry("a.u:freshness", "a.u", "datastore", "warn", NOW, 99, "s", "late"),
            CheckEntry("bigquery:responseTime", "bigquery", "datastore", "pass", NOW, 1.5, "ms"),
        ],
        NOW,
    )
    doc = report.document()
    assert doc["status"] == "warn"
    assert set(doc["checks"]) == {"a.t:freshness", "a.u:freshness", "bigquery:responseTime"}
    entry = doc["checks"]["a.u:freshness"][0]
    assert entry == {
        "componentId": "a.u", "componentType": "datastore", "status": "warn",
        "time": "2026-11-22T12:00:00Z", "observedValue": 99, "observedUnit": "s", "output": "late",
    }  # fmt: skip
    assert doc["output"] == "a.u: late"


def test_health_config_validation() -> None:
    base = {"backups": {"bucket": "nba-props-backups", "tables": ["a.b"]}}
    settings = parse_settings(base)
    assert settings.health.backups.warn_after.seconds == 26 * 3600
    assert settings.health.pipeline is not None
    with pytest.raises(ConfigError, match="warn_after must be below error_after"):
        parse_settings({**base, "health": {"freshness": {"tables": [
            {"table": "a.b", "warn_after": {"count": 2, "period": "day"},
             "error_after": {"count": 24, "period": "hour"}}]}}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"health\.freshness\.tables\[0\]\.loaded_at"):
        parse_settings({**base, "health": {"freshness": {"tables": [
            {"table": "a.b", "loaded_at": "x; DROP TABLE y"}]}}})  # fmt: skip
    with pytest.raises(ConfigError, match="period"):
        parse_settings(
            {**base, "health": {"backups": {"warn_after": {"count": 1, "period": "week"}}}}
        )
