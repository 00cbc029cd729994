"""The Warehouse port on BigQuery (``google-cloud-bigquery``, imported on first use).

Design points:

* Every call carries the client's retry (``DEFAULT_RETRY``: 429/5xx and the retryable
  BigQuery reasons) bounded by ``retry_deadline``, and a per-request timeout, so a
  503 is retried briefly by the client and then surfaces as
  :class:`~shared.errors.TransientError` for the service's own backoff.
* Extract reads the table at the requested instant through the snapshot decorator
  ``table@<epoch_ms>`` on the source table id (as bq-backup-manager does).
* Jobs carry the caller's id. BigQuery answers an existing id with 409; the adapter
  then attaches to the existing job (``jobs.get``) instead of exporting twice.
* Load jobs always send the schema explicitly (never autodetect), with Avro logical
  types and ``WRITE_TRUNCATE`` into a table that restore created beforehand.
* SQL text is built only from validated identifiers (backquoted) and integers
  formatted here; every other value is a bound query parameter.
* Health queries read metadata (``INFORMATION_SCHEMA.TABLES``/``PARTITIONS``) in one
  query per dataset, and bind time bounds in the column's own type (DATE, DATETIME or
  TIMESTAMP: BigQuery doesn't compare across them).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from shared import identifiers
from shared.adapters.gcp._errors import translated
from shared.errors import AlreadyExists, BadInput, NotFound, PermanentError
from shared.identifiers import TableRef
from shared.models import (
    ExtractRequest,
    JobError,
    JobStateName,
    JobStatus,
    LoadRequest,
    PhaseStats,
    RunError,
    RunHistory,
    RunHistoryQuery,
    TableInfo,
    TableMetadata,
    TableSpec,
    as_utc_datetime,
    schema_from_api,
    schema_to_api,
)

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud import bigquery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REPLACE_TIMEOUT_SECONDS = 3600.0
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
    return f"`{identifiers.table_id(name)}`"


def table_info_from_resource(table: TableRef, resource: Mapping[str, Any]) -> TableInfo:
    """A :class:`TableInfo` from BigQuery's ``tables.get`` JSON."""
    spec = TableSpec.from_resource(resource)
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
    )


