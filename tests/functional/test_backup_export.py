"""backup_export driven as deployed: functions-framework app, Pub/Sub CloudEvents."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import runtime
from shared.avro import scan_avro
from shared.composition import Adapters
from shared.errors import NotFound, PermissionDenied, TransientError
from shared.identifiers import TableRef
from shared.models import ExtractRequest, JobStatus, TableInfo
from tests.helpers import BUCKET, FOUR_TABLES, Stack, pubsub_event

TODAY = datetime.now(UTC).strftime("%Y%m%d")


def _attempt_dirs(stack: Stack, table: str) -> set[str]:
    ds, t = table.split(".")
    names = stack.objects(f"backups/{TODAY}/{ds}/{t}/attempt-")
    return {n.split("/")[4] for n in names}


def test_nightly_run_exports_verifies_and_announces(stack: Stack, post_event: Any) -> None:
    response = post_event(pubsub_event())

    assert response.status_code == 200
    manifest = stack.manifest(TODAY)
    assert manifest.status == "complete"
    assert [t.source for t in manifest.tables] == sorted(FOUR_TABLES)
    for entry in manifest.tables:
        expected = stack.adapters.warehouse.count_rows(TableRef.parse(entry.source))
        assert entry.rows == expected
        assert entry.verification is not None
        assert entry.verification.method == "avro-block-headers"
        assert entry.verification.rows_exported == expected
        assert entry.files and all(f.uri.endswith(".avro") for f in entry.files)
        assert entry.attempt == 1
        rows = 0
        for f in entry.files:
            name = f.uri.removeprefix(f"gs://{BUCKET}/")
            assert f.size == stack.adapters.store.stat(BUCKET, name).size  # type: ignore[union-attr]
            with stack.adapters.store.open(BUCKET, name) as fo:
                stats = scan_avro(fo)
            assert stats.codec == "snappy"
            rows += stats.rows
        assert rows == expected
        resource = json.loads(
            stack.adapters.store.read(BUCKET, entry.resource_uri.removeprefix(f"gs://{BUCKET}/"))  # type: ignore[union-attr]
        )
        assert resource["schema"]["fields"]
        assert resource["timePartitioning"]["type"] == "DAY"
    events = stack.messages("opsuite-backup-events")
    assert len(events) == 1
    assert events[0]["attributes"] == {
        "event_type": "backup.completed",
        "run_id": TODAY,
        "status": "complete",
    }


def test_same_event_twice_is_one_run(stack: Stack, post_event: Any) -> None:
    event = pubsub_event()
    assert post_event(event).status_code == 200
    first = stack.adapters.store.read(BUCKET, f"backups/{TODAY}/_manifest.json")
    objects_after_first = stack.objects()

    assert post_event(event).status_code == 200

    assert stack.adapters.store.read(BUCKET, f"backups/{TODAY}/_manifest.json") == first
    assert stack.objects() == objects_after_first
    assert len(stack.jobs()) == len(FOUR_TABLES)
    assert len(stack.messages("opsuite-backup-events")) == 1


def test_same_event_twice_concurrently_is_one_run(stack: Stack, post_event: Any) -> None:
    event = pubsub_event()
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def deliver() -> None:
        barrier.wait()
        codes.append(post_event(event).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert codes == [200, 200]
    manifest = stack.manifest(TODAY)
    assert manifest.status == "complete"
    assert len(stack.jobs()) == len(FOUR_TABLES)  # each table exported once
    for table in FOUR_TABLES:
        assert _attempt_dirs(stack, table) == {"attempt-1"}
    assert len(stack.messages("opsuite-backup-events")) == 1


def test_rerunning_a_completed_date_is_a_noop(stack: Stack, post_event: Any) -> None:
    post_event(pubsub_event({"date": datetime.now(UTC).date().isoformat()}))
    before = stack.objects()
    post_event(pubsub_event(message_id="another-delivery"))
    assert stack.objects() == before


def test_dry_run_lists_the_plan_and_touches_nothing(
    stack: Stack, post_event: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    response = post_event(pubsub_event({"dry_run": True}))
    assert response.status_code == 200
    assert stack.objects() == []
    assert stack.jobs() == []
    assert stack.messages("opsuite-backup-events") == []


def test_a_subset_of_tables_is_its_own_run(stack: Stack, post_event: Any) -> None:
    post_event(pubsub_event({"tables": ["nba_analytics.player_game_summary"]}))
    runs = {n.split("/")[1] for n in stack.objects("backups/")}
    assert len(runs) == 1
    (run_id,) = runs
    assert run_id.startswith(TODAY + "-")
    assert [t.source for t in stack.manifest(run_id).tables] == [
        "nba_analytics.player_game_summary"
    ]


HOSTILE = [
    pytest.param(pubsub_event(raw_data="not base64!!"), id="invalid-base64"),
    pytest.param(pubsub_event(b"{not json"), id="non-json"),
    pytest.param(pubsub_event(b"[1, 2]"), id="json-array"),
    pytest.param(pubsub_event({"dry_run": "yes"}), id="dry-run-string"),
    pytest.param(pubsub_event({"tables": "nba_analytics.player_game_summary"}), id="tables-string"),
    pytest.param(pubsub_event({"date": "22/11/2026"}), id="bad-date"),
    pytest.param(pubsub_event({"date": "2026-02-30"}), id="impossible-date"),
    pytest.param(pubsub_event({"surprise": 1}), id="unknown-field"),
    pytest.param(pubsub_event({"tables": ["nba_analytics.not_configured"]}), id="unknown-table"),
    pytest.param(pubsub_event({"tables": ["ds.t; DROP TABLE x"]}), id="sql-injection"),
    pytest.param(pubsub_event({"tables": ["nba_analytics.`x`"]}), id="backticks"),
    pytest.param(pubsub_event({"tables": ["../etc.passwd"]}), id="path-traversal"),
    pytest.param(pubsub_event({"run_id": "../../x"}), id="hostile-run-id"),
    pytest.param(pubsub_event(b"\xff\xfe"), id="not-utf8"),
    pytest.param(pubsub_event(b"[" * 60_000), id="deeply-nested"),
    pytest.param(pubsub_event({"date": "2099-12-31"}), id="future-date"),
    pytest.param(pubsub_event({"run_id": "20200101"}), id="run-id-of-another-date"),
    pytest.param(pubsub_event({"continuation": 1000}), id="continuation-without-run"),
]


@pytest.mark.parametrize("event", HOSTILE)
def test_bad_input_is_logged_acknowledged_and_writes_nothing(
    stack: Stack, post_event: Any, event: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    response = post_event(event)

    assert response.status_code == 200  # acknowledged: redelivery cannot fix bad input
    logs = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    rejected = [entry for entry in logs if entry["message"] == "backup trigger rejected"]
    assert rejected and rejected[0]["severity"] == "ERROR"
    assert rejected[0]["error_type"] in {"BadInput"}
    assert stack.objects() == []
    assert stack.jobs() == []


def test_events_older_than_the_max_age_are_dropped(stack: Stack, post_event: Any) -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    assert post_event(pubsub_event(publish_time=old)).status_code == 200
    assert stack.objects() == []


class FaultyWarehouse:
    """Wraps the local warehouse and injects the faults BigQuery produces."""

    def __init__(self, inner: Any, *, insert_503: int = 0, poll_503: int = 0,
                 denied: set[str] | None = None) -> None:  # fmt: skip
        self.inner = inner
        self.insert_503 = insert_503
        self.poll_503 = poll_503
        self.denied = denied or set()
        self.calls: dict[str, int] = {"start_extract": 0, "get_job": 0}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_table(self, table: TableRef) -> TableInfo:
        if str(table) in self.denied:
            raise PermissionDenied(f"403 Access Denied: Table {table}")
        return self.inner.get_table(table)  # type: ignore[no-any-return]

    def start_extract(self, request: ExtractRequest) -> JobStatus:
        with self._lock:
            self.calls["start_extract"] += 1
            if self.insert_503 > 0:
                self.insert_503 -= 1
                raise TransientError("503 Service Unavailable")
        return self.inner.start_extract(request)  # type: ignore[no-any-return]

    def get_job(self, job_id: str) -> JobStatus:
        with self._lock:
            self.calls["get_job"] += 1
            if self.poll_503 > 0 and self.calls["start_extract"]:
                self.poll_503 -= 1
                raise TransientError("503 Service Unavailable")
        return self.inner.get_job(job_id)  # type: ignore[no-any-return]


def _wrap(stack: Stack, warehouse: Any) -> None:
    a = stack.adapters
    runtime.use(stack.settings, Adapters(a.backend, warehouse, a.store, a.publisher))


def test_transient_faults_on_insert_and_polling_are_retried(stack: Stack, post_event: Any) -> None:
    faulty = FaultyWarehouse(stack.adapters.warehouse, insert_503=3, poll_503=3)
    _wrap(stack, faulty)

    assert post_event(pubsub_event()).status_code == 200

    assert stack.manifest(TODAY).status == "complete"
    assert faulty.insert_503 == 0 and faulty.poll_503 == 0  # every fault was hit
    assert len(stack.jobs()) == len(FOUR_TABLES)


def test_missing_and_forbidden_tables_make_a_partial_run(
    tmp_path: Any, stack: Stack, post_event: Any
) -> None:
    settings = stack.settings.model_copy(
        update={
            "backups": stack.settings.backups.model_copy(
                update={"tables": [*FOUR_TABLES, "nba_analytics.deleted_last_week"]}
            )
        }
    )
    faulty = FaultyWarehouse(
        stack.adapters.warehouse, denied={"nba_orchestration.processor_run_history"}
    )
    a = stack.adapters
    runtime.use(settings, Adapters(a.backend, faulty, a.store, a.publisher))

    assert post_event(pubsub_event()).status_code == 200

    manifest = stack.manifest(TODAY)
    assert manifest.status == "partial"
    failed = {t.source: t.error or "" for t in manifest.failed}
    assert set(failed) == {
        "nba_analytics.deleted_last_week",
        "nba_orchestration.processor_run_history",
    }
    assert "does not exist" in failed["nba_analytics.deleted_last_week"]
    assert "Access Denied" in failed["nba_orchestration.processor_run_history"]
    assert len([t for t in manifest.tables if t.status == "complete"]) == 3
    (event,) = stack.messages("opsuite-backup-events")
    assert event["attributes"]["event_type"] == "backup.failed"
    body = json.loads(__import__("base64").b64decode(event["data"]))
    assert {f["source"] for f in body["failed"]} == set(failed)


def test_a_missing_dataset_is_recorded_not_skipped(
    tmp_path: Any, stack: Stack, post_event: Any
) -> None:
    from shared.config import parse_settings

    body = stack.settings.model_dump()
    body["backups"]["datasets"] = [{"name": "nba_raw"}, {"name": "nba_predictions"}]
    runtime.use(parse_settings(body), stack.adapters)

    post_event(pubsub_event())

    manifest = stack.manifest(TODAY)
    assert manifest.status == "partial"
    assert manifest.errors == ["dataset nba_raw does not exist"]
    assert "nba_predictions.prediction_accuracy" in [t.source for t in manifest.tables]


def test_time_budget_hands_over_to_a_continuation_that_resumes(
    stack: Stack, post_event: Any
) -> None:
    # a 1 s budget against 200 "still running" polls (50 a table at >= 0.05 s: 2.5 s at
    # least): it must hand over. The budget must still hold one table's verification (its
    # files scanned, its rows counted) or no invocation ever finishes one: at 0.2 s a
    # loaded CI machine handed over 200 times without progress. How many hand-overs
    # depends on the load, so the limit is the highest allowed.
    backups = stack.settings.backups.model_copy(
        update={"time_budget_seconds": 1.0, "max_continuations": 200}
    )
    settings = stack.settings.model_copy(update={"backups": backups})

    class SlowWarehouse(FaultyWarehouse):
        def get_job(self, job_id: str) -> JobStatus:
            status = super().get_job(job_id)
            if status.done and self.calls["get_job"] < 200:
                return JobStatus(job_id, "RUNNING")  # reports running for a while
            return status

    slow = SlowWarehouse(stack.adapters.warehouse)
    a = stack.adapters
    runtime.use(settings, Adapters(a.backend, slow, a.store, a.publisher))

    post_event(pubsub_event())
    deliveries = 1
    while True:
        continuations = stack.messages("opsuite-backup-trigger")
        if len(continuations) < deliveries:
            break
        message = continuations[deliveries - 1]
        event = pubsub_event(json.loads(__import__("base64").b64decode(message["data"])),
                             message_id=message["messageId"])  # fmt: skip
        post_event(event)
        deliveries += 1
        assert deliveries <= 201

    assert deliveries > 1, "the budget never ran out: the test proves nothing"
    manifest = stack.manifest(TODAY)
    assert manifest.status == "complete"
    assert slow.calls["start_extract"] == len(FOUR_TABLES)  # resumed, never restarted
    assert all(t.attempt == 1 for t in manifest.tables)


def test_a_failed_job_retries_under_a_new_attempt(stack: Stack, post_event: Any) -> None:
    class FlakyJobs(FaultyWarehouse):
        def get_job(self, job_id: str) -> JobStatus:
            status = super().get_job(job_id)
            if job_id.endswith("_a1") and "player_game_summary" in job_id and status.done:
                from shared.models import JobError

                return JobStatus(job_id, "DONE", JobError("backendError", "Backend error"))
            return status

    _wrap(stack, FlakyJobs(stack.adapters.warehouse))

    post_event(pubsub_event())

    entry = stack.manifest(TODAY).table("nba_analytics.player_game_summary")
    assert entry is not None and entry.status == "complete" and entry.attempt == 2
    assert _attempt_dirs(stack, "nba_analytics.player_game_summary") == {"attempt-2"}
    assert all("/attempt-2/" in f.uri for f in entry.files)


def test_transient_error_before_the_run_starts_asks_for_redelivery(
    stack: Stack, post_event: Any
) -> None:
    class DownStore:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise TransientError("503 from storage")

            return fail

    settings = stack.settings.model_copy(
        update={"backups": stack.settings.backups.model_copy(update={"time_budget_seconds": 0.5})}
    )
    a = stack.adapters
    runtime.use(settings, Adapters(a.backend, a.warehouse, DownStore(), a.publisher))  # type: ignore[arg-type]

    response = post_event(pubsub_event())

    assert response.status_code == 500  # raised: Pub/Sub redelivers
    with pytest.raises(NotFound):
        a.store.read(BUCKET, f"backups/{TODAY}/_run.json")


class FlakyPublisher:
    """Fails the first ``failures`` publishes with a transient error."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner, self.failures = inner, failures

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("503 from Pub/Sub")
        return self.inner.publish(topic, data, attributes)  # type: ignore[no-any-return]

    def messages(self, topic: str) -> list[dict[str, Any]]:
        return self.inner.messages(topic)  # type: ignore[no-any-return]


