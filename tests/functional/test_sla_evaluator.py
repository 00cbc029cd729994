"""sla_evaluator driven as deployed: functions-framework app, Scheduler→Pub/Sub CloudEvents.

The stack is the shipped example configuration (13 tables, the six SLOs) on the local
adapters over the seeded demo warehouse: its data has a stale table, failed runs and a
drifting model, so there is something to find.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import runtime
from shared.errors import TransientError
from shared.metrics import PREFIX
from shared.models import EvaluationRecord, MetricPoint, WriteReport
from shared.services.seed import seed_demo
from shared.services.sla_budget import floor_to_cadence
from tests.functional.conftest import cloud_event_poster
from tests.helpers import BUCKET, Stack, make_example_stack, pubsub_event

SLOS = [
    "data_freshness",
    "pipeline_availability",
    "phase_success_rate",
    "model_accuracy",
    "incident_detection",
    "bigquery_recovery_time",
]
ALERTS = "opsuite-alerts"
CADENCE = timedelta(minutes=15)


@pytest.fixture
def sla_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    s = make_example_stack(tmp_path, time_budget_seconds=2)
    seed_demo(s.adapters.warehouse)  # type: ignore[arg-type]
    monkeypatch.setenv("OPSUITE_CONFIG", str(s.config))
    monkeypatch.setenv("OPSUITE_BACKEND", "local")
    runtime.use(s.settings, s.adapters)
    yield s
    s.adapters.close()


@pytest.fixture
def post() -> Callable[[dict[str, Any]], Any]:
    return cloud_event_poster("sla_evaluator")


def _rows(stack: Stack) -> list[EvaluationRecord]:
    history = stack.adapters.history
    assert history is not None
    now = datetime.now(UTC)
    return history.read(SLOS, now - timedelta(days=30), now + timedelta(days=1))


def _points(stack: Stack, name: str) -> list[MetricPoint]:
    metrics = stack.adapters.metrics
    assert metrics is not None
    now = datetime.now(UTC)
    return metrics.query(PREFIX + name, now - timedelta(hours=26), now + timedelta(minutes=10))


def _alerts(stack: Stack) -> list[dict[str, Any]]:
    return stack.messages(ALERTS)


def _attrs(message: dict[str, Any]) -> dict[str, str]:
    return dict(message.get("attributes") or {})


def _body(message: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(message["data"]))  # type: ignore[no-any-return]


def _tick(minutes_ago: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


def test_scheduled_evaluation_records_writes_and_announces(sla_stack: Stack, post: Any) -> None:
    published = _tick()
    response = post(pubsub_event(publish_time=published))

    assert response.status_code == 200
    at = floor_to_cadence(published, CADENCE)
    rows = _rows(sla_stack)
    assert sorted(r.slo for r in rows) == sorted(SLOS)
    assert {r.at for r in rows} == {at}
    by = {r.slo: r for r in rows}
    # the demo warehouse has tables older than 24 h: freshness is bad, and breaching
    assert by["data_freshness"].good is False
    assert by["data_freshness"].breaching is True
    assert json.loads(by["data_freshness"].detail)["stale"]
    # no restore drill has run: the recovery time is unproven, which is a breach
    assert by["bigquery_recovery_time"].good is False
    # detection reads the alert router's ledger: no incident notified yet, a good interval
    assert by["incident_detection"].good is True
    assert by["incident_detection"].total_events == 0
    assert by["incident_detection"].breaching is False
    # model accuracy is measured (a value, the baseline beside it)
    accuracy = json.loads(by["model_accuracy"].detail)
    assert by["model_accuracy"].value is not None and accuracy["baseline"] == 4.27

    heartbeat = _points(sla_stack, "evaluator/heartbeat")
    assert [(p.value, p.at) for p in heartbeat] == [(1, at)]
    compliance = {p.labels["slo"] for p in _points(sla_stack, "slo/compliance")}
    # the run history has no run in the last 15 min: no events, no compliance yet
    assert compliance == set(SLOS) - {"incident_detection", "phase_success_rate"}
    good = {p.labels["slo"]: p.value for p in _points(sla_stack, "slo/good")}
    assert good["data_freshness"] == 0 and good["phase_success_rate"] == 1
    ages = _points(sla_stack, "freshness/age_hours")
    assert {p.labels["table"] for p in ages} == {
        t.table for t in sla_stack.settings.health.freshness.tables
    }

    alerts = _alerts(sla_stack)
    breached = {(_attrs(m)["slo"], _attrs(m)["condition"]) for m in alerts}
    assert ("data_freshness", "sli") in breached
    assert ("bigquery_recovery_time", "sli") in breached
    for message in alerts:
        attributes = _attrs(message)
        assert attributes["event_type"] in ("slo.breached", "slo.burn_rate")
        assert attributes["severity"] in ("P0", "P1", "P2", "P3")
        assert len(attributes["fingerprint"]) == 32
        body = _body(message)
        assert body["slo"] == attributes["slo"] and body["at"] == at.isoformat()
    assert not any(_attrs(m)["slo"] == "incident_detection" for m in alerts)


def test_redelivery_replays_the_same_instant(sla_stack: Stack, post: Any) -> None:
    event = pubsub_event(publish_time=_tick())
    assert post(event).status_code == 200
    rows, alerts = _rows(sla_stack), _alerts(sla_stack)
    points = _points(sla_stack, "slo/compliance")

    # a minute later, Pub/Sub delivers the same message again
    assert post(event).status_code == 200

    assert _rows(sla_stack) == rows  # nothing appended twice, nothing changed
    assert len(_alerts(sla_stack)) == len(alerts)  # each state change announced once
    assert _points(sla_stack, "slo/compliance") == points


def test_concurrent_deliveries_record_and_announce_once(sla_stack: Stack, post: Any) -> None:
    event = pubsub_event(publish_time=_tick())
    codes: list[int] = []

    def deliver() -> None:
        codes.append(post(event).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # a delivery that found another one publishing may ask for redelivery (500); then
    # Pub/Sub delivers again and it completes
    while codes.count(200) < 1:
        codes.append(post(event).status_code)
    assert post(event).status_code == 200
    rows = _rows(sla_stack)
    assert len({(r.at, r.slo) for r in rows}) == len(SLOS)
    ids = [_attrs(m)["event_id"] for m in _alerts(sla_stack)]
    assert ids and len(ids) == len(set(ids))


class DownWarehouse:
    """A warehouse whose every call fails as BigQuery does when it is unreachable."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name in ("close", "cursor"):
            return attr

        def fail(*_args: Any, **_kwargs: Any) -> Any:
            self.calls += 1
            raise TransientError("503 Service Unavailable: backendError")

        return fail


