"""The Warehouse port on BigQuery (``google-cloud-bigquery``, imported on first use).

Design points:

* Every call carries the client's retry (``DEFAULT_RETRY``: 429/5xx and the retryable
  BigQuery reasons) bounded by ``retry_deadline``, and a per-request timeout, so a
  503 is retried briefly by the client and then surfaces as
  :class:`~shared.errors.TransientError` for the service's own backoff. Waiting is
  bounded separately: a query by ``query_wait_seconds``, a copy by ``copy_wait_seconds``.
* The client built here pools ``max_connections`` HTTP connections (one per thread
  sharing it); no credentials at all is a :class:`~shared.errors.ConfigError`.
* Extract reads the table at the requested instant through the snapshot decorator
  ``table@<epoch_ms>`` on the source table id (as bq-backup-manager does).
* Jobs carry the caller's id (copy jobs one fixed by target and source). BigQuery
  answers an existing id with 409; the adapter then attaches to the existing job
  (``jobs.get``) instead of running it twice. A job this adapter inserted or attached
  to may answer 404 for a few seconds: only those lookups retry NotFound.
* Load jobs always send the schema explicitly (never autodetect), with Avro logical
  types, NUMERIC or BIGNUMERIC as decimal targets, and ``WRITE_TRUNCATE`` into a table
  that restore created beforehand.
* ``ensure_dataset`` looks before it creates (``datasets.insert`` of an existing
  dataset is a 403 for a caller without ``bigquery.datasets.create``).
* SQL text is built only from validated identifiers (backquoted) and integers
  formatted here; every other value is a bound query parameter.
* Health queries read metadata (``INFORMATION_SCHEMA.TABLES``/``PARTITIONS``) in one
  query per dataset, and bind time bounds in the column's own type (DATE, DATETIME or
  TIMESTAMP: BigQuery doesn't compare across them).
* SLA queries (daily aggregates, run buckets, load times, fingerprint) are one query
  each, after the free ``tables.get`` that gives the column types (checked here:
  BadInput rather than BigQuery's 400) and the partition-filter rule.
* ``ensure_dataset(..., table_expiration_hours=H)`` creates a missing dataset with
  ``defaultTableExpirationMs``; an existing dataset is never updated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any

from shared import identifiers
from shared.adapters.gcp._errors import pooled_session, translated
from shared.errors import (
    AlreadyExists,
    BadInput,
    NotFound,
    OpsuiteError,
    PermanentError,
    StillRunning,
    TransientError,
)
from shared.identifiers import TableRef
from shared.models import (
    DailyAggregate,
    DailyAggregateQuery,
    ExtractRequest,
    Fingerprint,
    JobError,
    JobStateName,
    JobStatus,
    LoadRequest,
    PhaseStats,
    RunBucket,
    RunBucketQuery,
    RunError,
    RunHistory,
    RunHistoryQuery,
    TableInfo,
    TableMetadata,
    TableSpec,
    as_utc_datetime,
    column_names,
    schema_from_api,
    schema_to_api,
)

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud import bigquery

logger = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: How long ``replace_table`` waits for its copy job in all (then: StillRunning).
REPLACE_TIMEOUT_SECONDS = 3600.0
#: How long a query may run before the client cancels it (not the retry deadline).
QUERY_WAIT_SECONDS = 300.0
#: How long a job this adapter inserted (or was told exists: 409) may answer 404.
JOB_VISIBILITY_SECONDS = 10.0
#: requests' default pool (10 connections per host) is too small for 16 threads.
DEFAULT_MAX_CONNECTIONS = 16
_NOT_FOUND_FIRST_DELAY = 0.2
_NOT_FOUND_MAX_DELAY = 2.0
_POLL_MAX_DELAY = 5.0
_JOB_STATES: dict[str, JobStateName] = {"PENDING": "PENDING", "RUNNING": "RUNNING", "DONE": "DONE"}


def epoch_millis(instant: datetime) -> int:
    """Whole milliseconds since the epoch of an aware datetime (exact, no float rounding)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise BadInput(f"instant {instant.isoformat()} has no time zone")
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def _from_millis(value: object) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(str(value))) if value is not None else _EPOCH


def quoted_column(name: str) -> str:
    """A column reference for SQL text: validated, then backquoted (``AT`` etc. are reserved)."""
    return f"`{identifiers.column_name(name)}`"


#: The smallest value of each time type (BigQuery's documented ranges).
_TIME_MINIMUM = {
    "DATE": "DATE '0001-01-01'",
    "DATETIME": "DATETIME '0001-01-01 00:00:00'",
    "TIMESTAMP": "TIMESTAMP '0001-01-01 00:00:00+00'",
}
_INT64_MAX = 9223372036854775807


