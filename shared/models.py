"""Plain typed values passed across ports: table metadata, jobs and objects."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from shared.errors import BadInput
from shared.identifiers import TableRef

JobStateName = Literal["PENDING", "RUNNING", "DONE"]

#: BigQuery error reasons after which a retry under a new job id can succeed.
#: The ``job*`` ones are google/cloud/bigquery/retry.py ``job_retry_reasons``.
TRANSIENT_JOB_REASONS = frozenset(
    {
        "backendError",
        "internalError",
        "rateLimitExceeded",
        "timeout",
        "jobBackendError",
        "jobInternalError",
        "jobRateLimitExceeded",
    }
)


@dataclass(frozen=True)
class SchemaField:
    """One column, in BigQuery's terms (type names as in the REST API)."""

    name: str
    type: str
    mode: str = "NULLABLE"
    fields: tuple[SchemaField, ...] = ()
    description: str | None = None
    precision: int | None = None
    scale: int | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.fields:
            out["fields"] = [f.to_api() for f in self.fields]
        if self.description:
            out["description"] = self.description
        if self.precision is not None:
            out["precision"] = str(self.precision)
        if self.scale is not None:
            out["scale"] = str(self.scale)
        return out

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SchemaField:
        type_name = str(data["type"]).upper()
        type_name = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}.get(
            type_name, type_name
        )
        if type_name == "STRUCT":
            type_name = "RECORD"
        return cls(
            name=str(data["name"]),
            type=type_name,
            mode=str(data.get("mode") or "NULLABLE").upper(),
            fields=tuple(cls.from_api(f) for f in data.get("fields") or ()),
            description=data.get("description") or None,
            precision=int(data["precision"]) if data.get("precision") is not None else None,
            scale=int(data["scale"]) if data.get("scale") is not None else None,
        )


def column_names(schema: Sequence[SchemaField]) -> Iterator[str]:
    """Every column name in ``schema``, nested RECORD fields included (to validate them all)."""
    for f in schema:
        yield f.name
        yield from column_names(f.fields)


def schema_to_api(schema: Sequence[SchemaField]) -> list[dict[str, Any]]:
    return [f.to_api() for f in schema]


def schema_from_api(fields: Sequence[Mapping[str, Any]]) -> tuple[SchemaField, ...]:
    return tuple(SchemaField.from_api(f) for f in fields)


@dataclass(frozen=True)
class TableInfo:
    """What a restore needs to rebuild a table, plus the counts a backup records."""

    ref: TableRef
    schema: tuple[SchemaField, ...]
    num_rows: int
    num_bytes: int
    modified: datetime
    time_partitioning: Mapping[str, Any] | None = None
    range_partitioning: Mapping[str, Any] | None = None
    clustering: tuple[str, ...] = ()
    description: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    #: BigQuery's ``requirePartitionFilter``: every query must filter on the partition column.
    require_partition_filter: bool = False
    #: ``streamingBuffer.estimatedRows`` when the table has rows not yet in managed storage
    #: (extract jobs don't read them); None when there is no streaming buffer.
    streaming_buffer_rows: int | None = None

    def resource(self) -> dict[str, Any]:
        """The table resource in the shape of BigQuery's ``tables.get`` JSON."""
        out: dict[str, Any] = {
            "tableReference": {"datasetId": self.ref.dataset, "tableId": self.ref.table},
            "schema": {"fields": schema_to_api(self.schema)},
            "numRows": str(self.num_rows),
            "numBytes": str(self.num_bytes),
            "lastModifiedTime": str(int(self.modified.timestamp() * 1000)),
        }
        out.update(self.spec().resource_fields())
        return out

    def spec(self) -> TableSpec:
        return TableSpec(
            self.schema,
            self.time_partitioning,
            self.range_partitioning,
            self.clustering,
            self.description,
            self.labels,
            self.require_partition_filter,
        )


