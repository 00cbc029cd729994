"""Restore, hardened: files checked against the manifest first, staging + swap for every
target (a failed restore leaves nothing behind), honest dry runs and honest timings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import identifiers
from shared.errors import NotFound, StillRunning
from shared.identifiers import TableRef
from shared.models import JobStatus, LoadRequest, TableSpec, schema_from_api
from shared.services.restore import RestoreDeps, restore_run
from tests.helpers import BUCKET, Stack, backup_now, make_stack

GOOD = TableRef("hard_ds", "good")
BAD = TableRef("hard_ds", "bad")
SCHEMA = schema_from_api([
    {"name": "id", "type": "INT64", "mode": "REQUIRED"}, {"name": "s", "type": "STRING"},
    {"name": "n", "type": "NUMERIC"},
])  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(tmp_path, tables=[str(GOOD), str(BAD)])
    wh: Any = s.adapters.warehouse
    for ref, rows in ((GOOD, 300), (BAD, 500)):
        wh.create_table(ref, TableSpec(SCHEMA))
        wh.execute(
            f"INSERT INTO {ref.dataset}.{ref.table} "
            f"SELECT i, 'row ' || i, (i / 3)::DECIMAL(38,9) FROM range({rows}) r(i)"
        )
        wh.touch(ref)
    yield s
    s.adapters.close()


_backup = backup_now


class Recording:
    """The local warehouse, recording every load it is asked to start."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.loads: list[LoadRequest] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def start_load(self, request: LoadRequest) -> JobStatus:
        self.loads.append(request)
        return self.inner.start_load(request)  # type: ignore[no-any-return]


def _deps(stack: Stack, warehouse: Any = None) -> RestoreDeps:
    return RestoreDeps(warehouse or stack.adapters.warehouse, stack.adapters.store, BUCKET,
                       "backups", poll_interval=0.02)  # fmt: skip


def _object(stack: Stack, run_id: str, ref: TableRef) -> str:
    entry = stack.manifest(run_id).table(str(ref))
    assert entry is not None
    return entry.files[0].uri.removeprefix(f"gs://{BUCKET}/")


def _corrupt(stack: Stack, name: str) -> bytes:
    store: Any = stack.adapters.store
    original: bytes = store.read(BUCKET, name)
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01  # same size, different CRC32C
    store.write(BUCKET, name, bytes(data), "application/avro")
    return original


def _tables(stack: Stack, dataset: str) -> list[str]:
    try:
        return stack.adapters.warehouse.list_tables(dataset)
    except Exception:
        return []


# -- a. a failed restore into a new target leaves nothing behind ---------------------------
def test_a_corrupted_file_leaves_no_new_target_and_the_retry_needs_no_force(stack: Stack) -> None:
    run_id = _backup(stack)
    name = _object(stack, run_id, BAD)
    original = _corrupt(stack, name)

    report = restore_run(run_id, _deps(stack), tables=[BAD], target_dataset="fresh")

    assert not report.ok
    assert not stack.adapters.warehouse.table_exists(TableRef("fresh", "bad"))
    assert _tables(stack, "fresh") == []  # no staging table left either
    stack.adapters.store.write(BUCKET, name, original, "application/avro")  # repaired

    again = restore_run(run_id, _deps(stack), tables=[BAD], target_dataset="fresh")

    assert again.ok, again
    assert stack.adapters.warehouse.count_rows(TableRef("fresh", "bad")) == 500
    assert _tables(stack, "fresh") == ["bad"]


def test_a_load_that_fails_its_check_leaves_no_new_target(stack: Stack) -> None:
    """A failure the file checks can't see (the row check after the load)."""
    run_id = _backup(stack)
    manifest_name = f"backups/{run_id}/_manifest.json"
    store: Any = stack.adapters.store
    text = store.read(BUCKET, manifest_name).decode()
    store.write(BUCKET, manifest_name, text.replace('"rows": 500', '"rows": 501', 1).encode(),
                "application/json")  # fmt: skip

    report = restore_run(run_id, _deps(stack), tables=[BAD], target_dataset="fresh")

    assert not report.ok
    assert "restored 500 rows, the manifest records 501" in (report.tables[0].error or "")
    assert _tables(stack, "fresh") == []
    store.write(BUCKET, manifest_name, text.encode(), "application/json")
    assert restore_run(run_id, _deps(stack), tables=[BAD], target_dataset="fresh").ok


# -- b. files are checked against the manifest before anything loads -----------------------
def test_a_corrupted_file_fails_its_table_before_any_load_and_the_others_go_on(
    stack: Stack,
) -> None:
    run_id = _backup(stack)
    name = _object(stack, run_id, BAD)
    _corrupt(stack, name)
    warehouse = Recording(stack.adapters.warehouse)

    report = restore_run(run_id, _deps(stack, warehouse), target_dataset="fresh")

    by_source = {t.source: t for t in report.tables}
    bad, good = by_source[str(BAD)], by_source[str(GOOD)]
    assert good.status == "restored" and good.rows_restored == 300
    assert bad.status == "failed"
    error = bad.error or ""
    assert f"gs://{BUCKET}/{name}: CRC32C differs from the manifest" in error
    assert "opsuite backups list" in error
    assert "CRC32 check failure" not in error  # no raw DuckDB text
    assert [r.destination.table for r in warehouse.loads if "bad" in r.destination.table] == []
    assert _tables(stack, "fresh") == ["good"]