def all_partitions_predicate(info: TableInfo) -> str | None:
    """A predicate true for every row that BigQuery accepts as a partition filter.

    None unless the table has ``requirePartitionFilter``. Then every query must have "at
    least one predicate that only references a partition column" (docs: Query
    partitioned tables, "Require a partition filter in queries"); a constant comparison
    on the column prunes, and ``col IS NULL`` selects the ``__NULL__`` partition (and,
    for ``_PARTITIONTIME``, the streaming buffer / ``__UNPARTITIONED__``): the OR of the
    two reads every partition. mozilla/bigquery-etl's shredder (``shredder/delete.py``)
    runs such always-true partition-only conditions "to satisfy require_partition_filter"
    in production, and its ``col IS NULL`` form was its fix for this very error.
    """
    if not info.require_partition_filter:
        return None
    types = {f.name: f.type for f in info.schema}
    if info.range_partitioning:
        column = quoted_column(str(info.range_partitioning["field"]))
        # ``-9223372036854775808`` doesn't parse as a literal; every INT64 is <= max.
        return f"({column} IS NULL OR {column} <= {_INT64_MAX:d})"
    if info.time_partitioning is None:
        return None  # the flag only means something on a partitioned table
    field = info.time_partitioning.get("field")
    if field:
        column = quoted_column(str(field))
        minimum = _TIME_MINIMUM.get(types.get(str(field), ""), _TIME_MINIMUM["TIMESTAMP"])
    else:  # ingestion-time partitioning: the pseudo column
        column, minimum = "_PARTITIONTIME", _TIME_MINIMUM["TIMESTAMP"]
    return f"({column} IS NULL OR {column} >= {minimum})"


#: ``tables.get`` calls in flight at once for health metadata.
METADATA_CONCURRENCY = 8
#: "Querying the INFORMATION_SCHEMA.PARTITIONS view is limited to 1000 tables" (docs).
PARTITIONS_TABLES_PER_QUERY = 1000
PARTITIONS_VIEW = "`{project}.{dataset}.INFORMATION_SCHEMA.PARTITIONS`"


def _where(*predicates: str | None) -> str:
    present = [p for p in predicates if p]
    return f" WHERE {' AND '.join(present)}" if present else ""


def table_info_from_resource(table: TableRef, resource: Mapping[str, Any]) -> TableInfo:
    """A :class:`TableInfo` from BigQuery's ``tables.get`` JSON."""
    spec = TableSpec.from_resource(resource)
    buffer = resource.get("streamingBuffer")
    return TableInfo(
        ref=table,
        schema=schema_from_api(resource.get("schema", {}).get("fields", [])),
        num_rows=int(resource.get("numRows") or 0),
        num_bytes=int(resource.get("numBytes") or 0),
        modified=_from_millis(resource.get("lastModifiedTime")),
        time_partitioning=spec.time_partitioning,
        range_partitioning=spec.range_partitioning,
        clustering=spec.clustering,
        description=spec.description,
        labels=spec.labels,
        require_partition_filter=spec.require_partition_filter,
        streaming_buffer_rows=(
            int(buffer.get("estimatedRows") or 0) if isinstance(buffer, Mapping) else None
        ),
    )


#: Column types the SLA queries accept (``SchemaField.from_api`` spells them so).
NUMERIC_TYPES = frozenset({"INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC"})
TIME_TYPES = frozenset({"DATE", "DATETIME", "TIMESTAMP"})
#: A run bucket of more than a year answers no SLA question (and keeps the bucket
#: arithmetic far from INT64's limits).
MAX_BUCKET_SECONDS = 366 * 86400
_UINT64_MASK = (1 << 64) - 1


def column_type(
    info: TableInfo, column: str, allowed: frozenset[str] | None = None, kind: str = ""
) -> str:
    """The BigQuery type of top-level ``column``; BadInput if there is none, or (given
    ``allowed``) if it is repeated or of another type. Names match case-insensitively,
    as in BigQuery."""
    identifiers.column_name(column)
    fields = {f.name.lower(): f for f in info.schema}
    found = fields.get(column.lower())
    if found is None:
        raise BadInput(f"{info.ref} has no column {column}")
    if allowed is None:
        return found.type
    if found.type not in allowed or found.mode == "REPEATED":
        mode = " REPEATED" if found.mode == "REPEATED" else ""
        raise BadInput(f"{info.ref}.{column} is{mode} {found.type}, not a {kind} column")
    return found.type


def bucket_micros(bucket_seconds: int) -> int:
    """The bucket length in microseconds, for SQL text (an int formatted here)."""
    if isinstance(bucket_seconds, bool) or not isinstance(bucket_seconds, int):
        raise BadInput(f"bucket_seconds must be an integer, not {bucket_seconds!r}")
    if not 0 < bucket_seconds <= MAX_BUCKET_SECONDS:
        raise BadInput(f"bucket_seconds must be in 1..{MAX_BUCKET_SECONDS}, not {bucket_seconds}")
    return bucket_seconds * 1_000_000


def row_alias(info: TableInfo) -> str:
    """A table alias no column of ``info`` is called (a column would shadow it)."""
    taken = {f.name.lower() for f in info.schema}
    alias = "opsuite_row"
    while alias in taken:
        alias += "_"
    return alias


def fingerprint_digest(xor: object, total: object) -> str:
    """16 hex digits from the rows' hash XOR and hash SUM (both None for no rows).

    XOR alone is blind to rows that occur twice (A ^ A = 0: {A, A, B} and {C, C, B}
    collide); the exact sum isn't, and XOR-ing the two (mod 2**64) keeps one word.
    """
    value = (_whole(xor) & _UINT64_MASK) ^ (_whole(total) & _UINT64_MASK)
    return f"{value:016x}"


def _whole(value: object) -> int:
    """An integer result (INT64 as int, a BIGNUMERIC sum as Decimal); None is 0."""
    if value is None:
        return 0
    if isinstance(value, int | Decimal):
        return int(value)
    return int(str(value))


