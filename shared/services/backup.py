"""The nightly backup run: every configured table exported at one instant, verified,
recorded in a write-once manifest, announced with one event.

Safe to run twice, concurrently, and to resume:

* the run id is derived from the date, so re-running a date finds its manifest and
  does nothing; the instant and table list are fixed by a write-once claim;
* job ids are derived from (run, table, attempt): a redelivered event attaches to
  the jobs already running instead of exporting again; a failed job is retried under
  attempt+1 into a fresh prefix;
* finished tables leave a write-once ``_result.json``, so a continuation resumes
  where the previous invocation stopped;
* at the time budget, running work is handed to a continuation message on the
  trigger topic; the function returns well before its 540 s limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from shared.avro import scan_avro
from shared.config import FUNCTION_TIMEOUT_SECONDS, BackupSettings
from shared.errors import (
    BadInput,
    NotFound,
    PermanentError,
    TransientError,
    VerificationError,
)
from shared.events import BackupRequest
from shared.identifiers import TableRef
from shared.manifest import (
    CLAIM,
    EVENT_CLAIM,
    EVENT_MARKER,
    MANIFEST,
    RESOURCE,
    RESULT,
    STAGING_PREFIX,
    FileEntry,
    Manifest,
    RejectedTable,
    RunClaim,
    RunLayout,
    TableResult,
    TableSelection,
    Verification,
    layout_problem,
    run_id_for,
)
from shared.models import ExtractRequest, JobStatus, ObjectInfo
from shared.ports import ObjectStore, Publisher, Warehouse
from shared.retry import Clock, DeadlineReached, retry_transient

logger = logging.getLogger(__name__)
T = TypeVar("T")

Outcome = Literal["complete", "partial", "failed", "already_done", "continued", "dry_run"]
JSON = "application/json"
EVENT_CLAIM_STALE_SECONDS = 600
EVENT_WAIT_SECONDS = 20
CONTINUATION_PUBLISH_SECONDS = 30
#: A past date's instant must be at least this far inside the time-travel window (and as
#: far as the longest run, continuations included, takes): the run reads the tables for a
#: while after it starts.
TIME_TRAVEL_MARGIN = timedelta(hours=1)
#: How far from the run's instant a table's streaming buffer still says something about it.
STREAMING_BUFFER_HORIZON = timedelta(hours=2)


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def table_done(self, result: TableResult) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def table_done(self, result: TableResult) -> None:
        pass


@dataclass(frozen=True)
class PlannedTable:
    source: str
    destination: str
    resource: str


@dataclass(frozen=True)
class BackupOutcome:
    run_id: str
    outcome: Outcome
    manifest: Manifest | None = None
    plan: list[PlannedTable] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    continuation: int | None = None
    #: listed tables whose names can't be backed up (a dry run shows them; a run fails them)
    rejected: list[RejectedTable] = field(default_factory=list)


@dataclass
class BackupDeps:
    settings: BackupSettings
    warehouse: Warehouse
    store: ObjectStore
    publisher: Publisher
    backend: str
    clock: Clock = field(default_factory=Clock)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    progress: Progress = field(default_factory=_NoProgress)


class _Pending(Exception):
    """A table's work is still running when the budget ends (resumed by a continuation)."""


def _dump(model: BaseModel) -> bytes:
    return model.model_dump_json(indent=2).encode()


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], raw: bytes, name: str) -> M:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise PermanentError(f"{name} is corrupt ({exc.error_count()} problems)") from exc


def read_manifest(store: ObjectStore, layout: RunLayout) -> Manifest | None:
    try:
        raw = store.read(layout.bucket, layout.name(MANIFEST))
    except NotFound:
        return None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise PermanentError(
            f"{layout.uri(layout.name(MANIFEST))} is not a valid manifest"
        ) from exc


