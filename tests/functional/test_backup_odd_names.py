"""Tables named the way BigQuery allows (spaces, Unicode, dashes) in a dataset backed up
with ``include: ["*"]``, on the local stack; a name we can't handle is a failed table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.local.warehouse import quote
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.models import TableSpec, schema_from_api
from shared.services.backup import run_backup_to_end
from shared.services.restore import RestoreDeps, restore_run
from tests.helpers import BUCKET, Stack, backup_deps, make_stack

ODD = [
    "Spieler Übersicht",
    "日本語テーブル",
    "table-with-dashes",
    "a\u0301",
    "ideographic\u3000space",
]
ORDINARY = "ordinary"
TOO_LONG = "ü" * 513  # 1026 UTF-8 bytes: DuckDB takes it, BigQuery and we don't
SCHEMA = schema_from_api([{"name": "id", "type": "INT64"}, {"name": "s", "type": "STRING"}])


@pytest.fixture
def odd(tmp_path: Path) -> Iterator[Stack]:
    stack = make_stack(tmp_path, tables=[], datasets=[{"name": "odd", "include": ["*"]}])
    wh: Any = stack.adapters.warehouse
    for i, name in enumerate([*ODD, ORDINARY]):
        table = TableRef("odd", name)
        wh.create_table(table, TableSpec(SCHEMA))
        wh.execute(
            f"INSERT INTO {quote('odd')}.{quote(name)} "
            f"SELECT r, 'row ' || r FROM range({10 * (i + 1)}) t(r)"
        )
        wh.touch(table)
    yield stack
    stack.adapters.close()


_deps = backup_deps


def test_unicode_space_and_dash_names_are_backed_up(odd: Stack) -> None:
    outcome = run_backup_to_end(BackupRequest(), _deps(odd))

    manifest = outcome.manifest
    assert manifest is not None and manifest.status == "complete", manifest
    assert sorted(t.source for t in manifest.tables) == sorted(f"odd.{n}" for n in [*ODD, ORDINARY])
    for entry in manifest.tables:
        table = TableRef.parse(entry.source)
        assert entry.rows == odd.adapters.warehouse.count_rows(table) > 0
        assert entry.files
        for f in entry.files:
            assert f.uri.startswith(f"gs://{BUCKET}/backups/{outcome.run_id}/odd/{table.table}/")
            assert odd.adapters.store.stat(BUCKET, f.uri.removeprefix(f"gs://{BUCKET}/"))
    assert len(set(odd.jobs())) == len(ODD) + 1  # one distinct export job per table


def test_a_table_whose_name_cannot_be_handled_fails_alone(odd: Stack) -> None:
    wh: Any = odd.adapters.warehouse
    wh.execute(f"CREATE TABLE {quote('odd')}.{quote(TOO_LONG)} (id BIGINT)")
    assert TOO_LONG in wh.list_tables("odd")

    outcome = run_backup_to_end(BackupRequest(), _deps(odd))  # no exception

    manifest = outcome.manifest
    assert manifest is not None
    assert manifest.status == "partial"
    failed = {t.source: t for t in manifest.tables if t.status == "failed"}
    assert list(failed) == [f"odd.{TOO_LONG}"]
    assert "longer than 1024 UTF-8 bytes" in (failed[f"odd.{TOO_LONG}"].error or "")
    complete = sorted(t.source for t in manifest.tables if t.status == "complete")
    assert complete == sorted(f"odd.{n}" for n in [*ODD, ORDINARY])


@pytest.mark.parametrize("name", ["Spieler Übersicht", "ideographic\u3000space"])
def test_the_unicode_table_round_trips_through_restore(odd: Stack, name: str) -> None:
    outcome = run_backup_to_end(BackupRequest(), _deps(odd))
    assert outcome.manifest is not None and outcome.manifest.status == "complete"
    deps = RestoreDeps(odd.adapters.warehouse, odd.adapters.store, BUCKET, "backups",
                       poll_interval=0.02)  # fmt: skip
    source = TableRef("odd", name)

    report = restore_run(outcome.run_id, deps, tables=[source], target_dataset="restored")

    assert report.ok, report
    wh: Any = odd.adapters.warehouse
    original = wh.execute(f"SELECT * FROM {quote('odd')}.{quote(source.table)} ORDER BY id")
    restored = wh.execute(f"SELECT * FROM {quote('restored')}.{quote(source.table)} ORDER BY id")
    assert restored == original and len(original) > 0


def test_a_name_too_long_for_the_local_file_system_fails_alone(odd: Stack) -> None:
    long_name = "ä" * 150  # 300 bytes: BigQuery takes it, ext4 can't hold it as one name
    wh: Any = odd.adapters.warehouse
    wh.execute(f"CREATE TABLE {quote('odd')}.{quote(long_name)} (id BIGINT)")

    outcome = run_backup_to_end(BackupRequest(), _deps(odd))  # no OSError

    manifest = outcome.manifest
    assert manifest is not None and manifest.status == "partial"
    [failed] = [t for t in manifest.tables if t.status == "failed"]
    assert failed.source == f"odd.{long_name}"
    assert "can't hold a name part of 300 bytes" in (failed.error or "")


def test_a_restores_staging_table_is_not_backed_up_as_a_table(odd: Stack) -> None:
    wh: Any = odd.adapters.warehouse
    wh.execute(
        f"CREATE TABLE {quote('odd')}.{quote('_opsuite_restore_20261201T0000_x')} (id BIGINT)"
    )

    outcome = run_backup_to_end(BackupRequest(), _deps(odd))

    assert outcome.manifest is not None and outcome.manifest.status == "complete"
    assert not [t for t in outcome.manifest.tables if "_opsuite_restore_" in t.source]
