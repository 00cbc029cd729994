"""The embedded warehouse: DuckDB, with datasets as schemas.

It behaves like BigQuery where the backup depends on it:

* jobs have ids; inserting an id that exists attaches to the existing job (BigQuery
  answers 409 and the GCP adapter attaches the same way); the registry is one JSON
  file per job under ``jobs_dir`` created with ``O_EXCL``;
* jobs run on worker threads and are polled, like a server's; a job whose owning
  process died is reported failed with ``backendError`` (retry under a new id);
* extract writes real Avro container files (BigQuery's schema mapping, the
  configured codec) sharded at ``max_file_bytes``, streaming in batches so memory
  stays flat, or Parquet through DuckDB's own writer;
* BigQuery metadata that DuckDB has no place for (the BigQuery schema with modes
  and descriptions, partitioning, clustering, labels, last modified time) lives in
  ``_opsuite_meta.tables``.

DuckDB has no time travel: ``row_count_at``, ``fingerprint`` and extract refuse to read
a table modified after the requested instant instead of silently reading a later state.

A dataset created with ``table_expiration_hours`` records it in
``_opsuite_meta.datasets``; each table then created in it gets BigQuery's
``expirationTime`` in its resource, and from then on reads as gone (``table_exists``,
``list_tables``, ``dataset_metadata``, everything that needs the table) and is dropped
on the next look. Nothing runs in the background: an expired table no one looks at
stays on disk until someone does.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import fastavro

from shared import identifiers
from shared.avro import avro_schema
from shared.errors import (
    AlreadyExists,
    BadInput,
    NotFound,
    PermanentError,
    TransientError,
)
from shared.identifiers import TableRef
from shared.models import (
    DailyAggregate,
    DailyAggregateQuery,
    ExtractRequest,
    Fingerprint,
    JobError,
    JobStatus,
    LoadRequest,
    PhaseStats,
    RunBucket,
    RunBucketQuery,
    RunError,
    RunHistory,
    RunHistoryQuery,
    SchemaField,
    TableInfo,
    TableMetadata,
    TableSpec,
    as_utc_datetime,
    column_names,
    schema_from_api,
    schema_to_api,
    split_gs_uri,
)

META_SCHEMA = "_opsuite_meta"
_AVRO_CODECS = {"SNAPPY": "snappy", "DEFLATE": "deflate", "NONE": "null"}
_PARQUET_CODECS = {"SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd", "NONE": "uncompressed"}
_SCALAR_TYPES = {
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "TIME": "TIME",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATETIME": "TIMESTAMP",
    "NUMERIC": "DECIMAL(38,9)",
    "GEOGRAPHY": "VARCHAR",
    "JSON": "VARCHAR",
}
_DUCK_TO_BQ = {
    "VARCHAR": "STRING",
    "BLOB": "BYTES",
    "BIGINT": "INT64",
    "INTEGER": "INT64",
    "SMALLINT": "INT64",
    "DOUBLE": "FLOAT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "TIME": "TIME",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIMESTAMP": "DATETIME",
    "DECIMAL(38,9)": "NUMERIC",
}
EPOCH_DATE = "DATE '1970-01-01'"
ROW_BATCH = 20_000
FIRST_BATCH = 1_000


def quote(name: str) -> str:
    """Quote an identifier that has already passed :mod:`shared.identifiers`."""
    return '"' + name.replace('"', '""') + '"'


def qualified(table: TableRef) -> str:
    return f"{quote(table.dataset)}.{quote(table.table)}"


def duck_type(field: SchemaField) -> str:
    if field.type == "RECORD":
        inner = ", ".join(f"{quote(f.name)} {duck_type(f)}" for f in field.fields)
        base = f"STRUCT({inner})"
    elif field.type in _SCALAR_TYPES:
        base = _SCALAR_TYPES[field.type]
    else:
        raise BadInput(f"column {field.name}: type {field.type} is not supported locally")
    return f"{base}[]" if field.mode == "REPEATED" else base


NULL_PARTITION = "__NULL__"
OUTSIDE_RANGE_PARTITION = "__UNPARTITIONED__"
_TIME_PARTITION_FORMATS = {"HOUR": "%Y%m%d%H", "DAY": "%Y%m%d", "MONTH": "%Y%m", "YEAR": "%Y"}


def time_partition_id(partitioning: Mapping[str, Any], value: date | datetime | None) -> str:
    """BigQuery's partition id of ``value`` under time-unit ``partitioning`` (UTC)."""
    if value is None:
        return NULL_PARTITION
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    elif value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(_TIME_PARTITION_FORMATS[str(partitioning.get("type") or "DAY")])