def test_a_missing_file_is_named(stack: Stack) -> None:
    run_id = _backup(stack)
    name = _object(stack, run_id, BAD)
    stack.adapters.store.delete(BUCKET, name)

    report = restore_run(run_id, _deps(stack), tables=[BAD], target_dataset="fresh")

    (table,) = report.tables
    assert table.status == "failed"
    assert f"gs://{BUCKET}/{name} is missing" in (table.error or "")
    with pytest.raises(NotFound):  # the checks failed: not even the dataset was created
        stack.adapters.warehouse.list_tables("fresh")


def test_the_dry_run_checks_the_files_too(stack: Stack) -> None:
    run_id = _backup(stack)
    name = _object(stack, run_id, BAD)
    _corrupt(stack, name)

    report = restore_run(run_id, _deps(stack), target_dataset="fresh", dry_run=True)

    by_source = {t.source: t for t in report.tables}
    assert by_source[str(GOOD)].status == "planned"
    assert by_source[str(BAD)].status == "failed"
    assert "CRC32C differs from the manifest" in (by_source[str(BAD)].error or "")
    assert not report.ok
    assert _tables(stack, "fresh") == []


# -- c. a dry run that would be refused says so ---------------------------------------------
def test_a_dry_run_that_needs_force_is_not_ok(stack: Stack) -> None:
    run_id = _backup(stack)

    report = restore_run(run_id, _deps(stack), dry_run=True)

    assert not report.ok
    assert report.refused
    assert {t.status for t in report.tables} == {"refused"}
    assert all("needs --force" in (t.error or "") for t in report.tables)

    forced = restore_run(run_id, _deps(stack), dry_run=True, force=True)
    assert forced.ok and not forced.refused
    assert {t.status for t in forced.tables} == {"planned"}


# -- d. timings: each table's own work, and the wall time -----------------------------------
class SlowSlots(Recording):
    """Every load job reports it waited 10 s for a slot and ran for 1.5 s."""

    def get_job(self, job_id: str) -> JobStatus:
        status: JobStatus = self.inner.get_job(job_id)
        if status.done and status.started is not None:
            started = status.started + timedelta(seconds=10)
            status = replace(status, started=started, ended=started + timedelta(seconds=1.5))
        return status


def test_seconds_is_each_tables_own_work_not_its_wait(stack: Stack) -> None:
    run_id = _backup(stack)
    clock = [0.0]

    def sleep(seconds: float) -> None:
        import time

        time.sleep(0.005)
        clock[0] += seconds

    deps = _deps(stack, SlowSlots(stack.adapters.warehouse))
    deps.sleep, deps.monotonic, deps.poll_interval = sleep, lambda: clock[0], 3.0
    deps.max_concurrent = 1  # one fake clock: no other table's polls may move it meanwhile

    report = restore_run(run_id, deps, target_dataset="fresh")

    assert report.ok, report
    for table in report.tables:
        assert table.seconds == pytest.approx(1.5)  # the job's own run time, no waiting
        assert table.queued_seconds is not None and table.queued_seconds >= 10
        assert table.elapsed_seconds is not None and table.elapsed_seconds >= 0.05
    assert any("waited" in note for note in report.notes)


def test_job_ids_and_staging_names_are_valid_for_any_table_name(stack: Stack) -> None:
    run_id = _backup(stack)
    manifest_name = f"backups/{run_id}/_manifest.json"
    store: Any = stack.adapters.store
    long_name = "é" * 500 + " Übersicht-01"  # 1014 UTF-8 bytes: a valid, long table id
    text = store.read(BUCKET, manifest_name).decode()
    store.write(BUCKET, manifest_name,
                text.replace('"source": "hard_ds.bad"', f'"source": "hard_ds.{long_name}"'
                             ).encode(), "application/json")  # fmt: skip
    warehouse = Recording(stack.adapters.warehouse)
    existing = TableRef("fresh", long_name)
    stack.adapters.warehouse.create_table(existing, TableSpec(SCHEMA))

    report = restore_run(run_id, _deps(stack, warehouse), tables=[TableRef("hard_ds", long_name)],
                         target_dataset="fresh", force=True)  # fmt: skip

    assert report.ok, report
    (load,) = warehouse.loads
    identifiers.job_id(load.job_id)
    identifiers.table_id(load.destination.table)  # the staging table's name
    assert load.destination != existing
    assert stack.adapters.warehouse.count_rows(existing) == 500
    assert _tables(stack, "fresh") == [long_name]


def test_the_target_dataset_is_validated_before_anything(stack: Stack) -> None:
    from shared.errors import BadInput

    run_id = _backup(stack)
    with pytest.raises(BadInput, match="dataset id"):
        restore_run(run_id, _deps(stack), target_dataset="x; DROP", dry_run=True)


class CopyOutcomeUnknown(Recording):
    """A swap whose copy job was started but not seen to finish (GCP's StillRunning)."""

    def replace_table(self, target: TableRef, source: TableRef) -> None:
        raise StillRunning(f"copy {source} over {target}: still running", "opsuite_swap_x")


def test_a_swap_whose_outcome_is_unknown_keeps_the_staging_table(stack: Stack) -> None:
    run_id = _backup(stack)
    warehouse = CopyOutcomeUnknown(stack.adapters.warehouse)

    report = restore_run(run_id, _deps(stack, warehouse), tables=[GOOD], target_dataset="fresh")

    [table] = report.tables
    assert table.status == "failed"
    assert "check job opsuite_swap_x" in (table.error or "")
    assert "once it is done, drop fresh._opsuite_restore_" in (table.error or "")
    assert "also drop fresh.good (created for this restore)" in (table.error or "")
    # nothing a still-running copy reads or writes was dropped behind its back
    staging = [t for t in stack.adapters.warehouse.list_tables("fresh") if "_opsuite_restore_" in t]
    assert len(staging) == 1
    assert staging[0] in (table.error or "")
