"""The Warehouse port's health queries: metadata, freshness and run history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.errors import NotFound
from shared.models import RunHistoryQuery, SchemaField, TableSpec
from tests.contract.support import (
    RICH_SPEC,
    SIMPLE_SPEC,
    Backend,
    GcpStack,
    rich_rows,
    simple_rows,
    unique,
)

pytestmark = pytest.mark.timeout(60)

RUNS_SPEC = TableSpec(
    schema=(
        SchemaField("phase", "STRING"),
        SchemaField("processor", "STRING"),
        SchemaField("status", "STRING"),
        SchemaField("started_at", "TIMESTAMP"),
        SchemaField("error", "STRING"),
    ),
    time_partitioning={"type": "DAY", "field": "started_at"},
)


def test_ping_answers(backend: Backend) -> None:
    backend.warehouse.ping()


def test_dataset_metadata_reports_existing_tables_only(backend: Backend) -> None:
    backend.create_source_table("orders", RICH_SPEC, rich_rows(40))  # days 2026-11-01..28
    backend.create_source_table("plain", SIMPLE_SPEC, simple_rows(3))
    now = datetime.now(UTC)

    metadata = backend.warehouse.dataset_metadata(backend.dataset, ["orders", "plain", "nope"])

    assert sorted(metadata) == ["orders", "plain"]
    orders, plain = metadata["orders"], metadata["plain"]
    assert (orders.table, orders.rows, orders.newest_partition) == ("orders", 40, "20261128")
    assert (plain.rows, plain.newest_partition) == (3, None)
    for meta in (orders, plain):
        assert meta.last_modified is not None
        assert abs(meta.last_modified - now) < timedelta(minutes=5)


def test_dataset_metadata_of_a_missing_dataset_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.warehouse.dataset_metadata(unique("missing"), ["t"])


def test_newest_value_is_the_max_within_the_partitions_since(backend: Backend) -> None:
    table = backend.create_source_table("orders", RICH_SPEC, rich_rows(10))  # days 01..10

    everything = backend.warehouse.newest_value(table, "at", None, None)
    recent = backend.warehouse.newest_value(table, "at", "day", date(2026, 11, 5))
    none_yet = backend.warehouse.newest_value(table, "at", "day", date(2026, 12, 1))
    by_date = backend.warehouse.newest_value(table, "day", "day", date(2026, 11, 5))

    assert everything == recent == datetime(2026, 11, 10, 12, 34, 56, 123456, tzinfo=UTC)
    assert none_yet is None
    assert by_date == datetime(2026, 11, 10, tzinfo=UTC)


def test_run_history_counts_runs_per_phase_and_lists_recent_errors(backend: Backend) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    def at(hours_ago: float) -> str:
        return (now - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")

    rows = [
        {"phase": "phase1", "processor": "scraper", "status": "success", "started_at": at(1)},
        {"phase": "phase1", "processor": "scraper", "status": "failed", "started_at": at(2),
         "error": "HTTP 500 from upstream"},
        {"phase": "phase1", "processor": "scraper", "status": "success", "started_at": at(3)},
        {"phase": "phase2", "processor": "loader", "status": "partial", "started_at": at(4)},
        {"phase": "phase2", "processor": "loader", "status": "failed", "started_at": at(5),
         "error": None},
        {"phase": "phase2", "processor": "loader", "status": "failed", "started_at": at(50),
         "error": "too old to count"},
    ]  # fmt: skip
    table = backend.create_source_table("runs", RUNS_SPEC, rows)
    query = RunHistoryQuery(
        table=table,
        phase_column="phase",
        processor_column="processor",
        status_column="status",
        time_column="started_at",
        error_column="error",
        success_values=("success", "partial"),
        since=now - timedelta(hours=24),
        error_limit=5,
    )

    history = backend.warehouse.run_history(query)

    assert [(p.phase, p.runs, p.succeeded) for p in history.phases] == [
        ("phase1", 3, 2),
        ("phase2", 2, 1),
    ]
    assert history.phases[0].last_run == now - timedelta(hours=1)
    assert [(e.phase, e.processor, e.status, e.message) for e in history.errors] == [
        ("phase1", "scraper", "failed", "HTTP 500 from upstream"),
        ("phase2", "loader", "failed", None),
    ]
    assert history.errors[0].time == now - timedelta(hours=2)


def test_bigquery_dataset_metadata_is_one_parameterised_query(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    backend.create_source_table("plain", SIMPLE_SPEC, simple_rows(1))
    before = len(stack.bq_shim.recorded())

    backend.warehouse.dataset_metadata(backend.dataset, ["plain", "nope"])

    calls = stack.bq_shim.recorded()[before:]
    queries = [r for r in calls if r.path.endswith("/queries")]
    assert len(queries) == 1
    (query,) = queries
    assert "INFORMATION_SCHEMA.PARTITIONS" in query.json["query"]
    assert "nope" not in query.json["query"]
    (parameter,) = query.json["queryParameters"]
    assert parameter["name"] == "tables"
    assert [v["value"] for v in parameter["parameterValue"]["arrayValues"]] == ["plain", "nope"]