def epoch_micros(instant: datetime) -> int:
    """Whole microseconds since the epoch of an aware datetime (exact)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise BadInput(f"instant {instant.isoformat()} has no time zone")
    return (instant - _EPOCH) // timedelta(microseconds=1)


def table_expiration_ms(hours: int | None) -> int | None:
    """A dataset's default table expiration in ms; BadInput unless a whole number >= 1."""
    if hours is None:
        return None
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        raise BadInput(f"table_expiration_hours must be a whole number >= 1, not {hours!r}")
    return hours * 3_600_000


def utc_instant(value: object, what: str) -> datetime:
    """A non-NULL DATE/DATETIME/TIMESTAMP result as an aware UTC datetime."""
    instant = as_utc_datetime(value, what)
    if instant is None:
        raise PermanentError(f"{what}: the query returned NULL")
    return instant.astimezone(UTC)


def daily_aggregate(row: Sequence[Any]) -> DailyAggregate:
    """One ``(day, COUNT, SUM, MIN, MAX)`` row; SUM of no values (NULL) is 0."""
    day, count, total, minimum, maximum = row
    if isinstance(day, datetime):
        day = day.date()
    return DailyAggregate(
        day=day,
        count=int(count),
        total=float(total) if total is not None else 0.0,
        minimum=float(minimum) if minimum is not None else None,
        maximum=float(maximum) if maximum is not None else None,
    )


