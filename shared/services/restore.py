"""Restore a backup run's tables from their files, and the checks around it.

For every table, before anything changes: its files must still be what the manifest
recorded (present, same size, same CRC32C) and its target must not exist unless forced
(checked for every table before anything changes). Each table is then loaded into a
staging table beside its target, its row count compared with the manifest, and only
then swapped into place (``Warehouse.replace_table``), for a new target as for an
existing one: a failed restore leaves the target as it was and drops the staging table.
Loads use the saved schema (never autodetect) and recreate partitioning and clustering
from the saved table resource.

Timings: ``RestoredTable.seconds`` is the table's own work (its checks, its load job's
run time as the warehouse reports it, its row check and swap); ``elapsed_seconds`` is
from the moment its work started until it was done, so it includes waiting for the
warehouse to start its load (``queued_seconds``); ``RestoreReport.seconds`` is the wall
time of the whole restore.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from shared import identifiers
from shared.errors import (
    AlreadyExists,
    BadInput,
    NotFound,
    OpsuiteError,
    PermanentError,
    StillRunning,
)
from shared.identifiers import TableRef, job_token
from shared.manifest import STAGING_PREFIX, Manifest, RunLayout, TableResult, is_run_id
from shared.models import JobStatus, LoadRequest, TableSpec, split_gs_uri
from shared.ports import ObjectStore, Warehouse
from shared.services.backup import read_manifest

logger = logging.getLogger(__name__)

#: ``planned``: a dry run would restore it; ``refused``: a dry run would be refused (the
#: target exists and --force was not given); ``failed``: not restored (or, in a dry run,
#: would fail: a file no longer matches the manifest).
RestoreStatus = Literal["restored", "planned", "refused", "failed"]
ADVICE = "restore from an earlier run: opsuite backups list"
#: A load that waited longer than this for the warehouse to start it is worth a note.
QUEUE_NOTE_SECONDS = 0.5
FIRST_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class RestoredTable:
    source: str
    target: str
    status: RestoreStatus
    rows_expected: int | None
    rows_restored: int | None = None
    #: this table's own work: checks, its load job's run time, row check, swap
    seconds: float | None = None
    error: str | None = None
    #: from the start of this table's work until it was done, waiting included
    elapsed_seconds: float | None = None
    #: how long its load job waited for the warehouse to start it (None: not reported)
    queued_seconds: float | None = None


@dataclass(frozen=True)
class RestoreReport:
    run_id: str
    tables: list[RestoredTable]
    #: wall time of the whole restore
    seconds: float
    dry_run: bool = False
    #: a dry run whose real run would be refused: a target exists and --force was not given
    refused: bool = False
    #: what the numbers mean when it is not obvious (e.g. loads waited for the warehouse)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every table restored (or, for a dry run, would be: nothing refused or corrupt)."""
        return not self.refused and all(t.status in ("restored", "planned") for t in self.tables)


@dataclass
class RestoreDeps:
    warehouse: Warehouse
    store: ObjectStore
    bucket: str
    prefix: str
    max_concurrent: int = 4
    #: the longest wait between two polls of a load job (polls start at 50 ms and double)
    poll_interval: float = 1.0
    timeout_seconds: float = 3600.0
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    on_start: Callable[[int], None] = field(default=lambda _n: None)
    on_table: Callable[[RestoredTable], None] = field(default=lambda _t: None)


def load_manifest(store: ObjectStore, bucket: str, prefix: str, run_id: str) -> Manifest:
    if not is_run_id(run_id):  # before it becomes part of an object name
        shown = run_id if len(run_id) <= 40 else run_id[:40] + "..."
        raise BadInput(f"{shown!r} is not a run id (expected YYYYMMDD or YYYYMMDD-<8 hex>)")
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


