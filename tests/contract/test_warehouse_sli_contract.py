"""The Warehouse port's SLA-evaluator queries, on the local and the BigQuery adapter.

Fingerprints (a restored copy hashes like its source), run buckets, daily aggregates,
load times, and a dataset's default table expiration. GCP-only tests check what the
emulator can't show (the partition-filter rule, the SQL and request bodies sent).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.config import BackupSettings
from shared.errors import BadInput, NotFound
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.models import (
    DailyAggregate,
    DailyAggregateQuery,
    Fingerprint,
    RunBucket,
    RunBucketQuery,
    SchemaField,
    TableSpec,
)
from shared.services.backup import BackupDeps, run_backup_to_end
from shared.services.restore import RestoreDeps, restore_run
from tests.contract.support import RICH_SPEC, SIMPLE_SPEC, Backend, GcpStack, rich_rows, unique

pytestmark = pytest.mark.timeout(120)

EMPTY_DIGEST = "0" * 16


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _naive(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat()


# -- fingerprint ------------------------------------------------------------------------
def _rows_with_gaps() -> list[dict[str, Any]]:
    """Rich rows plus one of NULLs (no tags given: BigQuery stores [], a local table NULL)."""
    return [*rich_rows(40), {"id": 900, "day": None, "at": None, "amount": None}]


def _restored_copy(backend: Backend, source: TableRef) -> TableRef:
    """Back ``source`` up and restore it into ``<dataset>_restored`` through the services."""
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
    assert outcome.manifest is not None and outcome.manifest.status == "complete", outcome
    report = restore_run(
        outcome.run_id,
        RestoreDeps(
            backend.warehouse, backend.store, backend.bucket, "backups", poll_interval=0.05
        ),
        target_dataset=f"{backend.dataset}_restored",
    )
    assert report.ok, report
    return TableRef(f"{backend.dataset}_restored", source.table)


def test_a_restored_copy_has_the_fingerprint_of_its_source(backend: Backend) -> None:
    source = backend.create_source_table("orders", RICH_SPEC, _rows_with_gaps())

    restored = _restored_copy(backend, source)

    original = backend.warehouse.fingerprint(source)
    assert original.rows == 41
    assert original.digest != EMPTY_DIGEST
    assert len(original.digest) == 16 and int(original.digest, 16) >= 0
    assert backend.warehouse.fingerprint(restored) == original


def test_the_fingerprint_ignores_row_order_and_sees_one_changed_value(backend: Backend) -> None:
    rows = rich_rows(30)
    changed = [dict(r) for r in rows]
    changed[17]["detail"] = {"kind": "k", "score": 171}  # one nested value: 170 → 171
    forward = backend.create_source_table("forward", RICH_SPEC, rows)
    backward = backend.create_source_table("backward", RICH_SPEC, rows[::-1])
    other = backend.create_source_table("changed", RICH_SPEC, changed)

    digests = [backend.warehouse.fingerprint(t) for t in (forward, backward, other)]

    assert digests[0] == digests[1]
    assert digests[2].rows == digests[0].rows == 30
    assert digests[2].digest != digests[0].digest


def test_the_fingerprint_sees_duplicate_rows_swapped_for_other_duplicates(
    backend: Backend,
) -> None:
    # XOR alone would not: A ^ A == C ^ C == 0, so {A, A, B} and {C, C, B} would collide
    a, b, c = ({"id": i, "name": f"n{i}"} for i in range(3))
    first = backend.create_source_table("aab", SIMPLE_SPEC, [a, a, b])
    second = backend.create_source_table("ccb", SIMPLE_SPEC, [c, c, b])

    one, two = backend.warehouse.fingerprint(first), backend.warehouse.fingerprint(second)

    assert one.rows == two.rows == 3
    assert one.digest != two.digest


def test_the_fingerprint_of_an_empty_table_is_zero(backend: Backend) -> None:
    table = backend.create_source_table("empty", RICH_SPEC, [])

    assert backend.warehouse.fingerprint(table) == Fingerprint(0, EMPTY_DIGEST)


def test_the_fingerprint_of_a_missing_table_is_not_found(backend: Backend) -> None:
    backend.warehouse.ensure_dataset(backend.dataset)

    with pytest.raises(NotFound):
        backend.warehouse.fingerprint(backend.table("nope"))


def test_the_fingerprint_at_an_instant_reads_the_table_then_or_refuses(backend: Backend) -> None:
    table = backend.create_source_table("orders", RICH_SPEC, rich_rows(10))
    then = backend.settled_instant()
    before = backend.warehouse.fingerprint(table)

    assert backend.warehouse.fingerprint(table, then) == before  # nothing changed since
    backend.insert_rows(table, rich_rows(1, start=50))
    now = backend.warehouse.fingerprint(table)
    assert now.rows == 11 and now.digest != before.digest

    if backend.warehouse.time_travel:
        assert backend.warehouse.fingerprint(table, then) == before
    else:
        with pytest.raises(BadInput, match="no time travel"):
            backend.warehouse.fingerprint(table, then)
    with pytest.raises(BadInput, match="time zone"):
        backend.warehouse.fingerprint(table, then.replace(tzinfo=None))


def test_bigquery_fingerprint_is_one_query_as_of_the_instant_in_microseconds(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    table = backend.create_source_table("orders", RICH_SPEC, rich_rows(3))
    instant = backend.settled_instant()
    before = len(stack.bq_shim.recorded())

    backend.warehouse.fingerprint(table, instant)

    (sql,) = stack.bq_shim.queries(before)
    micros = (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert f"AS opsuite_row FOR SYSTEM_TIME AS OF TIMESTAMP_MICROS({micros})" in sql
    assert "BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(opsuite_row)))" in sql
    assert "WHERE" not in sql  # no partition filter is required here


def test_bigquery_fingerprint_alias_is_no_column_name(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    spec = TableSpec((SchemaField("opsuite_row", "STRING"), SchemaField("id", "INT64")))
    table = backend.create_source_table("shadowing", spec, [{"opsuite_row": "x", "id": 1}])
    before = len(stack.bq_shim.recorded())

    assert backend.warehouse.fingerprint(table).rows == 1

    (sql,) = stack.bq_shim.queries(before)
    assert "TO_JSON_STRING(opsuite_row_)" in sql


# -- run buckets ------------------------------------------------------------------------
RUNS_SPEC = TableSpec(
    schema=(
        SchemaField("phase", "STRING"),
        SchemaField("status", "STRING"),
        SchemaField("started_at", "TIMESTAMP"),
        SchemaField("started_local", "DATETIME"),
    ),
    time_partitioning={"type": "DAY", "field": "started_at"},
)
FILTERED_RUNS_SPEC = TableSpec(
    RUNS_SPEC.schema, RUNS_SPEC.time_partitioning, require_partition_filter=True
)
BASE = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)
#: (time, phase, status): around since=BASE and until=BASE+3h
RUNS: list[tuple[datetime, str, str | None]] = [
    (BASE - HOUR, "p1", "success"),  # before the window
    (BASE, "p1", "success"),  # exactly since: excluded
    (BASE + US, "p1", "success"),  # → BASE+1h
    (BASE + HOUR, "p1", "failed"),  # exactly on a multiple: the bucket ending there
    (BASE + HOUR + US, "p1", "success"),  # → BASE+2h
    (BASE + 2 * HOUR + timedelta(minutes=10), "p2", None),  # a run, not a success
    (BASE + 2.5 * HOUR, "p2", "partial"),
    (BASE + 3 * HOUR, "p2", "failed"),  # exactly until: included
    (BASE + 3 * HOUR + US, "p2", "success"),  # after the window
]
SUCCESS = ("success", "partial")


def _run_rows() -> list[dict[str, Any]]:
    return [
        {"phase": p, "status": s, "started_at": _stamp(t), "started_local": _naive(t)}
        for t, p, s in RUNS
    ]


def _expected_buckets(seconds: int, since: datetime, until: datetime) -> list[RunBucket]:
    """The definition, in Python: the first multiple of ``seconds`` at or after t."""
    counts: dict[tuple[datetime, str], list[int]] = {}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for t, phase, status in RUNS:
        if not since < t <= until:
            continue
        micros = (t - epoch) // US
        end = epoch + timedelta(seconds=seconds * math.ceil(micros / (seconds * 1_000_000)))
        tally = counts.setdefault((end, phase), [0, 0])
        tally[0] += 1
        tally[1] += status in SUCCESS
    return [RunBucket(e, p, n, ok) for (e, p), (n, ok) in sorted(counts.items())]


def _bucket_query(table: TableRef, column: str, seconds: int) -> RunBucketQuery:
    return RunBucketQuery(
        table=table,
        phase_column="phase",
        status_column="status",
        time_column=column,
        success_values=SUCCESS,
        since=BASE,
        until=BASE + 3 * HOUR,
        bucket_seconds=seconds,
    )


@pytest.mark.parametrize("column", ["started_at", "started_local"])
def test_run_buckets_count_runs_per_bucket_end_and_phase(backend: Backend, column: str) -> None:
    table = backend.create_source_table("runs", RUNS_SPEC, _run_rows())

    buckets = backend.warehouse.run_buckets(_bucket_query(table, column, 3600))

    assert buckets == [
        RunBucket(BASE + HOUR, "p1", 2, 1),
        RunBucket(BASE + 2 * HOUR, "p1", 1, 1),
        RunBucket(BASE + 3 * HOUR, "p2", 3, 1),
    ]
    assert all(b.end.utcoffset() == timedelta(0) for b in buckets)
    assert buckets == _expected_buckets(3600, BASE, BASE + 3 * HOUR)


@pytest.mark.parametrize("seconds", [7, 5400, 86400])
def test_run_buckets_end_on_multiples_since_the_epoch(backend: Backend, seconds: int) -> None:
    table = backend.create_source_table("runs", RUNS_SPEC, _run_rows())

    buckets = backend.warehouse.run_buckets(_bucket_query(table, "started_at", seconds))

    assert buckets == _expected_buckets(seconds, BASE, BASE + 3 * HOUR)
    assert all(int(b.end.timestamp()) % seconds == 0 for b in buckets)


def test_run_buckets_refuse_a_bad_bucket_or_time_column(backend: Backend) -> None:
    table = backend.create_source_table("runs", RUNS_SPEC, _run_rows())

    for seconds in (0, -60, 400 * 86400):
        with pytest.raises(BadInput, match="bucket_seconds"):
            backend.warehouse.run_buckets(_bucket_query(table, "started_at", seconds))
    with pytest.raises(BadInput, match="phase"):
        backend.warehouse.run_buckets(_bucket_query(table, "phase", 3600))
    with pytest.raises(NotFound):
        backend.warehouse.run_buckets(_bucket_query(backend.table("nope"), "started_at", 60))


# -- daily aggregates -------------------------------------------------------------------
METRICS_SPEC = TableSpec(
    schema=(
        SchemaField("game_date", "DATE"),
        SchemaField("predicted_at", "TIMESTAMP"),
        SchemaField("abs_error", "FLOAT64"),
        SchemaField("line", "NUMERIC"),
        SchemaField("points", "INT64"),
        SchemaField("model", "STRING"),
    ),
    time_partitioning={"type": "DAY", "field": "game_date"},
)
FILTERED_METRICS_SPEC = TableSpec(
    METRICS_SPEC.schema, METRICS_SPEC.time_partitioning, require_partition_filter=True
)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _metric(
    at: datetime, error: float | None, *, game: date | None = None, model: str | None = "m1"
) -> dict[str, Any]:
    return {
        "game_date": (game or at.date()).isoformat(),
        "predicted_at": _stamp(at),
        "abs_error": error,
        "line": None if error is None else f"{error + 20:.3f}",
        "points": None if error is None else int(error * 10),
        "model": model,
    }


METRIC_ROWS = [
    _metric(NOV - US, 100.0),  # just before since
    _metric(NOV, 1.0),  # exactly since: in
    _metric(NOV + 12 * HOUR, 3.0),
    _metric(NOV + 13 * HOUR, None),  # NULL: not counted
    _metric(NOV + DAY + HOUR, 2.5),
    _metric(NOV + DAY + 2 * HOUR, 5.0, model=None),  # left out by not_null="model"
    # no row predicted on Nov 3: no entry for it
    _metric(NOV + 4 * DAY - US, 4.0, game=date(2026, 11, 3)),  # exactly until (Nov 4): in
    _metric(NOV + 4 * DAY, 100.0),  # after until
]


def _aggregates(
    backend: Backend,
    table: TableRef,
    column: str,
    time_column: str = "predicted_at",
    not_null: str | None = None,
    since: datetime = NOV,
    until: datetime = NOV + 4 * DAY - US,
) -> list[DailyAggregate]:
    return backend.warehouse.daily_aggregates(
        DailyAggregateQuery(table, column, time_column, since, until, not_null)
    )


def test_daily_aggregates_per_utc_day_of_a_timestamp(backend: Backend) -> None:
    table = backend.create_source_table("metrics", METRICS_SPEC, METRIC_ROWS)

    days = _aggregates(backend, table, "abs_error")

    assert days == [
        DailyAggregate(date(2026, 11, 1), 2, 4.0, 1.0, 3.0),
        DailyAggregate(date(2026, 11, 2), 2, 7.5, 2.5, 5.0),
        DailyAggregate(date(2026, 11, 4), 1, 4.0, 4.0, 4.0),
    ]
    assert all(type(d.total) is float and type(d.minimum) is float for d in days)


def test_daily_aggregates_skip_rows_whose_not_null_column_is_null(backend: Backend) -> None:
    table = backend.create_source_table("metrics", METRICS_SPEC, METRIC_ROWS)

    days = _aggregates(backend, table, "abs_error", not_null="model")

    assert [(d.day.day, d.count, d.total) for d in days] == [(1, 2, 4.0), (2, 1, 2.5), (4, 1, 4.0)]


def test_daily_aggregates_of_numeric_and_integer_columns(backend: Backend) -> None:
    table = backend.create_source_table("metrics", METRICS_SPEC, METRIC_ROWS)

    lines = _aggregates(backend, table, "line")
    points = _aggregates(backend, table, "points")

    assert [(d.count, d.total, d.minimum, d.maximum) for d in lines] == [
        (2, 44.0, 21.0, 23.0),
        (2, 47.5, 22.5, 25.0),
        (1, 24.0, 24.0, 24.0),
    ]
    assert [(d.count, d.total) for d in points] == [(2, 40.0), (2, 75.0), (1, 40.0)]


def test_daily_aggregates_by_a_date_column_compare_utc_dates(backend: Backend) -> None:
    table = backend.create_source_table("metrics", METRICS_SPEC, METRIC_ROWS)

    # DATE bounds are the instants' UTC dates: Nov 1 12:00 → Nov 1, Nov 3 00:00 → Nov 3
    days = _aggregates(
        backend, table, "abs_error", "game_date", since=NOV + 12 * HOUR, until=NOV + 2 * DAY
    )

    assert [(d.day, d.count, d.total) for d in days] == [
        (date(2026, 11, 1), 2, 4.0),  # the row at 00:00 counts: its date is Nov 1
        (date(2026, 11, 2), 2, 7.5),
        (date(2026, 11, 3), 1, 4.0),  # game_date Nov 3, predicted on Nov 4
    ]


def test_daily_aggregates_refuse_a_column_that_is_not_numeric(backend: Backend) -> None:
    table = backend.create_source_table("metrics", METRICS_SPEC, METRIC_ROWS)

    with pytest.raises(BadInput, match="model"):
        _aggregates(backend, table, "model")
    with pytest.raises(BadInput, match="abs_error"):
        _aggregates(backend, table, "points", time_column="abs_error")
    with pytest.raises(BadInput, match="nope"):
        _aggregates(backend, table, "nope")
    with pytest.raises(NotFound):
        _aggregates(backend, backend.table("missing"), "abs_error")


def test_daily_aggregates_of_an_empty_window_are_empty(backend: Backend) -> None:
    table = backend.create_source_table("metrics", METRICS_SPEC, METRIC_ROWS)

    assert _aggregates(backend, table, "abs_error", since=NOV + 2 * DAY, until=NOV + 3 * DAY) == []


# -- load times -------------------------------------------------------------------------
LOADS_SPEC = TableSpec(
    schema=(
        SchemaField("id", "INT64"),
        SchemaField("loaded_at", "TIMESTAMP"),
        SchemaField("loaded_local", "DATETIME"),
    )
)
LOADS = [NOV + 6 * HOUR, NOV, NOV + 6 * HOUR, NOV - US, NOV + DAY, NOV + DAY + US, None]


def _load_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "loaded_at": None if t is None else _stamp(t),
            "loaded_local": None if t is None else _naive(t),
        }
        for i, t in enumerate(LOADS)
    ]


@pytest.mark.parametrize("column", ["loaded_at", "loaded_local"])
def test_load_times_are_distinct_ascending_and_inclusive(backend: Backend, column: str) -> None:
    table = backend.create_source_table("loads", LOADS_SPEC, _load_rows())

    times = backend.warehouse.load_times(table, column, NOV, NOV + DAY)

    assert times == [NOV, NOV + 6 * HOUR, NOV + DAY]
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_load_times_refuse_a_column_that_is_no_time(backend: Backend) -> None:
    table = backend.create_source_table("loads", LOADS_SPEC, _load_rows())

    with pytest.raises(BadInput, match="id"):
        backend.warehouse.load_times(table, "id", NOV, NOV + DAY)
    with pytest.raises(NotFound):
        backend.warehouse.load_times(backend.table("nope"), "loaded_at", NOV, NOV + DAY)


# -- tables that require a partition filter ---------------------------------------------
def _sla_calls(backend: Backend, runs: TableRef, metrics: TableRef) -> None:
    """Every SLA query over two filtered tables, with the answers the data fixes."""
    assert backend.warehouse.run_buckets(_bucket_query(runs, "started_at", 3600)) == (
        _expected_buckets(3600, BASE, BASE + 3 * HOUR)
    )
    assert backend.warehouse.load_times(runs, "started_at", BASE, BASE + HOUR) == [
        BASE,
        BASE + US,
        BASE + HOUR,
    ]
    assert [d.count for d in _aggregates(backend, metrics, "abs_error")] == [2, 2, 1]
    assert backend.warehouse.fingerprint(runs).rows == len(RUNS)


def test_sla_queries_read_tables_that_require_a_partition_filter(backend: Backend) -> None:
    runs = backend.create_source_table("runs", FILTERED_RUNS_SPEC, _run_rows())
    metrics = backend.create_source_table("metrics", FILTERED_METRICS_SPEC, METRIC_ROWS)

    assert backend.warehouse.get_table(runs).require_partition_filter is True
    _sla_calls(backend, runs, metrics)


def test_bigquery_sla_queries_filter_partitions_as_bigquery_requires(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    runs = backend.create_source_table("runs", FILTERED_RUNS_SPEC, _run_rows())
    metrics = backend.create_source_table("metrics", FILTERED_METRICS_SPEC, METRIC_ROWS)
    stack.bq_shim.enforce_partition_filter("runs", "started_at")
    stack.bq_shim.enforce_partition_filter("metrics", "game_date")
    before = len(stack.bq_shim.recorded())

    _sla_calls(backend, runs, metrics)  # the shim answers 400 to an unfiltered query

    queries = stack.bq_shim.queries(before)
    assert len(queries) == 4  # one query per call
    assert sum("TIMESTAMP '0001-01-01 00:00:00+00'" in q for q in queries) == 3
    assert (
        sum("(`game_date` IS NULL OR `game_date` >= DATE '0001-01-01')" in q for q in queries) == 1
    )


def test_bigquery_sla_queries_bind_bounds_in_the_column_type(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    metrics = backend.create_source_table("metrics", METRICS_SPEC, METRIC_ROWS)
    loads = backend.create_source_table("loads", LOADS_SPEC, _load_rows())
    runs = backend.create_source_table("runs", RUNS_SPEC, _run_rows())
    before = len(stack.bq_shim.recorded())

    _aggregates(backend, metrics, "abs_error", "game_date")
    backend.warehouse.load_times(loads, "loaded_local", NOV, NOV + DAY)
    backend.warehouse.run_buckets(_bucket_query(runs, "started_at", 60))

    requests = [r for r in stack.bq_shim.recorded()[before:] if r.path.endswith("/queries")]
    types = [
        {p["name"]: p["parameterType"]["type"] for p in r.json["queryParameters"]} for r in requests
    ]
    assert types == [
        {"since": "DATE", "until": "DATE"},
        {"since": "DATETIME", "until": "DATETIME"},
        {"ok": "ARRAY", "since": "TIMESTAMP", "until": "TIMESTAMP"},
    ]
    assert "DIV(UNIX_MICROS(`started_at`), 60000000)" in requests[2].json["query"]


# -- ensure_dataset with a default table expiration -------------------------------------
def test_ensure_dataset_refuses_a_bad_expiration(backend: Backend) -> None:
    for hours in (0, -1):
        with pytest.raises(BadInput, match="table_expiration_hours"):
            backend.warehouse.ensure_dataset(unique("ds"), table_expiration_hours=hours)


def test_bigquery_ensure_dataset_sets_the_default_table_expiration_of_a_new_dataset(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, stack = gcp
    fresh, plain = unique("drill"), unique("plain")

    backend.warehouse.ensure_dataset(fresh, table_expiration_hours=24)
    backend.warehouse.ensure_dataset(fresh, table_expiration_hours=1)  # exists: left alone
    backend.warehouse.ensure_dataset(plain)

    inserts = stack.bq_shim.recorded(lambda r: r.method == "POST" and r.path.endswith("/datasets"))
    bodies = {r.json["datasetReference"]["datasetId"]: r.json for r in inserts}
    assert set(bodies) >= {fresh, plain}
    assert [r.json["datasetReference"]["datasetId"] for r in inserts].count(fresh) == 1
    assert bodies[fresh]["defaultTableExpirationMs"] == str(24 * 3_600_000)
    assert "defaultTableExpirationMs" not in bodies[plain]
    stored = stack.bq_client.get_dataset(f"{fresh}", retry=stack.retry(), timeout=5)
    assert stored.default_table_expiration_ms == 24 * 3_600_000


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _local_warehouse(tmp_path: Path, clock: Callable[[], datetime]) -> Any:
    from shared.adapters.local.warehouse import LocalWarehouse

    return LocalWarehouse(tmp_path / "w.duckdb", tmp_path / "gcs", tmp_path / "jobs", clock=clock)


def test_local_tables_in_a_dataset_with_an_expiration_expire(tmp_path: Path) -> None:
    clock = _Clock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    warehouse = _local_warehouse(tmp_path, clock)
    try:
        warehouse.ensure_dataset("drill", table_expiration_hours=2)
        warehouse.ensure_dataset("kept")
        warehouse.ensure_dataset("kept", table_expiration_hours=1)  # exists: left alone
        for dataset in ("drill", "kept"):
            warehouse.create_table(TableRef(dataset, "orders"), SIMPLE_SPEC)
        clock.now += timedelta(hours=1)
        warehouse.create_table(TableRef("drill", "later"), SIMPLE_SPEC)

        clock.now += timedelta(hours=1)  # "orders" is 2 h old, "later" 1 h

        assert warehouse.table_exists(TableRef("drill", "orders")) is False
        assert warehouse.list_tables("drill") == ["later"]
        assert warehouse.dataset_metadata("drill", ["orders", "later"]).keys() == {"later"}
        with pytest.raises(NotFound):
            warehouse.get_table(TableRef("drill", "orders"))
        warehouse.create_table(TableRef("drill", "orders"), SIMPLE_SPEC)  # the name is free
        assert warehouse.list_tables("drill") == ["later", "orders"]
        clock.now += timedelta(days=30)
        assert warehouse.list_tables("drill") == []
        assert warehouse.list_tables("kept") == ["orders"]
    finally:
        warehouse.close()
