"""Backup → restore round trips on the local stack: every type survives, counts match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.errors import BadInput, NotFound, PermanentError
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.models import TableSpec, schema_from_api
from shared.services.backup import BackupDeps, run_backup_to_end
from shared.services.inventory import list_runs, verify_run
from shared.services.restore import RestoreDeps, restore_run
from tests.helpers import BUCKET, Stack, backup_now, make_stack

ALL_TYPES = schema_from_api([
    {"name": "id", "type": "INT64", "mode": "REQUIRED", "description": "row id"},
    {"name": "d", "type": "DATE"}, {"name": "ts", "type": "TIMESTAMP"},
    {"name": "dt", "type": "DATETIME"}, {"name": "tm", "type": "TIME"},
    {"name": "n", "type": "NUMERIC"}, {"name": "s", "type": "STRING"}, {"name": "f", "type": "FLOAT64"},
    {"name": "b", "type": "BOOL"}, {"name": "raw", "type": "BYTES"},
    {"name": "tags", "type": "STRING", "mode": "REPEATED"},
    {"name": "days", "type": "DATE", "mode": "REPEATED"},
    {"name": "rec", "type": "RECORD", "fields": [
        {"name": "a", "type": "INT64"}, {"name": "when", "type": "DATETIME"},
        {"name": "amt", "type": "NUMERIC"}, {"name": "at", "type": "TIMESTAMP"}]},
    {"name": "recs", "type": "RECORD", "mode": "REPEATED", "fields": [
        {"name": "x", "type": "DATE"}, {"name": "y", "type": "NUMERIC"},
        {"name": "inner", "type": "STRING", "mode": "REPEATED"}]},
])  # fmt: skip
SOURCE = TableRef("types_ds", "all_types")


@pytest.fixture
def typed(tmp_path: Path) -> Any:
    stack = make_stack(tmp_path, tables=[str(SOURCE)])
    wh = stack.adapters.warehouse
    wh.create_table(
        SOURCE,
        TableSpec(ALL_TYPES, time_partitioning={"type": "DAY", "field": "d"}, clustering=("s", "b"),
                  description="every BigQuery type", labels={"team": "ops"}),
    )  # fmt: skip
    wh.execute(  # type: ignore[attr-defined]
        "INSERT INTO types_ds.all_types SELECT i, DATE '2026-01-01' + (i % 40)::INT, "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_microseconds(i * 1234567), "
        "TIMESTAMP '2026-01-01 10:00:00.123456' + to_seconds(i), TIME '10:11:12.5', "
        "CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 7 - 300)::DECIMAL(38,9) END, "
        "CASE WHEN i % 3 = 0 THEN NULL ELSE 'ünïcödé ' || i END, i * 0.25, i % 2 = 0, "
        "CAST('bytes' || i AS BLOB), ['a', 'b' || i], [DATE '2026-03-03', DATE '1969-12-31'], "
        "CASE WHEN i % 4 = 0 THEN NULL ELSE {'a': i, 'when': TIMESTAMP '2026-02-02 02:02:02', "
        "'amt': -1.5, 'at': TIMESTAMPTZ '1999-12-31 23:59:59.999999+00'} END, "
        "CASE WHEN i % 6 = 0 THEN [] ELSE [{'x': DATE '2026-03-03', 'y': -0.000000001, "
        "'inner': ['p', 'q']}, {'x': NULL, 'y': 99999999999999999999999999999.999999999, "
        "'inner': []}] END FROM range(3000) r(i)"
    )
    wh.touch(SOURCE)  # type: ignore[attr-defined]
    yield stack
    stack.adapters.close()


_backup = backup_now


def _restore_deps(stack: Stack) -> RestoreDeps:
    return RestoreDeps(stack.adapters.warehouse, stack.adapters.store, BUCKET, "backups",
                       poll_interval=0.02)  # fmt: skip


def test_every_type_survives_backup_and_restore(typed: Stack) -> None:
    run_id = _backup(typed)

    report = restore_run(run_id, _restore_deps(typed), target_dataset="restored")

    assert report.ok
    (table,) = report.tables
    assert table.rows_restored == table.rows_expected == 3000
    assert table.seconds is not None and table.seconds > 0
    wh: Any = typed.adapters.warehouse
    original = wh.execute("SELECT * FROM types_ds.all_types ORDER BY id")
    restored = wh.execute("SELECT * FROM restored.all_types ORDER BY id")
    assert restored == original
    info = wh.get_table(TableRef("restored", "all_types"))
    assert info.schema == ALL_TYPES  # modes and descriptions kept
    assert info.time_partitioning == {"type": "DAY", "field": "d"}
    assert info.clustering == ("s", "b")
    assert info.description == "every BigQuery type" and info.labels == {"team": "ops"}


def test_restore_refuses_to_overwrite_without_force(typed: Stack) -> None:
    run_id = _backup(typed)
    wh: Any = typed.adapters.warehouse
    wh.execute("DELETE FROM types_ds.all_types WHERE id < 100")

    with pytest.raises(
        BadInput, match=r"refusing to overwrite existing tables: types_ds\.all_types"
    ):
        restore_run(run_id, _restore_deps(typed))
    assert wh.count_rows(SOURCE) == 2900  # untouched

    report = restore_run(run_id, _restore_deps(typed), force=True)
    assert report.ok and wh.count_rows(SOURCE) == 3000


def test_restore_dry_run_changes_nothing(typed: Stack) -> None:
    run_id = _backup(typed)
    report = restore_run(run_id, _restore_deps(typed), target_dataset="elsewhere", dry_run=True)
    assert [t.status for t in report.tables] == ["planned"]
    assert not typed.adapters.warehouse.table_exists(TableRef("elsewhere", "all_types"))


def test_restore_input_errors(typed: Stack) -> None:
    run_id = _backup(typed)
    deps = _restore_deps(typed)
    with pytest.raises(NotFound, match="no manifest for run 19990101"):
        restore_run("19990101", deps)
    with pytest.raises(BadInput, match="not in run"):
        restore_run(run_id, deps, tables=[TableRef("types_ds", "other")], target_dataset="x")
    with pytest.raises(BadInput):
        restore_run(run_id, deps, target_dataset="bad-dataset")
    with pytest.raises(BadInput):
        restore_run("../escape", deps)


def test_restore_detects_a_row_count_mismatch(typed: Stack) -> None:
    run_id = _backup(typed)
    manifest_name = f"backups/{run_id}/_manifest.json"
    store: Any = typed.adapters.store
    text = store.read(BUCKET, manifest_name).decode().replace('"rows": 3000', '"rows": 3001', 1)
    store.write(BUCKET, manifest_name, text.encode(), "application/json")

    report = restore_run(run_id, _restore_deps(typed), target_dataset="restored")

    assert not report.ok
    assert "restored 3000 rows, the manifest records 3001" in (report.tables[0].error or "")


def test_verify_finds_tampered_and_missing_files(typed: Stack) -> None:
    run_id = _backup(typed)
    store: Any = typed.adapters.store
    assert verify_run(store, BUCKET, "backups", run_id).ok
    manifest = typed.manifest(run_id)
    first = manifest.tables[0].files[0].uri.removeprefix(f"gs://{BUCKET}/")
    data = bytearray(store.read(BUCKET, first))
    data[-5] ^= 0x01
    store.write(BUCKET, first, bytes(data), "application/avro")

    report = verify_run(store, BUCKET, "backups", run_id)

    assert not report.ok
    assert any("CRC32C differs" in p for p in report.tables[0].problems)
    store.delete(BUCKET, first)
    assert any(
        "is missing" in p for p in verify_run(store, BUCKET, "backups", run_id).tables[0].problems
    )


def test_failed_tables_cannot_be_restored(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, tables=["ghost_ds.ghost"])
    deps = BackupDeps(stack.settings.backups, stack.adapters.warehouse, stack.adapters.store,
                      stack.adapters.publisher, "local")  # fmt: skip
    outcome = run_backup_to_end(BackupRequest(), deps)
    assert outcome.manifest is not None and outcome.manifest.status == "failed"
    with pytest.raises(PermanentError, match="no complete table"):
        restore_run(outcome.run_id, _restore_deps(stack))
    (summary,) = list_runs(stack.adapters.store, BUCKET, "backups")
    assert (summary.status, summary.tables, summary.failed) == ("failed", 1, 1)
    stack.adapters.close()


def test_a_failed_forced_restore_leaves_the_live_table_alone(typed: Stack) -> None:
    run_id = _backup(typed)
    wh: Any = typed.adapters.warehouse
    wh.execute("DELETE FROM types_ds.all_types WHERE id < 100")
    before = wh.execute("SELECT * FROM types_ds.all_types ORDER BY id")
    store: Any = typed.adapters.store
    first = typed.manifest(run_id).tables[0].files[0].uri.removeprefix(f"gs://{BUCKET}/")
    store.write(BUCKET, first, store.read(BUCKET, first)[:-40], "application/avro")  # corrupt

    report = restore_run(run_id, _restore_deps(typed), force=True)

    assert not report.ok
    assert "types_ds.all_types was left as it was" in (report.tables[0].error or "")
    assert wh.execute("SELECT * FROM types_ds.all_types ORDER BY id") == before
    assert wh.list_tables("types_ds") == ["all_types"]  # no staging table left behind


def test_restoring_two_tables_into_one_target_is_refused(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, tables=["a_ds.same", "b_ds.same"])
    wh: Any = stack.adapters.warehouse
    for ds in ("a_ds", "b_ds"):
        wh.create_table(
            TableRef(ds, "same"), TableSpec(schema_from_api([{"name": "x", "type": "INT64"}]))
        )
        wh.execute(f"INSERT INTO {ds}.same VALUES (1)")
    run_id = _backup(stack)
    with pytest.raises(BadInput, match=r"same target: merged\.same"):
        restore_run(run_id, _restore_deps(stack), target_dataset="merged")
    stack.adapters.close()
