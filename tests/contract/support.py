"""The backend bundle the contract tests run against, and helpers shared by them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.errors import TransientError
from shared.identifiers import TableRef
from shared.models import JobStatus, SchemaField, TableSpec
from shared.ports import ObjectStore, Publisher, Warehouse

PROJECT = "opsuite-test"
#: Retry deadline (s) for the GCP adapters in tests: the emulators answer in milliseconds.
SHORT_DEADLINE = 5.0


@dataclass(frozen=True)
class Message:
    message_id: str
    data: bytes
    attributes: dict[str, str]


@dataclass
class Backend:
    """One adapter family, set up for one test, plus the test-side helpers it needs."""

    name: str
    warehouse: Warehouse
    store: ObjectStore
    publisher: Publisher
    bucket: str
    topic: str
    published: Callable[[str], list[Message]]
    insert_rows: Callable[[TableRef, Sequence[Mapping[str, Any]]], None]
    fetch_ids: Callable[[TableRef], list[int]]
    make_warehouse: Callable[..., Warehouse]
    make_store: Callable[..., ObjectStore]
    dataset: str = field(default_factory=lambda: unique("ds"))

    def table(self, name: str) -> TableRef:
        return TableRef(self.dataset, name)

    def create_source_table(
        self, name: str, spec: TableSpec, rows: Sequence[Mapping[str, Any]]
    ) -> TableRef:
        """Create ``dataset.name`` through the port and fill it with ``rows``."""
        table = self.table(name)
        self.warehouse.ensure_dataset(table.dataset)
        self.warehouse.create_table(table, spec)
        if rows:
            self.insert_rows(table, rows)
        return table

    def settled_instant(self) -> datetime:
        """An instant after every modification so far (the local warehouse has no time travel)."""
        time.sleep(0.01)
        instant = datetime.now(UTC)
        time.sleep(0.01)
        return instant


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def wait_for_job(warehouse: Warehouse, job_id: str, timeout: float = 30.0) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = warehouse.get_job(job_id)
        except TransientError:
            status = None
        if status is not None and status.done:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not done after {timeout}s: {status}")
        time.sleep(0.05)


#: The column types a backup must carry faithfully.
RICH_SCHEMA = (
    SchemaField("id", "INT64", "REQUIRED", description="row id"),
    SchemaField("day", "DATE"),
    SchemaField("at", "TIMESTAMP"),
    SchemaField("amount", "NUMERIC"),
    SchemaField("tags", "STRING", "REPEATED"),
    SchemaField(
        "detail",
        "RECORD",
        fields=(SchemaField("kind", "STRING"), SchemaField("score", "INT64")),
    ),
)

RICH_SPEC = TableSpec(
    schema=RICH_SCHEMA,
    time_partitioning={"type": "DAY", "field": "day"},
    clustering=("id",),
    description="orders, one row per order",
    labels={"team": "data", "tier": "gold"},
)


def rich_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    """JSON-shaped rows for :data:`RICH_SCHEMA` (as ``tabledata.insertAll`` takes them)."""
    return [
        {
            "id": i,
            "day": f"2026-11-{(i % 28) + 1:02d}",
            "at": f"2026-11-{(i % 28) + 1:02d}T12:34:56.123456Z",
            "amount": f"{i}.125",
            "tags": [f"t{i}", "all"],
            "detail": {"kind": "k" if i % 2 else "z", "score": i * 10},
        }
        for i in range(start, start + count)
    ]


SIMPLE_SPEC = TableSpec(
    schema=(SchemaField("id", "INT64", "REQUIRED"), SchemaField("name", "STRING"))
)


def simple_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"n{i}"} for i in range(start, start + count)]


@dataclass
class GcpStack:
    bq_shim: Any
    gcs_shim: Any
    pubsub: Any
    bq_client: Any  # google.cloud.bigquery.Client -> bq_shim
    storage_client: Any  # google.cloud.storage.Client -> gcs_shim
    direct_storage: Any  # google.cloud.storage.Client -> the emulator itself (test setup)
    publisher_client: Any  # PublisherClient -> pubsub fake
    gcs_local_root: Path

    def retry(self) -> Any:
        from google.api_core.retry import Retry

        return Retry(timeout=SHORT_DEADLINE)