class BigQueryWarehouse:
    def __init__(
        self,
        project: str,
        location: str = "US",
        client: bigquery.Client | None = None,
        *,
        retry_deadline: float = 30.0,
        page_size: int | None = None,
    ) -> None:
        self.project = identifiers.project_id(project)
        self.location = location
        self.retry_deadline = retry_deadline
        self.page_size = page_size
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------
    @property
    def client(self) -> bigquery.Client:
        with self._lock:
            if self._client is None:
                with translated("BigQuery client"):
                    from google.cloud import bigquery

                    self._client = bigquery.Client(project=self.project, location=self.location)
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

    def _query(self, sql: str, what: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query with bound parameters; all rows as tuples."""
        from google.cloud.bigquery import QueryJobConfig
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

        with translated(what):
            rows = self.client.query_and_wait(
                sql,
                job_config=QueryJobConfig(query_parameters=list(parameters)),
                location=self.location,
                retry=self._retry,
                job_retry=DEFAULT_JOB_RETRY.with_timeout(self.retry_deadline),
                api_timeout=self.retry_deadline,
                wait_timeout=self.retry_deadline,
            )
            return [tuple(row.values()) for row in rows]

    def _scalar(self, sql: str, what: str) -> int:
        rows = self._query(sql, what)
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

    def _column_types(self, table: TableRef) -> dict[str, str]:
        return {f.name: f.type for f in self.get_table(table).schema}

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

    def row_count_at(self, table: TableRef, instant: datetime) -> int:
        millis = epoch_millis(instant)
        sql = (
            f"SELECT COUNT(*) AS n FROM {self._sql_table(table)} "
            f"FOR SYSTEM_TIME AS OF TIMESTAMP_MILLIS({millis:d})"
        )
        return self._scalar(sql, f"row count of {table} at {instant.isoformat()}")

    def count_rows(self, table: TableRef) -> int:
        return self._scalar(f"SELECT COUNT(*) AS n FROM {self._sql_table(table)}", f"count {table}")

    def ensure_dataset(self, dataset: str) -> None:
        from google.cloud.bigquery import Dataset, DatasetReference

        identifiers.dataset_id(dataset)
        body = Dataset(DatasetReference(self.project, dataset))
        body.location = self.location
        with translated(f"datasets.insert {dataset}"):
            self.client.create_dataset(
                body, exists_ok=True, retry=self._retry, timeout=self.retry_deadline
            )

    def create_table(self, table: TableRef, spec: TableSpec, *, replace: bool = False) -> None:
        from google.cloud.bigquery import Table

        if not spec.schema:
            raise BadInput(f"{table}: a table needs at least one column")
        for field in spec.schema:  # the same check as the local warehouse
            identifiers.table_id(field.name)
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

    def dataset_metadata(self, dataset: str, tables: Sequence[str]) -> dict[str, TableMetadata]:
        from google.cloud.bigquery import ArrayQueryParameter, DatasetReference

        identifiers.dataset_id(dataset)
        names = [identifiers.table_id(t) for t in tables]
        if not names:
            return {}
        with translated(f"datasets.get {dataset}"):  # NotFound for a missing dataset
            self.client.get_dataset(
                DatasetReference(self.project, dataset),
                retry=self._retry,
                timeout=self.retry_deadline,
            )
        views = f"{identifiers.project_id(self.project)}.{dataset}.INFORMATION_SCHEMA"
        # One query: every listed table that exists (TABLES), with what its partitions
        # say (PARTITIONS; "__NULL__", "__UNPARTITIONED__" … are not partition dates).
        sql = (
            "SELECT t.table_name, p.last_modified, p.newest_partition, p.total_rows "
            f"FROM `{views}.TABLES` AS t LEFT JOIN ("
            "SELECT table_name, MAX(last_modified_time) AS last_modified, "
            "MAX(IF(partition_id IS NULL OR STARTS_WITH(partition_id, '__'), NULL, "
            "partition_id)) AS newest_partition, SUM(total_rows) AS total_rows "
            f"FROM `{views}.PARTITIONS` WHERE table_name IN UNNEST(@tables) "
            "GROUP BY table_name) AS p ON p.table_name = t.table_name "
            "WHERE t.table_name IN UNNEST(@tables)"
        )
        rows = self._query(
            sql, f"metadata of {dataset}", [ArrayQueryParameter("tables", "STRING", names)]
        )
        return {
            str(name): TableMetadata(
                table=str(name),
                last_modified=as_utc_datetime(modified, f"{dataset}.{name} last_modified_time"),
                newest_partition=str(partition) if partition is not None else None,
                rows=int(total) if total is not None else None,
            )
            for name, modified, partition, total in rows
        }

    def newest_value(
        self, table: TableRef, column: str, partition_field: str | None, since: date | None
    ) -> datetime | None:
        sql = f"SELECT MAX({quoted_column(column)}) FROM {self._sql_table(table)}"
        parameters = []
        if partition_field and since:
            types = self._column_types(table)
            midnight = datetime.combine(since, time.min, UTC)
            sql += f" WHERE {quoted_column(partition_field)} >= @since"
            parameters.append(self._time_parameter("since", types.get(partition_field), midnight))
        rows = self._query(sql, f"newest {column} in {table}", parameters)
        value = rows[0][0] if rows else None
        return as_utc_datetime(value, f"{table}.{column}")

    def run_history(self, query: RunHistoryQuery) -> RunHistory:
        from google.cloud.bigquery import ArrayQueryParameter

        phase, processor = quoted_column(query.phase_column), quoted_column(query.processor_column)
        status, at = quoted_column(query.status_column), quoted_column(query.time_column)
        error = quoted_column(query.error_column) if query.error_column else "NULL"
        source = self._sql_table(query.table)
        time_type = self._column_types(query.table).get(query.time_column)
        parameters = [
            ArrayQueryParameter("ok", "STRING", list(query.success_values)),
            self._time_parameter("since", time_type, query.since),
        ]
        phases = self._query(
            f"SELECT {phase}, COUNT(*), COUNTIF({status} IN UNNEST(@ok)), MAX({at}) "
            f"FROM {source} WHERE {at} >= @since GROUP BY 1 ORDER BY 1",
            f"run history of {query.table}",
            parameters,
        )
        errors = self._query(
            f"SELECT {at}, {phase}, {processor}, {status}, {error} FROM {source} "
            f"WHERE {at} >= @since AND NOT {status} IN UNNEST(@ok) "
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
        try:
            with translated(f"extract {request.source} as job {job_id}"):
                job = self.client.extract_table(
                    source,
                    request.destination_uri,
                    job_id=job_id,
                    location=self.location,
                    job_config=config,
                    retry=self._retry,
                    timeout=self.retry_deadline,
                )
        except AlreadyExists:  # BigQuery's 409: the id was inserted before
            return self.get_job(job_id)  # attach; never export twice
        return self._status(job)

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
        try:
            with translated(f"load into {request.destination} as job {job_id}"):
                job = self.client.load_table_from_uri(
                    list(request.source_uris),
                    self._table_ref(request.destination),
                    job_id=job_id,
                    location=self.location,
                    job_config=config,
                    retry=self._retry,
                    timeout=self.retry_deadline,
                )
        except AlreadyExists:
            return self.get_job(job_id)
        return self._status(job)

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
        caller decides what happens to ``source``.
        """
        import uuid

        from google.cloud.bigquery import CopyJobConfig

        if target.dataset != source.dataset:
            raise BadInput("replace_table needs source and target in the same dataset")
        job_id = identifiers.job_id(
            f"opsuite_swap_{target.dataset}-{target.table}_{uuid.uuid4().hex[:12]}"
        )
        config = CopyJobConfig(  # type: ignore[no-untyped-call, unused-ignore]
            write_disposition="WRITE_TRUNCATE", create_disposition="CREATE_IF_NEEDED"
        )
        with translated(f"copy {source} over {target} as job {job_id}"):
            job = self.client.copy_table(
                self._table_ref(source),
                self._table_ref(target),
                job_id=job_id,
                location=self.location,
                job_config=config,
                retry=self._retry,
                timeout=self.retry_deadline,
            )
            job.result(retry=self._retry, timeout=REPLACE_TIMEOUT_SECONDS)
        status = self._status(job)
        if status.error is not None:
            raise PermanentError(
                f"copy {source} over {target} failed ({status.error.reason}: "
                f"{status.error.message}); {target} is unchanged"
            )
        self.delete_table(source)

    def get_job(self, job_id: str) -> JobStatus:
        identifiers.job_id(job_id)
        with translated(f"jobs.get {job_id}"):
            job = self.client.get_job(
                job_id, location=self.location, retry=self._retry, timeout=self.retry_deadline
            )
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