def test_warehouse_down_records_unknown_not_good(sla_stack: Stack, post: Any) -> None:
    down = replace(sla_stack.adapters, warehouse=DownWarehouse(sla_stack.adapters.warehouse))
    runtime.use(sla_stack.settings, down)

    assert post(pubsub_event(publish_time=_tick())).status_code == 200

    by = {r.slo: r for r in _rows(sla_stack)}
    for name in ("data_freshness", "phase_success_rate", "model_accuracy"):
        assert by[name].good is None, name
        assert "unknown" in json.loads(by[name].detail), name
    # the dependency check itself reports BigQuery down: the pipeline is not available
    assert by["pipeline_availability"].good is False
    assert "dependencies" in json.loads(by["pipeline_availability"].detail)["failing"]
    # unknown is charged to the budget and reported as such
    unknown = {p.labels["slo"]: p.value for p in _points(sla_stack, "slo/unknown")}
    assert unknown["data_freshness"] == 1 and unknown["model_accuracy"] == 1


class FlakyMetrics:
    """Monitoring answering UNAVAILABLE for the first ``failures`` writes."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.attempts = 0

    def write(self, points: Any) -> WriteReport:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise TransientError("503 UNAVAILABLE: The service is currently unavailable.")
        return self.inner.write(points)  # type: ignore[no-any-return]

    def query(self, *args: Any) -> Any:
        return self.inner.query(*args)


def test_monitoring_unavailable_then_ok(sla_stack: Stack, post: Any) -> None:
    event = pubsub_event(publish_time=_tick())
    # Monitoring stays down longer than the evaluation's time budget: ask for redelivery
    down = FlakyMetrics(sla_stack.adapters.metrics, failures=10_000)
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, metrics=down))
    assert post(event).status_code == 500
    assert down.attempts > 1  # retried inside the deadline first
    rows = _rows(sla_stack)
    assert len(rows) == len(SLOS)  # the history is recorded before the points
    assert _points(sla_stack, "evaluator/heartbeat") == []
    alerts = _alerts(sla_stack)
    assert alerts  # the events went out before the points: Monitoring can't cost a page

    # the redelivery finds Monitoring back after one more UNAVAILABLE
    flaky = FlakyMetrics(sla_stack.adapters.metrics, failures=1)
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, metrics=flaky))
    assert post(event).status_code == 200
    assert flaky.attempts == 2
    assert _rows(sla_stack) == rows  # replayed, not recomputed
    assert len(_points(sla_stack, "evaluator/heartbeat")) == 1
    assert _alerts(sla_stack) == alerts  # replayed: nothing announced twice


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        ({"slos": ["no_such_slo"]}, "unknown SLO"),
        ({"at": "yesterday"}, "RFC 3339"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"when": "now"}, "unknown field"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_input_is_acked_and_writes_nothing(
    sla_stack: Stack, post: Any, body: Any, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    response = post(pubsub_event(body, publish_time=_tick()))

    assert response.status_code == 200  # redelivery can't fix it
    assert _rows(sla_stack) == []
    assert _points(sla_stack, "evaluator/heartbeat") == []
    assert _alerts(sla_stack) == []
    logged = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    rejected = [e for e in logged if e.get("message") == "SLA trigger rejected"]
    assert rejected and why in rejected[0]["error"]


def test_dry_run_changes_nothing(sla_stack: Stack, post: Any) -> None:
    assert post(pubsub_event({"dry_run": True}, publish_time=_tick())).status_code == 200
    assert _rows(sla_stack) == []
    assert _points(sla_stack, "evaluator/heartbeat") == []
    assert _alerts(sla_stack) == []


def test_named_slos_and_explicit_instant(sla_stack: Stack, post: Any) -> None:
    at = floor_to_cadence(_tick(60), CADENCE)
    body = {"at": at.isoformat().replace("+00:00", "Z"), "slos": ["model_accuracy"]}
    assert post(pubsub_event(body, publish_time=_tick())).status_code == 200
    rows = _rows(sla_stack)
    assert [(r.slo, r.at) for r in rows] == [("model_accuracy", at)]


def test_late_delivery_records_but_sends_nothing(sla_stack: Stack, post: Any) -> None:
    now = _tick()
    assert post(pubsub_event(publish_time=now, message_id="2")).status_code == 200
    alerts = len(_alerts(sla_stack))
    beats = _points(sla_stack, "evaluator/heartbeat")

    # the previous slot's trigger arrives after the current one was evaluated
    earlier = now - CADENCE
    assert post(pubsub_event(publish_time=earlier, message_id="1")).status_code == 200

    instants = {r.at for r in _rows(sla_stack)}
    assert floor_to_cadence(earlier, CADENCE) in instants  # recorded: the history is whole
    assert len(_alerts(sla_stack)) == alerts  # no events for a past state
    assert _points(sla_stack, "evaluator/heartbeat") == beats  # Monitoring takes order only


def test_old_trigger_is_dropped(sla_stack: Stack, post: Any) -> None:
    assert post(pubsub_event(publish_time=_tick(7 * 60))).status_code == 200
    assert _rows(sla_stack) == []


def test_state_changes_only_are_announced(sla_stack: Stack, post: Any) -> None:
    now = _tick()
    assert post(pubsub_event(publish_time=now - CADENCE, message_id="1")).status_code == 200
    first = len(_alerts(sla_stack))
    assert first
    # the next slot: same data, same state → no new breach events
    assert post(pubsub_event(publish_time=now, message_id="2")).status_code == 200
    new = _alerts(sla_stack)[first:]
    assert not [m for m in new if _attrs(m)["condition"] == "sli"]


def test_drill_pass_and_fail_drive_the_recovery_time_slo(sla_stack: Stack, post: Any) -> None:
    from shared.services.drill import DrillDeps, run_drill
    from tests.helpers import backup_now

    backup_now(sla_stack)
    a = sla_stack.adapters
    deps = DrillDeps(sla_stack.settings.backups, a.warehouse, a.store, "local")
    record = run_drill(deps).record
    assert record is not None and record.passed

    now = _tick()
    assert post(pubsub_event(publish_time=now - CADENCE, message_id="1")).status_code == 200
    by = {r.slo: r for r in _rows(sla_stack)}
    assert by["bigquery_recovery_time"].good is True
    assert by["bigquery_recovery_time"].value is not None  # projected hours
    assert not [m for m in _alerts(sla_stack) if _attrs(m)["slo"] == "bigquery_recovery_time"]

    # the newest drill fails: the next evaluation breaches, once
    failed = record.model_copy(update={"passed": False, "error": "row counts differ"})
    day = record.date.strftime("%Y%m%d")
    name = f"backups/drills/{day}/_drill.json"
    a.store.write(BUCKET, name, failed.model_dump_json().encode(), "application/json")
    assert post(pubsub_event(publish_time=now, message_id="2")).status_code == 200
    breaches = [
        m
        for m in _alerts(sla_stack)
        if _attrs(m)["slo"] == "bigquery_recovery_time" and _attrs(m)["condition"] == "sli"
    ]
    assert len(breaches) == 1
    assert _attrs(breaches[0])["event_type"] == "slo.breached"
    assert "row counts differ" in _body(breaches[0])["detail"]["problem"]


# -- outputs failing after the history row is written (review findings) -------------------


class FlakyPublisher:
    """Pub/Sub answering UNAVAILABLE to the first ``failures`` publishes."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.attempts = 0

    def publish(self, topic: str, data: bytes, attributes: Any) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise TransientError("503 UNAVAILABLE: failed to connect to all addresses")
        return self.inner.publish(topic, data, attributes)  # type: ignore[no-any-return]

    def messages(self, topic: str) -> Any:
        return self.inner.messages(topic)


