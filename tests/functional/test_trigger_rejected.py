"""A backup function that can't read its configuration must not fail silently.

It still acknowledges (redelivery can't fix a config file), but its ERROR line carries a
field a log-based metric counts, and a rejection record makes ``opsuite health`` say
"backup trigger rejected" while the night's run is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import runtime
from shared.services.health import HealthDeps, parse_health_params, run_health
from shared.services.trigger_rejections import REJECTIONS_PREFIX
from tests.helpers import BUCKET, Stack, make_stack, pubsub_event


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A healthy stack, and a deployed function whose config file is broken."""
    stack = make_stack(tmp_path)
    from shared.services.seed import seed_demo

    seed_demo(stack.adapters.warehouse)  # type: ignore[arg-type]
    broken = yaml.safe_load(stack.config.read_text())
    broken["backups"]["max_attempts"] = "three"  # valid YAML, invalid config
    broken["backups"]["colour"] = "blue"
    bad = tmp_path / "deployed.yaml"
    bad.write_text(yaml.safe_dump(broken))
    monkeypatch.setenv("OPSUITE_CONFIG", str(bad))
    monkeypatch.setenv("OPSUITE_BACKEND", "local")
    runtime.reset()
    yield stack
    runtime.reset()
    stack.adapters.close()


def _health(stack: Stack) -> dict[str, Any]:
    deps = HealthDeps(stack.settings, stack.adapters.warehouse, stack.adapters.store)
    return run_health(parse_health_params({"checks": ["backups"]}), deps).document()


def test_config_error_is_counted_recorded_and_reported_by_health(
    deployed: Stack, post_event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    response = post_event(pubsub_event())

    assert response.status_code == 200  # acknowledged: retrying can't fix the file
    [line] = [r for r in caplog.records if r.getMessage() == "backup trigger rejected"]
    assert line.levelname == "ERROR"
    fields = line.fields  # type: ignore[attr-defined]
    assert fields["trigger_rejected"] == "configuration"
    assert "max_attempts" in fields["error"]
    records = [o.name for o in deployed.adapters.store.list(BUCKET, REJECTIONS_PREFIX)]
    assert len(records) == 1
    assert not [o for o in deployed.objects("backups/")]  # no run happened

    document = _health(deployed)
    [entry] = document["checks"]["backup:trigger"]
    assert entry["status"] == "fail"
    assert entry["output"].startswith("backup trigger rejected at ")
    assert "max_attempts" in entry["output"]
    assert document["status"] == "fail"


def test_a_run_after_the_fix_clears_the_rejection(deployed: Stack, post_event: Any) -> None:
    post_event(pubsub_event())
    assert "backup:trigger" in _health(deployed)["checks"]

    runtime.use(deployed.settings, deployed.adapters)  # the config was repaired, redeployed
    assert post_event(pubsub_event(message_id="2")).status_code == 200

    checks = _health(deployed)["checks"]
    assert "backup:trigger" not in checks
    assert checks["backup:status"][0]["observedValue"] == "complete"


def test_an_unparseable_config_still_records_through_the_bucket_variable(
    deployed: Stack, post_event: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"\xff\xfe: [unclosed")
    monkeypatch.setenv("OPSUITE_CONFIG", str(garbage))
    monkeypatch.setenv("OPSUITE_BACKUP_BUCKET", BUCKET)
    monkeypatch.chdir(Path(deployed.settings.local.root).parent)
    runtime.reset()  # without a config the local root is ".local" in the working directory

    assert post_event(pubsub_event()).status_code == 200

    fallback = Path(".local") / "gcs" / BUCKET / REJECTIONS_PREFIX
    assert len(list(fallback.glob("*.json"))) == 1


class NoCredentials:
    """A warehouse whose client finds no credentials (google.auth's DefaultCredentialsError)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_tables(self, dataset: str) -> list[str]:
        from shared.errors import ConfigError

        raise ConfigError("BigQuery client: no Application Default Credentials found")

    get_table = list_tables  # type: ignore[assignment]


def test_missing_credentials_at_work_are_retried_not_acknowledged(
    stack: Stack, post_event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.composition import Adapters

    caplog.set_level(logging.INFO)
    adapters = stack.adapters
    runtime.use(
        stack.settings,
        Adapters("local", NoCredentials(adapters.warehouse), adapters.store, adapters.publisher),  # type: ignore[arg-type]
    )

    response = post_event(pubsub_event())

    assert response.status_code == 500  # raised: Pub/Sub redelivers (a metadata-server blip)
    [line] = [r for r in caplog.records if "could not authenticate" in r.getMessage()]
    assert line.fields["trigger_retrying"] == "credentials"  # type: ignore[attr-defined]
    assert not stack.objects(REJECTIONS_PREFIX)


def test_a_subset_run_does_not_hide_the_missing_nightly_run(
    deployed: Stack, post_event: Any
) -> None:
    post_event(pubsub_event())  # rejected: the deployed config is broken
    runtime.use(deployed.settings, deployed.adapters)

    body = {"tables": ["nba_analytics.player_game_summary"]}  # someone backs up one table
    assert post_event(pubsub_event(body, message_id="3")).status_code == 200

    checks = _health(deployed)["checks"]
    assert checks["backup:status"][0]["componentId"].startswith("run ")
    assert checks["backup:trigger"][0]["status"] == "fail"  # the nightly run still missing


def test_a_later_nightly_run_clears_the_rejection_even_behind_a_newer_subset_run(
    deployed: Stack, post_event: Any
) -> None:
    import json
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    post_event(pubsub_event(publish_time=now - timedelta(days=2)))  # rejected two nights ago
    runtime.use(deployed.settings, deployed.adapters)  # fixed since
    body = {"tables": ["nba_analytics.player_game_summary"]}  # today: a subset run only
    assert post_event(pubsub_event(body, message_id="5")).status_code == 200
    assert "backup:trigger" in _health(deployed)["checks"]  # no nightly run since: still failing

    # yesterday's nightly run (the local stack can't back up a past date: its claim, as written)
    [subset_claim] = [o.name for o in deployed.adapters.store.list(BUCKET, "backups/")
                      if o.name.endswith("/_run.json")]  # fmt: skip
    claim = json.loads(deployed.adapters.store.read(BUCKET, subset_claim))
    yesterday = (now - timedelta(days=1)).strftime("%Y%m%d")
    claim.update(run_id=yesterday, date=(now - timedelta(days=1)).date().isoformat())
    deployed.adapters.store.write(
        BUCKET, f"backups/{yesterday}/_run.json", json.dumps(claim).encode(), "application/json"
    )

    assert "backup:trigger" not in _health(deployed)["checks"]
