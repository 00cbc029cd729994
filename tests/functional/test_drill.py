"""The restore drill through the deployed backup function (``{"action": "restore_drill"}``).

Each drill restores a sample of the newest complete backup into the scratch dataset,
compares it with the source at the backup's instant, drops it and writes one record a day.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import runtime
from shared.composition import Adapters
from shared.config import DrillSettings
from shared.errors import BadInput, NotFound
from shared.identifiers import TableRef
from shared.services.drill import (
    DrillDeps,
    DrillRecord,
    describe,
    newest_drill,
    projected_hours,
    run_drill,
    throughput,
)
from tests.helpers import BUCKET, Stack, backup_now, pubsub_event

TODAY = datetime.now(UTC).strftime("%Y%m%d")
RECORD = f"backups/drills/{TODAY}/_drill.json"
CLAIM = f"backups/drills/{TODAY}/_claim.json"
DRILL = {"action": "restore_drill"}
SCRATCH = "opsuite_drill"


def _record(stack: Stack) -> DrillRecord:
    return DrillRecord.model_validate_json(stack.adapters.store.read(BUCKET, RECORD))


def _deps(stack: Stack, warehouse: Any = None, **drill: Any) -> DrillDeps:
    settings = stack.settings.backups
    if drill:
        settings = settings.model_copy(update={"drill": DrillSettings(**drill)})
    a = stack.adapters
    return DrillDeps(settings, warehouse or a.warehouse, a.store, "local")


def _restore_jobs(stack: Stack) -> list[str]:
    return [j for j in stack.jobs() if j.startswith("opsuite_restore_")]


def _scratch_tables(stack: Stack) -> list[str]:
    try:
        return stack.adapters.warehouse.list_tables(SCRATCH)
    except NotFound:
        return []


def _sample(stack: Stack) -> str:
    """The table the drill would restore (the dry run's plan says so)."""
    plan = run_drill(_deps(stack), dry_run=True).plan
    assert plan is not None and len(plan.tables) == 1
    return plan.tables[0].source


# -- the drill passes ----------------------------------------------------------------------
def test_drill_after_a_backup_passes_and_cleans_up(stack: Stack, post_event: Any) -> None:
    run_id = backup_now(stack)
    manifest = stack.manifest(run_id)

    response = post_event(pubsub_event(DRILL))

    assert response.status_code == 200
    record = _record(stack)
    assert record.passed and record.error is None
    assert record.run_id == run_id and record.instant == manifest.instant
    assert record.date.strftime("%Y%m%d") == TODAY
    (table,) = record.tables
    # the default sample: the smallest complete table that holds rows
    sizes = {t.source: sum(f.size for f in t.files) for t in manifest.tables}
    assert table.source == min((s for s in sizes if sizes[s] > 0), key=lambda s: (sizes[s], s))
    entry = manifest.table(table.source)
    assert entry is not None and entry.rows
    assert table.ok and table.rows_restored == table.rows_expected == entry.rows
    assert table.bytes == sizes[table.source] and table.files == len(entry.files)
    assert table.scratch == f"{SCRATCH}.{entry.ref.table}"
    assert table.source_fingerprint is not None and table.restored_fingerprint is not None
    assert table.source_fingerprint == table.restored_fingerprint
    assert table.restored_fingerprint.rows == entry.rows
    assert table.content == "equal"
    assert table.seconds is not None and table.seconds > 0
    assert record.full_backup_bytes == sum(sizes.values())
    assert record.full_backup_tables == len(manifest.tables)
    assert record.totals.bytes == table.bytes and record.totals.rows == entry.rows
    assert record.throughput_bytes_per_second == pytest.approx(table.bytes / table.seconds)
    assert record.projected_hours is not None and record.projected_hours > 0
    assert record.projected_hours == pytest.approx(
        record.full_backup_bytes / record.throughput_bytes_per_second / 3600  # type: ignore[operator]
    )
    assert record.started_at <= record.finished_at
    # the scratch tables (and any staging table) are gone; the source is untouched
    assert _scratch_tables(stack) == []
    assert stack.adapters.warehouse.count_rows(entry.ref) == entry.rows
    assert newest_drill(stack.adapters.store, BUCKET, "backups") == record
    lines = describe(record)
    assert lines[0].startswith(f"restore drill {record.date}: PASSED")
    assert any("projected" in line for line in lines)


def test_the_default_sample_skips_tables_without_rows(stack: Stack) -> None:
    wh: Any = stack.adapters.warehouse
    empty = TableRef.parse("nba_orchestration.processor_run_history")
    wh.execute(f'DELETE FROM "{empty.dataset}"."{empty.table}"')
    wh.touch(empty)
    backup_now(stack)
    manifest = stack.manifest(TODAY)
    entry = manifest.table(str(empty))
    assert entry is not None and entry.rows == 0
    # the empty table is the smallest of the backup: bytes alone would pick it
    sizes = {t.source: sum(f.size for f in t.files) for t in manifest.tables}
    assert min(sizes, key=lambda source: sizes[source]) == str(empty)

    record = run_drill(_deps(stack)).record

    assert record is not None and record.passed
    (table,) = record.tables
    assert table.source != str(empty) and table.rows_restored


def test_the_scratch_dataset_gets_its_table_expiration(stack: Stack) -> None:
    backup_now(stack)
    calls: list[tuple[str, int | None]] = []

    class Recording:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def ensure_dataset(
            self, dataset: str, *, table_expiration_hours: int | None = None
        ) -> None:
            calls.append((dataset, table_expiration_hours))
            self.inner.ensure_dataset(dataset, table_expiration_hours=table_expiration_hours)

    deps = _deps(stack, Recording(stack.adapters.warehouse), table_expiration_hours=6)

    outcome = run_drill(deps)

    assert outcome.outcome == "drilled" and outcome.passed
    assert calls[0] == (SCRATCH, 6)  # created with expiring tables before anything is restored


def test_configured_sample_tables_are_all_drilled(stack: Stack) -> None:
    backup_now(stack)
    sample = ["nba_analytics.player_game_summary", "nba_precompute.player_composite_factors"]

    record = run_drill(_deps(stack, tables=sample)).record

    assert record is not None and record.passed
    assert [t.source for t in record.tables] == sample
    assert all(t.content == "equal" for t in record.tables)
    assert record.totals.bytes == sum(t.bytes for t in record.tables)
    assert record.totals.seconds == pytest.approx(sum(t.seconds or 0 for t in record.tables))
    assert _scratch_tables(stack) == []


# -- the drill fails -----------------------------------------------------------------------
def _corrupt_first_file(stack: Stack, source: str) -> str:
    entry = stack.manifest(TODAY).table(source)
    assert entry is not None and entry.files
    uri = entry.files[0].uri
    path = stack.paths.gcs / BUCKET / uri.removeprefix(f"gs://{BUCKET}/")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    return uri


def test_a_backup_file_corrupted_after_the_backup_fails_the_drill(
    stack: Stack, post_event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    backup_now(stack)
    source = _sample(stack)
    uri = _corrupt_first_file(stack, source)

    response = post_event(pubsub_event(DRILL))

    assert response.status_code == 200  # a failed drill is a record (a breach), not a retry
    record = _record(stack)
    assert not record.passed
    (table,) = record.tables
    assert table.source == source and not table.ok
    assert table.error is not None and uri in table.error and "CRC32C differs" in table.error
    assert table.rows_restored is None and table.restored_fingerprint is None
    assert record.projected_hours is None and record.totals.bytes == 0
    assert _scratch_tables(stack) == []
    [line] = [r for r in caplog.records if r.getMessage() == "restore drill failed"]
    assert line.levelno == logging.ERROR
    assert line.fields["passed"] is False  # type: ignore[attr-defined]
    assert describe(record)[0].startswith(f"restore drill {record.date}: FAILED")


def test_content_that_differs_from_the_source_fails_the_drill(stack: Stack) -> None:
    backup_now(stack)
    ref = TableRef.parse(_sample(stack))
    wh: Any = stack.adapters.warehouse
    # a change the warehouse's metadata does not know about: the source at the instant,
    # as the warehouse reads it, is no longer what the backup holds
    [column] = [f.name for f in wh.get_table(ref).schema if f.type in ("INT64", "INTEGER")][:1]
    wh.execute(f'UPDATE "{ref.dataset}"."{ref.table}" SET "{column}" = "{column}" + 1')

    record = run_drill(_deps(stack)).record

    assert record is not None and not record.passed
    (table,) = record.tables
    assert table.content == "differs" and not table.ok
    assert table.rows_restored == table.rows_expected  # same rows, other content
    assert table.error is not None and "differs from the source" in table.error
    assert _scratch_tables(stack) == []


def test_without_a_backup_the_drill_is_a_failed_record(stack: Stack, post_event: Any) -> None:
    response = post_event(pubsub_event(DRILL))

    assert response.status_code == 200
    record = _record(stack)
    assert not record.passed and record.run_id is None and record.tables == []
    assert record.error is not None and "no complete nightly backup" in record.error
    assert record.projected_hours is None
    assert not stack.adapters.warehouse.table_exists(TableRef(SCRATCH, "x"))


def test_a_scratch_dataset_holding_backed_up_tables_is_refused(stack: Stack) -> None:
    run_id = backup_now(stack)
    source = _sample(stack)
    ref = TableRef.parse(source)
    rows = stack.adapters.warehouse.count_rows(ref)

    record = run_drill(_deps(stack, scratch_dataset=ref.dataset)).record

    assert record is not None and not record.passed and record.run_id == run_id
    assert record.error is not None and "holds backed-up tables" in record.error
    assert stack.adapters.warehouse.count_rows(ref) == rows  # never dropped
    assert _restore_jobs(stack) == []


def test_a_configured_table_missing_from_the_backup_fails_the_drill(stack: Stack) -> None:
    backup_now(stack)

    record = run_drill(_deps(stack, tables=["nba_analytics.not_backed_up"])).record

    assert record is not None and not record.passed
    (table,) = record.tables
    assert not table.ok and table.error is not None and "not in backup run" in table.error


# -- content that can't be compared ----------------------------------------------------------
def test_a_source_changed_since_the_backup_is_not_compared_but_rows_are(stack: Stack) -> None:
    backup_now(stack)
    ref = TableRef.parse(_sample(stack))
    stack.adapters.warehouse.touch(ref)  # type: ignore[attr-defined]  # modified after the instant

    record = run_drill(_deps(stack)).record

    # the local warehouse has no time travel: it can't read the source as it was
    assert record is not None and record.passed
    (table,) = record.tables
    assert table.content == "not_compared" and table.source_fingerprint is None
    assert table.content_note is not None and "not compared" in table.content_note
    assert table.restored_fingerprint is not None
    assert table.rows_restored == table.rows_expected
    assert any("content not compared" in line for line in describe(record))


# -- once a day, one delivery ----------------------------------------------------------------
def test_the_same_trigger_twice_is_one_record_and_one_restore(
    stack: Stack, post_event: Any
) -> None:
    backup_now(stack)
    event = pubsub_event(DRILL)
    assert post_event(event).status_code == 200
    first = stack.adapters.store.read(BUCKET, RECORD)
    jobs = _restore_jobs(stack)
    assert len(jobs) == 1

    assert post_event(event).status_code == 200
    again = run_drill(_deps(stack))  # a second `opsuite drill` the same day: the record

    assert stack.adapters.store.read(BUCKET, RECORD) == first
    assert _restore_jobs(stack) == jobs
    assert again.outcome == "already_done" and again.record == _record(stack)
    assert stack.objects("backups/drills/") == [CLAIM, RECORD]


def _claim(stack: Stack, age_seconds: float) -> None:
    body = {
        "claimed_at": (datetime.now(UTC) - timedelta(seconds=age_seconds)).isoformat(),
        "nonce": "another-delivery",
        "generation": 0,
        "stale_after_seconds": 540,
    }
    stack.adapters.store.write(BUCKET, CLAIM, json.dumps(body).encode(), "application/json")


def test_a_drill_claimed_by_another_delivery_is_redelivered(stack: Stack, post_event: Any) -> None:
    backup_now(stack)
    _claim(stack, age_seconds=30)

    response = post_event(pubsub_event(DRILL))

    assert response.status_code == 500  # TransientError: Pub/Sub comes back later
    assert stack.objects("backups/drills/") == [CLAIM]
    assert _restore_jobs(stack) == []


def test_a_stale_claim_is_taken_over(stack: Stack, post_event: Any) -> None:
    backup_now(stack)
    _claim(stack, age_seconds=541)  # its holder died: older than the function's limit

    response = post_event(pubsub_event(DRILL))

    assert response.status_code == 200
    assert _record(stack).passed
    assert stack.objects("backups/drills/") == [
        f"backups/drills/{TODAY}/_claim.1.json",
        CLAIM,
        RECORD,
    ]


def test_a_leftover_scratch_table_is_dropped_first(stack: Stack) -> None:
    backup_now(stack)
    ref = TableRef.parse(_sample(stack))
    wh = stack.adapters.warehouse
    wh.ensure_dataset(SCRATCH)
    wh.create_table(TableRef(SCRATCH, ref.table), wh.get_table(ref).spec())

    record = run_drill(_deps(stack)).record

    assert record is not None and record.passed
    assert any("leftover scratch table" in n for n in record.notes)
    assert _scratch_tables(stack) == []


# -- dry run and bad input ---------------------------------------------------------------------
def test_dry_run_plans_and_writes_nothing(stack: Stack, post_event: Any) -> None:
    run_id = backup_now(stack)
    before = stack.objects()

    response = post_event(pubsub_event({**DRILL, "dry_run": True}))
    plan = run_drill(_deps(stack), dry_run=True).plan

    assert response.status_code == 200
    assert stack.objects() == before
    assert _restore_jobs(stack) == []
    with pytest.raises(NotFound):
        stack.adapters.warehouse.list_tables(SCRATCH)  # not even the dataset
    assert plan is not None and plan.run_id == run_id and not plan.record_exists
    (table,) = plan.tables
    assert table.problem is None and table.bytes > 0
    manifest = stack.manifest(run_id)
    assert plan.full_backup_bytes == sum(f.size for t in manifest.tables for f in t.files)
    assert describe(plan)[0].startswith(f"restore drill {plan.date} (dry run)")


def test_dry_run_names_the_file_that_would_fail(stack: Stack) -> None:
    backup_now(stack)
    uri = _corrupt_first_file(stack, _sample(stack))

    plan = run_drill(_deps(stack), dry_run=True).plan

    assert plan is not None
    assert plan.tables[0].problem is not None and uri in plan.tables[0].problem
    assert stack.objects("backups/drills/") == []


BAD_DRILL_TRIGGERS = [
    pytest.param({"action": "restore_drll"}, id="unknown-action"),
    pytest.param({"action": "restore_drill", "date": "2026-01-01"}, id="date"),
    pytest.param({"action": "restore_drill", "run_id": TODAY}, id="run-id"),
    pytest.param({"action": "restore_drill", "continuation": 1}, id="continuation"),
    pytest.param({"action": "restore_drill", "surprise": 1}, id="unknown-field"),
    pytest.param({"action": "restore_drill", "dry_run": "yes"}, id="dry-run-string"),
    pytest.param({"action": "restore_drill", "tables": ["ds.t; DROP TABLE x"]}, id="hostile"),
    pytest.param({"action": "restore_drill", "tables": ["nba_analytics.nope"]}, id="not-in-backup"),
    pytest.param({"action": 1}, id="action-number"),
]


@pytest.mark.parametrize("body", BAD_DRILL_TRIGGERS)
def test_bad_drill_triggers_are_acknowledged_and_write_nothing(
    stack: Stack, post_event: Any, body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    backup_now(stack)
    before = stack.objects()

    response = post_event(pubsub_event(body))

    assert response.status_code == 200  # acknowledged: redelivery can't fix it
    assert stack.objects() == before
    assert _restore_jobs(stack) == []
    [line] = [r for r in caplog.records if r.getMessage() == "backup trigger rejected"]
    assert line.fields["trigger_rejected"] == "bad_input"  # type: ignore[attr-defined]


def test_a_requested_table_must_be_a_complete_table_of_the_backup(stack: Stack) -> None:
    backup_now(stack)
    with pytest.raises(BadInput, match="is not in backup run"):
        run_drill(_deps(stack), tables=[TableRef("nba_analytics", "nope")])
    assert stack.objects("backups/drills/") == []


def test_a_drill_trigger_is_not_a_backup(stack: Stack, post_event: Any) -> None:
    assert post_event(pubsub_event(DRILL)).status_code == 200
    assert [o for o in stack.objects("backups/") if not o.startswith("backups/drills/")] == []
    assert stack.messages("opsuite-backup-events") == []


def test_a_redelivery_after_midnight_finds_the_day_of_its_trigger(
    stack: Stack, post_event: Any
) -> None:
    backup_now(stack)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = midnight - timedelta(seconds=1)  # sent just before midnight, delivered after

    assert post_event(pubsub_event(DRILL, publish_time=yesterday)).status_code == 200

    name = f"backups/drills/{yesterday:%Y%m%d}/_drill.json"
    assert stack.objects("backups/drills/")[-1] == name
    assert newest_drill(stack.adapters.store, BUCKET, "backups") is not None


# -- newest_drill ------------------------------------------------------------------------------
def test_newest_drill_reads_the_newest_day_only(stack: Stack) -> None:
    store = stack.adapters.store
    assert newest_drill(store, BUCKET, "backups") is None
    backup_now(stack)
    old = run_drill(_deps(stack), today=(datetime.now(UTC) - timedelta(days=30)).date()).record
    new = run_drill(_deps(stack)).record
    assert old is not None and new is not None
    store.write(BUCKET, "backups/drills/notaday/_drill.json", b"{}", "application/json")

    assert newest_drill(store, BUCKET, "backups") == new


# -- the projection arithmetic (pure) ------------------------------------------------------------
def test_throughput_and_projection() -> None:
    assert throughput(1_000_000, 2.0) == 500_000.0
    assert throughput(0, 2.0) is None  # nothing measured
    assert throughput(10, 0.0) is None
    # 3.6 GB at 1 MB/s, one table after another: exactly one hour
    assert projected_hours(3_600_000_000, 1_000_000.0) == pytest.approx(1.0)
    assert projected_hours(0, 1_000_000.0) == 0.0
    assert projected_hours(1, None) is None
    assert projected_hours(1, 0.0) is None


def test_the_restored_table_is_compared_with_the_source(stack: Stack, post_event: Any) -> None:
    backup_now(stack)
    seen: list[str] = []

    class Seeing:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def fingerprint(self, table: TableRef, instant: datetime | None = None) -> Any:
            seen.append(str(table))
            return self.inner.fingerprint(table, instant)

    a = stack.adapters
    runtime.use(stack.settings, Adapters("local", Seeing(a.warehouse), a.store, a.publisher))

    assert post_event(pubsub_event(DRILL)).status_code == 200

    (table,) = _record(stack).tables
    assert seen == [table.scratch, table.source]  # the restored table, then the source