def _event_ids(stack: Stack) -> list[str]:
    return [_attrs(m)["event_id"] for m in _alerts(stack)]


def test_a_publish_blip_is_retried_in_the_same_delivery(sla_stack: Stack, post: Any) -> None:
    flaky = FlakyPublisher(sla_stack.adapters.publisher, failures=1)
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, publisher=flaky))

    assert post(pubsub_event(publish_time=_tick())).status_code == 200

    ids = _event_ids(sla_stack)
    assert ids and len(ids) == len(set(ids))  # every change announced, once
    assert flaky.attempts == len(ids) + 1  # the failed publish was retried, not waited out


class MetricsThatFail:
    def __init__(self, inner: Any, error: Exception) -> None:
        self.inner = inner
        self.error = error

    def write(self, points: Any) -> WriteReport:
        raise self.error

    def query(self, *args: Any) -> Any:
        return self.inner.query(*args)


def test_a_change_recorded_but_not_announced_is_announced_by_the_next_tick(
    sla_stack: Stack, post: Any
) -> None:
    """The history row of T is written, then the delivery dies before publishing (here:
    the publisher is down past the time budget). The next tick, T+15, arrives before the
    redelivery of T: it must announce the change T recorded, and T's late redelivery
    must not announce it a second time."""
    now = _tick()
    down = FlakyPublisher(sla_stack.adapters.publisher, failures=10_000)
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, publisher=down))
    first = pubsub_event(publish_time=now - CADENCE, message_id="1")
    assert post(first).status_code == 500
    assert _alerts(sla_stack) == []
    assert any(r.breaching for r in _rows(sla_stack))  # recorded as breaching

    runtime.use(sla_stack.settings, sla_stack.adapters)
    assert post(pubsub_event(publish_time=now, message_id="2")).status_code == 200
    breached = [
        m
        for m in _alerts(sla_stack)
        if _attrs(m)["slo"] == "data_freshness" and _attrs(m)["condition"] == "sli"
    ]
    assert len(breached) == 1
    assert _body(breached[0])["at"] == floor_to_cadence(now, CADENCE).isoformat()

    count = len(_alerts(sla_stack))
    assert post(first).status_code == 200  # the redelivery of T: late now
    assert len(_alerts(sla_stack)) == count


