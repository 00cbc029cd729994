"""Restore a backup run's tables from their files, and the checks around it.

Loads use the saved schema (never autodetect), recreate partitioning and clustering
from the saved table resource, refuse to overwrite an existing table unless forced
(checked for every table before anything changes), compare the restored row count
with the manifest and time each table: the measured recovery time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from shared import identifiers
from shared.errors import BadInput, NotFound, OpsuiteError, PermanentError
from shared.identifiers import TableRef
from shared.manifest import Manifest, RunLayout, TableResult
from shared.models import LoadRequest, TableSpec, split_gs_uri
from shared.ports import ObjectStore, Warehouse
from shared.services.backup import read_manifest

logger = logging.getLogger(__name__)

RestoreStatus = Literal["restored", "planned", "failed"]


@dataclass(frozen=True)
class RestoredTable:
    source: str
    target: str
    status: RestoreStatus
    rows_expected: int | None
    rows_restored: int | None = None
    seconds: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class RestoreReport:
    run_id: str
    tables: list[RestoredTable]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(t.status != "failed" for t in self.tables)


@dataclass
class RestoreDeps:
    warehouse: Warehouse
    store: ObjectStore
    bucket: str
    prefix: str
    max_concurrent: int = 4
    poll_interval: float = 1.0
    timeout_seconds: float = 3600.0
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    on_start: Callable[[int], None] = field(default=lambda _n: None)
    on_table: Callable[[RestoredTable], None] = field(default=lambda _t: None)


def load_manifest(store: ObjectStore, bucket: str, prefix: str, run_id: str) -> Manifest:
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise BadInput(f"{run_id!r} is not a run id")
    manifest = read_manifest(store, RunLayout(bucket, prefix, run_id))
    if manifest is None:
        raise NotFound(f"no manifest for run {run_id} in gs://{bucket}/{prefix}/")
    return manifest


def _select(manifest: Manifest, tables: Sequence[TableRef] | None) -> list[TableResult]:
    if not tables:
        chosen = [t for t in manifest.tables if t.status == "complete"]
        if not chosen:
            raise PermanentError(f"run {manifest.run_id} has no complete table to restore")
        return chosen
    out = []
    for ref in tables:
        entry = manifest.table(str(ref))
        if entry is None:
            raise BadInput(f"{ref} is not in run {manifest.run_id}")
        if entry.status != "complete":
            raise PermanentError(f"{ref} failed in run {manifest.run_id}: {entry.error}")
        out.append(entry)
    return out


def restore_run(
    run_id: str,
    deps: RestoreDeps,
    *,
    tables: Sequence[TableRef] | None = None,
    target_dataset: str | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> RestoreReport:
    started = deps.monotonic()
    if target_dataset is not None:
        identifiers.dataset_id(target_dataset)
    manifest = load_manifest(deps.store, deps.bucket, deps.prefix, run_id)
    entries = _select(manifest, tables)
    targets = {e.source: TableRef(target_dataset or e.ref.dataset, e.ref.table) for e in entries}
    existing = [str(t) for t in targets.values() if deps.warehouse.table_exists(t)]
    if existing and not force and not dry_run:
        raise BadInput(
            f"refusing to overwrite existing tables: {', '.join(existing)} "
            "(pass --force to replace them, or --target-dataset to restore beside them)"
        )
    if dry_run:
        planned = [
            RestoredTable(
                source=e.source,
                target=str(targets[e.source]),
                status="planned",
                rows_expected=e.rows,
                error=(
                    ("exists: would be replaced" if force else "exists: needs --force")
                    if str(targets[e.source]) in existing
                    else None
                ),
            )
            for e in entries
        ]
        return RestoreReport(run_id, planned, deps.monotonic() - started)

    duplicates = sorted({str(t) for t in targets.values() if list(targets.values()).count(t) > 1})
    if duplicates:
        raise BadInput(f"two tables would be restored into the same target: {duplicates[0]}")

    def one(entry: TableResult) -> RestoredTable:
        target = targets[entry.source]
        result = _restore_table(manifest, entry, target, deps, str(target) in existing)
        deps.on_table(result)
        return result

    deps.on_start(len(entries))
    with ThreadPoolExecutor(max(1, min(deps.max_concurrent, len(entries)))) as pool:
        results = list(pool.map(one, entries))
    report = RestoreReport(run_id, results, deps.monotonic() - started)
    logger.info(
        "restore finished",
        extra={
            "fields": {
                "run_id": run_id,
                "tables": len(results),
                "failed": [r.source for r in results if r.status == "failed"],
                "seconds": round(report.seconds, 3),
            }
        },
    )
    return report


def _restore_table(
    manifest: Manifest, entry: TableResult, target: TableRef, deps: RestoreDeps, exists: bool
) -> RestoredTable:
    """Load one table; an existing target is only replaced once the new rows check out."""
    t0 = deps.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    # an existing (live) target is replaced only after a staging copy loaded and verified
    staging = TableRef(target.dataset, f"_opsuite_restore_{stamp}_{target.table}"[:1024])
    load_into = staging if exists else target
    try:
        if not entry.resource_uri:
            raise PermanentError("the manifest has no table resource for this table")
        bucket, name = split_gs_uri(entry.resource_uri)
        spec = TableSpec.from_resource(json.loads(deps.store.read(bucket, name)))
        deps.warehouse.ensure_dataset(target.dataset)
        deps.warehouse.create_table(load_into, spec)
        job_id = (
            f"opsuite_restore_{manifest.run_id}_{entry.ref.dataset}-{entry.ref.table}"
            f"_to_{target.dataset}-{target.table}_{stamp}"
        )
        request = LoadRequest(
            job_id=job_id,
            destination=load_into,
            source_uris=tuple(f.uri for f in entry.files),
            schema=spec.schema,
            format=manifest.format,
        )
        status = deps.warehouse.start_load(request)
        deadline = t0 + deps.timeout_seconds
        while not status.done:
            if deps.monotonic() > deadline:
                raise PermanentError(f"load job {job_id} still running after the timeout")
            deps.sleep(deps.poll_interval)
            status = deps.warehouse.get_job(job_id)
        if status.error is not None:
            raise PermanentError(
                f"load job {job_id}: {status.error.reason}: {status.error.message}"
            )
        rows = deps.warehouse.count_rows(load_into)
        if entry.rows is not None and rows != entry.rows:
            raise PermanentError(f"restored {rows} rows, the manifest records {entry.rows}")
        if exists:
            deps.warehouse.replace_table(target, staging)
        return RestoredTable(
            entry.source, str(target), "restored", entry.rows, rows, deps.monotonic() - t0
        )
    except OpsuiteError as exc:
        if exists:
            with contextlib.suppress(OpsuiteError):
                deps.warehouse.delete_table(staging)
        detail = f"{exc}; {target} was left as it was" if exists else str(exc)
        logger.error(
            "table restore failed",
            extra={"fields": {"table": entry.source, "target": str(target), "error": detail}},
        )
        return RestoredTable(
            entry.source, str(target), "failed", entry.rows, None, deps.monotonic() - t0, detail
        )
