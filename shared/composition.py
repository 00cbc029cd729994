"""The one place adapters are built from settings.

An explicit ``backend`` argument beats ``$OPSUITE_BACKEND``; nothing here runs at
import time, and the google-cloud libraries are imported only when a ``gcp`` adapter
is actually built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.config import Backend, Settings
from shared.ports import (
    EvaluationHistory,
    MetricWriter,
    ObjectStore,
    Publisher,
    SecretStore,
    Warehouse,
)


@dataclass(frozen=True)
class Adapters:
    backend: Backend
    warehouse: Warehouse
    store: ObjectStore
    publisher: Publisher
    #: Cloud Monitoring custom metrics (the SLA evaluator); last, so positional
    #: ``Adapters(backend, warehouse, store, publisher)`` calls keep working
    metrics: MetricWriter | None = None
    #: the SLA evaluations table (in the warehouse: BigQuery, or the local DuckDB file)
    history: EvaluationHistory | None = None
    #: receiver secrets (Secret Manager, or files under ``.local/secrets``)
    secrets: SecretStore | None = None

    def close(self) -> None:
        for adapter in (self.warehouse, self.publisher, self.metrics):
            close = getattr(adapter, "close", None)
            if callable(close):
                close()

    def release(self) -> None:
        """Between requests: let go of what other processes may need.

        The local warehouse closes its DuckDB file (one process may hold it for writing),
        so ``opsuite`` commands can run while ``make serve`` is up; GCP clients stay.
        """
        if self.backend == "local":
            close = getattr(self.warehouse, "close", None)
            if callable(close):
                close()


@dataclass(frozen=True)
class LocalPaths:
    root: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def gcs(self) -> Path:
        return self.root / "gcs"

    @property
    def jobs(self) -> Path:
        return self.root / "bigquery" / "jobs"

    @property
    def pubsub(self) -> Path:
        return self.root / "pubsub"

    @property
    def monitoring(self) -> Path:
        return self.root / "monitoring"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"


def build_adapters(settings: Settings, backend: Backend) -> Adapters:
    if backend == "local":
        from shared.adapters.local.bus import LocalBus
        from shared.adapters.local.history import LocalEvaluationHistory
        from shared.adapters.local.metric_store import LocalMetricStore
        from shared.adapters.local.object_store import LocalObjectStore
        from shared.adapters.local.secrets import LocalSecretStore
        from shared.adapters.local.warehouse import LocalWarehouse

        paths = LocalPaths(Path(settings.local.root))
        warehouse = LocalWarehouse(
            paths.warehouse,
            paths.gcs,
            paths.jobs,
            max_file_bytes=settings.backups.max_file_bytes,
        )
        return Adapters(
            backend=backend,
            warehouse=warehouse,
            store=LocalObjectStore(paths.gcs),
            publisher=LocalBus(paths.pubsub),
            metrics=LocalMetricStore(paths.monitoring),
            history=LocalEvaluationHistory(warehouse, settings.slos.history.ref),
            secrets=LocalSecretStore(paths.secrets),
        )
    from shared.adapters.gcp.history import BigQueryEvaluationHistory
    from shared.adapters.gcp.metric_writer import MonitoringMetricWriter
    from shared.adapters.gcp.object_store import GcsObjectStore
    from shared.adapters.gcp.publisher import PubSubPublisher
    from shared.adapters.gcp.secrets import SecretManagerStore
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    gcp = settings.require_gcp()
    # The backup runs max_concurrent_jobs threads over one client each: one pooled HTTP
    # connection per thread (requests' default pool of 10 discards and reconnects).
    connections = settings.backups.max_concurrent_jobs
    bigquery = BigQueryWarehouse(gcp.project, gcp.location, max_connections=connections)
    return Adapters(
        backend=backend,
        warehouse=bigquery,
        store=GcsObjectStore(gcp.project, max_connections=connections),
        publisher=PubSubPublisher(gcp.project),
        metrics=MonitoringMetricWriter(gcp.project),  # its client is built on first write
        history=BigQueryEvaluationHistory(bigquery, settings.slos.history.ref),
        secrets=SecretManagerStore(gcp.project),  # its client is built on first read
    )


def build_object_store(backend: Backend, *, project: str | None, local_root: str) -> ObjectStore:
    """Just the object store, from the few settings it needs (for when the full config
    can't be read: the backup function still records that its trigger was rejected)."""
    if backend == "local":
        from shared.adapters.local.object_store import LocalObjectStore

        return LocalObjectStore(LocalPaths(Path(local_root)).gcs)
    from shared.adapters.gcp.object_store import GcsObjectStore
    from shared.errors import ConfigError

    if not project:
        raise ConfigError("no project for the Cloud Storage client")
    return GcsObjectStore(project)