def test_a_permanent_monitoring_error_still_announces(sla_stack: Stack, post: Any) -> None:
    from shared.errors import PermissionDenied

    refusing = MetricsThatFail(
        sla_stack.adapters.metrics,
        PermissionDenied("403 Permission monitoring.timeSeries.create denied"),
    )
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, metrics=refusing))

    assert post(pubsub_event(publish_time=_tick())).status_code == 200

    assert len(_rows(sla_stack)) == len(SLOS)
    assert _alerts(sla_stack)  # the page goes out although Monitoring refused the points


def test_a_delivery_far_behind_is_late_too(sla_stack: Stack, post: Any) -> None:
    now = _tick()
    assert post(pubsub_event(publish_time=now, message_id="3")).status_code == 200
    count = len(_alerts(sla_stack))
    # three slots behind (not just one): still late, nothing announced for a past state
    old = pubsub_event(publish_time=now - 3 * CADENCE, message_id="0")
    assert post(old).status_code == 200
    assert len(_alerts(sla_stack)) == count
    assert floor_to_cadence(now - 3 * CADENCE, CADENCE) in {r.at for r in _rows(sla_stack)}


class RacingHistory:
    """Another delivery records the instant between this one's read and its append."""

    def __init__(self, inner: Any, theirs: list[EvaluationRecord]) -> None:
        self.inner = inner
        self.theirs = theirs

    def read(self, *args: Any) -> Any:
        return self.inner.read(*args)

    def append(self, job_id: str, records: Any) -> bool:
        self.inner.append(job_id, self.theirs)  # the other delivery wins the job id
        return self.inner.append(job_id, records)  # type: ignore[no-any-return]


