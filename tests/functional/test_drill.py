"""The restore drill through the deployed backup function (``{"action": "restore_drill"}``).

Each drill restores a sample of the newest complete backup into the scratch dataset,
compares it with the source at the backup's instant, drops it and writes one record a day.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import runtime
from shared.composition import Adapters
from shared.config import DrillSettings
from shared.errors import BadInput, NotFound
from shared.identifiers import TableRef
from shared.manifest import Manifest
from shared.models import LoadRequest
from shared.services import drill
from shared.services.drill import (
    DrillDeps,
    DrillRecord,
    DrillTable,
    describe,
    newest_drill,
    run_drill,
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
    """The smaller of the two tables the drill would restore (the dry run's plan lists it
    first)."""
    plan = run_drill(_deps(stack), dry_run=True).plan
    assert plan is not None and len(plan.tables) == 2
    return plan.tables[0].source


def _table(record: DrillRecord, source: str) -> DrillTable:
    [table] = [t for t in record.tables if t.source == source]
    return table


def _sizes(manifest: Manifest) -> dict[str, int]:
    return {t.source: sum(f.size for f in t.files) for t in manifest.tables}


def _projected_hours(record: DrillRecord) -> float:
    """The projection from the record's own model parameters (module docstring)."""
    assert record.overhead_seconds is not None and record.concurrency is not None
    assert record.bandwidth_bytes_per_second and record.full_backup_bytes is not None
    rounds = math.ceil(record.full_backup_tables / record.concurrency)
    seconds = (
        rounds * record.overhead_seconds
        + record.full_backup_bytes / record.bandwidth_bytes_per_second
    )
    return seconds / 3600


def _bytes_scaled_hours(record: DrillRecord) -> float:
    """What drills projected before the model: full bytes at sample bytes / seconds."""
    assert record.full_backup_bytes is not None
    return record.full_backup_bytes / (record.totals.bytes / record.totals.seconds) / 3600


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
    # the default sample: the smallest complete table that holds rows, and the largest of
    # at most SAMPLE_MAX_BYTES (here every table is below it): two sizes to fit the model
    sizes = _sizes(manifest)
    by_size = sorted((s for s in sizes if sizes[s] > 0), key=lambda s: (sizes[s], s))
    assert [t.source for t in record.tables] == [by_size[0], by_size[-1]]
    assert sizes[by_size[-1]] <= drill.SAMPLE_MAX_BYTES
    for table in record.tables:
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
        assert stack.adapters.warehouse.count_rows(entry.ref) == entry.rows  # untouched
    assert record.full_backup_bytes == sum(sizes.values())
    assert record.full_backup_tables == len(manifest.tables)
    assert record.totals.bytes == sum(t.bytes for t in record.tables)
    assert record.totals.rows == sum(t.rows_restored or 0 for t in record.tables)
    assert record.throughput_bytes_per_second == pytest.approx(
        record.totals.bytes / record.totals.seconds
    )
    # the model is recorded, and the projection is its formula over the full backup
    assert record.model in ("two-point", "fallback")  # which one: the measured times decide
    assert record.concurrency == stack.settings.backups.max_concurrent_jobs
    assert record.overhead_seconds is not None and record.overhead_seconds >= 0
    assert record.bandwidth_bytes_per_second is not None
    assert record.bandwidth_bytes_per_second > 0
    assert record.projected_hours is not None and record.projected_hours > 0
    assert record.projected_hours == pytest.approx(_projected_hours(record))
    assert record.started_at <= record.finished_at
    # the scratch tables (and any staging table) are gone
    assert _scratch_tables(stack) == []
    assert newest_drill(stack.adapters.store, BUCKET, "backups") == record
    lines = describe(record)
    assert lines[0].startswith(f"restore drill {record.date}: PASSED")
    assert any("projected" in line for line in lines)
    assert any(line.startswith(f"model           {record.model}:") for line in lines)


class _PlantedClock:
    """A per-thread clock that only a load moves: by ``overhead + bytes / bandwidth`` of
    the load's files. Each table's restore then takes exactly the planted time (no real
    timings in the assertions), whichever worker thread restores it."""

    def __init__(self, manifest: Manifest, overhead: float, bandwidth: float) -> None:
        self.sizes = {f.uri: f.size for t in manifest.tables for f in t.files}
        self.overhead = overhead
        self.bandwidth = bandwidth
        self.local = threading.local()

    def monotonic(self) -> float:
        return float(getattr(self.local, "now", 0.0))

    def load(self, request: LoadRequest) -> None:
        loaded = sum(self.sizes[uri] for uri in request.source_uris)
        self.local.now = self.monotonic() + self.overhead + loaded / self.bandwidth


