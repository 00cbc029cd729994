"""The backup run's records in the bucket and their layout.

``gs://<bucket>/<prefix>/<run_id>/``
  ``_run.json``                         write-once claim: instant and table list
  ``<dataset>/<table>/table.json``      the table resource at the instant
  ``<dataset>/<table>/attempt-<n>/part-<12 digits>.avro``   the export
  ``<dataset>/<table>/_result.json``    write-once per-table result (resume point)
  ``_manifest.json``                    write-once, written last
  ``_event.claim.json``                 write-once: which delivery publishes the event
  ``_event.json``                       write-once: the run's event was published
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.identifiers import TableRef, job_token

RunStatus = Literal["complete", "partial", "failed"]
TableStatus = Literal["complete", "failed"]
MANIFEST = "_manifest.json"
CLAIM = "_run.json"
EVENT_MARKER = "_event.json"
EVENT_CLAIM = "_event.claim.json"
RESULT = "_result.json"
RESOURCE = "table.json"
#: Restore's staging tables beside their targets: never backed up as tables of their own.
STAGING_PREFIX = "_opsuite_restore_"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileEntry(_Record):
    uri: str
    size: int
    crc32c: str
    rows: int | None = None


class Verification(_Record):
    method: Literal["avro-block-headers", "file-listing"]
    files_listed: int
    bytes_listed: int
    rows_exported: int | None
    rows_expected: int
    ok: bool
    detail: str = ""
    #: Rows counted at the instant but not exported because they were still in the
    #: table's streaming buffer (extract jobs read committed storage only).
    streaming_buffer_rows: int | None = None


class TableResult(_Record):
    source: str
    status: TableStatus
    rows: int | None = None
    bytes: int = 0
    files: list[FileEntry] = Field(default_factory=list)
    job_id: str | None = None
    attempt: int | None = None
    duration_seconds: float | None = None
    resource_uri: str | None = None
    verification: Verification | None = None
    error: str | None = None

    @property
    def ref(self) -> TableRef:
        return TableRef.parse(self.source)


class RejectedTable(_Record):
    """A listed table the run can't back up under its name; recorded as a failed table."""

    name: str  # "dataset.table" exactly as listed (may not parse as a TableRef)
    error: str


#: A run still in progress this long after its claim has stalled (a backup of the whole
#: configuration takes minutes; continuations resume within the function's timeout):
#: the health check warns, the report flags it.
IN_PROGRESS_WARN_AFTER = timedelta(hours=2)


class RunClaim(_Record):
    run_id: str
    date: Date
    instant: datetime
    tables: list[str]
    missing_datasets: list[str] = Field(default_factory=list)
    rejected_tables: list[RejectedTable] = Field(default_factory=list)
    created_at: datetime
    backend: str


@dataclass(frozen=True)
class TableSelection:
    """What a run backs up, as its claim records it: the tables, the configured datasets
    that don't exist, and the listed tables whose names can't be backed up."""

    tables: list[TableRef]
    missing_datasets: list[str] = field(default_factory=list)
    rejected_tables: list[RejectedTable] = field(default_factory=list)


class Manifest(_Record):
    manifest_version: Literal[1] = 1
    run_id: str
    date: Date
    instant: datetime
    backend: str
    bucket: str
    prefix: str
    format: str
    compression: str
    status: RunStatus
    created_at: datetime
    completed_at: datetime
    tables: list[TableResult]
    errors: list[str] = Field(default_factory=list)

    @property
    def failed(self) -> list[TableResult]:
        return [t for t in self.tables if t.status != "complete"]

    def table(self, source: str) -> TableResult | None:
        return next((t for t in self.tables if t.source == source), None)


#: The shape of every run id ``run_id_for`` makes: ``YYYYMMDD`` or ``YYYYMMDD-<8 hex>``.
RUN_ID_PATTERN = re.compile(r"[0-9]{8}(-[0-9a-f]{8})?")


def is_run_id(value: str) -> bool:
    return RUN_ID_PATTERN.fullmatch(value) is not None


def run_id_for(run_date: Date, tables: list[str] | None) -> str:
    """Deterministic: the nightly run of a date is ``YYYYMMDD``; a subset adds a hash."""
    base = run_date.strftime("%Y%m%d")
    if not tables:
        return base
    digest = hashlib.sha256(",".join(sorted(set(tables))).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


#: Cloud Storage object names are 1-1024 bytes of UTF-8 ("Object naming requirements").
MAX_OBJECT_NAME_BYTES = 1024
#: The longest run id (``YYYYMMDD-<8 hex>``) and the longest leaf under a table's
#: directory (``attempt-10/part-<12 digits>.parquet``; max_attempts is at most 10).
_LONGEST_RUN_ID = "YYYYMMDD-xxxxxxxx"
_LONGEST_LEAF = "attempt-10/part-000000000000.parquet"


def layout_problem(prefix: str, table: TableRef) -> str | None:
    """Why ``table``'s objects can't be named under ``prefix`` (too long), else None."""
    longest = RunLayout("b", prefix, _LONGEST_RUN_ID).name(
        f"{table.dataset}/{table.table}/{_LONGEST_LEAF}"
    )
    size = len(longest.encode("utf-8"))
    if size > MAX_OBJECT_NAME_BYTES:
        return (
            f"its backup object names would be {size} bytes, over Cloud Storage's "
            f"{MAX_OBJECT_NAME_BYTES}-byte limit"
        )
    return None


class RunLayout:
    """Object names of one run."""

    def __init__(self, bucket: str, prefix: str, run_id: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.run_id = run_id
        self.base = f"{prefix}/{run_id}" if prefix else run_id

    def name(self, leaf: str) -> str:
        return f"{self.base}/{leaf}"

    def table_dir(self, table: TableRef) -> str:
        return f"{self.base}/{table.dataset}/{table.table}"

    def attempt_dir(self, table: TableRef, attempt: int) -> str:
        return f"{self.table_dir(table)}/attempt-{attempt}"

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"

    def destination_uri(self, table: TableRef, attempt: int, extension: str) -> str:
        return self.uri(f"{self.attempt_dir(table, attempt)}/part-*.{extension}")

    def job_id(self, table: TableRef, attempt: int) -> str:
        """Deterministic job id of (run, table, attempt), unique per bucket and prefix."""
        scope = hashlib.sha256(f"{self.bucket}/{self.prefix}".encode()).hexdigest()[:8]
        # "-" cannot occur in a dataset id, so dataset-table is unambiguous; the table part
        # is kept for [A-Za-z0-9_] names and slug-hash otherwise (Unicode, spaces, dashes)
        token = job_token(table.table)
        return f"opsuite_backup_{self.run_id}_{scope}_{table.dataset}-{token}_a{attempt}"