def range_partition_id(partitioning: Mapping[str, Any], value: int | None) -> str:
    """BigQuery's partition id of ``value`` under integer-range ``partitioning``."""
    if value is None:
        return NULL_PARTITION
    bounds = partitioning["range"]
    start, end, interval = int(bounds["start"]), int(bounds["end"]), int(bounds["interval"])
    if not start <= value < end:
        return OUTSIDE_RANGE_PARTITION
    return str(start + (value - start) // interval * interval)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch_ms(instant: datetime) -> int:
    return (instant - datetime.fromtimestamp(0, UTC)) // timedelta(milliseconds=1)


def _python_converter(field: SchemaField) -> Callable[[Any], Any] | None:
    """Turn DuckDB's Python values into what the Avro writer expects, where they differ."""
    if field.type == "DATETIME":
        base: Callable[[Any], Any] | None = lambda v: v.isoformat() if v is not None else None  # noqa: E731
    elif field.type == "RECORD":
        subs = {f.name: c for f in field.fields if (c := _python_converter(f)) is not None}
        if not subs:
            base = None
        else:

            def base(v: Any) -> Any:
                if v is None:
                    return None
                return {k: (subs[k](x) if k in subs else x) for k, x in v.items()}
    else:
        base = None
    if base is None or field.mode != "REPEATED":
        return base
    item = base
    return lambda v: [item(x) for x in v] if v is not None else []


def _export_expression(field: SchemaField) -> str:
    """Top-level conversions pushed into DuckDB: cheaper there than in Python."""
    col = quote(field.name)
    if field.mode == "REPEATED":
        return f"coalesce({col}, [])"
    if field.type == "DATE":
        return f"CAST({col} - {EPOCH_DATE} AS INTEGER)"
    if field.type == "TIMESTAMP":
        return f"epoch_us({col})"
    if field.type == "DATETIME":
        return f"strftime({col}, '%Y-%m-%dT%H:%M:%S.%f')"
    return col


def _load_expression(field: SchemaField, expr: str) -> str:
    """Convert what ``read_avro`` yields back into the column's DuckDB type."""
    if field.mode == "REPEATED":
        item = SchemaField(name=field.name, type=field.type, fields=field.fields)
        inner = _load_expression(item, "x")
        converted = expr if inner == "x" else f"list_transform({expr}, x -> {inner})"
        return f"coalesce({converted}, [])"
    if field.type == "RECORD":
        parts = ", ".join(
            f"{quote(f.name)} := {_load_expression(f, f'({expr}).{quote(f.name)}')}"
            for f in field.fields
        )
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack({parts}) END"
    if field.type == "NUMERIC":
        # Avro decimal(38, 9): big-endian two's complement of the unscaled value, at most
        # 16 bytes. Sign-extended to 16 bytes it casts to HUGEINT through BIT, all inside
        # DuckDB: a Python UDF here cost ~360 µs a value under the GIL (restores of
        # NUMERIC tables took seconds per 10k rows and serialised the others).
        sign = f"CASE WHEN {expr} < '\\x80'::BLOB THEN '\\x00'::BLOB ELSE '\\xFF'::BLOB END"
        unscaled = (
            f"CAST(CAST(repeat({sign}, 16 - octet_length({expr})) || {expr} AS BIT) AS HUGEINT)"
        )
        return (
            f"CASE WHEN {expr} IS NULL THEN NULL ELSE "
            f"CAST({unscaled} AS DECIMAL(38,0)) * CAST(0.000000001 AS DECIMAL(10,9)) END"
        )
    if field.type == "TIMESTAMP":
        return f"CAST({expr} AS TIMESTAMPTZ)"
    if field.type in ("DATETIME", "TIME", "DATE"):
        return f"CAST({expr} AS {_SCALAR_TYPES[field.type]})"
    return expr


#: Column types the SLA queries accept (BigQuery's names, as the schema records them).
NUMERIC_TYPES = frozenset({"INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC"})
TIME_TYPES = frozenset({"DATE", "DATETIME", "TIMESTAMP"})
#: The same bound as the BigQuery adapter's: a bucket longer than a year means nothing.
MAX_BUCKET_SECONDS = 366 * 86400
_UINT64_MASK = (1 << 64) - 1


def column_type(
    table: TableRef,
    schema: Sequence[SchemaField],
    column: str,
    allowed: frozenset[str] | None = None,
    kind: str = "",
) -> str:
    """The BigQuery type of top-level ``column`` (matched case-insensitively, as
    BigQuery and DuckDB do); BadInput if absent or, given ``allowed``, repeated or of
    another type."""
    identifiers.column_name(column)
    found = {f.name.lower(): f for f in schema}.get(column.lower())
    if found is None:
        raise BadInput(f"{table} has no column {column}")
    if allowed is not None and (found.type not in allowed or found.mode == "REPEATED"):
        mode = " REPEATED" if found.mode == "REPEATED" else ""
        raise BadInput(f"{table}.{column} is{mode} {found.type}, not a {kind} column")
    return found.type


def time_value(field_type: str, instant: datetime) -> date | datetime:
    """``instant`` in the column's own type (a DATE compared with a timestamp would be
    its midnight, so a DATE column is bounded by the instant's UTC date)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise BadInput(f"instant {instant.isoformat()} has no time zone")
    utc = instant.astimezone(UTC)
    if field_type == "DATE":
        return utc.date()
    if field_type == "DATETIME":
        return utc.replace(tzinfo=None)
    return utc


def canonical_expression(field: SchemaField, expr: str) -> str:
    """``expr`` with BigQuery's storage rule applied: a REPEATED value is never NULL
    (an empty array), at every nesting level, as export writes it. A local table can
    hold a NULL list that its restored copy (from Avro) holds as ``[]``."""
    if field.mode == "REPEATED":
        item = SchemaField(name=field.name, type=field.type, fields=field.fields)
        inner = canonical_expression(item, "x")
        converted = expr if inner == "x" else f"list_transform({expr}, x -> {inner})"
        return f"coalesce({converted}, [])"
    if field.type == "RECORD":
        parts = [(f, canonical_expression(f, f"({expr}).{quote(f.name)}")) for f in field.fields]
        if all(p == f"({expr}).{quote(f.name)}" for f, p in parts):
            return expr
        packed = ", ".join(f"{quote(f.name)} := {p}" for f, p in parts)
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack({packed}) END"
    return expr


def fingerprint_digest(xor: object, total: object) -> str:
    """16 hex digits from the rows' hash XOR and exact hash SUM (None for no rows):
    XOR alone can't see a row that occurs twice ({A, A, B} and {C, C, B} collide)."""
    value = (int(str(xor or 0)) & _UINT64_MASK) ^ (int(str(total or 0)) & _UINT64_MASK)
    return f"{value:016x}"


def _sql_list(paths: Sequence[Path]) -> str:
    """Paths as a DuckDB list of string literals (not Python's repr: it would write
    ``\u3000`` for a non-ASCII space, which DuckDB doesn't unescape)."""
    return "[" + ", ".join("'" + p.as_posix().replace("'", "''") + "'" for p in paths) + "]"


class LocalWarehouse:
    time_travel = False  # tables are read as they are now (or refused, see _check_instant)

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        gcs_root: str | os.PathLike[str],
        jobs_dir: str | os.PathLike[str],
        *,
        max_file_bytes: int = 256 * 1024 * 1024,
        workers: int = 2,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock``: what "now" is when tables expire (tests move it; default: the
        system clock)."""
        self.db_path = Path(db_path)
        self.gcs_root = Path(gcs_root)
        self.jobs_dir = Path(jobs_dir)
        self.max_file_bytes = max_file_bytes
        self._workers = workers
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._clock = clock or _now

    # -- connection -------------------------------------------------------------------
    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    con = duckdb.connect(str(self.db_path))
                except duckdb.IOException as exc:
                    raise TransientError(
                        f"local warehouse {self.db_path} is busy (another process has it open)"
                    ) from exc
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.tables ("
                    "dataset VARCHAR, table_name VARCHAR, schema_json VARCHAR, "
                    "resource_json VARCHAR, modified_at TIMESTAMPTZ, "
                    "PRIMARY KEY (dataset, table_name))"
                )
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.datasets ("
                    "dataset VARCHAR PRIMARY KEY, table_expiration_ms BIGINT)"
                )
                self._con = con
            return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A per-thread cursor (DuckDB connections are not shared across threads)."""
        con = self._connection()
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None or getattr(self._local, "owner", None) is not con:
            cur = con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
            self._local.owner = con
        return cur

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if self._con is not None:
                self._con.close()
                self._con = None

    def _submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, "local-bq-job")
            self._executor.submit(fn)

    # -- metadata -----------------------------------------------------------------------
    def _meta(self, table: TableRef) -> tuple[str | None, str | None, datetime | None]:
        row = (
            self.cursor()
            .execute(
                f"SELECT schema_json, resource_json, modified_at FROM {META_SCHEMA}.tables "
                "WHERE dataset = ? AND table_name = ?",
                [table.dataset, table.table],
            )
            .fetchone()
        )
        return (row[0], row[1], row[2]) if row else (None, None, None)

    def _set_meta(
        self,
        table: TableRef,
        *,
        schema: Sequence[SchemaField] | None = None,
        resource: Mapping[str, Any] | None = None,
        modified_at: datetime | None = None,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        cur = cursor or self.cursor()
        old_schema, old_resource, _ = self._meta(table)
        cur.execute(
            f"INSERT OR REPLACE INTO {META_SCHEMA}.tables VALUES (?, ?, ?, ?, ?)",
            [
                table.dataset,
                table.table,
                json.dumps(schema_to_api(schema)) if schema is not None else old_schema,
                json.dumps(resource) if resource is not None else old_resource,
                modified_at or _now(),
            ],
        )

    def touch(self, table: TableRef, modified_at: datetime | None = None) -> None:
        """Record a modification (the seed uses this to age tables)."""
        self._set_meta(table, modified_at=modified_at)

    def _schema(self, table: TableRef, schema_json: str | None) -> tuple[SchemaField, ...]:
        if schema_json:
            return schema_from_api(json.loads(schema_json))
        rows = (
            self.cursor()
            .execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [table.dataset, table.table],
            )
            .fetchall()
        )
        fields = []
        for name, data_type, nullable in rows:
            bq_type = _DUCK_TO_BQ.get(str(data_type))
            if bq_type is None:
                raise PermanentError(
                    f"{table}: column {name} has type {data_type}, which has no BigQuery "
                    "mapping; create the table through opsuite to record its schema"
                )
            fields.append(
                SchemaField(name, bq_type, "NULLABLE" if nullable == "YES" else "REQUIRED")
            )
        return tuple(fields)

    # -- Warehouse port -----------------------------------------------------------------
    def list_tables(self, dataset: str) -> list[str]:
        identifiers.dataset_id(dataset)
        cur = self.cursor()
        exists = cur.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", [dataset]
        ).fetchone()
        if not exists or not exists[0]:
            raise NotFound(f"dataset {dataset} does not exist")
        expired = self._drop_expired(dataset)
        rows = cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_type = 'BASE TABLE' ORDER BY table_name",
            [dataset],
        ).fetchall()
        return [str(r[0]) for r in rows if str(r[0]) not in expired]

    def _drop_expired(self, dataset: str, table: str | None = None) -> set[str]:
        """Tables of ``dataset`` (or just ``table``) past their ``expirationTime``: gone,
        as in BigQuery, and dropped here (a drop that loses a race to another thread
        is left to the next look; the table reads as gone all the same)."""
        sql = (
            f"SELECT table_name FROM {META_SCHEMA}.tables WHERE dataset = ? "
            "AND TRY_CAST(json_extract_string(resource_json, '$.expirationTime') AS BIGINT) <= ?"
        )
        params: list[Any] = [dataset, _epoch_ms(self._clock())]
        if table is not None:
            sql += " AND table_name = ?"
            params.append(table)
        expired = {str(r[0]) for r in self.cursor().execute(sql, params).fetchall()}
        for name in sorted(expired):
            with contextlib.suppress(duckdb.TransactionException, duckdb.CatalogException):
                self.delete_table(TableRef(dataset, name))
        return expired

    def table_exists(self, table: TableRef) -> bool:
        if self._drop_expired(table.dataset, table.table):
            return False
        row = (
            self.cursor()
            .execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = ? AND table_name = ?",
                [table.dataset, table.table],
            )
            .fetchone()
        )
        return bool(row and row[0])

    def _require(self, table: TableRef) -> None:
        if not self.table_exists(table):
            raise NotFound(f"table {table} does not exist")

    def get_table(self, table: TableRef) -> TableInfo:
        self._require(table)
        schema_json, resource_json, modified_at = self._meta(table)
        resource = json.loads(resource_json) if resource_json else {}
        count = self.count_rows(table)
        size = (
            self.cursor()
            .execute(
                "SELECT estimated_size, column_count FROM duckdb_tables() "
                "WHERE schema_name = ? AND table_name = ?",
                [table.dataset, table.table],
            )
            .fetchone()
        )
        spec = TableSpec.from_resource(resource)
        return TableInfo(
            ref=table,
            schema=self._schema(table, schema_json),
            num_rows=count,
            num_bytes=int(size[0] or 0) * 8 * int(size[1] or 1) if size else 0,
            modified=modified_at or datetime.fromtimestamp(0, UTC),
            time_partitioning=spec.time_partitioning,
            range_partitioning=spec.range_partitioning,
            clustering=spec.clustering,
            description=spec.description,
            labels=spec.labels,
            require_partition_filter=spec.require_partition_filter,
        )

    def count_rows(self, table: TableRef, *, info: TableInfo | None = None) -> int:
        # DuckDB has no partition-filter rule, so ``info`` (the port's hint) isn't needed.
        self._require(table)
        row = self.cursor().execute(f"SELECT count(*) FROM {qualified(table)}").fetchone()
        return int(row[0]) if row else 0

    def _check_instant(self, table: TableRef, instant: datetime) -> None:
        _, _, modified_at = self._meta(table)
        if modified_at is not None and modified_at > instant:
            raise PermanentError(
                f"{table} changed at {modified_at.isoformat()}, after the requested instant "
                f"{instant.isoformat()}; the local warehouse has no time travel"
            )

    def row_count_at(
        self,
        table: TableRef,
        instant: datetime,
        *,
        info: TableInfo | None = None,
        wait_seconds: float | None = None,
    ) -> int:
        self._require(table)
        self._check_instant(table, instant)
        return self.count_rows(table)

    def ensure_dataset(self, dataset: str, *, table_expiration_hours: int | None = None) -> None:
        """Create the schema unless it exists; a new one records
        ``table_expiration_hours``, and tables created in it then expire that long
        after their creation (see :meth:`_drop_expired`). An existing one is left as is."""
        identifiers.dataset_id(dataset)
        if table_expiration_hours is not None and (
            isinstance(table_expiration_hours, bool)
            or not isinstance(table_expiration_hours, int)
            or table_expiration_hours < 1
        ):
            raise BadInput(
                "table_expiration_hours must be a whole number >= 1, "
                f"not {table_expiration_hours!r}"
            )
        # Two threads creating the same schema at once: the loser gets "Catalog write-write
        # conflict" (perhaps before the winner commits); looking again then finds it.
        for attempt in range(20):
            cur = self.cursor()
            if self._dataset_exists(dataset):
                return
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    cur.execute(f"CREATE SCHEMA {quote(dataset)}")
                    cur.execute(
                        f"INSERT OR REPLACE INTO {META_SCHEMA}.datasets VALUES (?, ?)",
                        [
                            dataset,
                            None
                            if table_expiration_hours is None
                            else table_expiration_hours * 3_600_000,
                        ],
                    )
                    cur.execute("COMMIT")
                except Exception:
                    with contextlib.suppress(duckdb.Error):
                        cur.execute("ROLLBACK")
                    raise
                return
            except duckdb.CatalogException:
                return  # created by another thread since the look: what we wanted
            except duckdb.TransactionException as exc:
                if attempt == 19:
                    raise TransientError(f"creating dataset {dataset}: {exc}") from exc
                time.sleep(0.005 * (attempt + 1))

    def _dataset_exists(self, dataset: str) -> bool:
        row = (
            self.cursor()
            .execute(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?",
                [dataset],
            )
            .fetchone()
        )
        return bool(row and row[0])

    def _table_expiration_ms(self, dataset: str) -> int | None:
        row = (
            self.cursor()
            .execute(
                f"SELECT table_expiration_ms FROM {META_SCHEMA}.datasets WHERE dataset = ?",
                [dataset],
            )
            .fetchone()
        )
        return int(row[0]) if row and row[0] is not None else None

    def create_table(self, table: TableRef, spec: TableSpec, *, replace: bool = False) -> None:
        if not spec.schema:
            raise BadInput(f"{table}: a table needs at least one column")
        for name in column_names(spec.schema):  # nested RECORD fields too
            identifiers.column_name(name)
        columns = []
        for field in spec.schema:
            not_null = " NOT NULL" if field.mode == "REQUIRED" else ""
            columns.append(f"{quote(field.name)} {duck_type(field)}{not_null}")
        if self.table_exists(table) and not replace:
            raise AlreadyExists(f"table {table} already exists")
        cur = self.cursor()
        verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(table.dataset)}")
        cur.execute(f"{verb} {qualified(table)} ({', '.join(columns)})")
        resource = spec.resource_fields()
        del resource["schema"]  # kept in its own column
        expiration_ms = self._table_expiration_ms(table.dataset)
        if expiration_ms is not None:  # the dataset's default, as BigQuery applies it
            resource["expirationTime"] = str(_epoch_ms(self._clock()) + expiration_ms)
        self._set_meta(table, schema=spec.schema, resource=resource)

    def delete_table(self, table: TableRef) -> None:
        cur = self.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {qualified(table)}")
        cur.execute(
            f"DELETE FROM {META_SCHEMA}.tables WHERE dataset = ? AND table_name = ?",
            [table.dataset, table.table],
        )

    def replace_table(self, target: TableRef, source: TableRef) -> None:
        if target.dataset != source.dataset:
            raise BadInput("replace_table needs source and target in the same dataset")
        self._require(source)
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(f"DROP TABLE IF EXISTS {qualified(target)}")
            cur.execute(f"ALTER TABLE {qualified(source)} RENAME TO {quote(target.table)}")
            cur.execute(
                f"DELETE FROM {META_SCHEMA}.tables WHERE dataset = ? AND table_name = ?",
                [target.dataset, target.table],
            )
            cur.execute(
                f"UPDATE {META_SCHEMA}.tables SET table_name = ?, modified_at = ? "
                "WHERE dataset = ? AND table_name = ?",
                [target.table, _now(), source.dataset, source.table],
            )
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run trusted SQL (seeding, tests). Never called with user-supplied text."""
        cur = self.cursor()
        result = cur.execute(sql, params) if params is not None else cur.execute(sql)
        try:
            return result.fetchall()
        except duckdb.InvalidInputException:
            return []

    # -- health -------------------------------------------------------------------------
    def ping(self) -> None:
        self.cursor().execute("SELECT 1").fetchone()

    def dataset_metadata(
        self, dataset: str, tables: Sequence[str], *, partitions: bool = True
    ) -> dict[str, TableMetadata]:
        identifiers.dataset_id(dataset)
        names = [identifiers.table_id(t) for t in tables]
        if not names:
            return {}
        present = set(self.list_tables(dataset))  # NotFound for a missing dataset; expiry
        names = [n for n in names if n in present]
        if not names:
            return {}
        rows = (
            self.cursor()
            .execute(
                "SELECT d.table_name, m.modified_at, d.estimated_size "
                "FROM duckdb_tables() d "
                f"LEFT JOIN {META_SCHEMA}.tables m "
                "ON m.dataset = d.schema_name AND m.table_name = d.table_name "
                "WHERE d.schema_name = ? AND list_contains(?, d.table_name)",
                [dataset, names],
            )
            .fetchall()
        )
        return {
            str(name): TableMetadata(
                str(name),
                modified,
                self._newest_partition(TableRef(dataset, str(name))) if partitions else None,
                int(size) if size is not None else None,
            )
            for name, modified, size in rows
        }

    def _newest_partition(self, table: TableRef) -> str | None:
        """The newest partition id BigQuery would report (special partitions excluded)."""
        _, resource_json, _ = self._meta(table)
        spec = TableSpec.from_resource(json.loads(resource_json or "{}"))
        cur = self.cursor()
        if spec.range_partitioning:
            column = quote(identifiers.column_name(str(spec.range_partitioning["field"])))
            bounds = spec.range_partitioning["range"]
            row = cur.execute(
                f"SELECT max({column}) FROM {qualified(table)} "
                f"WHERE {column} >= ? AND {column} < ?",  # numbers: 9 < 10
                [int(bounds["start"]), int(bounds["end"])],
            ).fetchone()
            value = row[0] if row else None
            return None if value is None else range_partition_id(spec.range_partitioning, value)
        field = (spec.time_partitioning or {}).get("field")
        if not field:
            return None  # unpartitioned, or ingestion time (no pseudo column locally)
        column = quote(identifiers.column_name(str(field)))
        row = cur.execute(f"SELECT max({column}) FROM {qualified(table)}").fetchone()
        value = row[0] if row else None
        if value is None or spec.time_partitioning is None:
            return None
        return time_partition_id(spec.time_partitioning, value)

    def newest_value(
        self, table: TableRef, column: str, partition_field: str | None, since: date | None
    ) -> datetime | None:
        self._require(table)
        sql = f"SELECT max({quote(identifiers.column_name(column))}) FROM {qualified(table)}"
        params: list[Any] = []
        if partition_field and since:
            sql += f" WHERE {quote(identifiers.column_name(partition_field))} >= ?"
            params.append(since)
        row = self.cursor().execute(sql, params).fetchone()
        return as_utc_datetime(row[0] if row else None, f"{table}.{column}")

    def run_history(self, query: RunHistoryQuery) -> RunHistory:
        self._require(query.table)
        q = {
            k: quote(identifiers.column_name(getattr(query, k)))
            for k in ("phase_column", "processor_column", "status_column", "time_column")
        }
        source = qualified(query.table)
        ok = list(query.success_values)
        cur = self.cursor()
        phases = cur.execute(
            f"SELECT {q['phase_column']}, count(*), "
            f"count(*) FILTER (WHERE list_contains(?, {q['status_column']})), "
            f"max({q['time_column']}) FROM {source} WHERE {q['time_column']} >= ? "
            f"GROUP BY 1 ORDER BY 1",
            [ok, query.since],
        ).fetchall()
        error = quote(identifiers.column_name(query.error_column)) if query.error_column else "NULL"
        errors = cur.execute(
            f"SELECT {q['time_column']}, {q['phase_column']}, {q['processor_column']}, "
            f"{q['status_column']}, {error} FROM {source} "
            f"WHERE {q['time_column']} >= ? AND NOT list_contains(?, {q['status_column']}) "
            f"ORDER BY 1 DESC LIMIT ?",
            [query.since, ok, query.error_limit],
        ).fetchall()
        return RunHistory(
            phases=tuple(PhaseStats(str(p), int(n), int(s), t) for p, n, s, t in phases),
            errors=tuple(
                RunError(t, str(p), str(pr), str(st), None if m is None else str(m))
                for t, p, pr, st, m in errors
            ),
        )

    # -- SLA evaluator ------------------------------------------------------------------
    def _columns(self, table: TableRef) -> tuple[SchemaField, ...]:
        """The BigQuery schema (no count, unlike :meth:`get_table`); NotFound if missing."""
        self._require(table)
        schema_json, _, _ = self._meta(table)
        return self._schema(table, schema_json)

    def daily_aggregates(self, query: DailyAggregateQuery) -> list[DailyAggregate]:
        schema = self._columns(query.table)
        column_type(query.table, schema, query.column, NUMERIC_TYPES, "numeric")
        time_type = column_type(
            query.table, schema, query.time_column, TIME_TYPES, "DATE/DATETIME/TIMESTAMP"
        )
        value, at = quote(query.column), quote(query.time_column)
        where = [f"{at} >= ?", f"{at} <= ?"]
        if query.not_null:
            column_type(query.table, schema, query.not_null)
            where.append(f"{quote(query.not_null)} IS NOT NULL")
        rows = (
            self.cursor()
            .execute(
                # CAST(TIMESTAMPTZ AS DATE) is the date in the session's zone: UTC here
                f"SELECT CAST({at} AS DATE), count({value}), sum({value}), min({value}), "
                f"max({value}) FROM {qualified(query.table)} WHERE {' AND '.join(where)} "
                "GROUP BY 1 ORDER BY 1",
                [time_value(time_type, query.since), time_value(time_type, query.until)],
            )
            .fetchall()
        )
        return [
            DailyAggregate(
                day=day,
                count=int(count),
                total=float(total) if total is not None else 0.0,
                minimum=float(low) if low is not None else None,
                maximum=float(high) if high is not None else None,
            )
            for day, count, total, low, high in rows
        ]

    def run_buckets(self, query: RunBucketQuery) -> list[RunBucket]:
        seconds = query.bucket_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise BadInput(f"bucket_seconds must be an integer, not {seconds!r}")
        if not 0 < seconds <= MAX_BUCKET_SECONDS:
            raise BadInput(f"bucket_seconds must be in 1..{MAX_BUCKET_SECONDS}, not {seconds}")
        micros = seconds * 1_000_000
        schema = self._columns(query.table)
        time_type = column_type(
            query.table, schema, query.time_column, TIME_TYPES, "DATE/DATETIME/TIMESTAMP"
        )
        phase, status = quote(query.phase_column), quote(query.status_column)
        for name in (query.phase_column, query.status_column):
            column_type(query.table, schema, name)
        at = quote(query.time_column)
        # DATETIME (TIMESTAMP here) counts as UTC, a DATE as its midnight; ``//`` and
        # ``%`` on BIGINT truncate toward zero like BigQuery's DIV and MOD, so this is
        # the exact ceiling for every sign.
        us = f"epoch_us(CAST({at} AS TIMESTAMP))" if time_type == "DATE" else f"epoch_us({at})"
        ceiling = f"{us} // {micros:d} + CASE WHEN {us} % {micros:d} > 0 THEN 1 ELSE 0 END"
        rows = (
            self.cursor()
            .execute(
                f"SELECT make_timestamptz(({ceiling}) * {micros:d}), {phase}, count(*), "
                f"count(*) FILTER (WHERE list_contains(?, {status})) "
                f"FROM {qualified(query.table)} WHERE {at} > ? AND {at} <= ? "
                "GROUP BY 1, 2 ORDER BY 1, 2",
                [
                    list(query.success_values),
                    time_value(time_type, query.since),
                    time_value(time_type, query.until),
                ],
            )
            .fetchall()
        )
        buckets = [
            RunBucket(end.astimezone(UTC), str(p), int(n), int(ok)) for end, p, n, ok in rows
        ]
        return sorted(buckets, key=lambda b: (b.end, b.phase))

    def load_times(
        self, table: TableRef, column: str, since: datetime, until: datetime
    ) -> list[datetime]:
        schema = self._columns(table)
        time_type = column_type(table, schema, column, TIME_TYPES, "DATE/DATETIME/TIMESTAMP")
        at = quote(column)
        rows = (
            self.cursor()
            .execute(
                f"SELECT DISTINCT {at} FROM {qualified(table)} WHERE {at} >= ? AND {at} <= ? "
                "ORDER BY 1",
                [time_value(time_type, since), time_value(time_type, until)],
            )
            .fetchall()
        )
        out = []
        for (value,) in rows:
            instant = as_utc_datetime(value, f"{table}.{column}")
            if instant is not None:
                out.append(instant.astimezone(UTC))
        return out

    def fingerprint(self, table: TableRef, instant: datetime | None = None) -> Fingerprint:
        """Rows and a digest of ``hash(to_json(row))`` over every row (one query).

        The row is packed from the recorded schema, with REPEATED NULLs as ``[]`` (what
        BigQuery stores, and what a restore from Avro loads), so a restored copy hashes
        like its source; the digest combines the XOR and the exact sum of the hashes,
        both independent of row order. There is no time travel: with ``instant``, a
        table modified after it is refused (BadInput) and otherwise read as it is.
        """
        self._require(table)
        schema_json, _, modified_at = self._meta(table)
        if instant is not None:
            if instant.tzinfo is None or instant.utcoffset() is None:
                raise BadInput(f"instant {instant.isoformat()} has no time zone")
            if modified_at is not None and modified_at > instant:
                raise BadInput(
                    f"{table} changed at {modified_at.isoformat()}, after "
                    f"{instant.isoformat()}; the local warehouse has no time travel"
                )
        schema = self._schema(table, schema_json)
        packed = ", ".join(
            f"{quote(f.name)} := {canonical_expression(f, quote(f.name))}" for f in schema
        )
        row = (
            self.cursor()
            .execute(
                "SELECT count(*), bit_xor(h), sum(CAST(h AS HUGEINT)) FROM "
                f"(SELECT hash(to_json(struct_pack({packed}))) AS h FROM {qualified(table)})"
            )
            .fetchone()
        )
        if row is None:
            raise PermanentError(f"fingerprint of {table}: no result")
        return Fingerprint(int(row[0]), fingerprint_digest(row[1], row[2]))

    # -- jobs ---------------------------------------------------------------------------
    def _job_path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{identifiers.job_id(job_id)}.json"

    def _write_job(self, record: dict[str, Any]) -> None:
        path = self._job_path(record["job_id"])
        fd, tmp = tempfile.mkstemp(dir=self.jobs_dir, prefix=".job-")
        with os.fdopen(fd, "w", encoding="utf-8") as fo:
            json.dump(record, fo)
        os.replace(tmp, path)

    def _create_job(self, record: dict[str, Any]) -> bool:
        """Atomically create the job record; False if the id is taken (BigQuery's 409).

        The record is written to a temporary file and linked into place, so no reader
        ever sees a job file without its content.
        """
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.jobs_dir, prefix=".new-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fo:
                json.dump(record, fo)
            os.link(tmp, self._job_path(record["job_id"]))
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def _status(self, record: Mapping[str, Any]) -> JobStatus:
        error = record.get("error")
        return JobStatus(
            job_id=record["job_id"],
            state=record["state"],
            error=JobError(error["reason"], error["message"]) if error else None,
            destination_file_count=record.get("destination_file_count"),
            output_rows=record.get("output_rows"),
            started=datetime.fromisoformat(record["started"]) if "started" in record else None,
            ended=datetime.fromisoformat(record["ended"]) if "ended" in record else None,
        )

    def get_job(self, job_id: str) -> JobStatus:
        path = self._job_path(job_id)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"job {job_id} does not exist") from None
        if record["state"] != "DONE" and not _pid_alive(int(record["owner_pid"])):
            record.update(
                state="DONE",
                error={
                    "reason": "backendError",
                    "message": f"the process running job {job_id} exited before it finished",
                },
            )
            self._write_job(record)
        return self._status(record)

    def _run_job(self, record: dict[str, Any], work: Callable[[], dict[str, Any]]) -> None:
        record.update(state="RUNNING", started=_now().isoformat())
        self._write_job(record)
        try:
            record.update(work())
        except (PermanentError, BadInput) as exc:
            reason = "notFound" if isinstance(exc, NotFound) else "invalid"
            record["error"] = {"reason": reason, "message": str(exc)}
        except Exception as exc:  # a crash in a job is the job's failure, as on a server
            record["error"] = {"reason": "backendError", "message": f"{type(exc).__name__}: {exc}"}
        record.update(state="DONE", ended=_now().isoformat())
        self._write_job(record)

    def _start(self, job_id: str, kind: str, work: Callable[[], dict[str, Any]]) -> JobStatus:
        record: dict[str, Any] = {
            "job_id": job_id,
            "type": kind,
            "state": "PENDING",
            "owner_pid": os.getpid(),
            "created": _now().isoformat(),
        }
        if not self._create_job(record):
            return self.get_job(job_id)
        self._submit(lambda: self._run_job(record, work))
        return self._status(record)

    def start_extract(self, request: ExtractRequest) -> JobStatus:
        self._require(request.source)
        return self._start(request.job_id, "extract", lambda: self._extract(request))

    def start_load(self, request: LoadRequest) -> JobStatus:
        self._require(request.destination)
        return self._start(request.job_id, "load", lambda: self._load(request))

    # -- extract ------------------------------------------------------------------------
    def _local_path(self, uri: str) -> Path:
        bucket, name = split_gs_uri(uri)
        identifiers.bucket_name(bucket)
        if any(p in ("", ".", "..") for p in name.split("/")):
            raise BadInput(f"{uri!r} is not a valid object URI")
        return self.gcs_root / bucket / name

    def _extract(self, request: ExtractRequest) -> dict[str, Any]:
        self._check_instant(request.source, request.instant)
        schema = self.get_table(request.source).schema
        pattern = self._local_path(request.destination_uri)
        if pattern.name.count("*") > 1 or "*" in str(pattern.parent):
            raise BadInput("at most one '*' wildcard, in the file name only")
        pattern.parent.mkdir(parents=True, exist_ok=True)
        if request.format == "AVRO":
            files = self._write_avro(request, schema, pattern)
        elif request.format == "PARQUET":
            files = self._write_parquet(request, schema, pattern)
        else:
            raise BadInput(f"unsupported export format {request.format}")
        return {"destination_file_count": len(files)}

    def _shard_path(self, pattern: Path, shard: int) -> Path:
        if "*" in pattern.name:
            return pattern.with_name(pattern.name.replace("*", f"{shard:012d}"))
        if shard:
            raise PermanentError("the table is larger than one file; use a wildcard URI")
        return pattern

    def _write_avro(
        self, request: ExtractRequest, schema: Sequence[SchemaField], pattern: Path
    ) -> list[Path]:
        codec = _AVRO_CODECS[request.compression]
        parsed = fastavro.parse_schema(avro_schema(schema))
        names = [f.name for f in schema]
        converters = [
            (f.name, c)
            for f in schema
            if not (f.type == "DATETIME" and f.mode != "REPEATED")  # converted in SQL
            and (c := _python_converter(f)) is not None
        ]
        select = ", ".join(_export_expression(f) for f in schema)
        cur = self.cursor().execute(f"SELECT {select} FROM {qualified(request.source)}")
        limit = self.max_file_bytes
        batch_rows = FIRST_BATCH
        carry: list[tuple[Any, ...]] = []
        written: list[Path] = []
        exhausted = False
        while True:
            final = self._shard_path(pattern, len(written))
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".part-")
            with os.fdopen(fd, "wb") as fo:

                def shard(fo: Any = fo) -> Iterator[dict[str, Any]]:
                    # Rows move in batches (C-speed ``yield from``); the file is rotated
                    # between batches, sized to a fraction of the limit from the bytes
                    # per row seen so far, so a shard overshoots the limit by little.
                    nonlocal batch_rows, carry, exhausted
                    while True:
                        batch = carry or cur.fetchmany(batch_rows)
                        carry = []
                        if not batch:
                            exhausted = True
                            return
                        records = [dict(zip(names, row, strict=True)) for row in batch]
                        for name, convert in converters:
                            for record in records:
                                record[name] = convert(record[name])
                        before = fo.tell()
                        yield from records
                        grown = fo.tell() - before
                        if grown > 0:
                            per_row = grown / len(records)
                            batch_rows = int(min(ROW_BATCH, max(64, limit / 16 / per_row)))
                        if fo.tell() >= limit:
                            carry = cur.fetchmany(batch_rows)
                            exhausted = not carry
                            return

                fastavro.writer(fo, parsed, shard(), codec=codec)
            os.replace(tmp, final)
            written.append(final)
            if exhausted:
                return written

    def _write_parquet(
        self, request: ExtractRequest, schema: Sequence[SchemaField], pattern: Path
    ) -> list[Path]:
        final = self._shard_path(pattern, 0)
        tmp = final.with_name(f".part-{request.job_id}.parquet")
        codec = _PARQUET_CODECS[request.compression]
        self.cursor().execute(
            f"COPY (SELECT * FROM {qualified(request.source)}) TO '{tmp.as_posix()}' "
            f"(FORMAT PARQUET, COMPRESSION {codec})"
        )
        os.replace(tmp, final)
        return [final]

    # -- load ---------------------------------------------------------------------------
    def _ensure_avro_reader(self, cur: duckdb.DuckDBPyConnection) -> None:
        try:
            cur.execute("LOAD avro")
        except duckdb.Error:
            from duckdb_extensions import import_extension

            import_extension("avro")
            cur.execute("LOAD avro")

    def _load(self, request: LoadRequest) -> dict[str, Any]:
        paths = [self._local_path(uri) for uri in request.source_uris]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise NotFound(f"load source {missing[0].name} does not exist")
        cur = self.cursor()
        target = qualified(request.destination)
        if request.format == "AVRO":
            self._ensure_avro_reader(cur)
            select = ", ".join(
                _load_expression(f, quote(f.name)) + f" AS {quote(f.name)}" for f in request.schema
            )
            source = f"read_avro({_sql_list(paths)})"
        else:
            select = ", ".join(quote(f.name) for f in request.schema)
            source = f"read_parquet({_sql_list(paths)})"
        columns = ", ".join(quote(f.name) for f in request.schema)
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(f"DELETE FROM {target}")
            cur.execute(f"INSERT INTO {target} ({columns}) SELECT {select} FROM {source}")
            self._set_meta(request.destination, cursor=cur)
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
        return {"output_rows": self.count_rows(request.destination)}
