"""Tables that require a partition filter, streaming buffers, and cheap health metadata.

BigQuery rejects any query over a ``requirePartitionFilter`` table that has no
predicate on the partition column "that can be used for partition elimination"; the
emulator doesn't enforce that, so the GCP tests put the rule into the shim (a query
over the table without a partition predicate is answered with BigQuery's 400) and
assert on the query text the adapter sends.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.models import RunHistoryQuery, SchemaField, TableSpec
from tests.contract.support import Backend, GcpStack, simple_rows, unique
from tests.fakes.bq_shim import bq_error
from tests.fakes.http_proxy import Reply, ShimRequest

pytestmark = pytest.mark.timeout(90)

FILTERED_SPEC = TableSpec(
    schema=(
        SchemaField("id", "INT64", "REQUIRED"),
        SchemaField("day", "DATE"),
        SchemaField("at", "TIMESTAMP"),
        SchemaField("phase", "STRING"),
        SchemaField("status", "STRING"),
    ),
    time_partitioning={"type": "DAY", "field": "day"},
    require_partition_filter=True,
)

RANGE_SPEC = TableSpec(
    schema=(SchemaField("id", "INT64", "REQUIRED"), SchemaField("bucket", "INT64")),
    range_partitioning={"field": "bucket", "range": {"start": "0", "end": "100", "interval": "1"}},
)


def _filtered_rows(now: datetime) -> list[dict[str, Any]]:
    def at(hours_ago: int) -> str:
        return (now - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")

    rows: list[dict[str, Any]] = [
        {"id": i, "day": f"2026-11-{i + 1:02d}", "at": at(i + 1), "phase": "p1",
         "status": "success" if i % 2 else "failed"}
        for i in range(5)
    ]  # fmt: skip
    # a row in the __NULL__ partition: counted like any other
    rows.append({"id": 99, "day": None, "at": at(10), "phase": "p1", "status": "success"})
    return rows


def _enforce_partition_filter(stack: GcpStack, table: str, column: str) -> None:
    """Make the shim answer like BigQuery for a table that requires a partition filter."""
    predicate = re.compile(rf"`{column}` IS NULL OR `{column}` >=")

    def unfiltered(request: ShimRequest) -> bool:
        if not (request.method == "POST" and request.path.endswith("/queries")):
            return False
        sql = str((request.json or {}).get("query", ""))
        return f".{table}`" in sql and not predicate.search(sql)

    def refuse(request: ShimRequest) -> Reply:
        return bq_error(
            400,
            "invalidQuery",
            f"Cannot query over table '{table}' without a filter over column(s) '{column}' "
            "that can be used for partition elimination",
            "INVALID_ARGUMENT",
        )

    stack.bq_shim.fail_next(10_000, unfiltered, refuse)


def _emulator_keeps_require_partition_filter(stack: GcpStack) -> None:
    """bqemulator 1.4.0 reads the flag only from the deprecated
    ``timePartitioning.requirePartitionFilter`` (bqemulator/api/routes/tables.py) and
    drops the table-level field; copy it there on the way in (the recorded request keeps
    what the client sent). Belongs in tests/fakes/bq_shim.py as gap 11."""

    def is_insert(request: ShimRequest) -> bool:
        body = request.json if isinstance(request.json, dict) else {}
        return (
            request.method == "POST"
            and request.path.endswith("/tables")
            and bool(body.get("requirePartitionFilter"))
            and isinstance(body.get("timePartitioning"), dict)
        )

    def forward(request: ShimRequest) -> Reply:
        body = dict(request.json)
        body["timePartitioning"] = {**body["timePartitioning"], "requirePartitionFilter": True}
        reply: Reply = stack.bq_shim.forward(request, json_body=body)
        return reply

    stack.bq_shim.fail_next(10_000, is_insert, forward)


@pytest.fixture(autouse=True)
def _emulator_gaps(request: pytest.FixtureRequest) -> None:
    names = request.fixturenames
    if "gcp" in names or ("backend" in names and "gcp" in request.node.name):
        _emulator_keeps_require_partition_filter(request.getfixturevalue("gcp_stack"))


# -- item 4: require_partition_filter -------------------------------------------------
def test_require_partition_filter_survives_create_and_get(backend: Backend) -> None:
    table = backend.create_source_table("filtered", FILTERED_SPEC, [])

    info = backend.warehouse.get_table(table)

    assert info.require_partition_filter is True
    assert info.spec().require_partition_filter is True  # what restore recreates from
    assert info.resource()["requirePartitionFilter"] is True


def test_counts_and_probes_cover_every_partition_of_a_filtered_table(backend: Backend) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    table = backend.create_source_table("filtered", FILTERED_SPEC, _filtered_rows(now))
    instant = backend.settled_instant()

    assert backend.warehouse.count_rows(table) == 6
    assert backend.warehouse.row_count_at(table, instant) == 6
    info = backend.warehouse.get_table(table)
    assert backend.warehouse.count_rows(table, info=info) == 6
    assert backend.warehouse.newest_value(table, "at", None, None) == now - timedelta(hours=1)
    assert backend.warehouse.newest_value(table, "day", "day", date(2026, 11, 3)) == datetime(
        2026, 11, 5, tzinfo=UTC
    )
    history = backend.warehouse.run_history(
        RunHistoryQuery(table, "phase", "status", "status", "at", None, ("success",),
                        now - timedelta(hours=24), 5)
    )  # fmt: skip
    assert [(p.phase, p.runs, p.succeeded) for p in history.phases] == [("p1", 6, 3)]


def test_bigquery_creates_and_queries_a_filtered_table_as_bigquery_requires(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    now = datetime.now(UTC).replace(microsecond=0)
    table = backend.create_source_table("filtered", FILTERED_SPEC, _filtered_rows(now))
    inserts = stack.bq_shim.recorded(
        lambda r: r.method == "POST" and r.path.endswith(f"/datasets/{table.dataset}/tables")
    )
    assert inserts[-1].json["requirePartitionFilter"] is True
    _enforce_partition_filter(stack, table.table, "day")
    before = len(stack.bq_shim.recorded())

    assert backend.warehouse.count_rows(table) == 6
    assert backend.warehouse.row_count_at(table, backend.settled_instant()) == 6
    assert backend.warehouse.newest_value(table, "at", None, None) == now - timedelta(hours=1)
    backend.warehouse.run_history(
        RunHistoryQuery(table, "phase", "status", "status", "at", None, ("success",),
                        now - timedelta(hours=24), 5)
    )  # fmt: skip

    queries = [
        r.json["query"] for r in stack.bq_shim.recorded()[before:] if r.path.endswith("/queries")
    ]
    assert len(queries) == 5  # count, count at, newest, run phases, run errors
    assert all("(`day` IS NULL OR `day` >= DATE '0001-01-01')" in q for q in queries)


def test_bigquery_counting_with_table_info_in_hand_makes_no_metadata_call(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    table = backend.create_source_table(
        "filtered", FILTERED_SPEC, _filtered_rows(datetime.now(UTC))
    )
    info = backend.warehouse.get_table(table)
    before = len(stack.bq_shim.recorded())

    assert backend.warehouse.row_count_at(table, backend.settled_instant(), info=info) == 6

    calls = stack.bq_shim.recorded()[before:]
    assert [c.method for c in calls if f"/tables/{table.table}" in c.path] == []


def test_bigquery_counting_an_unfiltered_table_sends_no_predicate(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    spec = TableSpec(FILTERED_SPEC.schema, FILTERED_SPEC.time_partitioning)
    table = backend.create_source_table("plain", spec, _filtered_rows(datetime.now(UTC)))
    before = len(stack.bq_shim.recorded())

    assert backend.warehouse.count_rows(table) == 6

    (query,) = [r for r in stack.bq_shim.recorded()[before:] if r.path.endswith("/queries")]
    assert "WHERE" not in query.json["query"]


# -- item 13: streaming buffer --------------------------------------------------------
def _canned_table(stack: GcpStack, backend: Backend, name: str, extra: dict[str, Any]) -> None:
    """Answer the next tables.get of ``name`` with a BigQuery-shaped resource."""
    path = f"/datasets/{backend.dataset}/tables/{name}"
    resource = {
        "kind": "bigquery#table",
        "tableReference": {"projectId": "opsuite-test", "datasetId": backend.dataset,
                           "tableId": name},
        "schema": {"fields": [{"name": "id", "type": "INTEGER", "mode": "REQUIRED"}]},
        "numRows": "10",
        "numBytes": "80",
        "lastModifiedTime": "1795305599999",
        "type": "TABLE",
        **extra,
    }  # fmt: skip
    stack.bq_shim.fail_next(
        1,
        lambda r: r.method == "GET" and r.path.endswith(path),
        lambda r: Reply.of_json(200, resource),
    )


def test_bigquery_get_table_reports_streaming_buffer_rows(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    table = backend.create_source_table("streamed", SIMPLE_SPEC_1, simple_rows(1))
    buffer = {"estimatedRows": "37", "estimatedBytes": "900", "oldestEntryTime": "1795305500000"}
    _canned_table(stack, backend, "streamed", {"streamingBuffer": buffer})
    assert backend.warehouse.get_table(table).streaming_buffer_rows == 37
    assert backend.warehouse.get_table(table).streaming_buffer_rows is None  # emulator: none


SIMPLE_SPEC_1 = TableSpec(schema=(SchemaField("id", "INT64", "REQUIRED"),))


# -- item 12: health metadata ---------------------------------------------------------
def test_metadata_without_partitions_reports_last_modified_and_rows(backend: Backend) -> None:
    backend.create_source_table("plain", SIMPLE_SPEC_1, simple_rows(3))
    now = datetime.now(UTC)

    metadata = backend.warehouse.dataset_metadata(backend.dataset, ["plain", "nope"],
                                                  partitions=False)  # fmt: skip

    assert sorted(metadata) == ["plain"]
    assert metadata["plain"].rows == 3
    assert metadata["plain"].newest_partition is None
    assert metadata["plain"].last_modified is not None
    assert abs(metadata["plain"].last_modified - now) < timedelta(minutes=5)


def test_bigquery_quick_metadata_runs_no_query(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    names = [f"t{i:02d}" for i in range(13)]
    for name in names[:3]:
        backend.create_source_table(name, SIMPLE_SPEC_1, simple_rows(1))
    before = len(stack.bq_shim.recorded())

    metadata = backend.warehouse.dataset_metadata(backend.dataset, names, partitions=False)

    calls = stack.bq_shim.recorded()[before:]
    assert sorted(metadata) == names[:3]
    assert [c for c in calls if c.path.endswith("/queries") or "/jobs" in c.path] == []
    gets = [c for c in calls if c.method == "GET" and "/tables/" in c.path]
    assert len(gets) == 13  # one free tables.get per table (+ one datasets.get)
    assert len(calls) == 14


def test_bigquery_quick_metadata_of_a_missing_dataset_is_not_found(
    gcp: tuple[Backend, GcpStack],
) -> None:
    from shared.errors import NotFound

    backend, _ = gcp
    with pytest.raises(NotFound):
        backend.warehouse.dataset_metadata(unique("missing"), ["t"], partitions=False)


def test_bigquery_quick_metadata_carries_streaming_buffer_rows(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    backend.create_source_table("streamed", SIMPLE_SPEC_1, simple_rows(1))
    _canned_table(stack, backend, "streamed", {"streamingBuffer": {"estimatedRows": "5"}})

    metadata = backend.warehouse.dataset_metadata(backend.dataset, ["streamed"], partitions=False)

    assert metadata["streamed"].streaming_buffer_rows == 5


def test_bigquery_partition_metadata_is_chunked_to_1000_tables_per_query(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    backend.create_source_table("t0000", SIMPLE_SPEC_1, simple_rows(2))
    names = [f"t{i:04d}" for i in range(1500)]
    before = len(stack.bq_shim.recorded())

    metadata = backend.warehouse.dataset_metadata(backend.dataset, names)

    queries = [r for r in stack.bq_shim.recorded()[before:] if r.path.endswith("/queries")]
    sizes = [len(q.json["queryParameters"][0]["parameterValue"]["arrayValues"]) for q in queries]
    assert sizes == [1000, 500]
    assert sorted(metadata) == ["t0000"]
    assert metadata["t0000"].rows == 2


def test_local_newest_integer_range_partition_is_compared_numerically(local: Backend) -> None:
    rows = [{"id": i, "bucket": b} for i, b in enumerate([0, 2, 9, 10, 3, None, 250])]
    local.create_source_table("ranged", RANGE_SPEC, rows)

    metadata = local.warehouse.dataset_metadata(local.dataset, ["ranged"])

    assert metadata["ranged"].newest_partition == "10"  # not "9", not "__UNPARTITIONED__"


def test_bigquery_newest_partition_ids_are_compared_numerically(
    gcp: tuple[Backend, GcpStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    """bqemulator ignores ``rangePartitioning`` on tables.insert, so the adapter's own SQL
    runs over a table shaped like INFORMATION_SCHEMA.PARTITIONS holding BigQuery's ids."""
    from shared.adapters.gcp import warehouse as gcp_warehouse

    backend, _ = gcp
    spec = TableSpec((SchemaField("table_name", "STRING"), SchemaField("partition_id", "STRING")))
    ids: dict[str, list[str | None]] = {"ranged": ["0", "9", "10", "-20", "__NULL__", "__UNPARTITIONED__"],
           "daily": ["20261128", "20261201", "__NULL__"], "plain": [None]}  # fmt: skip
    backend.create_source_table(
        "fake_partitions", spec, [{"table_name": t, "partition_id": p} for t in ids for p in ids[t]]
    )
    for name in ids:
        backend.create_source_table(name, SIMPLE_SPEC_1, [])
    monkeypatch.setattr(gcp_warehouse, "PARTITIONS_VIEW", "`{project}.{dataset}.fake_partitions`")

    metadata = backend.warehouse.dataset_metadata(backend.dataset, list(ids))

    assert {n: m.newest_partition for n, m in metadata.items()} == {
        "ranged": "10",
        "daily": "20261201",
        "plain": None,
    }


def _freshness_run(backend: Backend, stack: GcpStack, tables: int, mode: str) -> dict[str, int]:
    from shared.config import parse_settings
    from shared.services.health import HealthDeps, check_freshness

    names = [f"{backend.dataset}.t{i:04d}" for i in range(tables)]
    settings = parse_settings({"backups": {"bucket": backend.bucket, "tables": names}})
    before = len(stack.bq_shim.recorded())
    entries = check_freshness(HealthDeps(settings, backend.warehouse, backend.store), mode)  # type: ignore[arg-type]
    calls = stack.bq_shim.recorded()[before:]
    assert len(entries) == tables
    return {
        "queries": sum(1 for c in calls if c.path.endswith("/queries") or "/jobs" in c.path),
        "requests": len(calls),
    }


def test_bigquery_quick_health_freshness_runs_no_billed_query(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    backend.create_source_table("t0000", SIMPLE_SPEC_1, simple_rows(1))

    quick = _freshness_run(backend, stack, 13, "quick")
    full = _freshness_run(backend, stack, 13, "full")

    assert quick == {"queries": 0, "requests": 14}  # datasets.get + 13 tables.get
    assert full == {"queries": 1, "requests": 15}  # + one PARTITIONS query