class _Timed:
    def __init__(self, inner: Any, clock: _PlantedClock) -> None:
        self.inner = inner
        self.clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def start_load(self, request: LoadRequest) -> Any:
        self.clock.load(request)
        return self.inner.start_load(request)


def test_the_default_drill_fits_two_tables_and_projects_below_bytes_scaling(
    stack: Stack,
) -> None:
    # GIVEN tables whose restore costs 5 s each plus their bytes at 20 kB/s
    run_id = backup_now(stack)
    manifest = stack.manifest(run_id)
    clock = _PlantedClock(manifest, overhead=5.0, bandwidth=20_000.0)
    deps = _deps(stack, _Timed(stack.adapters.warehouse, clock))
    deps.monotonic = clock.monotonic

    record = run_drill(deps).record

    # THEN the two sampled tables (smallest, largest: 4x apart) give back the planted model
    assert record is not None and record.passed
    sizes = _sizes(manifest)
    small, large = (t.bytes for t in record.tables)
    assert large >= 2 * small and small == min(sizes.values()) and large == max(sizes.values())
    for table in record.tables:
        assert table.seconds == pytest.approx(5.0 + table.bytes / 20_000.0)
    assert record.model == "two-point"
    assert record.overhead_seconds == pytest.approx(5.0)
    assert record.bandwidth_bytes_per_second == pytest.approx(20_000.0)
    # 4 tables, 16 at a time: one round's 5 s + every byte at 20 kB/s
    full = sum(sizes.values())
    assert record.projected_hours == pytest.approx((5.0 + full / 20_000.0) / 3600)
    assert record.projected_hours == pytest.approx(_projected_hours(record))
    # scaling the same measurements by bytes charged the fixed cost per byte: more
    assert record.projected_hours is not None
    assert record.projected_hours < _bytes_scaled_hours(record)
    assert not any("pessimistic" in n for n in record.notes)


def test_the_default_sample_keeps_its_larger_table_under_the_cap(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = backup_now(stack)
    sizes = _sizes(stack.manifest(run_id))
    by_size = sorted(sizes, key=lambda s: sizes[s])
    monkeypatch.setattr(drill, "SAMPLE_MAX_BYTES", sizes[by_size[-1]] - 1)  # the largest: over

    record = run_drill(_deps(stack)).record

    assert record is not None and record.passed
    assert [t.source for t in record.tables] == [by_size[0], by_size[-2]]


def test_a_sample_of_one_table_is_projected_pessimistically(stack: Stack) -> None:
    run_id = backup_now(stack)
    clock = _PlantedClock(stack.manifest(run_id), overhead=5.0, bandwidth=20_000.0)
    deps = _deps(stack, _Timed(stack.adapters.warehouse, clock))
    deps.monotonic = clock.monotonic

    record = run_drill(deps, tables=[TableRef.parse(_sample(stack))]).record

    assert record is not None and record.passed and record.model == "single-table"
    (table,) = record.tables
    assert table.seconds is not None
    # its time counted as fixed cost once a round AND in the per-byte rate: never below
    # the bytes-scaled projection of the same measurement
    assert record.overhead_seconds == pytest.approx(table.seconds)
    assert record.bandwidth_bytes_per_second == pytest.approx(table.bytes / table.seconds)
    assert record.projected_hours == pytest.approx(_projected_hours(record))
    assert record.projected_hours == pytest.approx(
        _bytes_scaled_hours(record) + table.seconds / 3600
    )
    assert any("one table measured" in n and "pessimistic" in n for n in record.notes)


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
    assert len(record.tables) == 2  # neither of them the empty table
    assert all(t.source != str(empty) and t.rows_restored for t in record.tables)


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
    assert record.model is not None  # fitted over whatever tables were drilled
    assert record.projected_hours == pytest.approx(_projected_hours(record))
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
    table = _table(record, source)
    assert not table.ok
    assert table.error is not None and uri in table.error and "CRC32C differs" in table.error
    assert table.rows_restored is None and table.restored_fingerprint is None
    # the sample's other table restored: the totals and the model are its own
    [other] = [t for t in record.tables if t.source != source]
    assert other.ok and record.totals.bytes == other.bytes and record.model == "single-table"
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
    table = _table(record, str(ref))
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
    table = _table(record, str(ref))
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
    assert len(jobs) == 2  # one load job per table of the sample

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
    assert len(plan.tables) == 2
    assert all(t.problem is None and t.bytes > 0 for t in plan.tables)
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

    tables = _record(stack).tables
    assert len(tables) == 2
    # each table: the restored one, then the source
    assert seen == [name for t in tables for name in (t.scratch, t.source)]