def test_a_failed_continuation_publish_is_retried_not_lost(stack: Stack, post_event: Any) -> None:
    settings = stack.settings.model_copy(
        update={"backups": stack.settings.backups.model_copy(update={"time_budget_seconds": 0.01})}
    )
    a = stack.adapters

    class NeverDone(FaultyWarehouse):
        def get_job(self, job_id: str) -> JobStatus:
            super().get_job(job_id)
            return JobStatus(job_id, "RUNNING")

    runtime.use(
        settings,
        Adapters(a.backend, NeverDone(a.warehouse), a.store, FlakyPublisher(a.publisher, 2)),  # type: ignore[arg-type]
    )
    assert post_event(pubsub_event()).status_code == 200
    (continuation,) = stack.messages("opsuite-backup-trigger")
    assert continuation["attributes"] == {"run_id": TODAY, "continuation": "1"}
    assert a.store.stat(BUCKET, f"backups/{TODAY}/_continuation-1.json") is not None


def test_event_claimed_by_a_dead_delivery_is_published_later(stack: Stack, post_event: Any) -> None:
    post_event(pubsub_event())
    store = stack.adapters.store
    run = f"backups/{TODAY}"
    # GIVEN a delivery that claimed the event and died before publishing it
    store.delete(BUCKET, f"{run}/_event.json")
    store.delete(BUCKET, f"{run}/_event.claim.json")
    stack.paths.pubsub.joinpath("opsuite-backup-events.jsonl").unlink()
    fresh = {"claimed_at": datetime.now(UTC).isoformat(), "nonce": "someone-else"}
    store.write(BUCKET, f"{run}/_event.claim.json", json.dumps(fresh).encode(), "application/json")
    from shared.services import backup as backup_module

    backup_module.EVENT_WAIT_SECONDS = 0.3  # type: ignore[misc]
    try:
        # WHEN a redelivery finds the fresh claim: it must not acknowledge silently
        assert post_event(pubsub_event(message_id="redelivery-1")).status_code == 500
        assert stack.messages("opsuite-backup-events") == []
        # AND once the claim is stale, the next redelivery publishes
        stale = {**fresh, "claimed_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
        store.write(
            BUCKET, f"{run}/_event.claim.json", json.dumps(stale).encode(), "application/json"
        )
        assert post_event(pubsub_event(message_id="redelivery-2")).status_code == 200
    finally:
        backup_module.EVENT_WAIT_SECONDS = 20  # type: ignore[misc]
    (event,) = stack.messages("opsuite-backup-events")
    assert event["attributes"]["run_id"] == TODAY
