"""health_check driven as deployed: functions-framework HTTP app on the demo data."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from shared import runtime
from shared.composition import Adapters
from shared.errors import TransientError
from shared.events import BackupRequest
from shared.services.backup import BackupDeps, run_backup_to_end
from shared.services.seed import seed_demo
from tests.helpers import ROOT, Stack, make_stack

SOURCE = ROOT / "functions" / "health_check" / "main.py"
HEALTH = {
    "check_timeout_seconds": 2,
    "freshness": {
        "tables": [
            {"table": "nba_analytics.player_game_summary", "loaded_at": "processed_at",
             "partition_field": "game_date"},
            {"table": "nba_analytics.upcoming_player_game_context"},
            {"table": "nba_precompute.player_shot_zone_analysis", "loaded_at": "processed_at",
             "partition_field": "analysis_date"},
            {"table": "nba_analytics.vanished_table"},
        ]
    },
}  # fmt: skip


def _stack(tmp_path: Path, backup: bool = True, **health: Any) -> Stack:
    import yaml

    from shared.config import load_settings

    stack = make_stack(tmp_path)
    body = yaml.safe_load(stack.config.read_text())
    body["health"] = {**HEALTH, **health}
    stack.config.write_text(yaml.safe_dump(body))
    stack = Stack(stack.config, load_settings(stack.config), stack.adapters)
    seed_demo(stack.adapters.warehouse)  # type: ignore[arg-type]
    if backup:
        a = stack.adapters
        deps = BackupDeps(stack.settings.backups, a.warehouse, a.store, a.publisher, "local")
        run_backup_to_end(BackupRequest(), deps)
    runtime.use(stack.settings, stack.adapters)
    return stack


@pytest.fixture
def client() -> Any:
    return create_app("health_check", str(SOURCE), "http").test_client()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Stack]:
    stack = _stack(tmp_path)
    yield stack
    stack.adapters.close()


def _checks(response: Any) -> dict[str, list[dict[str, Any]]]:
    return json.loads(response.data)["checks"]  # type: ignore[no-any-return]


def test_quick_check_reports_the_demo_state(demo: Stack, client: Any) -> None:
    response = client.get("/")

    assert response.status_code == 503  # a table is past error_after → fail → 503
    assert response.headers["Content-Type"] == "application/health+json"
    assert response.headers["Cache-Control"] == "max-age=30"
    body = json.loads(response.data)
    assert body["status"] == "fail"
    checks = body["checks"]
    fresh = checks["nba_analytics.player_game_summary:freshness"][0]
    assert fresh["status"] == "pass" and fresh["observedUnit"] == "s"
    assert 2.9 * 3600 < fresh["observedValue"] < 3.2 * 3600
    assert checks["nba_analytics.upcoming_player_game_context:freshness"][0]["status"] == "warn"
    assert checks["nba_precompute.player_shot_zone_analysis:freshness"][0]["status"] == "fail"
    missing = checks["nba_analytics.vanished_table:freshness"][0]
    assert missing["status"] == "fail" and missing["output"] == "table not found"
    assert checks["backup:age"][0]["status"] == "pass"
    assert checks["backup:status"][0]["observedValue"] == "complete"
    assert checks["bigquery:responseTime"][0]["status"] == "pass"
    assert not any(key.endswith(":successRatio") for key in checks)  # quick: no queries
    for entries in checks.values():
        for entry in entries:
            assert set(entry) >= {"componentId", "componentType", "status", "time"}


def test_full_mode_adds_pipeline_runs_with_their_errors(demo: Stack, client: Any) -> None:
    checks = _checks(client.get("/?mode=full"))

    assert checks["phase_2:successRatio"][0]["status"] == "pass"
    phase5 = checks["phase_5:successRatio"][0]
    assert phase5["status"] == "fail" and phase5["observedValue"] == 0.5
    assert "prediction_grader: DependencyNotReady" in phase5["output"]
    errors = checks["pipeline:recentErrors"][0]["errors"]
    assert 0 < len(errors) <= 5 and all(e["status"] == "failed" for e in errors)
    fresh = checks["nba_analytics.player_game_summary:freshness"][0]
    assert fresh["measuredFrom"] == "processed_at"


def test_checks_parameter_limits_the_set_and_pass_is_200(tmp_path: Path, client: Any) -> None:
    stack = _stack(tmp_path, freshness={"tables": [{"table": "nba_analytics.player_game_summary"}]})
    response = client.get("/?checks=freshness,backups")
    assert response.status_code == 200
    body = json.loads(response.data)
    assert body["status"] == "pass"
    assert set(body["checks"]) == {
        "nba_analytics.player_game_summary:freshness", "backup:age", "backup:status"
    }  # fmt: skip
    stack.adapters.close()


def test_no_backup_yet_fails_the_backup_check(tmp_path: Path, client: Any) -> None:
    stack = _stack(tmp_path, backup=False)
    checks = _checks(client.get("/?checks=backups"))
    assert checks["backup:age"][0]["status"] == "fail"
    assert checks["backup:age"][0]["output"] == "no completed backup run found"
    stack.adapters.close()


class CountingWarehouse:
    def __init__(self, inner: Any, delay: float = 0.0, fail: bool = False) -> None:
        self.inner, self.delay, self.fail, self.calls = inner, delay, fail, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name == "close":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.fail:
                raise TransientError("503 Service Unavailable: warehouse unreachable")
            time.sleep(self.delay)
            return attr(*args, **kwargs)

        return call


def _swap_warehouse(stack: Stack, warehouse: Any) -> None:
    a = stack.adapters
    runtime.use(stack.settings, Adapters(a.backend, warehouse, a.store, a.publisher))


HOSTILE = [
    "/?mode=slow",
    "/?mode=full&mode=quick",
    "/?checks=freshness,everything",
    "/?checks=",
    "/?checks=freshness;DROP%20TABLE%20x",
    "/?mode=%27%20OR%201%3D1--",
    "/?mode=%E2%80%AEquick",
    "/?mode=" + "q" * 10_000,
    "/?checks=" + "freshness," * 1000,
    "/?table=nba_analytics.player_game_summary",
    "/?mode=quick&mode=quick",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_bad_parameters_are_400_and_execute_nothing(demo: Stack, client: Any, path: str) -> None:
    counting = CountingWarehouse(demo.adapters.warehouse)
    _swap_warehouse(demo, counting)

    response = client.get(path)

    assert response.status_code == 400
    body = json.loads(response.data)
    assert body["valid"] == {
        "mode": ["quick", "full"], "checks": ["freshness", "backups", "pipeline", "dependencies"]
    }  # fmt: skip
    assert len(body["error"]) < 300
    assert counting.calls == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get(demo: Stack, client: Any, method: str) -> None:
    response = client.open("/", method=method)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_slow_warehouse_fails_its_checks_within_the_deadline(tmp_path: Path, client: Any) -> None:
    stack = _stack(tmp_path, check_timeout_seconds=0.5)
    _swap_warehouse(stack, CountingWarehouse(stack.adapters.warehouse, delay=3))

    t0 = time.monotonic()
    response = client.get("/?mode=full")
    elapsed = time.monotonic() - t0

    assert response.status_code == 503
    checks = _checks(response)
    assert checks["freshness:check"][0]["output"] == "timed out after 0.5 s"
    assert checks["pipeline:check"][0]["status"] == "fail"
    assert checks["backup:status"][0]["status"] == "pass"  # the others still report
    assert elapsed < 3  # answered at the deadline, not after the slow calls
    stack.adapters.close()


def test_unreachable_warehouse_is_a_reasoned_fail(tmp_path: Path, client: Any) -> None:
    stack = _stack(tmp_path)
    _swap_warehouse(stack, CountingWarehouse(stack.adapters.warehouse, fail=True))

    response = client.get("/?mode=full")

    assert response.status_code == 503
    checks = _checks(response)
    assert checks["bigquery:responseTime"][0]["status"] == "fail"
    assert "warehouse unreachable" in checks["bigquery:responseTime"][0]["output"]
    assert checks["freshness:check"][0]["status"] == "fail"
    assert checks["backup:age"][0]["status"] == "pass"
    assert "Traceback" not in response.get_data(as_text=True)
    stack.adapters.close()


def test_misconfiguration_is_a_503_document_not_a_bare_500(
    tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.reset()
    bad = tmp_path / "bad.yaml"
    bad.write_text("backups: {bucket: b}")
    monkeypatch.setenv("OPSUITE_CONFIG", str(bad))
    response = client.get("/")
    assert response.status_code == 503
    assert json.loads(response.data) == {
        "status": "fail", "output": "the health check is misconfigured; see its logs"
    }  # fmt: skip


def test_an_unexpected_error_is_a_503_document_without_a_trace(
    demo: Stack, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise ImportError("google.cloud.bigquery is not installed")

    monkeypatch.setattr("shared.services.health_http.settings_and_adapters", broken)
    response = client.get("/")
    assert response.status_code == 503
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "google.cloud" not in text
    assert json.loads(text)["status"] == "fail"