def check_files(entry: TableResult, store: ObjectStore) -> tuple[TableSpec | None, str | None]:
    """The table's saved definition, and what is wrong with its files (None: all match).

    Every file must be present with the size and CRC32C the manifest recorded: a load
    of a changed file fails late with the warehouse's own words, or, worse, succeeds.
    """
    problems: list[str] = []
    for f in entry.files:
        bucket, name = split_gs_uri(f.uri)
        info = store.stat(bucket, name)
        if info is None:
            problems.append(f"{f.uri} is missing (deleted after the backup)")
        elif info.size != f.size:
            problems.append(
                f"{f.uri}: {info.size} bytes, the manifest records {f.size} "
                "(file changed after the backup)"
            )
        elif info.crc32c != f.crc32c:
            problems.append(
                f"{f.uri}: CRC32C differs from the manifest (file corrupted after the backup)"
            )
    if not entry.files and entry.rows:
        problems.append(f"the manifest lists no file for its {entry.rows} rows")
    spec = None
    if not entry.resource_uri:
        problems.append("the manifest has no table resource (schema) for this table")
    else:
        bucket, name = split_gs_uri(entry.resource_uri)
        try:
            spec = TableSpec.from_resource(json.loads(store.read(bucket, name)))
        except NotFound:
            problems.append(f"{entry.resource_uri} (the table's schema) is missing")
        except (ValueError, TypeError, AttributeError) as exc:
            problems.append(f"{entry.resource_uri} (the table's schema) is unreadable: {exc}")
    if not problems:
        return spec, None
    shown = problems[:3] + ([f"and {len(problems) - 3} more"] if len(problems) > 3 else [])
    return spec, f"{'; '.join(shown)}; {ADVICE}"


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
    seen: set[TableRef] = set()
    for target in targets.values():
        if target in seen:
            raise BadInput(f"two tables would be restored into the same target: {target}")
        seen.add(target)
    existing = {str(t) for t in targets.values() if deps.warehouse.table_exists(t)}
    if existing and not force and not dry_run:
        raise BadInput(
            f"refusing to overwrite existing tables: {', '.join(sorted(existing))} "
            "(pass --force to replace them, or --target-dataset to restore beside them)"
        )
    workers = max(1, min(deps.max_concurrent, len(entries)))
    if dry_run:

        def plan(entry: TableResult) -> RestoredTable:
            target = str(targets[entry.source])
            try:
                _spec, bad = check_files(entry, deps.store)
            except OpsuiteError as exc:
                bad = f"checking the files: {exc}"
            status: RestoreStatus = "failed" if bad else "planned"
            said = [bad] if bad else []
            if target in existing and force:
                said.append("exists: would be replaced")
            elif target in existing:
                said.append("exists: needs --force (the restore would be refused)")
                status = "failed" if bad else "refused"
            return RestoredTable(
                entry.source, target, status, entry.rows, error="; ".join(said) or None
            )

        with ThreadPoolExecutor(workers) as pool:
            planned = list(pool.map(plan, entries))
        return RestoreReport(
            run_id,
            planned,
            deps.monotonic() - started,
            dry_run=True,
            refused=bool(existing) and not force,
        )

    datasets = _Datasets(deps.warehouse)

    def one(entry: TableResult) -> RestoredTable:
        target = targets[entry.source]
        exists = str(target) in existing
        result = _restore_table(manifest, entry, target, deps, exists, force, datasets)
        deps.on_table(result)
        return result

    deps.on_start(len(entries))
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, entries))
    report = RestoreReport(run_id, results, deps.monotonic() - started, notes=_notes(results))
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


