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
* SQL text is built only from validated identifiers and integers formatted here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
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
    TableInfo,
    TableSpec,
    schema_from_api,
    schema_to_api,
)

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud import bigquery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JOB_STATES: dict[str, JobStateName] = {"PENDING": "PENDING", "RUNNING": "RUNNING", "DONE": "DONE"}


def epoch_millis(instant: datetime) -> int:
    """Whole milliseconds since the epoch of an aware datetime (exact, no float rounding)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise BadInput(f"instant {instant.isoformat()} has no time zone")
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def _from_millis(value: object) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(str(value))) if value is not None else _EPOCH


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

    def _scalar(self, sql: str, what: str) -> int:
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

        with translated(what):
            rows = self.client.query_and_wait(
                sql,
                location=self.location,
                retry=self._retry,
                job_retry=DEFAULT_JOB_RETRY.with_timeout(self.retry_deadline),
                api_timeout=self.retry_deadline,
                wait_timeout=self.retry_deadline,
            )
            values = [row[0] for row in rows]
        if len(values) != 1:
            raise PermanentError(f"{what}: expected one row, got {len(values)}")
        return int(values[0])

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
        resource: dict[str, Any] = {
            "tableReference": {
                "projectId": self.project,
                "datasetId": table.dataset,
                "tableId": table.table,
            },
            "schema": {"fields": schema_to_api(spec.schema)},
            "labels": dict(spec.labels),
        }
        if spec.time_partitioning:
            resource["timePartitioning"] = dict(spec.time_partitioning)
        if spec.range_partitioning:
            resource["rangePartitioning"] = dict(spec.range_partitioning)
        if spec.clustering:
            resource["clustering"] = {"fields": list(spec.clustering)}
        if spec.description:
            resource["description"] = spec.description
        if replace:
            with translated(f"tables.delete {table}"):
                self.client.delete_table(
                    self._table_ref(table),
                    not_found_ok=True,
                    retry=self._retry,
                    timeout=self.retry_deadline,
                )
        try:
            with translated(f"tables.insert {table}"):
                self.client.create_table(
                    Table.from_api_repr(resource), retry=self._retry, timeout=self.retry_deadline
                )
        except AlreadyExists as exc:
            raise AlreadyExists(f"table {table} already exists") from exc

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
        )