@dataclass(frozen=True)
class TableSpec:
    """The parts of a table resource used to (re)create a table."""

    schema: tuple[SchemaField, ...]
    time_partitioning: Mapping[str, Any] | None = None
    range_partitioning: Mapping[str, Any] | None = None
    clustering: tuple[str, ...] = ()
    description: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    require_partition_filter: bool = False

    @classmethod
    def from_resource(cls, resource: Mapping[str, Any]) -> TableSpec:
        # BigQuery has carried the flag in two places: the table's top-level
        # ``requirePartitionFilter`` and (deprecated) ``timePartitioning.requirePartitionFilter``.
        partitioning = resource.get("timePartitioning")
        require = bool(resource.get("requirePartitionFilter")) or bool(
            isinstance(partitioning, Mapping) and partitioning.get("requirePartitionFilter")
        )
        return cls(
            schema=schema_from_api(resource.get("schema", {}).get("fields", [])),
            time_partitioning=partitioning,
            range_partitioning=resource.get("rangePartitioning"),
            clustering=tuple(resource.get("clustering", {}).get("fields", ())),
            description=resource.get("description"),
            labels=dict(resource.get("labels") or {}),
            require_partition_filter=require,
        )

    def resource_fields(self) -> dict[str, Any]:
        """The table-resource fields this spec sets (the inverse of ``from_resource``)."""
        out: dict[str, Any] = {
            "schema": {"fields": schema_to_api(self.schema)},
            "labels": dict(self.labels),
        }
        if self.time_partitioning:
            out["timePartitioning"] = dict(self.time_partitioning)
        if self.range_partitioning:
            out["rangePartitioning"] = dict(self.range_partitioning)
        if self.clustering:
            out["clustering"] = {"fields": list(self.clustering)}
        if self.description:
            out["description"] = self.description
        if self.require_partition_filter:
            out["requirePartitionFilter"] = True
        return out


@dataclass(frozen=True)
class ExtractRequest:
    job_id: str
    source: TableRef
    instant: datetime
    destination_uri: str  # gs://bucket/prefix/.../part-*.avro
    format: str = "AVRO"
    compression: str = "SNAPPY"


@dataclass(frozen=True)
class LoadRequest:
    job_id: str
    destination: TableRef
    source_uris: tuple[str, ...]
    schema: tuple[SchemaField, ...]
    format: str = "AVRO"


@dataclass(frozen=True)
class JobError:
    reason: str
    message: str

    @property
    def transient(self) -> bool:
        return self.reason in TRANSIENT_JOB_REASONS


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobStateName
    error: JobError | None = None
    destination_file_count: int | None = None
    output_rows: int | None = None
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def done(self) -> bool:
        return self.state == "DONE"

    @property
    def succeeded(self) -> bool:
        return self.state == "DONE" and self.error is None


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    name: str
    size: int
    crc32c: str  # base64 of the big-endian CRC32C, as GCS reports it

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def as_utc_datetime(value: object, what: str) -> datetime | None:
    """TIMESTAMP, DATETIME (taken as UTC) or DATE (its midnight, UTC) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.min, UTC)
    raise BadInput(f"{what} is not a DATE, DATETIME or TIMESTAMP column")


def parse_utc_instant(value: object) -> datetime | None:
    """An ISO 8601 instant read from a stored record ('Z' or an offset; naive taken as UTC).

    Lenient on purpose: anything else (absent, not a string, not a date) is ``None``, for
    readers of ledgers and manifests that must skip a bad field rather than fail.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    """A stored instant without an offset is UTC (records written by older code, or by
    hand): aware either way, so comparing it with an aware instant can't raise."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def split_gs_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise ValueError(f"not a gs:// object URI: {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    return bucket, name


@dataclass(frozen=True)
class TableMetadata:
    """What the warehouse's metadata says about a table, without scanning it."""

    table: str
    last_modified: datetime | None
    newest_partition: str | None  # partition id, e.g. "20261121"
    rows: int | None
    #: rows still in the streaming buffer (not in ``rows``; extract jobs skip them)
    streaming_buffer_rows: int | None = None


@dataclass(frozen=True)
class RunHistoryQuery:
    table: TableRef
    phase_column: str
    processor_column: str
    status_column: str
    time_column: str
    error_column: str | None
    success_values: tuple[str, ...]
    since: datetime
    error_limit: int


@dataclass(frozen=True)
class PhaseStats:
    phase: str
    runs: int
    succeeded: int
    last_run: datetime | None


@dataclass(frozen=True)
class RunError:
    time: datetime | None
    phase: str
    processor: str
    status: str
    message: str | None


@dataclass(frozen=True)
class RunHistory:
    phases: tuple[PhaseStats, ...]
    errors: tuple[RunError, ...]


