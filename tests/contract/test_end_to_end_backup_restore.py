"""The nightly backup and a restore, through the services, on each adapter family.

On GCP this is the whole path on the real clients: extract with a snapshot decorator
and a wildcard URI, Avro files read back from Cloud Storage for verification, a
write-once manifest, the completion event on Pub/Sub, then load jobs into new tables.
"""

from __future__ import annotations

import json

import pytest

from shared.config import BackupSettings
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.services.backup import BackupDeps, run_backup_to_end
from shared.services.restore import RestoreDeps, restore_run
from tests.contract.support import RICH_SCHEMA, RICH_SPEC, Backend, rich_rows

pytestmark = pytest.mark.timeout(120)


def test_backup_then_restore_through_the_services(backend: Backend) -> None:
    source = backend.create_source_table("orders", RICH_SPEC, rich_rows(1200))
    settings = BackupSettings(
        bucket=backend.bucket,
        prefix="backups",
        tables=[str(source)],
        poll_interval_seconds=0.05,
        events_topic=backend.topic,
        max_file_bytes=64 * 1024,
    )
    deps = BackupDeps(settings, backend.warehouse, backend.store, backend.publisher, backend.name)

    outcome = run_backup_to_end(BackupRequest(), deps)

    assert outcome.manifest is not None, outcome
    assert outcome.manifest.status == "complete", outcome.manifest
    (entry,) = outcome.manifest.tables
    assert entry.rows == 1200
    events = backend.published(backend.topic)
    assert len(events) == 1
    assert json.loads(events[0].data)["run_id"] == outcome.run_id

    report = restore_run(
        outcome.run_id,
        RestoreDeps(
            backend.warehouse, backend.store, backend.bucket, "backups", poll_interval=0.05
        ),
        target_dataset=f"{backend.dataset}_restored",
    )

    assert report.ok, report
    (table,) = report.tables
    assert table.rows_restored == table.rows_expected == 1200
    restored = TableRef(f"{backend.dataset}_restored", "orders")
    assert backend.fetch_ids(restored) == list(range(1200))
    info = backend.warehouse.get_table(restored)
    assert info.schema == RICH_SCHEMA
    assert info.time_partitioning == RICH_SPEC.time_partitioning
    assert info.clustering == RICH_SPEC.clustering
    assert dict(info.labels) == dict(RICH_SPEC.labels)
