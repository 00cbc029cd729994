"""The small ports every service is written against.

Each has a ``gcp`` implementation (official google-cloud clients) and a ``local``
one (embedded). Errors crossing a port are always from :mod:`shared.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import BinaryIO, Protocol

from shared.identifiers import TableRef
from shared.models import (
    DailyAggregate,
    DailyAggregateQuery,
    DeliveryResult,
    EvaluationRecord,
    ExtractRequest,
    Fingerprint,
    JobStatus,
    LoadRequest,
    MetricPoint,
    Notification,
    ObjectInfo,
    RunBucket,
    RunBucketQuery,
    RunHistory,
    RunHistoryQuery,
    TableInfo,
    TableMetadata,
    TableSpec,
    WriteReport,
)


class Warehouse(Protocol):
    """BigQuery-shaped warehouse: tables, metadata and jobs."""

    #: Can tables be read as of a past instant (BigQuery time travel)? The local
    #: warehouse can't: it reads a table as it is now, or refuses.
    time_travel: bool

    def list_tables(self, dataset: str) -> list[str]:
        """All table ids in ``dataset`` (every page). NotFound if the dataset is missing."""
        ...

    def get_table(self, table: TableRef) -> TableInfo: ...

    def table_exists(self, table: TableRef) -> bool: ...

    def row_count_at(
        self,
        table: TableRef,
        instant: datetime,
        *,
        info: TableInfo | None = None,
        wait_seconds: float | None = None,
    ) -> int:
        """Rows in ``table`` as of ``instant`` (time travel).

        ``info`` (the table's :meth:`get_table`) spares a metadata call: a table that
        requires a partition filter is counted with a predicate covering every partition.
        ``wait_seconds``: how long the count may run (the caller's time left), else the
        adapter's own limit.
        """
        ...

    def count_rows(self, table: TableRef, *, info: TableInfo | None = None) -> int: ...

    def start_extract(self, request: ExtractRequest) -> JobStatus:
        """Insert the extract job; an existing job with the same id is attached to, not redone."""
        ...

    def get_job(self, job_id: str) -> JobStatus:
        """Current state of a job. NotFound if no job has that id."""
        ...

    def ensure_dataset(self, dataset: str, *, table_expiration_hours: int | None = None) -> None:
        """Create ``dataset`` unless it exists. ``table_expiration_hours``: the default
        expiration of tables created in a *new* dataset (an existing one is left as it is)."""
        ...

    def create_table(self, table: TableRef, spec: TableSpec, *, replace: bool = False) -> None:
        """Create ``table``; AlreadyExists unless ``replace``."""
        ...

    def start_load(self, request: LoadRequest) -> JobStatus: ...

    def delete_table(self, table: TableRef) -> None:
        """Drop ``table``; no error if it does not exist."""
        ...

    def replace_table(self, target: TableRef, source: TableRef) -> None:
        """Give ``target`` the rows and definition of ``source`` (same dataset), drop ``source``.

        Until this call succeeds the old ``target`` is untouched: restore loads and checks
        into ``source`` first, so a failed load never empties a live table.
        """
        ...

    # -- health -------------------------------------------------------------------------
    def ping(self) -> None:
        """Cheapest authenticated call that proves the warehouse answers."""
        ...

    def dataset_metadata(
        self, dataset: str, tables: Sequence[str], *, partitions: bool = True
    ) -> dict[str, TableMetadata]:
        """Metadata of the existing ``tables`` (absent = missing); NotFound for the dataset.

        Without ``partitions`` only free metadata calls are made (no query) and
        ``newest_partition`` is None; with it, the newest partition id of each table
        (integer-range ids compared as numbers) from at most one metadata query per
        1000 tables.
        """
        ...

    def newest_value(
        self, table: TableRef, column: str, partition_field: str | None, since: date | None
    ) -> datetime | None:
        """MAX(column), restricted to partitions on/after ``since`` when a field is given."""
        ...

    def run_history(self, query: RunHistoryQuery) -> RunHistory:
        """Per-phase run counts since ``query.since`` and the most recent failures."""
        ...

    # -- SLA evaluator --------------------------------------------------------------------
    def daily_aggregates(self, query: DailyAggregateQuery) -> list[DailyAggregate]:
        """Per-UTC-day COUNT/SUM/MIN/MAX of a column (one query), oldest day first.
        NotFound for a missing table; BadInput for a column that is not numeric."""
        ...

    def run_buckets(self, query: RunBucketQuery) -> list[RunBucket]:
        """Runs and successful runs per (bucket, phase) in (since, until] (one query),
        ordered by bucket end then phase. NotFound for a missing table."""
        ...

    def load_times(
        self, table: TableRef, column: str, since: datetime, until: datetime
    ) -> list[datetime]:
        """The distinct values of timestamp ``column`` in [since, until], ascending (one
        query): when the table was loaded, for reconstructing freshness over a window."""
        ...

    def fingerprint(self, table: TableRef, instant: datetime | None = None) -> Fingerprint:
        """Rows and a content digest of ``table`` (as of ``instant`` when the warehouse
        can time travel; otherwise as it is now, and BadInput if it changed since
        ``instant``). Two tables with the same rows (in any order) and the same schema give
        the same digest on the same warehouse."""
        ...


class ObjectStore(Protocol):
    """GCS-shaped object store addressed by bucket and object name."""

    def write(self, bucket: str, name: str, data: bytes, content_type: str) -> ObjectInfo: ...

    def write_once(
        self, bucket: str, name: str, data: bytes, content_type: str
    ) -> ObjectInfo | None:
        """Create the object only if absent; None if it already existed (nothing written)."""
        ...

    def read(self, bucket: str, name: str) -> bytes: ...

    def read_versioned(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        """The object's bytes and the generation they belong to (one consistent pair:
        never new bytes with an old generation); None if the object doesn't exist.
        Generations are positive and grow with every write of the name (``write``,
        ``write_once`` and ``write_if_generation`` alike)."""
        ...

    def write_if_generation(
        self, bucket: str, name: str, data: bytes, content_type: str, generation: int
    ) -> int | None:
        """Compare-and-swap: write only if the object's live generation is ``generation``
        (0: only if the object doesn't exist, as GCS's ``ifGenerationMatch=0``). Returns
        the new generation, or None when the precondition failed (someone else wrote
        first: re-read with :meth:`read_versioned` and try again). Never overwrites
        silently. A write whose answer was lost and retried is recognised as ours while it
        is still the live object; if another writer has already replaced it, the answer
        is None as for any lost race, so an update re-applied after None must be
        idempotent (carry the ids of what it applied) where applying twice matters."""
        ...

    def open(self, bucket: str, name: str) -> BinaryIO:
        """A seekable binary reader (for reading block headers without a full download)."""
        ...

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]: ...

    def stat(self, bucket: str, name: str) -> ObjectInfo | None: ...

    def delete(self, bucket: str, name: str) -> None: ...


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish one message; returns the message id."""
        ...


class MetricWriter(Protocol):
    """Cloud Monitoring-shaped custom metrics (GAUGE points of bounded series)."""

    def write(self, points: Sequence[MetricPoint]) -> WriteReport:
        """Write every point, batching as the service requires (at most 200 series and
        one point per series per request, each series in time order). Points already
        present (a redelivery) are counted, not errors; points the service refuses for
        good (older than 25 h, more than 5 min ahead, unknown type) are reported in
        ``rejected``; a fault that may pass raises TransientError with nothing claimed."""
        ...

    def query(
        self, metric_type: str, since: datetime, until: datetime | None = None
    ) -> list[MetricPoint]:
        """The points of every series of ``metric_type`` in [since, until], oldest first."""
        ...


class EvaluationHistory(Protocol):
    """The SLA evaluator's history: one row per (instant, SLO), in the warehouse."""

    def append(self, job_id: str, records: Sequence[EvaluationRecord]) -> bool:
        """Append ``records`` as one load job called ``job_id``. A job with that id that
        already ran (a redelivery) is attached to instead, and nothing is appended twice:
        returns True when this call appended, False when an earlier one had. Creates the
        dataset and table on first use. TransientError if it may pass."""
        ...

    def read(self, slos: Sequence[str], since: datetime, until: datetime) -> list[EvaluationRecord]:
        """Every row of ``slos`` with ``since < at <= until`` (one query), ordered by ``at``
        then ``recorded_at``; a missing table reads as empty."""
        ...


class SecretStore(Protocol):
    """Secret Manager-shaped: a secret's value by resource name, never logged."""

    def get(self, name: str) -> str:
        """The value of ``name`` (``projects/P/secrets/S/versions/V``, or ``S`` for the
        latest version in the configured project). BadInput for a name that is not a
        secret name (before any request); NotFound / PermissionDenied for a
        secret that can't be read; TransientError if it may pass."""
        ...


class Notifier(Protocol):
    """One receiver integration (Slack, PagerDuty, webhook, local file)."""

    def send(self, notification: Notification) -> DeliveryResult:
        """Deliver one notification. TransientError (429 honouring Retry-After, 5xx,
        timeouts) may pass; PermanentError (other 4xx, a refused URL) won't, and carries
        the receiver's answer (never the secret URL or key)."""
        ...