class BigQueryWarehouse:
    time_travel = True  # FOR SYSTEM_TIME AS OF / table@<ms>, within max_time_travel_hours

    def __init__(
        self,
        project: str,
        location: str = "US",
        client: bigquery.Client | None = None,
        *,
        retry_deadline: float = 30.0,
        page_size: int | None = None,
        query_wait_seconds: float = QUERY_WAIT_SECONDS,
        copy_wait_seconds: float = REPLACE_TIMEOUT_SECONDS,
        job_visibility_seconds: float = JOB_VISIBILITY_SECONDS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        credentials: Any | None = None,
    ) -> None:
        """``retry_deadline`` bounds each API call with its retries; a query may run for
        ``query_wait_seconds`` and ``replace_table``'s copy for ``copy_wait_seconds``.
        ``max_connections``: the HTTP pool of the client built here (one per thread that
        shares it); ``credentials``: default Application Default Credentials."""
        self.project = identifiers.project_id(project)
        self.location = location
        self.retry_deadline = retry_deadline
        self.page_size = page_size
        self.query_wait_seconds = query_wait_seconds
        self.copy_wait_seconds = copy_wait_seconds
        self.job_visibility_seconds = job_visibility_seconds
        self.max_connections = max_connections
        self._credentials = credentials
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()
        #: job id → monotonic time this adapter inserted it or was told it exists (409);
        #: until first seen, ``jobs.get`` may still answer 404 for it (see get_job).
        self._unseen_jobs: dict[str, float] = {}

    # -- plumbing -----------------------------------------------------------------------
    @property
    def client(self) -> bigquery.Client:
        with self._lock:
            if self._client is None:
                with translated("BigQuery client"):
                    from google.cloud import bigquery

                    session, credentials = pooled_session(
                        self._credentials, bigquery.Client.SCOPE, self.max_connections
                    )
                    self._client = bigquery.Client(
                        project=self.project,
                        location=self.location,
                        credentials=credentials,
                        _http=session,
                    )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.close()  # type: ignore[no-untyped-call, unused-ignore]
                self._client = None

    @property
    def _retry(self) -> Retry:
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.retry_deadline)

    def _table_ref(self, table: TableRef, decorator: str = "") -> bigquery.TableReference:
        from google.cloud.bigquery import DatasetReference, TableReference

        return TableReference(
            DatasetReference(self.project, table.dataset), table.table + decorator
        )

    def _sql_table(self, table: TableRef) -> str:
        # Every part has passed shared.identifiers: no backtick or quote can occur.
        project = identifiers.project_id(self.project)
        dataset = identifiers.dataset_id(table.dataset)
        name = identifiers.table_id(table.table)
        return f"`{project}.{dataset}.{name}`"

    def _query(
        self,
        sql: str,
        what: str,
        parameters: Sequence[Any] = (),
        wait_seconds: float | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run a read-only query with bound parameters; all rows as tuples.

        ``api_timeout`` bounds each HTTP request; ``wait_timeout`` the wait for the query
        to finish. On expiry google/cloud/bigquery/_job_helpers.py ``_wait_or_cancel``
        asks BigQuery to cancel the job and re-raises ``concurrent.futures.TimeoutError``
        (not retried by ``job_retry``): the query ran as long as it is allowed to, so
        running it again would only repeat that, hence a PermanentError.
        """
        import concurrent.futures

        from google.cloud.bigquery import QueryJobConfig
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

        wait = self.query_wait_seconds if wait_seconds is None else wait_seconds

        with translated(what):
            try:
                rows = self.client.query_and_wait(
                    sql,
                    job_config=QueryJobConfig(query_parameters=list(parameters)),
                    location=self.location,
                    retry=self._retry,
                    job_retry=DEFAULT_JOB_RETRY.with_timeout(self.retry_deadline),
                    api_timeout=self.retry_deadline,
                    wait_timeout=wait,
                )
            except concurrent.futures.TimeoutError as exc:
                raise PermanentError(
                    f"{what}: the query did not finish within {wait:g} s and was cancelled"
                ) from exc
            return [tuple(row.values()) for row in rows]

    def _scalar(self, sql: str, what: str, wait_seconds: float | None = None) -> int:
        rows = self._query(sql, what, wait_seconds=wait_seconds)
        if len(rows) != 1:
            raise PermanentError(f"{what}: expected one row, got {len(rows)}")
        return int(rows[0][0])

    def _time_parameter(self, name: str, field_type: str | None, instant: datetime) -> Any:
        """``instant`` bound in the column's own type (BigQuery doesn't coerce between them)."""
        from google.cloud.bigquery import ScalarQueryParameter

        utc = instant.astimezone(UTC)
        if field_type == "DATE":
            return ScalarQueryParameter(name, "DATE", utc.date())
        if field_type == "DATETIME":
            return ScalarQueryParameter(name, "DATETIME", utc.replace(tzinfo=None))
        return ScalarQueryParameter(name, "TIMESTAMP", utc)

    # -- tables -------------------------------------------------------------------------
    def list_tables(self, dataset: str) -> list[str]:
        from google.cloud.bigquery import DatasetReference

        identifiers.dataset_id(dataset)
        with translated(f"tables.list {dataset}"):
            listing = self.client.list_tables(
                DatasetReference(self.project, dataset),
                page_size=self.page_size,
                retry=self._retry,
                timeout=self.retry_deadline,
            )
            # Iterating fetches every page; views and external tables are not backed up.
            return sorted(item.table_id for item in listing if item.table_type in (None, "TABLE"))

    def get_table(self, table: TableRef) -> TableInfo:
        with translated(f"tables.get {table}"):
            found = self.client.get_table(
                self._table_ref(table), retry=self._retry, timeout=self.retry_deadline
            )
            resource = found.to_api_repr()
        return table_info_from_resource(table, resource)

    def table_exists(self, table: TableRef) -> bool:
        try:
            self.get_table(table)
        except NotFound:
            return False
        return True

    def _partition_filter(self, table: TableRef, info: TableInfo | None) -> str | None:
        """The all-partitions predicate the table needs (tables.get, free, unless given)."""
        return all_partitions_predicate(info if info is not None else self.get_table(table))

    def row_count_at(
        self,
        table: TableRef,
        instant: datetime,
        *,
        info: TableInfo | None = None,
        wait_seconds: float | None = None,
    ) -> int:
        millis = epoch_millis(instant)
        sql = (
            f"SELECT COUNT(*) AS n FROM {self._sql_table(table)} "
            f"FOR SYSTEM_TIME AS OF TIMESTAMP_MILLIS({millis:d})"
            + _where(self._partition_filter(table, info))
        )
        return self._scalar(sql, f"row count of {table} at {instant.isoformat()}", wait_seconds)

    def count_rows(self, table: TableRef, *, info: TableInfo | None = None) -> int:
        sql = f"SELECT COUNT(*) AS n FROM {self._sql_table(table)}" + _where(
            self._partition_filter(table, info)
        )
        return self._scalar(sql, f"count {table}")

    def ensure_dataset(self, dataset: str, *, table_expiration_hours: int | None = None) -> None:
        """``table_expiration_hours`` becomes the new dataset's
        ``defaultTableExpirationMs`` (BigQuery's minimum is one hour); an existing
        dataset is not updated."""
        from google.cloud.bigquery import Dataset, DatasetReference

        identifiers.dataset_id(dataset)
        expiration_ms = table_expiration_ms(table_expiration_hours)
        reference = DatasetReference(self.project, dataset)
        # Look first: google/cloud/bigquery/client.py create_dataset's exists_ok only
        # swallows Conflict (409), and BigQuery answers 403 (not 409) to a caller without
        # bigquery.datasets.create (restore: jobUser + dataEditor on the dataset).
        try:
            with translated(f"datasets.get {dataset}"):
                self.client.get_dataset(reference, retry=self._retry, timeout=self.retry_deadline)
            return
        except NotFound:
            pass
        body = Dataset(reference)
        body.location = self.location
        if expiration_ms is not None:
            # dataset.py: the setter takes an int and sends it as a string
            body.default_table_expiration_ms = expiration_ms
        try:
            with translated(f"datasets.insert {dataset}"):
                self.client.create_dataset(body, retry=self._retry, timeout=self.retry_deadline)
        except AlreadyExists:
            pass  # created by someone else since the look-up: what we wanted

    def create_table(self, table: TableRef, spec: TableSpec, *, replace: bool = False) -> None:
        from google.cloud.bigquery import Table

        if not spec.schema:
            raise BadInput(f"{table}: a table needs at least one column")
        for name in column_names(spec.schema):  # the same check as the local warehouse
            identifiers.column_name(name)
        resource: dict[str, Any] = {
            "tableReference": {
                "projectId": self.project,
                "datasetId": table.dataset,
                "tableId": table.table,
            },
            **spec.resource_fields(),
        }
        if replace:
            self.delete_table(table)
        try:
            with translated(f"tables.insert {table}"):
                self.client.create_table(
                    Table.from_api_repr(resource), retry=self._retry, timeout=self.retry_deadline
                )
        except AlreadyExists as exc:
            raise AlreadyExists(f"table {table} already exists") from exc

    # -- health -------------------------------------------------------------------------
    def ping(self) -> None:
        with translated("datasets.list"):
            list(
                self.client.list_datasets(
                    max_results=1, retry=self._retry, timeout=self.retry_deadline
                )
            )

    def dataset_metadata(
        self, dataset: str, tables: Sequence[str], *, partitions: bool = True
    ) -> dict[str, TableMetadata]:
        """``tables.get`` per table (free), plus newest partitions when asked (billed).

        ``tables.get`` gives last modified, rows and the streaming buffer for nothing;
        only the newest partition id needs ``INFORMATION_SCHEMA.PARTITIONS``, a query
        billed at least 10 MB on demand and never cached (docs: Introduction to
        INFORMATION_SCHEMA, Pricing), limited to 1000 tables per query (docs: PARTITIONS
        view): chunked below.
        """
        from concurrent.futures import ThreadPoolExecutor

        from google.cloud.bigquery import DatasetReference

        identifiers.dataset_id(dataset)
        names = list(dict.fromkeys(identifiers.table_id(t) for t in tables))
        if not names:
            return {}
        with translated(f"datasets.get {dataset}"):  # NotFound for a missing dataset
            self.client.get_dataset(
                DatasetReference(self.project, dataset),
                retry=self._retry,
                timeout=self.retry_deadline,
            )
        refs = [TableRef(dataset, name) for name in names]
        workers = min(METADATA_CONCURRENCY, len(refs))
        with ThreadPoolExecutor(workers, thread_name_prefix="bq-metadata") as pool:
            found = [m for m in pool.map(self._table_metadata, refs) if m is not None]
        newest = self._newest_partitions(dataset, names) if partitions else {}
        return {
            m.table: TableMetadata(
                m.table, m.last_modified, newest.get(m.table), m.rows, m.streaming_buffer_rows
            )
            for m in found
        }

    def _table_metadata(self, table: TableRef) -> TableMetadata | None:
        try:
            info = self.get_table(table)
        except NotFound:
            return None
        return TableMetadata(
            table.table, info.modified, None, info.num_rows, info.streaming_buffer_rows
        )

    def _newest_partitions(self, dataset: str, names: Sequence[str]) -> dict[str, str]:
        """Newest partition id per table, ids compared as numbers (integer ranges: 9 < 10).

        Time partition ids of one table have one length (``YYYYMMDD[HH]``, ``YYYYMM``,
        ``YYYY``), so numeric order is their order too; ``__NULL__`` and
        ``__UNPARTITIONED__`` don't cast and drop out.
        """
        from google.cloud.bigquery import ArrayQueryParameter

        view = PARTITIONS_VIEW.format(project=identifiers.project_id(self.project), dataset=dataset)
        sql = (
            "SELECT table_name, CAST(MAX(SAFE_CAST(partition_id AS INT64)) AS STRING) "
            f"FROM {view} WHERE table_name IN UNNEST(@tables) GROUP BY table_name"
        )
        newest: dict[str, str] = {}
        for start in range(0, len(names), PARTITIONS_TABLES_PER_QUERY):
            chunk = list(names[start : start + PARTITIONS_TABLES_PER_QUERY])
            rows = self._query(
                sql, f"partitions of {dataset}", [ArrayQueryParameter("tables", "STRING", chunk)]
            )
            newest.update({str(n): str(p) for n, p in rows if p is not None})
        return newest

    def newest_value(
        self, table: TableRef, column: str, partition_field: str | None, since: date | None
    ) -> datetime | None:
        info = self.get_table(table)  # free; gives the column types and the filter rule
        sql = f"SELECT MAX({quoted_column(column)}) FROM {self._sql_table(table)}"
        parameters = []
        since_predicate = None
        if partition_field and since:
            types = {f.name: f.type for f in info.schema}
            midnight = datetime.combine(since, time.min, UTC)
            since_predicate = f"{quoted_column(partition_field)} >= @since"
            parameters.append(self._time_parameter("since", types.get(partition_field), midnight))
        sql += _where(all_partitions_predicate(info), since_predicate)
        rows = self._query(sql, f"newest {column} in {table}", parameters)
        value = rows[0][0] if rows else None
        return as_utc_datetime(value, f"{table}.{column}")

    def run_history(self, query: RunHistoryQuery) -> RunHistory:
        from google.cloud.bigquery import ArrayQueryParameter

        phase, processor = quoted_column(query.phase_column), quoted_column(query.processor_column)
        status, at = quoted_column(query.status_column), quoted_column(query.time_column)
        error = quoted_column(query.error_column) if query.error_column else "NULL"
        source = self._sql_table(query.table)
        info = self.get_table(query.table)
        time_type = {f.name: f.type for f in info.schema}.get(query.time_column)
        partitions = all_partitions_predicate(info)
        window = f"{at} >= @since" + (f" AND {partitions}" if partitions else "")
        parameters = [
            ArrayQueryParameter("ok", "STRING", list(query.success_values)),
            self._time_parameter("since", time_type, query.since),
        ]
        phases = self._query(
            f"SELECT {phase}, COUNT(*), COUNTIF({status} IN UNNEST(@ok)), MAX({at}) "
            f"FROM {source} WHERE {window} GROUP BY 1 ORDER BY 1",
            f"run history of {query.table}",
            parameters,
        )
        errors = self._query(
            f"SELECT {at}, {phase}, {processor}, {status}, {error} FROM {source} "
            f"WHERE {window} AND NOT {status} IN UNNEST(@ok) "
            f"ORDER BY 1 DESC LIMIT {int(query.error_limit):d}",
            f"recent errors in {query.table}",
            parameters,
        )
        what = f"{query.table}.{query.time_column}"
        return RunHistory(
            phases=tuple(
                PhaseStats(str(p), int(n), int(ok), as_utc_datetime(last, what))
                for p, n, ok, last in phases
            ),
            errors=tuple(
                RunError(
                    as_utc_datetime(t, what),
                    str(p),
                    str(pr),
                    str(st),
                    None if m is None else str(m),
                )
                for t, p, pr, st, m in errors
            ),
        )

    # -- SLA evaluator ------------------------------------------------------------------
    def daily_aggregates(self, query: DailyAggregateQuery) -> list[DailyAggregate]:
        """COUNT/SUM/MIN/MAX of ``column`` per UTC day of ``time_column`` (one query).

        ``DATE(x)`` of a TIMESTAMP is its UTC date (GoogleSQL's default time zone); the
        bounds are bound in the time column's own type. NULLs are not counted, so a day
        whose rows are all NULL is there with a count of 0.
        """
        info = self.get_table(query.table)  # free: the column types, the filter rule
        column_type(info, query.column, NUMERIC_TYPES, "numeric")
        time_type = column_type(info, query.time_column, TIME_TYPES, "DATE/DATETIME/TIMESTAMP")
        value, at = quoted_column(query.column), quoted_column(query.time_column)
        not_null = None
        if query.not_null:
            column_type(info, query.not_null)
            not_null = f"{quoted_column(query.not_null)} IS NOT NULL"
        sql = (
            f"SELECT DATE({at}), COUNT({value}), SUM({value}), MIN({value}), MAX({value}) "
            f"FROM {self._sql_table(query.table)}"
            + _where(
                f"{at} >= @since",
                f"{at} <= @until",
                not_null,
                all_partitions_predicate(info),
            )
            + " GROUP BY 1 ORDER BY 1"
        )
        rows = self._query(
            sql,
            f"daily aggregates of {query.table}.{query.column}",
            [
                self._time_parameter("since", time_type, query.since),
                self._time_parameter("until", time_type, query.until),
            ],
        )
        return [daily_aggregate(row) for row in rows]

    def run_buckets(self, query: RunBucketQuery) -> list[RunBucket]:
        """Runs per (bucket end, phase) with ``since < time <= until`` (one query).

        The bucket end is the first multiple of the bucket at or after the run's time,
        in exact INT64 arithmetic on microseconds: ``DIV`` and ``MOD`` truncate toward
        zero (GoogleSQL mathematical functions), so ``DIV(x, d) + IF(MOD(x, d) > 0, 1,
        0)`` is the ceiling for every sign of ``x`` (a float ``CEIL(x / d)`` is not
        exact once ``x / d`` needs more than 53 bits).
        """
        from google.cloud.bigquery import ArrayQueryParameter

        micros = bucket_micros(query.bucket_seconds)
        info = self.get_table(query.table)
        time_type = column_type(info, query.time_column, TIME_TYPES, "DATE/DATETIME/TIMESTAMP")
        for name in (query.phase_column, query.status_column):
            column_type(info, name)  # BadInput now rather than BigQuery's 400 later
        phase, status = quoted_column(query.phase_column), quoted_column(query.status_column)
        at = quoted_column(query.time_column)
        instant = at if time_type == "TIMESTAMP" else f"TIMESTAMP({at})"  # DATETIME: as UTC
        us = f"UNIX_MICROS({instant})"
        ceiling = f"DIV({us}, {micros:d}) + IF(MOD({us}, {micros:d}) > 0, 1, 0)"
        end = f"TIMESTAMP_MICROS(({ceiling}) * {micros:d})"
        sql = (
            f"SELECT {end}, {phase}, COUNT(*), COUNTIF({status} IN UNNEST(@ok)) "
            f"FROM {self._sql_table(query.table)}"
            + _where(f"{at} > @since", f"{at} <= @until", all_partitions_predicate(info))
            + " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        rows = self._query(
            sql,
            f"run buckets of {query.table}",
            [
                ArrayQueryParameter("ok", "STRING", list(query.success_values)),
                self._time_parameter("since", time_type, query.since),
                self._time_parameter("until", time_type, query.until),
            ],
        )
        what = f"bucket end in {query.table}"
        buckets = [RunBucket(utc_instant(e, what), str(p), int(n), int(ok)) for e, p, n, ok in rows]
        return sorted(buckets, key=lambda b: (b.end, b.phase))

    def load_times(
        self, table: TableRef, column: str, since: datetime, until: datetime
    ) -> list[datetime]:
        info = self.get_table(table)
        time_type = column_type(info, column, TIME_TYPES, "DATE/DATETIME/TIMESTAMP")
        at = quoted_column(column)
        sql = (
            f"SELECT DISTINCT {at} FROM {self._sql_table(table)}"
            + _where(f"{at} >= @since", f"{at} <= @until", all_partitions_predicate(info))
            + " ORDER BY 1"
        )
        rows = self._query(
            sql,
            f"load times in {table}.{column}",
            [
                self._time_parameter("since", time_type, since),
                self._time_parameter("until", time_type, until),
            ],
        )
        what = f"{table}.{column}"
        return [utc_instant(row[0], what) for row in rows]

    def fingerprint(self, table: TableRef, instant: datetime | None = None) -> Fingerprint:
        """Rows and a digest of every row's ``TO_JSON_STRING`` (one query).

        Each row hashes to ``FARM_FINGERPRINT(TO_JSON_STRING(row))`` (column names and
        values, so the same schema and rows give the same text); the digest combines
        their ``BIT_XOR`` and exact ``SUM`` (as BIGNUMERIC: an INT64 sum overflows), both
        independent of row order. ``FOR SYSTEM_TIME AS OF`` follows the alias (GoogleSQL
        ``from_item``: ``table_name [as_alias] [FOR SYSTEM_TIME AS OF ...]``) and takes
        ``TIMESTAMP_MICROS`` of an integer formatted here: bqemulator 1.4.0 can't bind a
        query parameter there ("Values were not provided ... parameters: instant").
        """
        info = self.get_table(table)  # the filter rule, and an alias no column shadows
        alias = row_alias(info)
        hashed = f"FARM_FINGERPRINT(TO_JSON_STRING({alias}))"
        as_of = ""
        if instant is not None:
            as_of = f" FOR SYSTEM_TIME AS OF TIMESTAMP_MICROS({epoch_micros(instant):d})"
        sql = (
            f"SELECT COUNT(*), BIT_XOR({hashed}), SUM(CAST({hashed} AS BIGNUMERIC)) "
            f"FROM {self._sql_table(table)} AS {alias}{as_of}"
            + _where(all_partitions_predicate(info))
        )
        rows = self._query(sql, f"fingerprint of {table}")
        if len(rows) != 1:
            raise PermanentError(f"fingerprint of {table}: expected one row, got {len(rows)}")
        count, xor, total = rows[0]
        return Fingerprint(int(count), fingerprint_digest(xor, total))

    # -- jobs ---------------------------------------------------------------------------
    def start_extract(self, request: ExtractRequest) -> JobStatus:
        from google.cloud.bigquery import ExtractJobConfig

        job_id = identifiers.job_id(request.job_id)
        # The snapshot decorator pins the export to the requested instant.
        source = self._table_ref(request.source, f"@{epoch_millis(request.instant):d}")
        config = ExtractJobConfig(  # type: ignore[no-untyped-call, unused-ignore]
            destination_format=request.format, compression=request.compression
        )
        if request.format == "AVRO":
            config.use_avro_logical_types = True
        return self._insert_job(
            job_id,
            f"extract {request.source} as job {job_id}",
            lambda: self.client.extract_table(
                source,
                request.destination_uri,
                job_id=job_id,
                location=self.location,
                job_config=config,
                retry=self._retry,
                timeout=self.retry_deadline,
            ),
        )

    def start_load(self, request: LoadRequest) -> JobStatus:
        from google.cloud.bigquery import LoadJobConfig, SchemaField

        job_id = identifiers.job_id(request.job_id)
        if not request.schema:
            raise BadInput(f"load {job_id}: an explicit schema is required")
        config = LoadJobConfig(
            source_format=request.format,
            schema=[SchemaField.from_api_repr(f) for f in schema_to_api(request.schema)],
            write_disposition="WRITE_TRUNCATE",
            create_disposition="CREATE_NEVER",
        )
        if request.format == "AVRO":
            config.use_avro_logical_types = True
        if request.format in ("AVRO", "PARQUET", "ORC"):
            # BigQuery's default for these formats is ["NUMERIC"]: a decimal that NUMERIC
            # can't hold (BIGNUMERIC's decimal(77, 38)) fails the load. BigQuery takes the
            # first of NUMERIC, BIGNUMERIC, STRING (in that fixed order, whatever the
            # list's order) that fits the decimal's precision and scale (REST reference,
            # JobConfigurationLoad.decimalTargetTypes; job/load.py decimal_target_types).
            config.decimal_target_types = ["NUMERIC", "BIGNUMERIC"]
        return self._insert_job(
            job_id,
            f"load into {request.destination} as job {job_id}",
            lambda: self.client.load_table_from_uri(
                list(request.source_uris),
                self._table_ref(request.destination),
                job_id=job_id,
                location=self.location,
                job_config=config,
                retry=self._retry,
                timeout=self.retry_deadline,
            ),
        )

    def delete_table(self, table: TableRef) -> None:
        with translated(f"tables.delete {table}"):
            self.client.delete_table(
                self._table_ref(table),
                not_found_ok=True,
                retry=self._retry,
                timeout=self.retry_deadline,
            )

    def replace_table(self, target: TableRef, source: TableRef) -> None:
        """A copy job ``source`` → ``target`` (WRITE_TRUNCATE), then ``source`` is dropped.

        The copy replaces the target's rows and schema in one job; if it fails (e.g. the
        target has an incompatible partitioning), the target is untouched and the
        caller decides what happens to ``source``. The job id is fixed by (target,
        source), so an insert whose answer was lost is found again (409 → attach). A
        copy not seen to finish within ``copy_wait_seconds`` raises
        :class:`~shared.errors.StillRunning`: its outcome is unknown and ``source``
        must stay while it may still be read.
        """
        from google.cloud.bigquery import CopyJobConfig

        if target.dataset != source.dataset:
            raise BadInput("replace_table needs source and target in the same dataset")
        job_id = self._replace_job_id(target, source)
        config = CopyJobConfig(  # type: ignore[no-untyped-call, unused-ignore]
            write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_IF_NEEDED"
        )
        try:
            status = self._insert_job(
                job_id,
                f"copy {source} over {target} as job {job_id}",
                lambda: self.client.copy_table(
                    self._table_ref(source),
                    self._table_ref(target),
                    job_id=job_id,
                    location=self.location,
                    job_config=config,
                    retry=self._retry,
                    timeout=self.retry_deadline,
                ),
            )
        except TransientError as lost:
            # The insert may have reached BigQuery although no answer came back.
            status = self._after_lost_insert(job_id, lost)
        # Our own bounded wait: job.result(timeout=...) bounds each HTTP request, not the
        # whole wait (google/cloud/bigquery/job/base.py _AsyncJob.result), and it raises
        # the job's error instead of returning a status.
        deadline = monotonic() + self.copy_wait_seconds
        delay = _NOT_FOUND_FIRST_DELAY
        while not status.done:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise StillRunning(
                    f"copy {source} over {target}: job {job_id} did not finish within "
                    f"{self.copy_wait_seconds:g} s and may still be running; keep {source} "
                    f"until the job is done (its outcome decides whether {target} changed)",
                    job_id,
                )
            sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX_DELAY)
            try:
                status = self.get_job(job_id)
            except TransientError:
                continue  # a failed poll says nothing about the copy: wait on
        if status.error is not None:
            failed = TransientError if status.error.transient else PermanentError
            raise failed(
                f"copy {source} over {target} (job {job_id}) failed ({status.error.reason}: "
                f"{status.error.message}); {target} is unchanged"
            )
        try:
            self.delete_table(source)
        except OpsuiteError as exc:  # target is replaced: a leftover source isn't a failure
            logger.warning(
                "replace_table: the copy succeeded but its source could not be dropped",
                extra={"fields": {"source": str(source), "job_id": job_id, "error": str(exc)}},
            )

    def _replace_job_id(self, target: TableRef, source: TableRef) -> str:
        """One job id per (project, target, source): a retried insert answers 409 and attaches."""
        import hashlib

        key = f"{self.project}:{target}<-{source}".encode()
        digest = hashlib.sha256(key).hexdigest()[:24]
        # job_token: a table name may hold Unicode or spaces, a job id may not
        readable = f"opsuite_replace_{target.dataset}-{identifiers.job_token(target.table)}"
        return identifiers.job_id(f"{readable}_{digest}")

    def _after_lost_insert(self, job_id: str, lost: TransientError) -> JobStatus:
        """The job's status if the unanswered insert created it; else ``lost`` is raised."""
        self._expect_job(job_id)
        try:
            return self.get_job(job_id)
        except NotFound:
            raise lost from None  # never created: nothing runs, the caller may clean up
        except TransientError as exc:
            raise StillRunning(
                f"job {job_id}: its insert got no answer ({lost}) and it can't be looked up "
                f"({exc}); it may still be running",
                job_id,
            ) from exc

    def _insert_job(self, job_id: str, what: str, insert: Callable[[], Any]) -> JobStatus:
        """``jobs.insert`` under the caller's id; an id that exists (409) is attached to."""
        try:
            with translated(what):
                job = insert()
        except AlreadyExists:  # BigQuery's 409: the id was inserted before
            self._expect_job(job_id)
            return self.get_job(job_id)  # attach; never run a job twice
        status = self._status(job)
        if not status.done:  # a job already DONE is never looked up again: nothing to forget
            self._expect_job(job_id)
        return status

    def _expect_job(self, job_id: str) -> None:
        with self._lock:
            self._unseen_jobs.setdefault(job_id, monotonic())

    def get_job(self, job_id: str) -> JobStatus:
        """The job's status; NotFound at once for an id this adapter hasn't inserted.

        ``jobs.get`` can answer 404 for a moment right after ``jobs.insert`` or a 409
        (google/cloud/bigquery/retry.py ``_should_retry_get_job_conflict`` retries that
        NotFound for the same reason), so a job this adapter inserted or was told exists
        gets ``job_visibility_seconds`` to appear. Any other lookup is not retried: the
        backup service asks first whether a job exists and inserts on NotFound.
        """
        identifiers.job_id(job_id)
        with self._lock:
            expected_since = self._unseen_jobs.get(job_id)
        visible_by = (
            None if expected_since is None else expected_since + self.job_visibility_seconds
        )
        delay = _NOT_FOUND_FIRST_DELAY
        while True:
            try:
                with translated(f"jobs.get {job_id}"):
                    job = self.client.get_job(
                        job_id,
                        location=self.location,
                        retry=self._retry,
                        timeout=self.retry_deadline,
                    )
                break
            except NotFound:
                now = monotonic()
                if visible_by is None or now >= visible_by:
                    with self._lock:
                        self._unseen_jobs.pop(job_id, None)
                    raise
                sleep(min(delay, visible_by - now))
                delay = min(delay * 2, _NOT_FOUND_MAX_DELAY)
        with self._lock:
            self._unseen_jobs.pop(job_id, None)  # seen: a later 404 is a real one
        return self._status(job)

    @staticmethod
    def _status(job: Any) -> JobStatus:
        from google.cloud.bigquery import ExtractJob, LoadJob

        state = _JOB_STATES.get(str(job.state or "PENDING").upper(), "PENDING")
        error_result = job.error_result
        error = (
            JobError(
                reason=str(error_result.get("reason") or "unknown"),
                message=str(error_result.get("message") or ""),
            )
            if error_result
            else None
        )
        file_count: int | None = None
        output_rows: int | None = None
        if isinstance(job, ExtractJob) and job.destination_uri_file_counts:
            file_count = sum(int(n) for n in job.destination_uri_file_counts)
        if isinstance(job, LoadJob) and job.output_rows is not None:
            output_rows = int(job.output_rows)
        return JobStatus(
            job_id=str(job.job_id),
            state=state,
            error=error,
            destination_file_count=file_count,
            output_rows=output_rows,
            started=job.started,
            ended=job.ended,
        )