def test_a_delivery_that_loses_the_append_replays_the_winners_rows(
    sla_stack: Stack, post: Any
) -> None:
    at = floor_to_cadence(_tick(), CADENCE)
    assert post(pubsub_event({"dry_run": True}, publish_time=_tick())).status_code == 200
    # the winner saw freshness unknown (a warehouse blip), so no freshness breach
    theirs = [
        EvaluationRecord(
            at=at,
            slo=name,
            kind="x",
            good=None,
            value=None,
            good_events=None,
            total_events=None,
            compliance=None,
            budget_remaining=None,
            breaching=False,
            exhausted=False,
            burning=(),
            detail="{}",
            recorded_at=at,
        )
        for name in SLOS
    ]
    history = RacingHistory(sla_stack.adapters.history, theirs)
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, history=history))

    assert post(pubsub_event(publish_time=_tick())).status_code == 200

    assert all(r.good is None for r in _rows(sla_stack))  # one row each: theirs
    assert not [_attrs(m) for m in _alerts(sla_stack) if _attrs(m)["condition"] == "sli"]


class UnreadableHistory:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def read(self, *args: Any) -> Any:
        raise TransientError("503 Service Unavailable: backendError")

    def append(self, *args: Any) -> Any:
        raise AssertionError("nothing may be appended without reading the history")


def test_an_unreadable_history_reports_blind_and_asks_again(sla_stack: Stack, post: Any) -> None:
    history = UnreadableHistory(sla_stack.adapters.history)
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, history=history))

    assert post(pubsub_event(publish_time=_tick())).status_code == 500

    unknown = {p.labels["slo"]: p.value for p in _points(sla_stack, "slo/unknown")}
    assert unknown == dict.fromkeys(SLOS, 1)
    assert len(_points(sla_stack, "evaluator/heartbeat")) == 1
    assert _alerts(sla_stack) == []


def test_missing_credentials_at_work_ask_for_redelivery(sla_stack: Stack, post: Any) -> None:
    from shared.errors import ConfigError

    refusing = MetricsThatFail(
        sla_stack.adapters.metrics,
        ConfigError("Your default credentials were not found (metadata server unreachable)"),
    )
    runtime.use(sla_stack.settings, replace(sla_stack.adapters, metrics=refusing))

    # a metadata-server blip is not a broken config: Pub/Sub must come back
    assert post(pubsub_event(publish_time=_tick())).status_code == 500