# -- metrics (the SLA evaluator's Cloud Monitoring custom metrics) ----------------------
@dataclass(frozen=True)
class MetricPoint:
    """One GAUGE point of one time series: ``metric_type`` + ``labels`` name the series.

    ``metric_type`` is a full type (``custom.googleapis.com/opsuite/...``) from
    :mod:`shared.metrics`; label keys and values come only from configuration, so the
    number of series stays bounded.
    """

    metric_type: str
    labels: Mapping[str, str]
    value: float | int | bool
    at: datetime  # the GAUGE interval's end time (start == end)

    @property
    def series(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.metric_type, tuple(sorted(self.labels.items()))


@dataclass(frozen=True)
class WriteReport:
    """What a metric write did with each point it was given."""

    written: int = 0
    #: points whose series already has a point at that instant or later: a redelivered
    #: evaluation (Monitoring answers "Points must be written in order"); not an error
    already_present: int = 0
    #: points that were not written and won't be by retrying, each with the reason
    rejected: tuple[str, ...] = ()


# -- SLA evaluator inputs (warehouse queries) --------------------------------------------
AggregateName = Literal["avg", "max", "min", "sum"]


@dataclass(frozen=True)
class DailyAggregateQuery:
    """Per-day partial aggregates of ``column``: rows with ``since <= time_column <= until``
    (compared as the column's own type: a DATE column by the instants' UTC dates), and
    ``not_null`` set when given. One query, grouped by the UTC day of ``time_column``."""

    table: TableRef
    column: str
    time_column: str
    since: datetime
    until: datetime
    not_null: str | None = None


@dataclass(frozen=True)
class DailyAggregate:
    """One UTC day's partial aggregates (NULL values of ``column`` are not counted)."""

    day: date
    count: int
    total: float  # SUM
    minimum: float | None
    maximum: float | None


@dataclass(frozen=True)
class RunBucketQuery:
    """Runs with ``since < time_column <= until`` counted per phase and per ``bucket``
    (a run at instant t falls in the bucket ending at the first multiple of
    ``bucket_seconds`` since the Unix epoch that is >= t)."""

    table: TableRef
    phase_column: str
    status_column: str
    time_column: str
    success_values: tuple[str, ...]
    since: datetime
    until: datetime
    bucket_seconds: int


@dataclass(frozen=True)
class RunBucket:
    end: datetime  # the bucket's end (inclusive), a multiple of bucket_seconds since the epoch
    phase: str
    runs: int
    succeeded: int


@dataclass(frozen=True)
class Fingerprint:
    """Row count and an order-independent hash of every row's content."""

    rows: int
    digest: str  # hex; equal digests = same multiset of rows (with overwhelming likelihood)


# -- SLA evaluation history --------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationRecord:
    """One SLO evaluated at one instant: a row of the evaluations history table.

    ``good`` None = unknown (the SLI could not be computed; never counted as good).
    Request-based SLIs (``ratio``) also carry the events counted since the previous
    evaluation in ``good_events`` / ``total_events``. ``breaching``, ``exhausted`` and
    ``burning`` are the SLO's state after this evaluation (the next evaluation's
    "previous state"); ``detail`` is a JSON object (per-table ages, per-phase counts,
    why a value is unknown), at most a few KiB.
    """

    at: datetime
    slo: str
    kind: str
    good: bool | None
    value: float | None
    good_events: int | None
    total_events: int | None
    compliance: float | None
    budget_remaining: float | None
    breaching: bool
    exhausted: bool
    burning: tuple[str, ...]  # firing burn-rate window pairs, e.g. ("1h/15m",)
    detail: str
    recorded_at: datetime


# -- alerts (the alert router) -----------------------------------------------------------
AlertStatus = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Alert:
    """One alert, whatever its source (a Cloud Monitoring incident, an SLO or backup event).

    ``fingerprint`` is deterministic from the source and its identifying labels, so the
    open and the close of one problem share it (PagerDuty's dedup_key, the ledger's key).
    ``labels`` identify and route (``alertname``, ``severity``, ``slo``, ``table``...);
    ``annotations`` describe (``summary``, ``description``, ``runbook``, ``console``).
    Text from incidents is untrusted: receivers escape and cap it.
    """

    fingerprint: str
    status: AlertStatus
    severity: str  # P0..P3
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    #: ``monitoring`` | ``slo`` | ``backup`` | ``drill``
    source: str
    #: the incident id or event id this alert came from
    source_id: str
    generator_url: str | None = None
    #: when the alert reached the router (detection: starts_at → received_at → notified)
    received_at: datetime | None = None


@dataclass(frozen=True)
class Notification:
    """What one receiver is sent for one group of alerts."""

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    #: the router's own URL for the group (console links), if any
    external_url: str | None = None

    @property
    def status(self) -> AlertStatus:
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"


@dataclass(frozen=True)
class DeliveryResult:
    """A receiver accepted the notification (2xx); its answer, capped, for the ledger."""

    receiver: str
    status_code: int
    response: str = ""