def resolve_tables(
    settings: BackupSettings, warehouse: Warehouse, requested: Sequence[TableRef] | None
) -> TableSelection:
    """The configured tables (explicit + every page of each selected dataset).

    Also returns the configured datasets that don't exist, and the listed tables whose
    names can't be backed up (a name BigQuery allows but we don't, or one whose object
    names would be too long): those are failed tables of the run, never an abort. A
    request may only narrow the configured set: naming anything else is bad input.
    """
    selected = set(settings.table_refs)
    missing: list[str] = []
    rejected: dict[str, RejectedTable] = {}
    for table in settings.table_refs:
        problem = layout_problem(settings.prefix, table)
        if problem is not None:
            selected.discard(table)
            rejected[str(table)] = RejectedTable(name=str(table), error=problem)
    for selector in settings.datasets:
        try:
            names = warehouse.list_tables(selector.name)
        except NotFound:
            missing.append(selector.name)
            continue
        for name in names:
            if not selector.selects(name) or name.startswith(STAGING_PREFIX):
                continue  # not selected, or a restore's staging table (ours, transient)
            source = f"{selector.name}.{name}"
            try:
                table = TableRef(selector.name, name)
            except BadInput as exc:
                rejected[source] = RejectedTable(name=source, error=str(exc))
                continue
            problem = layout_problem(settings.prefix, table)
            if problem is not None:
                rejected[source] = RejectedTable(name=source, error=f"{source}: {problem}")
                continue
            selected.add(table)
    if requested is not None:
        unknown = sorted(str(t) for t in set(requested) - selected)
        if unknown:
            raise BadInput(
                f"tables not in the backup configuration: {', '.join(unknown)} "
                f"(configured: {len(selected)} tables)"
            )
        return TableSelection(sorted(set(requested)))
    return TableSelection(sorted(selected), missing, [rejected[k] for k in sorted(rejected)])


