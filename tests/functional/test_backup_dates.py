"""What a backup run's date means: the data of that night, or a refusal — never another day's.

The local warehouse has no time travel, so a warehouse that can travel is simulated by
a wrapper that records the instants it is asked for (the GCP adapter's requests for an
instant are covered by the contract suite: ``table@<ms>`` and ``FOR SYSTEM_TIME AS OF``).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from shared import runtime
from shared.composition import Adapters
from shared.identifiers import TableRef
from shared.models import ExtractRequest, JobStatus
from tests.helpers import ROOT, Stack, pubsub_event


class TimeTravellingWarehouse:
    """The local warehouse, pretending to read the past: records every instant asked for."""

    time_travel = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.instants: list[datetime] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def row_count_at(self, table: TableRef, instant: datetime, **_: Any) -> int:
        self.instants.append(instant)
        return self.inner.count_rows(table)  # type: ignore[no-any-return]

    def start_extract(self, request: ExtractRequest) -> JobStatus:
        self.instants.append(request.instant)
        # the local warehouse refuses an instant before the table's last change: export now
        now = request.__class__(**{**request.__dict__, "instant": datetime.now(UTC)})
        return self.inner.start_extract(now)  # type: ignore[no-any-return]


@pytest.fixture
def travelling(stack: Stack) -> TimeTravellingWarehouse:
    warehouse = TimeTravellingWarehouse(stack.adapters.warehouse)
    adapters = Adapters("local", warehouse, stack.adapters.store, stack.adapters.publisher)  # type: ignore[arg-type]
    runtime.use(stack.settings, adapters)
    return warehouse


def _rejections(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        str(getattr(r, "fields", {}).get("error"))
        for r in caplog.records
        if r.getMessage() == "backup trigger rejected"
    ]


def test_a_date_outside_the_time_travel_window_is_refused_with_the_window_named(
    stack: Stack, travelling: TimeTravellingWarehouse, post_event: Any, caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    response = post_event(pubsub_event({"date": "1970-01-01"}))

    assert response.status_code == 200  # bad input: acknowledged, never retried
    assert stack.objects() == []  # no claim, no manifest labelled 19700101
    [error] = _rejections(caplog)
    assert "outside the 168 h time-travel window" in error
    assert "oldest date that can be backed up now" in error
    assert travelling.instants == []


def test_a_past_date_inside_the_window_backs_up_that_night_at_its_scheduled_instant(
    stack: Stack, travelling: TimeTravellingWarehouse, post_event: Any
) -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    run_id = yesterday.strftime("%Y%m%d")

    assert post_event(pubsub_event({"date": yesterday.isoformat()})).status_code == 200

    manifest = stack.manifest(run_id)
    hour, minute = map(int, stack.settings.backups.schedule_utc.split(":"))
    scheduled = datetime.combine(yesterday, time(hour, minute), UTC)
    assert manifest.status == "complete"
    assert manifest.date == yesterday
    assert manifest.instant == scheduled
    assert travelling.instants and set(travelling.instants) == {scheduled}


def test_a_redelivery_after_midnight_reads_the_moment_its_trigger_was_published(
    stack: Stack, travelling: TimeTravellingWarehouse, post_event: Any
) -> None:
    published = datetime.combine(datetime.now(UTC).date(), time.min, UTC) - timedelta(minutes=7)
    # run just before midnight, "7 min before today's midnight" is a day old: keep the
    # maximum event age out of this test's way (it is tested on its own)
    backups = stack.settings.backups.model_copy(update={"max_event_age_seconds": 2 * 86400})
    runtime.use(
        stack.settings.model_copy(update={"backups": backups}), runtime.settings_and_adapters()[1]
    )

    assert post_event(pubsub_event(publish_time=published)).status_code == 200

    manifest = stack.manifest(published.strftime("%Y%m%d"))
    assert manifest.date == published.date()
    assert manifest.instant == published
    assert set(travelling.instants) == {published}


def test_a_past_date_on_a_warehouse_without_time_travel_is_refused(
    stack: Stack, post_event: Any, caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)

    assert post_event(pubsub_event({"date": yesterday.isoformat()})).status_code == 200

    assert stack.objects() == []
    [error] = _rejections(caplog)
    assert "no time travel" in error


def test_todays_run_reads_the_tables_as_they_are(stack: Stack, post_event: Any) -> None:
    before = datetime.now(UTC)
    assert post_event(pubsub_event()).status_code == 200
    manifest = stack.manifest(before.strftime("%Y%m%d"))
    assert manifest.status == "complete"
    assert before <= manifest.instant <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("1970-01-01", "no time travel"),  # the local warehouse can't read the past at all
        ("2099-01-01", "in the future"),
    ],
)
def test_cli_date_means_the_same_as_the_trigger(stack: Stack, date: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--config", str(stack.config), "backup",
         "--date", date, "--dry-run"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 64, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert json.dumps(stack.objects()) == "[]"


def test_health_ages_a_backfill_by_the_night_it_holds(
    stack: Stack, travelling: TimeTravellingWarehouse, post_event: Any
) -> None:
    from shared.services.health import HealthDeps, parse_health_params, run_health

    three_days_ago = datetime.now(UTC).date() - timedelta(days=3)
    assert post_event(pubsub_event({"date": three_days_ago.isoformat()})).status_code == 200
    manifest = stack.manifest(three_days_ago.strftime("%Y%m%d"))
    assert manifest.status == "complete"  # finished just now ...

    deps = HealthDeps(stack.settings, stack.adapters.warehouse, stack.adapters.store)
    [age] = run_health(parse_health_params({"checks": ["backups"]}), deps).document()["checks"][
        "backup:age"
    ]
    assert age["status"] == "fail"  # ... but holds data > 50 h old
    assert age["observedValue"] >= 3 * 86400 - 10 * 3600


@pytest.mark.parametrize(
    ("now", "date", "accepted"),
    [
        # 2026-11-24 09:30 is 164.5 h before 12-01 06:00: inside 168 h, but not with the
        # 4.2 h a run may take (25 invocations × (540 s + 60 s)) — refused
        (datetime(2026, 12, 1, 6, 0, tzinfo=UTC), "2026-11-24", False),
        (datetime(2026, 12, 1, 5, 0, tzinfo=UTC), "2026-11-24", True),  # 163.5 h: room left
        (datetime(2026, 12, 1, 7, 0, tzinfo=UTC), "2026-11-25", True),
    ],
)
def test_the_window_leaves_room_for_the_whole_run(
    stack: Stack, now: datetime, date: str, accepted: bool
) -> None:
    from shared.errors import BadInput
    from shared.events import parse_backup_request
    from shared.services.backup import BackupDeps, BackupRun

    deps = BackupDeps(
        stack.settings.backups,
        TimeTravellingWarehouse(stack.adapters.warehouse),  # type: ignore[arg-type]
        stack.adapters.store,
        stack.adapters.publisher,
        "local",
        now=lambda: now,
    )
    run = BackupRun(deps, parse_backup_request(json.dumps({"date": date}).encode()))
    if accepted:
        assert run._new_instant() == datetime.fromisoformat(f"{date}T09:30:00+00:00")
    else:
        with pytest.raises(BadInput, match="oldest date that can be backed up now: 2026-11-25"):
            run._new_instant()


def test_counts_may_run_only_until_the_function_would_be_killed(stack: Stack) -> None:
    from shared.events import BackupRequest
    from shared.services.backup import run_backup_to_end
    from tests.helpers import backup_deps

    waits: list[float] = []

    class Recording(TimeTravellingWarehouse):
        time_travel = False

        def row_count_at(self, table: TableRef, instant: datetime, **kw: Any) -> int:
            waits.append(kw["wait_seconds"])
            return self.inner.row_count_at(table, instant)  # type: ignore[no-any-return]

        def start_extract(self, request: ExtractRequest) -> JobStatus:
            return self.inner.start_extract(request)  # type: ignore[no-any-return]

    outcome = run_backup_to_end(
        BackupRequest(), backup_deps(stack, Recording(stack.adapters.warehouse))
    )

    assert outcome.manifest is not None and outcome.manifest.status == "complete"
    # 540 s limit - 5 s, less the time already spent in this invocation; never the budget's 480
    assert waits and all(480 < w <= 535 for w in waits)