class _Datasets:
    """Creates each target dataset once, one at a time, and only for a table whose files
    checked out (a restore that fails its checks creates nothing). Concurrent CREATE
    SCHEMA on the local warehouse can fail with DuckDB's own catalog-conflict error."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, dataset: str) -> None:
        with self._lock:
            if dataset not in self._done:
                self._warehouse.ensure_dataset(dataset)
                self._done.add(dataset)


def _staging_name(target: TableRef, stamp: str) -> TableRef:
    """A valid, short table id beside ``target`` (ASCII, far below BigQuery's 1024 bytes)."""
    return TableRef(target.dataset, f"{STAGING_PREFIX}{stamp}_{job_token(target.table)}")


def _job_id(manifest: Manifest, source: TableRef, target: TableRef, stamp: str) -> str:
    # job_token keeps [A-Za-z0-9_] names (up to 200 chars) and hashes any other, so the id
    # is valid for every table name and at most ~900 characters (the limit is 1024)
    return identifiers.job_id(
        f"opsuite_restore_{manifest.run_id}_"
        f"{job_token(source.dataset)}-{job_token(source.table)}_to_"
        f"{job_token(target.dataset)}-{job_token(target.table)}_{stamp}"
    )


def _wait(job_id: str, status: JobStatus, deps: RestoreDeps, deadline: float) -> JobStatus:
    """Poll until done: the first poll after 50 ms, doubling up to ``poll_interval``
    (a small table's load is not rounded up to a whole poll interval)."""
    interval = min(FIRST_POLL_SECONDS, deps.poll_interval)
    while not status.done:
        if deps.monotonic() > deadline:
            raise StillRunning(f"load job {job_id} still running after the timeout", job_id)
        deps.sleep(interval)
        interval = min(interval * 2, deps.poll_interval)
        status = deps.warehouse.get_job(job_id)
    return status


def _restore_table(
    manifest: Manifest,
    entry: TableResult,
    target: TableRef,
    deps: RestoreDeps,
    exists: bool,
    force: bool,
    datasets: _Datasets,
) -> RestoredTable:
    """Check the files, load into a staging table, check its rows, swap it into place."""
    t0 = deps.monotonic()

    def failed(detail: str, own: float | None = None, queued: float | None = None) -> RestoredTable:
        logger.error(
            "table restore failed",
            extra={"fields": {"table": entry.source, "target": str(target), "error": detail}},
        )
        elapsed = deps.monotonic() - t0
        return RestoredTable(entry.source, str(target), "failed", entry.rows, None,
                             elapsed if own is None else own, detail, elapsed, queued)  # fmt: skip

    left = f"{target} was left as it was" if exists else f"{target} was not created"
    try:
        spec, bad = check_files(entry, deps.store)
    except OpsuiteError as exc:
        return failed(f"checking the files: {exc}; {left}")
    if bad is not None or spec is None:
        return failed(f"{bad}; {left}")

    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}_{uuid.uuid4().hex[:6]}"
    try:
        staging = _staging_name(target, stamp)
        job_id = _job_id(manifest, entry.ref, target, stamp)
    except OpsuiteError as exc:  # not expected: both are built to be valid
        return failed(f"{exc}; {left}")
    before_load = after_load = deps.monotonic()
    job_seconds: float | None = None
    queued: float | None = None
    created = False
    try:
        datasets.ensure(target.dataset)
        deps.warehouse.create_table(staging, spec)
        before_load = deps.monotonic()
        if entry.files:
            submitted = datetime.now(UTC)
            request = LoadRequest(
                job_id=job_id,
                destination=staging,
                source_uris=tuple(f.uri for f in entry.files),
                schema=spec.schema,
                format=manifest.format,
            )
            status = _wait(
                job_id, deps.warehouse.start_load(request), deps, t0 + deps.timeout_seconds
            )
            after_load = deps.monotonic()
            job_seconds, queued = _job_times(status, submitted, after_load - before_load)
            if status.error is not None:
                raise PermanentError(
                    f"load job {job_id}: {status.error.reason}: {status.error.message}"
                )
        else:  # a table of no rows has no file to load
            after_load = deps.monotonic()
        rows = deps.warehouse.count_rows(staging)
        if entry.rows is not None and rows != entry.rows:
            raise PermanentError(f"restored {rows} rows, the manifest records {entry.rows}")
        if not exists:
            created = _create_target(target, spec, deps, force)
        deps.warehouse.replace_table(target, staging)
    except StillRunning as exc:
        # The job's outcome is unknown: a copy may still be reading the staging table and
        # writing the target. Cleaning up now could leave a half-made target; say what to do.
        own = None if job_seconds is None else _own(t0, before_load, after_load, job_seconds, deps)
        if exc.job_id == job_id:  # the load into staging: the target was never touched
            advice = f"once it is done, drop {staging} and restore again"
        elif created:  # the swap's copy into a target made for this restore
            advice = (
                f"once it is done, drop {staging}; if it failed, also drop {target} "
                "(created for this restore) and restore again"
            )
        else:  # the swap's copy over an existing target: the job decides if it changed
            advice = (
                f"once it is done, drop {staging}; if it failed, {target} is unchanged: "
                "restore again"
            )
        return failed(
            f"{exc}; the staging table {staging} was kept: check job {exc.job_id} "
            f"(bq show -j {exc.job_id}); {advice}",
            own,
            queued,
        )
    except OpsuiteError as exc:
        with contextlib.suppress(OpsuiteError):
            deps.warehouse.delete_table(staging)
        if created:  # the empty target this restore created just before the swap
            with contextlib.suppress(OpsuiteError):
                deps.warehouse.delete_table(target)
        own = None if job_seconds is None else _own(t0, before_load, after_load, job_seconds, deps)
        return failed(f"{exc}; {left}", own, queued)
    done = deps.monotonic()
    own = _own(t0, before_load, after_load, job_seconds, deps)
    return RestoredTable(entry.source, str(target), "restored", entry.rows, rows, own, None,
                         done - t0, queued)  # fmt: skip


def _create_target(target: TableRef, spec: TableSpec, deps: RestoreDeps, force: bool) -> bool:
    """Create a new target from the saved definition just before the swap; True if created.

    The swap's copy job (GCP) would create a missing target itself (CREATE_IF_NEEDED), but
    a copy does not carry the table's labels (seen on the emulator); a target made from the
    saved resource does, and its creation doubles as a check that nobody else made one
    meanwhile (``tables.insert`` answers 409: AlreadyExists).
    """
    try:
        deps.warehouse.create_table(target, spec)
    except AlreadyExists:
        if not force:
            raise PermanentError(
                f"{target} was created by someone else during the restore; not replaced "
                "(pass --force to replace it)"
            ) from None
        return False
    return True


def _job_times(status: JobStatus, submitted: datetime, waited: float) -> tuple[float, float | None]:
    """The load job's own run time and its time in the queue, from the warehouse's own
    timestamps when it reports them (BigQuery's ``statistics.startTime/endTime``), else
    the time spent waiting for it."""
    if status.started is None or status.ended is None:
        return waited, None
    run = max(0.0, (status.ended - status.started).total_seconds())
    queued = max(0.0, (status.started - submitted).total_seconds())
    return run, queued


def _own(
    t0: float, before_load: float, after_load: float, job: float | None, deps: RestoreDeps
) -> float:
    """Checks before the load + the job's run time + the row check and swap after it."""
    end = deps.monotonic()
    return (before_load - t0) + (job or 0.0) + (end - after_load)


def _notes(results: Sequence[RestoredTable]) -> list[str]:
    waits = [t.queued_seconds for t in results if t.queued_seconds is not None]
    if not waits or max(waits) < QUEUE_NOTE_SECONDS:
        return []
    return [
        f"load jobs waited up to {max(waits):.1f}s for the warehouse to start them (it runs "
        "a limited number of loads at once); a table's seconds is its own work, "
        "elapsed_seconds includes the wait"
    ]