class BackupRun:
    def __init__(
        self, deps: BackupDeps, request: BackupRequest, published_at: datetime | None = None
    ) -> None:
        self.deps = deps
        self.published_at = published_at
        self.s = deps.settings
        self.request = request
        self.run_date: date = request.date or deps.now().date()
        requested = request.table_refs()
        run_id = request.run_id or run_id_for(
            self.run_date, [str(t) for t in requested] if requested else None
        )
        if self.run_date > deps.now().date():
            raise BadInput(f"date {self.run_date} is in the future")
        expected = run_id_for(self.run_date, [str(t) for t in requested] if requested else None)
        if request.run_id is not None and request.run_id != expected:
            raise BadInput(f"run_id {request.run_id} does not belong to that date and table set")
        if request.continuation and request.run_id is None:
            raise BadInput("continuation is only valid together with its run_id")
        self.layout = RunLayout(self.s.bucket, self.s.prefix, run_id)
        self.requested = requested
        self.deadline = 0.0
        self._lock = threading.Lock()

    # -- top level --------------------------------------------------------------------
    def run(self) -> BackupOutcome:
        d = self.deps
        self.deadline = d.clock.monotonic() + self.s.time_budget_seconds
        layout = self.layout
        manifest = self._retry(lambda: read_manifest(d.store, layout))
        if manifest is not None:
            if self.request.dry_run:
                return BackupOutcome(layout.run_id, "dry_run", manifest=manifest)
            self._publish_event(manifest)
            logger.info(
                "backup run already complete",
                extra={"fields": {"run_id": layout.run_id, "status": manifest.status}},
            )
            return BackupOutcome(layout.run_id, "already_done", manifest=manifest)
        claim = self._read_claim()
        if claim is None:
            instant = self._new_instant()  # refuses a date whose instant can't be read
            selection = self._retry(lambda: resolve_tables(self.s, d.warehouse, self.requested))
            if self.request.dry_run:
                return BackupOutcome(
                    layout.run_id,
                    "dry_run",
                    plan=self._plan(selection.tables),
                    rejected=selection.rejected_tables,
                )
            claim = self._claim(selection, instant)
        elif self.request.dry_run:
            return BackupOutcome(
                layout.run_id, "dry_run", plan=self._plan([TableRef.parse(t) for t in claim.tables])
            )
        return self._execute(claim)

    def _plan(self, tables: Sequence[TableRef]) -> list[PlannedTable]:
        ext = self.s.format.lower()
        return [
            PlannedTable(
                source=str(t),
                destination=self.layout.destination_uri(t, 1, ext),
                resource=self.layout.uri(f"{self.layout.table_dir(t)}/{RESOURCE}"),
            )
            for t in tables
        ]

    def _time_to_kill(self) -> float:
        """Seconds until the function would be killed (its 540 s limit, 5 s to spare): a
        query may run that long and no longer, so it ends (or is cancelled) in time for the
        continuation to be published. The budget only bounds when work *starts*."""
        slack = FUNCTION_TIMEOUT_SECONDS - 5 - self.s.time_budget_seconds
        return max(5.0, self.deadline - self.deps.clock.monotonic() + slack)

    def _retry(self, call: Callable[[], T]) -> T:
        return retry_transient(call, deadline=self.deadline, clock=self.deps.clock)

    def _read_claim(self) -> RunClaim | None:
        try:
            raw = self._retry(lambda: self.deps.store.read(self.s.bucket, self.layout.name(CLAIM)))
        except NotFound:
            return None
        return _parse(RunClaim, raw, self.layout.name(CLAIM))

    def _new_instant(self) -> datetime:
        """The instant a new run of ``run_date`` reads every table at.

        Today's run reads the tables as they are when it starts. A past date means that
        night's data: the tables at the date's scheduled time (``schedule_utc``), read
        through time travel, so a run labelled with a date never holds another day's
        rows. That is possible only while the instant is inside the time-travel window
        (less the longest the run may take) and only on a warehouse that can
        travel in time; otherwise the date is refused and nothing is written.
        """
        now = self.deps.now()
        if self.run_date == now.date():
            return now
        hour, minute = (int(part) for part in self.s.schedule_utc.split(":"))
        instant = datetime.combine(self.run_date, time(hour, minute), UTC)
        if self.published_at is not None and self.published_at.date() == self.run_date:
            instant = min(self.published_at, now)  # the trigger's own moment (a redelivery)
        if not self.deps.warehouse.time_travel:
            raise BadInput(
                f"date {self.run_date} is in the past and this warehouse has no time travel: "
                "it can only back up the tables as they are now (today's run)"
            )
        # the whole run must read inside the window: every invocation (the first and each
        # continuation) may last up to the function limit, plus a minute's delivery each
        invocations = self.s.max_continuations + 1
        longest_run = timedelta(seconds=invocations * (FUNCTION_TIMEOUT_SECONDS + 60))
        window = timedelta(hours=self.s.time_travel_hours) - max(TIME_TRAVEL_MARGIN, longest_run)
        if now - instant > window:
            oldest = (now - window).astimezone(UTC)
            first_date = oldest.date() + timedelta(
                days=0 if oldest.timetz().replace(tzinfo=None) <= time(hour, minute) else 1
            )
            raise BadInput(
                f"date {self.run_date} is outside the {self.s.time_travel_hours} h time-travel "
                f"window: its instant {instant:%Y-%m-%d %H:%M} UTC can no longer be read "
                f"(oldest date that can be backed up now: {first_date})"
            )
        return instant

    def _claim(self, selection: TableSelection, instant: datetime) -> RunClaim:
        now = self.deps.now()
        tables = selection.tables
        claim = RunClaim(
            run_id=self.layout.run_id,
            date=self.run_date,
            instant=instant,
            tables=[str(t) for t in tables],
            missing_datasets=selection.missing_datasets,
            rejected_tables=selection.rejected_tables,
            created_at=now,
            backend=self.deps.backend,
        )
        created = self._retry(
            lambda: self.deps.store.write_once(
                self.s.bucket, self.layout.name(CLAIM), _dump(claim), JSON
            )
        )
        if created is None:  # another delivery claimed the run first: use its instant
            existing = self._read_claim()
            assert existing is not None
            return existing
        logger.info(
            "backup run claimed",
            extra={
                "fields": {
                    "run_id": claim.run_id,
                    "instant": claim.instant.isoformat(),
                    "tables": len(tables),
                }
            },
        )
        return claim

    def _execute(self, claim: RunClaim) -> BackupOutcome:
        d = self.deps
        tables = [TableRef.parse(t) for t in claim.tables]
        d.progress.start(len(tables))
        results: dict[str, TableResult] = {}
        pending: list[str] = []
        workers = max(1, min(self.s.max_concurrent_jobs, len(tables)))
        with ThreadPoolExecutor(workers, "backup-table") as pool:
            futures = {str(t): pool.submit(self._table, claim, t) for t in tables}
            for source, future in futures.items():
                try:
                    result = future.result()
                except _Pending:
                    pending.append(source)
                    continue
                results[source] = result
                d.progress.table_done(result)
        if pending:
            if self.request.continuation < self.s.max_continuations:
                return self._continue(pending)
            for source in pending:
                results[source] = self._record_result(
                    TableResult(
                        source=source,
                        status="failed",
                        error=f"still running after {self.s.max_continuations} continuations",
                    )
                )
        return self._finish(claim, [results[str(t)] for t in tables])

    # -- one table --------------------------------------------------------------------
    def _table(self, claim: RunClaim, table: TableRef) -> TableResult:
        try:
            existing = self._existing_result(table)
        except PermanentError as exc:  # a corrupt record, or a name the store can't hold
            return self._unrecorded_failure(claim, table, exc)
        if existing is not None:
            return existing
        if self.deps.clock.monotonic() >= self.deadline:
            raise _Pending  # started no later than the budget allows
        try:
            result = self._export_table(claim, table)
        except (DeadlineReached, _Pending):
            raise _Pending from None
        except PermanentError as exc:
            result = TableResult(source=str(table), status="failed", error=str(exc))
            logger.warning(
                "table export failed",
                extra={"fields": {"run_id": claim.run_id, "table": str(table), "error": str(exc)}},
            )
        try:
            return self._record_result(result)
        except PermanentError as exc:
            return self._unrecorded_failure(claim, table, exc)

    def _unrecorded_failure(
        self, claim: RunClaim, table: TableRef, exc: PermanentError
    ) -> TableResult:
        """The table's own records can't be read or written: it fails, in the manifest only
        (a later delivery meets the same problem and fails it the same way)."""
        logger.warning(
            "table records unusable; the table fails",
            extra={"fields": {"run_id": claim.run_id, "table": str(table), "error": str(exc)}},
        )
        return TableResult(source=str(table), status="failed", error=str(exc))

    def _existing_result(self, table: TableRef) -> TableResult | None:
        name = f"{self.layout.table_dir(table)}/{RESULT}"
        try:
            raw = self._retry(lambda: self.deps.store.read(self.s.bucket, name))
        except NotFound:
            return None
        return _parse(TableResult, raw, name)

    def _record_result(self, result: TableResult) -> TableResult:
        name = f"{self.layout.table_dir(result.ref)}/{RESULT}"
        created = self._retry(
            lambda: self.deps.store.write_once(self.s.bucket, name, _dump(result), JSON)
        )
        if created is None:  # a concurrent delivery finished this table first
            existing = self._existing_result(result.ref)
            assert existing is not None
            return existing
        return result

    def _export_table(self, claim: RunClaim, table: TableRef) -> TableResult:
        d = self.deps
        info = self._retry(lambda: d.warehouse.get_table(table))
        resource_name = f"{self.layout.table_dir(table)}/{RESOURCE}"
        resource = info.resource()
        resource["snapshotInstant"] = claim.instant.isoformat()
        self._retry(
            lambda: d.store.write_once(
                self.s.bucket, resource_name, json.dumps(resource, indent=2).encode(), JSON
            )
        )
        expected = int(
            self._retry(
                lambda: d.warehouse.row_count_at(
                    table, claim.instant, info=info, wait_seconds=self._time_to_kill()
                )
            )
        )
        last_error = ""
        for attempt in range(1, self.s.max_attempts + 1):
            job_id = self.layout.job_id(table, attempt)
            status = self._job(table, claim, attempt, job_id)
            if status.error is not None:
                last_error = f"{status.error.reason}: {status.error.message}"
                if not status.error.transient:
                    raise PermanentError(f"extract job {job_id} failed: {last_error}")
                logger.warning(
                    "extract job failed, retrying under a new attempt",
                    extra={"fields": {"job_id": job_id, "reason": status.error.reason}},
                )
                continue
            try:
                files, verification = self._verify(
                    table, attempt, status, expected, info.streaming_buffer_rows, claim.instant
                )
            except VerificationError as exc:
                last_error = str(exc)
                logger.warning(
                    "export verification failed, retrying under a new attempt",
                    extra={"fields": {"job_id": job_id, "error": last_error}},
                )
                continue
            self._clean_other_attempts(table, keep=attempt)
            duration = (
                (status.ended - status.started).total_seconds()
                if status.started and status.ended
                else None
            )
            return TableResult(
                source=str(table),
                status="complete",
                rows=verification.rows_exported if verification.streaming_buffer_rows else expected,
                bytes=sum(f.size for f in files),
                files=files,
                job_id=job_id,
                attempt=attempt,
                duration_seconds=duration,
                resource_uri=self.layout.uri(resource_name),
                verification=verification,
            )
        self._clean_other_attempts(table, keep=0)  # nothing of a failed table stays
        raise PermanentError(f"gave up after {self.s.max_attempts} attempts: {last_error}")

    def _job(self, table: TableRef, claim: RunClaim, attempt: int, job_id: str) -> JobStatus:
        d = self.deps
        try:
            status: JobStatus = self._retry(lambda: d.warehouse.get_job(job_id))
        except NotFound:
            request = ExtractRequest(
                job_id=job_id,
                source=table,
                instant=claim.instant,
                destination_uri=self.layout.destination_uri(table, attempt, self.s.format.lower()),
                format=self.s.format,
                compression=self.s.compression,
            )
            status = self._retry(lambda: d.warehouse.start_extract(request))
            logger.info(
                "extract job started",
                extra={"fields": {"job_id": job_id, "table": str(table), "attempt": attempt}},
            )
        interval = min(0.05, self.s.poll_interval_seconds)
        while not status.done:
            if d.clock.monotonic() >= self.deadline:
                raise _Pending
            d.clock.sleep(interval)
            interval = min(interval * 2, self.s.poll_interval_seconds)
            status = self._retry(lambda: d.warehouse.get_job(job_id))
        return status

    def _verify(
        self,
        table: TableRef,
        attempt: int,
        status: JobStatus,
        expected: int,
        buffered: int | None,
        instant: datetime,
    ) -> tuple[list[FileEntry], Verification]:
        """Check the attempt's files against the job and the row count at the instant.

        ``buffered``: the table's streaming-buffer estimate when it has one. Extract jobs
        don't read the buffer while COUNT(*) does, so fewer rows in the files than at the
        instant is then expected (within what the buffer holds, see ``_buffer_explains``):
        the table is complete with what BigQuery could export,
        and the verification records how many rows were left in the buffer (the health
        check warns about it) instead of failing the table every night.
        """
        d = self.deps
        prefix = self.layout.attempt_dir(table, attempt) + "/"
        objects: list[ObjectInfo] = self._retry(lambda: d.store.list(self.s.bucket, prefix))
        if not objects:
            raise VerificationError(f"{table}: the export wrote no files under {prefix}")
        if status.destination_file_count is not None and status.destination_file_count != len(
            objects
        ):
            raise VerificationError(
                f"{table}: the job reported {status.destination_file_count} files, "
                f"{len(objects)} are in the bucket"
            )
        total = sum(o.size for o in objects)
        files = [FileEntry(uri=o.uri, size=o.size, crc32c=o.crc32c) for o in objects]
        if self.s.format != "AVRO" or total > self.s.verify_avro_bytes_limit:
            return files, Verification(
                method="file-listing",
                files_listed=len(objects),
                bytes_listed=total,
                rows_exported=None,
                rows_expected=expected,
                ok=True,
                detail="row count not read from the files (format or size limit)",
            )
        rows = 0
        for i, obj in enumerate(objects):
            if d.clock.monotonic() >= self.deadline:
                raise _Pending  # the job is done; a continuation verifies it
            with d.store.open(obj.bucket, obj.name) as fo:
                stats = scan_avro(fo, obj.uri)
            if stats.size != obj.size:
                raise VerificationError(
                    f"{obj.uri}: blocks end at byte {stats.size} but the object has {obj.size}"
                )
            files[i] = files[i].model_copy(update={"rows": stats.rows})
            rows += stats.rows
        missing = expected - rows
        in_buffer = missing > 0 and self._buffer_explains(missing, buffered, instant)
        if in_buffer:
            logger.warning(
                "rows in the streaming buffer were not exported",
                extra={
                    "fields": {
                        "table": str(table),
                        "rows_exported": rows,
                        "rows_at_instant": expected,
                        "streaming_buffer_estimate": buffered,
                    }
                },
            )
        elif rows != expected:
            raise VerificationError(
                f"{table}: exported {rows} rows, the table had {expected} at the instant"
                + (f" (streaming buffer estimate: {buffered} rows)" if buffered is not None else "")
            )
        return files, Verification(
            method="avro-block-headers",
            files_listed=len(objects),
            bytes_listed=total,
            rows_exported=rows,
            rows_expected=expected,
            ok=True,
            detail=(
                f"{missing} rows were still in the streaming buffer (estimate {buffered}) "
                "and are not in this backup: extract jobs read committed storage only"
                if in_buffer
                else ""
            ),
            streaming_buffer_rows=missing if in_buffer else None,
        )

    def _buffer_explains(self, missing: int, buffered: int | None, instant: datetime) -> bool:
        """Can the streaming buffer account for ``missing`` rows of the export?

        Only a buffer seen near the instant says anything about it (BigQuery flushes
        buffered rows within about 90 minutes), and only as many rows as it holds: its
        ``estimatedRows`` (an estimate, so 10 % and 100 rows of slack). Anything beyond
        that is a real shortfall and fails verification as before.
        """
        if buffered is None or self.deps.now() - instant > STREAMING_BUFFER_HORIZON:
            return False
        return 0 < missing <= buffered + max(100, buffered // 10)

    def _clean_other_attempts(self, table: TableRef, keep: int) -> None:
        """Remove files of failed attempts so the run holds only what the manifest lists."""
        d = self.deps
        prefix = self.layout.table_dir(table) + "/attempt-"
        keep_prefix = self.layout.attempt_dir(table, keep) + "/"
        for obj in d.store.list(self.s.bucket, prefix):
            if not obj.name.startswith(keep_prefix):
                with contextlib.suppress(NotFound):  # a concurrent delivery removed it
                    d.store.delete(obj.bucket, obj.name)

    # -- the end of a run -------------------------------------------------------------
    def _continue(self, pending: list[str]) -> BackupOutcome:
        nxt = self.request.continuation + 1
        marker = self.layout.name(f"_continuation-{nxt}.json")
        body = {
            "date": self.run_date.isoformat(),
            "run_id": self.layout.run_id,
            "continuation": nxt,
        }
        if self.request.tables:
            body["tables"] = list(self.request.tables)
        d = self.deps
        # Publish first, then record it: a crash in between at worst publishes the same
        # step twice (harmless, the run resumes idempotently); the reverse order could
        # record a continuation that was never sent and strand the run.
        if d.store.stat(self.s.bucket, marker) is None:
            retry_transient(
                lambda: d.publisher.publish(
                    self.s.trigger_topic,
                    json.dumps(body).encode(),
                    {"run_id": self.layout.run_id, "continuation": str(nxt)},
                ),
                deadline=d.clock.monotonic() + CONTINUATION_PUBLISH_SECONDS,
                clock=d.clock,
            )
            d.store.write_once(self.s.bucket, marker, json.dumps(body).encode(), JSON)
        logger.info(
            "time budget reached, continuing in a new invocation",
            extra={
                "fields": {"run_id": self.layout.run_id, "continuation": nxt, "pending": pending}
            },
        )
        return BackupOutcome(self.layout.run_id, "continued", pending=pending, continuation=nxt)

    def _finish(self, claim: RunClaim, results: list[TableResult]) -> BackupOutcome:
        d = self.deps
        errors = [f"dataset {name} does not exist" for name in claim.missing_datasets]
        # listed tables whose names can't be backed up: failed tables, never left out
        # (not via _record_result: such a name may not even parse as dataset.table)
        results = results + [
            TableResult(source=r.name, status="failed", error=r.error)
            for r in claim.rejected_tables
        ]
        ok = [r for r in results if r.status == "complete"]
        if ok and len(ok) == len(results) and not errors:
            status: Literal["complete", "partial", "failed"] = "complete"
        elif ok:
            status = "partial"
        else:
            status = "failed"
        manifest = Manifest(
            run_id=claim.run_id,
            date=claim.date,
            instant=claim.instant,
            backend=claim.backend,
            bucket=self.s.bucket,
            prefix=self.s.prefix,
            format=self.s.format,
            compression=self.s.compression,
            status=status,
            created_at=claim.created_at,
            completed_at=d.now(),
            tables=results,
            errors=errors,
        )
        created = self._retry(
            lambda: d.store.write_once(
                self.s.bucket, self.layout.name(MANIFEST), _dump(manifest), JSON
            )
        )
        if created is None:
            existing = read_manifest(d.store, self.layout)
            assert existing is not None
            manifest = existing
        self._publish_event(manifest)
        logger.info(
            "backup run finished",
            extra={
                "fields": {
                    "run_id": manifest.run_id,
                    "status": manifest.status,
                    "tables": len(manifest.tables),
                    "failed": [t.source for t in manifest.failed],
                }
            },
        )
        return BackupOutcome(claim.run_id, manifest.status, manifest=manifest)

    def _publish_event(self, manifest: Manifest) -> None:
        """Publish the run's event once, however many deliveries finish the run.

        A write-once claim picks the one delivery that publishes; a done marker follows
        the publish. A claim left behind by a crash (older than EVENT_CLAIM_STALE_SECONDS
        without a done marker) is published again: at least once, never silently lost.
        """
        d = self.deps
        done = self.layout.name(EVENT_MARKER)
        if self._retry(lambda: d.store.stat(self.s.bucket, done)) is not None:
            return
        claim_name = self.layout.name(EVENT_CLAIM)
        now = d.now()
        nonce = uuid.uuid4().hex
        claim_body = json.dumps({"claimed_at": now.isoformat(), "nonce": nonce}).encode()
        claimed = self._retry(
            lambda: d.store.write_once(self.s.bucket, claim_name, claim_body, JSON)
        )
        if claimed is None:
            previous = json.loads(d.store.read(self.s.bucket, claim_name))
            if previous.get("nonce") != nonce:  # not our own write answered twice
                age = (now - datetime.fromisoformat(previous["claimed_at"])).total_seconds()
                if age < EVENT_CLAIM_STALE_SECONDS:
                    self._await_event(done, manifest)
                    return
                logger.warning(
                    "event claim is stale without a publish; publishing again",
                    extra={"fields": {"run_id": manifest.run_id, "claim_age_seconds": round(age)}},
                )
        event_type = "backup.completed" if manifest.status == "complete" else "backup.failed"
        body = {
            "type": event_type,
            "run_id": manifest.run_id,
            "status": manifest.status,
            "date": manifest.date.isoformat(),
            "instant": manifest.instant.isoformat(),
            "manifest": self.layout.uri(self.layout.name(MANIFEST)),
            "tables": len(manifest.tables),
            "failed": [{"source": t.source, "error": t.error} for t in manifest.failed],
            "errors": manifest.errors,
        }
        message_id = retry_transient(  # its own short deadline: the run's may be spent
            lambda: d.publisher.publish(
                self.s.events_topic,
                json.dumps(body).encode(),
                {"event_type": event_type, "run_id": manifest.run_id, "status": manifest.status},
            ),
            deadline=d.clock.monotonic() + CONTINUATION_PUBLISH_SECONDS,
            clock=d.clock,
        )
        d.store.write_once(
            self.s.bucket,
            done,
            json.dumps({"message_id": message_id, "type": event_type}).encode(),
            JSON,
        )

    def _await_event(self, done: str, manifest: Manifest) -> None:
        """Another delivery claimed the event: wait for its done marker, else redeliver.

        Returning would acknowledge this delivery; if the claimant died before
        publishing, nobody would ever publish. Raising makes Pub/Sub come back later,
        when the claim is done or stale.
        """
        d = self.deps
        until = d.clock.monotonic() + EVENT_WAIT_SECONDS
        while d.clock.monotonic() < until:
            if d.store.stat(self.s.bucket, done) is not None:
                return
            d.clock.sleep(0.2)
        raise TransientError(
            f"run {manifest.run_id}: another delivery is publishing the event; retry later"
        )


def run_backup(
    request: BackupRequest, deps: BackupDeps, *, published_at: datetime | None = None
) -> BackupOutcome:
    """One invocation's share of a backup run (see the module docstring).

    ``published_at``: when the trigger that implied the run's date was published; a
    past date's run then reads the tables at that moment rather than the scheduled one.
    """
    try:
        return BackupRun(deps, request, published_at).run()
    except DeadlineReached as exc:
        raise TransientError(f"backup run could not start before its time budget: {exc}") from exc


def run_backup_to_end(request: BackupRequest, deps: BackupDeps) -> BackupOutcome:
    """Drive a run through its continuations in this process (the CLI's way)."""
    outcome = run_backup(request, deps)
    while outcome.outcome == "continued":
        request = request.model_copy(
            update={"run_id": outcome.run_id, "continuation": outcome.continuation or 0}
        )
        outcome = run_backup(request, deps)
    return outcome


__all__ = [
    "BackupDeps",
    "BackupOutcome",
    "BackupRun",
    "read_manifest",
    "resolve_tables",
    "run_backup",
    "run_backup_to_end",
]
