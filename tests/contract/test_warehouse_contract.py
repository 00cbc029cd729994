"""The Warehouse port: LocalWarehouse and BigQueryWarehouse (bqemulator behind the shim)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.avro import scan_avro
from shared.errors import AlreadyExists, NotFound, PermanentError, TransientError
from shared.identifiers import TableRef
from shared.models import (
    ExtractRequest,
    LoadRequest,
    SchemaField,
    TableSpec,
    schema_to_api,
)
from tests.contract.support import (
    PROJECT,
    RICH_SCHEMA,
    RICH_SPEC,
    SIMPLE_SPEC,
    Backend,
    GcpStack,
    rich_rows,
    simple_rows,
    unique,
    wait_for_job,
)
from tests.fakes.bq_shim import service_unavailable

pytestmark = pytest.mark.timeout(60)


def export(backend: Backend, table: TableRef, job_id: str, prefix: str) -> ExtractRequest:
    return ExtractRequest(
        job_id=job_id,
        source=table,
        instant=backend.settled_instant(),
        destination_uri=f"gs://{backend.bucket}/{prefix}/part-*.avro",
    )


def exported_rows(backend: Backend, prefix: str) -> tuple[int, list[str]]:
    objects = backend.store.list(backend.bucket, prefix + "/")
    rows = 0
    for info in objects:
        with backend.store.open(info.bucket, info.name) as fo:
            rows += scan_avro(fo, info.name).rows
    return rows, [o.name for o in objects]


# -- tables -----------------------------------------------------------------------------
def test_list_tables_returns_every_page(backend: Backend) -> None:
    names = [f"t{i:02d}" for i in range(7)]  # gcp page size is 2: four pages
    for name in names:
        backend.create_source_table(name, SIMPLE_SPEC, [])

    assert backend.warehouse.list_tables(backend.dataset) == names


def test_list_tables_of_a_missing_dataset_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.warehouse.list_tables(unique("missing"))


def test_get_table_round_trips_the_table_resource(backend: Backend) -> None:
    table = backend.create_source_table("orders", RICH_SPEC, rich_rows(3))

    info = backend.warehouse.get_table(table)

    assert info.ref == table
    assert info.schema == RICH_SCHEMA
    assert info.num_rows == 3
    assert info.modified.tzinfo is not None
    assert abs(info.modified - datetime.now(UTC)) < timedelta(minutes=5)
    assert dict(info.time_partitioning or {}) == {"type": "DAY", "field": "day"}
    assert info.clustering == ("id",)
    assert info.description == "orders, one row per order"
    assert dict(info.labels) == {"team": "data", "tier": "gold"}
    resource = info.resource()
    assert TableSpec.from_resource(resource) == RICH_SPEC
    assert resource["schema"]["fields"][0] == {
        "name": "id",
        "type": "INT64",
        "mode": "REQUIRED",
        "description": "row id",
    }


def test_get_table_of_a_missing_table_is_not_found(backend: Backend) -> None:
    backend.warehouse.ensure_dataset(backend.dataset)
    missing = backend.table("nope")

    with pytest.raises(NotFound):
        backend.warehouse.get_table(missing)
    assert backend.warehouse.table_exists(missing) is False


def test_row_count_at_an_instant_after_the_last_change(backend: Backend) -> None:
    table = backend.create_source_table("orders", RICH_SPEC, rich_rows(5))
    instant = backend.settled_instant()

    assert backend.warehouse.row_count_at(table, instant) == 5
    assert backend.warehouse.count_rows(table) == 5
    assert backend.warehouse.table_exists(table) is True


def test_row_count_of_a_missing_table_is_not_found(backend: Backend) -> None:
    backend.warehouse.ensure_dataset(backend.dataset)

    with pytest.raises(NotFound):
        backend.warehouse.row_count_at(backend.table("nope"), backend.settled_instant())


def test_create_existing_table_is_already_exists_unless_replaced(backend: Backend) -> None:
    table = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(2))
    wider = TableSpec(schema=(*SIMPLE_SPEC.schema, SchemaField("extra", "STRING")))

    with pytest.raises(AlreadyExists):
        backend.warehouse.create_table(table, wider)
    backend.warehouse.create_table(table, wider, replace=True)

    info = backend.warehouse.get_table(table)
    assert [f.name for f in info.schema] == ["id", "name", "extra"]
    assert backend.warehouse.count_rows(table) == 0


def test_replace_table_swaps_in_the_source_and_drops_it(backend: Backend) -> None:
    # restore's case: the staging table has the live table's schema (bqemulator cannot
    # copy over a table with another schema; BigQuery's WRITE_TRUNCATE takes the source's)
    live = backend.create_source_table("live", SIMPLE_SPEC, simple_rows(5))
    staging = backend.create_source_table("staging", SIMPLE_SPEC, simple_rows(3))

    backend.warehouse.replace_table(live, staging)

    assert backend.warehouse.count_rows(live) == 3
    assert [f.name for f in backend.warehouse.get_table(live).schema] == ["id", "name"]
    assert not backend.warehouse.table_exists(staging)
    assert backend.warehouse.list_tables(backend.dataset) == ["live"]


def test_delete_table_is_idempotent(backend: Backend) -> None:
    table = backend.create_source_table("doomed", SIMPLE_SPEC, simple_rows(1))
    backend.warehouse.delete_table(table)
    backend.warehouse.delete_table(table)
    assert not backend.warehouse.table_exists(table)


def test_ensure_dataset_is_idempotent(backend: Backend) -> None:
    backend.warehouse.ensure_dataset(backend.dataset)
    backend.warehouse.ensure_dataset(backend.dataset)

    assert backend.warehouse.list_tables(backend.dataset) == []


# -- jobs -------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_extract_exports_every_row_as_avro_under_the_prefix(backend: Backend) -> None:
    table = backend.create_source_table("orders", RICH_SPEC, rich_rows(2500))
    request = export(backend, table, unique("export"), "backups/orders")

    started = backend.warehouse.start_extract(request)
    status = wait_for_job(backend.warehouse, request.job_id)

    assert started.job_id == request.job_id
    assert status.succeeded, status.error
    rows, names = exported_rows(backend, "backups/orders")
    assert rows == 2500
    assert status.destination_file_count == len(names) >= 1
    assert all(n.startswith("backups/orders/part-") and n.endswith(".avro") for n in names)
    if backend.name == "local":  # small max_file_bytes: the listing spans several shards
        assert len(names) > 1


def test_extract_with_a_known_job_id_attaches_instead_of_exporting_twice(
    backend: Backend,
) -> None:
    table = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(10))
    request = export(backend, table, unique("export"), "backups/once")
    first = backend.warehouse.start_extract(request)
    wait_for_job(backend.warehouse, request.job_id)
    files_after_first = exported_rows(backend, "backups/once")

    again = backend.warehouse.start_extract(request)

    assert again.job_id == first.job_id == request.job_id
    assert wait_for_job(backend.warehouse, request.job_id).succeeded
    assert (
        exported_rows(backend, "backups/once")
        == files_after_first
        == (10, ["backups/once/part-000000000000.avro"])
    )


def test_extract_of_a_missing_table_is_not_found(backend: Backend) -> None:
    backend.warehouse.ensure_dataset(backend.dataset)
    request = export(backend, backend.table("nope"), unique("export"), "backups/nope")

    with pytest.raises(NotFound):
        backend.warehouse.start_extract(request)


def test_get_job_of_an_unknown_id_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.warehouse.get_job(unique("never-started"))


@pytest.mark.timeout(90)
def test_backup_then_restore_brings_back_every_row(backend: Backend) -> None:
    source = backend.create_source_table("orders", RICH_SPEC, rich_rows(300))
    extract = export(backend, source, unique("export"), "backups/restore")
    backend.warehouse.start_extract(extract)
    assert wait_for_job(backend.warehouse, extract.job_id).succeeded
    info = backend.warehouse.get_table(source)
    restored = backend.table("orders_restored")

    files = backend.store.list(backend.bucket, "backups/restore/")

    backend.warehouse.create_table(restored, TableSpec.from_resource(info.resource()))
    load = LoadRequest(
        job_id=unique("restore"),
        destination=restored,
        source_uris=tuple(f.uri for f in files),  # as restore does: the manifest's files
        schema=info.schema,
    )
    backend.warehouse.start_load(load)
    status = wait_for_job(backend.warehouse, load.job_id)

    assert status.succeeded, status.error
    assert status.output_rows == 300
    assert backend.warehouse.count_rows(restored) == 300
    assert backend.fetch_ids(restored) == list(range(300))
    restored_info = backend.warehouse.get_table(restored)
    assert restored_info.schema == RICH_SCHEMA
    assert restored_info.time_partitioning == info.time_partitioning
    assert restored_info.clustering == info.clustering


def test_load_with_a_known_job_id_attaches(backend: Backend) -> None:
    source = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(4))
    extract = export(backend, source, unique("export"), "backups/load-once")
    backend.warehouse.start_extract(extract)
    assert wait_for_job(backend.warehouse, extract.job_id).succeeded
    load = LoadRequest(
        job_id=unique("restore"),
        destination=source,
        source_uris=tuple(f.uri for f in backend.store.list(backend.bucket, "backups/load-once/")),
        schema=SIMPLE_SPEC.schema,
    )
    backend.warehouse.start_load(load)
    assert wait_for_job(backend.warehouse, load.job_id).succeeded

    again = backend.warehouse.start_load(load)

    assert again.job_id == load.job_id
    assert wait_for_job(backend.warehouse, load.job_id).output_rows == 4
    assert backend.warehouse.count_rows(source) == 4


# -- local only -------------------------------------------------------------------------
def test_local_warehouse_refuses_an_instant_before_the_last_change(local: Backend) -> None:
    table = local.create_source_table("orders", SIMPLE_SPEC, simple_rows(3))

    with pytest.raises(PermanentError):
        local.warehouse.row_count_at(table, datetime.now(UTC) - timedelta(hours=1))


# -- GCP only: time travel and the requests on the wire ---------------------------------
def test_bigquery_row_count_at_a_past_instant_uses_time_travel(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, _ = gcp
    table = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(5))
    instant = backend.settled_instant()
    backend.insert_rows(table, simple_rows(3, start=5))

    assert backend.warehouse.row_count_at(table, instant) == 5
    assert backend.warehouse.count_rows(table) == 8


def test_bigquery_extract_request_pins_the_instant_and_format(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    table = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(3))
    request = export(backend, table, unique("export"), "backups/wire")
    millis = (request.instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)

    backend.warehouse.start_extract(request)

    (insert,) = stack.bq_shim.job_inserts(request.job_id)
    assert insert.json["jobReference"]["jobId"] == request.job_id
    assert insert.json["jobReference"]["location"] == "US"
    extract = insert.json["configuration"]["extract"]
    assert extract["sourceTable"] == {
        "projectId": PROJECT,
        "datasetId": backend.dataset,
        "tableId": f"orders@{millis}",
    }
    assert extract["destinationUris"] == [f"gs://{backend.bucket}/backups/wire/part-*.avro"]
    assert extract["destinationFormat"] == "AVRO"
    assert extract["compression"] == "SNAPPY"
    assert extract["useAvroLogicalTypes"] is True


def test_bigquery_duplicate_job_id_gets_409_and_one_export(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    table = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(3))
    request = export(backend, table, unique("export"), "backups/dup")
    backend.warehouse.start_extract(request)

    attached = backend.warehouse.start_extract(request)

    inserts = stack.bq_shim.job_inserts(request.job_id)
    assert [(r.status, r.forwarded) for r in inserts] == [(200, True), (409, False)]
    assert attached.succeeded
    assert attached.destination_file_count == 1


def test_bigquery_load_request_sends_the_schema_and_never_autodetects(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    table = backend.create_source_table("orders", RICH_SPEC, rich_rows(2))
    extract = export(backend, table, unique("export"), "backups/load")
    backend.warehouse.start_extract(extract)
    load = LoadRequest(
        job_id=unique("restore"),
        destination=table,
        source_uris=(f"gs://{backend.bucket}/backups/load/part-*.avro",),
        schema=RICH_SCHEMA,
    )

    backend.warehouse.start_load(load)

    (insert,) = stack.bq_shim.job_inserts(load.job_id)
    config = insert.json["configuration"]["load"]
    assert config["schema"]["fields"] == schema_to_api(RICH_SCHEMA)
    assert config["sourceFormat"] == "AVRO"
    assert config["useAvroLogicalTypes"] is True
    assert config["writeDisposition"] == "WRITE_TRUNCATE"
    assert config["createDisposition"] == "CREATE_NEVER"
    assert config["sourceUris"] == list(load.source_uris)
    assert not config.get("autodetect")
    assert config["destinationTable"]["tableId"] == "orders"


def test_bigquery_503_on_jobs_insert_becomes_transient_after_a_short_retry(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    table = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(1))
    warehouse = backend.make_warehouse(retry_deadline=1.5)
    request = export(backend, table, unique("export"), "backups/unavailable")
    stack.bq_shim.fail_jobs_insert(1000)

    began = time.monotonic()
    with pytest.raises(TransientError):
        warehouse.start_extract(request)

    assert time.monotonic() - began < 10
    attempts = stack.bq_shim.job_inserts(request.job_id)
    assert len(attempts) >= 1
    assert all(r.status == 503 and not r.forwarded for r in attempts)


def test_bigquery_single_503_is_retried_by_the_client(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    table = backend.create_source_table("orders", SIMPLE_SPEC, simple_rows(2))
    request = export(backend, table, unique("export"), "backups/retried")
    stack.bq_shim.fail_jobs_insert(1)
    stack.bq_shim.fail_jobs_get(1)

    backend.warehouse.start_extract(request)
    status = backend.warehouse.get_job(request.job_id)

    inserts = stack.bq_shim.job_inserts(request.job_id)
    assert [r.status for r in inserts] == [503, 200]
    assert status.succeeded


def test_bigquery_get_table_failing_with_503_is_transient(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    table = backend.create_source_table("orders", SIMPLE_SPEC, [])
    warehouse = backend.make_warehouse(retry_deadline=1.0)
    stack.bq_shim.fail_next(
        1000,
        lambda r: r.method == "GET" and r.path.endswith(f"/tables/{table.table}"),
        service_unavailable,
    )

    with pytest.raises(TransientError):
        warehouse.get_table(table)


def test_load_from_a_missing_file_fails_the_job_with_not_found(backend: Backend) -> None:
    table = backend.create_source_table("orders", SIMPLE_SPEC, [])
    load = LoadRequest(
        job_id=unique("restore"),
        destination=table,
        source_uris=(f"gs://{backend.bucket}/backups/none/part-000000000000.avro",),
        schema=SIMPLE_SPEC.schema,
    )

    backend.warehouse.start_load(load)
    status = wait_for_job(backend.warehouse, load.job_id)

    assert status.error is not None
    assert status.error.reason == "notFound"
    assert backend.warehouse.count_rows(table) == 0


def test_bigquery_list_tables_follows_every_page_token(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    for i in range(5):
        backend.create_source_table(f"t{i}", SIMPLE_SPEC, [])

    assert len(backend.warehouse.list_tables(backend.dataset)) == 5

    pages = stack.bq_shim.recorded(
        lambda r: r.method == "GET" and r.path.endswith(f"/datasets/{backend.dataset}/tables")
    )
    assert [r.param("pageToken") for r in pages] == [None, "2", "4"]
    assert {r.param("maxResults") for r in pages} == {"2"}


def test_bigquery_replace_table_is_one_truncating_copy_job(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    live = backend.create_source_table("live", SIMPLE_SPEC, simple_rows(2))
    staging = backend.create_source_table("staging", SIMPLE_SPEC, simple_rows(4))

    backend.warehouse.replace_table(live, staging)

    def is_this_copy(r: Any) -> bool:
        copy = ((r.json or {}).get("configuration") or {}).get("copy") or {}
        return bool(copy) and copy["destinationTable"]["datasetId"] == backend.dataset

    (insert,) = stack.bq_shim.recorded(is_this_copy)
    config = insert.json["configuration"]["copy"]
    assert [t["tableId"] for t in config["sourceTables"]] == ["staging"]
    assert config["destinationTable"]["tableId"] == "live"
    assert config["writeDisposition"] == "WRITE_TRUNCATE"
    assert config["createDisposition"] == "CREATE_IF_NEEDED"
