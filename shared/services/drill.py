"""The restore drill: prove the newest backup restores, and how long a full restore takes.

A drill restores a sample of tables of the newest complete nightly backup
(``backups.drill.tables``; empty: two complete tables that hold rows, the smallest and
the largest whose backup files total at most ``SAMPLE_MAX_BYTES``, 256 MiB, so the drill
stays well inside the function's 540 s) into a scratch dataset
(``backups.drill.scratch_dataset``, created with a default table expiration so a drill
that dies still cleans up), compares each restored table with its source as of the
backup's instant (row count and a content fingerprint), drops the scratch tables (always,
also when the drill fails) and writes a write-once record::

    gs://<bucket>/<prefix>/drills/<YYYYMMDD>/_claim.json    which delivery drills (write-once)
    gs://<bucket>/<prefix>/drills/<YYYYMMDD>/_drill.json    the day's record (write-once)

Decisions, in order of surprise:

* **One record a day.** The first drill of a UTC day writes the day's record; a
  redelivered trigger, or a second ``opsuite drill`` the same day (whatever its tables),
  finds it and reports it without drilling again (outcome ``already_done``).
* **A drill that cannot run is a failed drill.** No complete backup, a scratch dataset
  that holds backed-up tables, a configured sample table missing from the backup: each
  is a failed record with the reason, because each is the disaster-recovery risk the
  drill exists to find. Only a bad *request* (an explicitly requested table that is not
  a complete table of the backup) is BadInput, with nothing written.
* **Content that can't be compared is said so, not failed or passed silently.** The
  source is fingerprinted as of the backup's instant. A warehouse without time travel
  (the local one) refuses when the source changed after the instant, BigQuery refuses an
  instant outside its time-travel window, and a table whose backup lacks rows still in
  its streaming buffer can't match its source: the table is then ``content:
  not_compared`` with the reason in ``content_note``, its rows are still compared with
  the manifest, and the drill can pass. Different digests fail the table.
* **Transient faults in the drill's own steps ask for redelivery** (TransientError, and
  ConfigError from credentials), after dropping the scratch tables and releasing the
  claim, instead of recording a breach for a blip. A table that ``restore_run`` reports
  failed is a failed drill whatever the cause (it reports per-table failures as text).
* **Only one delivery drills.** A write-once claim comes first; a claim older than its
  holder's lifetime (the function's 540 s, or longer for a CLI drill with a longer
  restore timeout; the claim records it) is taken over by writing the next claim
  generation (``_claim.1.json``, ...) write-once, so exactly one taker wins; a fresh
  claim held by another delivery raises TransientError (Pub/Sub redelivers later, and
  the redelivery finds the record). Scratch tables keep their source table names
  (``restore_run`` keeps them in ``target_dataset``), which is why the claim matters;
  two sample tables of the same name from different datasets are restored one after
  the other.

Throughput and projection. Each restored table's time is its restore wall time
(``RestoredTable.elapsed_seconds``: from the start of its work until done, file checks,
waiting for the warehouse to start its load, the load, the row check and the swap
included; waiting counts as cost, which is conservative). One table's restore is modelled
as ``seconds = overhead + bytes / bandwidth``: a fixed cost per table (checks, a load job's
start and queue, the row check, the swap: several seconds on BigQuery whatever the size)
plus the bytes at a rate. The model is fitted to the tables restored correctly
(:func:`fit_restore_model`; ``model`` in the record):

* ``two-point``: the smallest and the largest sampled table (by backup file bytes; of
  equal sizes the slower one), the largest at least ``FIT_MIN_SIZE_RATIO`` (2x) the
  smallest's bytes and slower: bandwidth = bytes difference / seconds difference,
  overhead = the line's value at 0 bytes, at least 0.
* ``single-table`` (one table measured) and ``fallback`` (sizes within 2x, or the bigger
  table was not slower: the per-byte cost can't be told from the fixed cost): overhead =
  the fastest table's seconds, bandwidth = sample bytes / sample seconds (the old rate,
  which already holds the fixed cost). The projection counts the time twice, as fixed
  *and* as per-byte cost: it is above every split of the measurement into the two, so it
  is never optimistic, and pessimistic by at most ``rounds x overhead``. The default
  sample has two tables to avoid this case; a configured sample should too.
* In every model the overhead is then raised, if need be, until no sampled table is
  predicted faster than it was measured.

The full backup (``full_backup_tables`` complete tables, ``full_backup_bytes``) restores
``concurrency`` tables at a time (``backups.max_concurrent_jobs``, the workers
``restore_run`` is given): ::

    projected_seconds = ceil(full_backup_tables / concurrency) x overhead
                        + full_backup_bytes / bandwidth

Concurrent tables overlap their fixed costs (each waits on the warehouse, not on the
others); their bytes do not speed up: the whole backup goes through the one measured
bandwidth, though BigQuery runs concurrent loads in parallel (conservative). The drill
restores its sample concurrently too, so each measured time includes the other's
contention. Worked example (MB = 10^6 B): the smallest table, 1 MB, restored in 5 s; the
largest under the cap, 101 MB, in 15 s: bandwidth = 100 MB / 10 s = 10 MB/s, overhead =
5 s - 1 MB / 10 MB/s = 4.9 s. A backup of 100 tables and 20 GB, 16 at a time: ceil(100/16)
= 7 rounds x 4.9 s + 20 000 MB / 10 MB/s = 34.3 s + 2000 s = 2034.3 s = 0.57 h (a 1 TB
backup: 34.3 s + 100 000 s = 27.8 h). Scaling the sample by bytes, as drills before this
model did, projects the 20 GB at 102 MB / 20 s: 3922 s = 1.09 h, and with the smallest
table alone (the old default sample) at 1 MB / 5 s: 100 000 s = 27.8 h: a breach of the
8 h objective for any backup above 5.8 GB (the smaller the sample table, the lower that
size) that nothing real stands behind.

Limits of the model, said plainly: it extrapolates from tables of at most
``SAMPLE_MAX_BYTES`` to the whole backup assuming the per-byte cost does not grow with a
table's size (BigQuery is expected to split a bigger load across more workers, so it
should rather shrink; not measured here); a bigger table that was only barely slower
(timing noise) yields a high bandwidth, which the 2x size rule limits and the next day's
drill measures again.
``throughput_bytes_per_second`` keeps its meaning: sample bytes / the sum of the tables'
seconds (a sequential rate).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import date as Date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.config import FUNCTION_TIMEOUT_SECONDS, BackupSettings
from shared.errors import BadInput, NotFound, OpsuiteError, PermanentError, TransientError
from shared.identifiers import TableRef
from shared.manifest import MANIFEST, Manifest, RunLayout, TableResult
from shared.models import Fingerprint, as_utc
from shared.ports import ObjectStore, Warehouse
from shared.retry import Clock, retry_transient
from shared.services.backup import read_manifest
from shared.services.restore import RestoreDeps, RestoredTable, check_files, restore_run

logger = logging.getLogger(__name__)

DRILLS = "drills"
RECORD = "_drill.json"
CLAIM = "_claim.json"
JSON = "application/json"
_NIGHTLY_RUN = re.compile(r"[0-9]{8}")
_CLAIM_NAME = re.compile(r"_claim(?:\.([0-9]{1,6}))?\.json")
#: How long writing the record may keep retrying a transient fault.
RECORD_WRITE_SECONDS = 30.0
#: Added to a CLI drill's restore time when its claim says how long it may hold it.
CLAIM_MARGIN_SECONDS = 120.0
#: The default sample's larger table is the largest complete table whose backup files
#: total at most this: its load and two fingerprint queries are expected to take BigQuery
#: well under the function's 540 s (not measured here). A module constant, not a setting.
SAMPLE_MAX_BYTES = 256 * 1024 * 1024
#: The larger sampled table must have at least this many times the smaller one's bytes
#: for the two to be fitted; closer sizes can't tell per-byte from fixed cost.
FIT_MIN_SIZE_RATIO = 2.0

ContentCheck = Literal["equal", "differs", "not_compared"]
Outcome = Literal["drilled", "already_done", "dry_run"]
ModelKind = Literal["two-point", "single-table", "fallback"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FingerprintRecord(_Record):
    rows: int
    digest: str

    @classmethod
    def of(cls, fingerprint: Fingerprint) -> FingerprintRecord:
        return cls(rows=fingerprint.rows, digest=fingerprint.digest)


class DrillTable(_Record):
    source: str
    scratch: str
    #: rows the manifest records for the table at the backup's instant
    rows_expected: int | None
    rows_restored: int | None = None
    #: the table's backup files' sizes, from the manifest
    bytes: int
    files: int
    #: restore wall time of this table: its work plus waiting for the warehouse (queueing)
    seconds: float | None = None
    #: its own work only (checks, the load job's run time, row check, swap)
    work_seconds: float | None = None
    #: how long its load waited for the warehouse to start it (None: not reported)
    queued_seconds: float | None = None
    source_fingerprint: FingerprintRecord | None = None
    restored_fingerprint: FingerprintRecord | None = None
    content: ContentCheck = "not_compared"
    #: why content was not compared, or how it differs
    content_note: str | None = None
    ok: bool
    error: str | None = None


class DrillTotals(_Record):
    """Over the tables restored correctly: rows, backup bytes, restore wall seconds."""

    rows: int
    bytes: int
    seconds: float


class DrillRecord(_Record):
    """One day's restore drill (``<prefix>/drills/<YYYYMMDD>/_drill.json``, write-once)."""

    record_version: Literal[1] = 1
    date: Date
    #: the backup run drilled (None: there was no complete backup to drill)
    run_id: str | None
    #: the backup's instant: what the sources were compared at
    instant: datetime | None
    backend: str
    scratch_dataset: str
    started_at: datetime
    finished_at: datetime
    tables: list[DrillTable]
    totals: DrillTotals
    #: sample bytes / sum of the tables' restore wall time (queueing included): sequential
    throughput_bytes_per_second: float | None
    #: bytes of every complete table of the backup (file sizes from the manifest)
    full_backup_bytes: int | None
    full_backup_tables: int
    #: the full backup's restore, in hours: ceil(full_backup_tables / concurrency) x
    #: overhead_seconds + full_backup_bytes / bandwidth_bytes_per_second (module docstring)
    projected_hours: float | None
    passed: bool
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    #: how the restore-time model was fitted to the sample (None: nothing measured)
    model: ModelKind | None = None
    #: the model's fixed cost of one table's restore
    overhead_seconds: float | None = None
    #: the model's per-byte rate, shared by all tables of a full restore
    bandwidth_bytes_per_second: float | None = None
    #: tables a full restore runs at once (``backups.max_concurrent_jobs``)
    concurrency: int | None = None


class PlannedDrillTable(_Record):
    source: str
    scratch: str
    rows: int | None
    bytes: int
    files: int
    #: what would fail: a file no longer matches the manifest, or the table is missing
    problem: str | None = None


class DrillPlan(_Record):
    """What a drill would do (a dry run; nothing is written or created)."""

    date: Date
    run_id: str | None
    instant: datetime | None
    scratch_dataset: str
    table_expiration_hours: int
    tables: list[PlannedDrillTable]
    full_backup_bytes: int | None
    full_backup_tables: int
    #: the day's drill is already recorded: a real drill today would report that record
    record_exists: bool
    error: str | None = None
    notes: list[str] = Field(default_factory=list)


class DrillClaim(_Record):
    claimed_at: datetime
    nonce: str
    generation: int
    #: how long the holder may take: older than this, the claim may be taken over
    stale_after_seconds: float


@dataclass(frozen=True)
class DrillOutcome:
    outcome: Outcome
    #: the record written (``drilled``) or found (``already_done``)
    record: DrillRecord | None = None
    #: the plan (``dry_run``)
    plan: DrillPlan | None = None
    #: ``gs://`` URI of the day's record
    location: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.record is None else self.record.passed


@dataclass
class DrillDeps:
    settings: BackupSettings
    warehouse: Warehouse
    store: ObjectStore
    backend: str
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: how long one table's restore may take (its load job polled until then); None: the
    #: backup's time budget, which keeps a drill inside the function's 540 s limit
    restore_timeout_seconds: float | None = None
    on_table: Callable[[DrillTable], None] = field(default=lambda _t: None)

    @property
    def restore_timeout(self) -> float:
        if self.restore_timeout_seconds is not None:
            return self.restore_timeout_seconds
        return self.settings.time_budget_seconds


# -- layout and reading ------------------------------------------------------------------
def drills_prefix(prefix: str) -> str:
    return f"{prefix}/{DRILLS}" if prefix else DRILLS


class DrillLayout:
    """Object names of one day's drill."""

    def __init__(self, bucket: str, prefix: str, day: Date) -> None:
        self.bucket = bucket
        self.base = f"{drills_prefix(prefix)}/{day:%Y%m%d}"

    @property
    def record(self) -> str:
        return f"{self.base}/{RECORD}"

    def claim(self, generation: int) -> str:
        return (
            f"{self.base}/{CLAIM}" if generation == 0 else f"{self.base}/_claim.{generation}.json"
        )

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"


def read_drill(store: ObjectStore, bucket: str, name: str) -> DrillRecord | None:
    try:
        raw = store.read(bucket, name)
    except NotFound:
        return None
    try:
        return DrillRecord.model_validate_json(raw)
    except ValidationError as exc:
        raise PermanentError(f"gs://{bucket}/{name} is not a valid drill record") from exc


def newest_drill(
    store: ObjectStore, bucket: str, prefix: str, *, before: datetime | None = None
) -> DrillRecord | None:
    """The newest day's drill record, or None if no drill was ever recorded.

    One listing of ``<prefix>/drills/`` and one read (the newest record only).
    PermanentError if that record is unreadable. ``before``: the newest that had
    finished by then (a report of a past instant), reading back day by day.
    """
    base = drills_prefix(prefix) + "/"
    days = []
    for obj in store.list(bucket, base):
        day, _, leaf = obj.name[len(base) :].partition("/")
        if leaf == RECORD and _NIGHTLY_RUN.fullmatch(day):
            days.append(day)
    if not days:
        return None
    if before is None:
        return read_drill(store, bucket, f"{base}{max(days)}/{RECORD}")
    until = f"{before.astimezone(UTC):%Y%m%d}"
    for day in sorted((d for d in days if d <= until), reverse=True):
        record = read_drill(store, bucket, f"{base}{day}/{RECORD}")
        if record is None:
            continue  # removed since the listing
        if as_utc(record.finished_at) <= before:
            return record
    return None


def newest_complete_backup(
    store: ObjectStore, bucket: str, prefix: str
) -> tuple[Manifest | None, list[str]]:
    """The newest *complete nightly* run's manifest, and notes on newer runs passed over.

    Subset runs (``YYYYMMDD-<hash>``) hold only some tables and can't stand for a full
    restore; partial or failed runs are not complete backups. An unreadable manifest is
    passed over with a note.
    """
    base = f"{prefix}/" if prefix else ""
    run_ids = set()
    for obj in store.list(bucket, base):
        run_id, _, leaf = obj.name[len(base) :].partition("/")
        if leaf == MANIFEST and _NIGHTLY_RUN.fullmatch(run_id):
            run_ids.add(run_id)
    notes = []
    for run_id in sorted(run_ids, reverse=True):
        try:
            manifest = read_manifest(store, RunLayout(bucket, prefix, run_id))
        except PermanentError as exc:
            notes.append(f"run {run_id} passed over: {exc}")
            continue
        if manifest is None:  # removed since the listing
            continue
        if manifest.status == "complete":
            return manifest, notes
        notes.append(f"run {run_id} passed over: it is {manifest.status}, not complete")
    return None, notes


# -- arithmetic ----------------------------------------------------------------------------
def throughput(sample_bytes: int, seconds: float) -> float | None:
    """Bytes per second, or None when nothing (or no time) was measured."""
    if sample_bytes <= 0 or seconds <= 0:
        return None
    return sample_bytes / seconds


@dataclass(frozen=True)
class RestoreModel:
    """One table's restore takes ``overhead_seconds + bytes / bandwidth_bytes_per_second``."""

    kind: ModelKind
    overhead_seconds: float
    bandwidth_bytes_per_second: float
    #: why the per-byte cost could not be told from the fixed cost (single-table, fallback)
    note: str = ""

    def table_seconds(self, n_bytes: int) -> float:
        return self.overhead_seconds + n_bytes / self.bandwidth_bytes_per_second

    def projected_seconds(self, full_bytes: int, full_tables: int, concurrency: int) -> float:
        """A restore of ``full_tables`` tables, ``concurrency`` at a time, of ``full_bytes``:
        every round of concurrent tables pays the overhead once; the bytes share one
        bandwidth (concurrency does not speed them up)."""
        rounds = math.ceil(max(0, full_tables) / max(1, concurrency))
        return rounds * self.overhead_seconds + max(0, full_bytes) / self.bandwidth_bytes_per_second


def fit_restore_model(timings: Sequence[tuple[int, float]]) -> RestoreModel | None:
    """Fit ``overhead + bytes / bandwidth`` to ``(bytes, seconds)`` of restored tables.

    See the module docstring. Timings without a positive, finite time are left out; None
    when nothing is left or no bytes were measured (no rate can be had).
    """
    points = [(b, s) for b, s in timings if b >= 0 and math.isfinite(s) and s > 0]
    total_bytes = sum(b for b, _ in points)
    total_seconds = sum(s for _, s in points)
    if not points or total_bytes <= 0:
        return None
    small = min(points, key=lambda p: (p[0], -p[1]))  # of equal sizes, the slower
    large = max(points, key=lambda p: (p[0], p[1]))
    model: RestoreModel | None = None
    if len(points) == 1:
        why = (
            "one table measured: its time can't be split into fixed and per-byte cost, so "
            "the projection counts it as both (pessimistic); drill two tables, one at "
            f"least {FIT_MIN_SIZE_RATIO:g}x the other's bytes, for a fitted projection"
        )
    elif large[0] <= small[0] or large[0] < FIT_MIN_SIZE_RATIO * small[0]:
        why = (
            f"the sampled tables' sizes are within {FIT_MIN_SIZE_RATIO:g}x of each other: "
            "fixed and per-byte cost can't be told apart, so the projection counts the "
            "time as both (pessimistic)"
        )
    elif large[1] <= small[1]:
        why = (
            "the larger sampled table restored no slower than the smaller: no per-byte cost "
            "could be measured, so the projection counts the time as fixed and as per-byte "
            "cost (pessimistic)"
        )
    else:
        slope = (large[1] - small[1]) / (large[0] - small[0])  # seconds per byte
        model = RestoreModel("two-point", small[1] - small[0] * slope, 1 / slope)
        why = ""
    if model is None:
        kind: ModelKind = "single-table" if len(points) == 1 else "fallback"
        model = RestoreModel(kind, min(s for _, s in points), total_bytes / total_seconds)
    # no sampled table predicted faster than it was measured; never a negative overhead
    rate = model.bandwidth_bytes_per_second
    overhead = max(0.0, model.overhead_seconds, *(s - b / rate for b, s in points))
    return RestoreModel(model.kind, overhead, rate, why)


def file_bytes(entry: TableResult) -> int:
    return sum(f.size for f in entry.files)


def _complete(manifest: Manifest) -> list[TableResult]:
    return [t for t in manifest.tables if t.status == "complete"]


# -- choosing the sample -------------------------------------------------------------------
@dataclass(frozen=True)
class _Sample:
    entries: list[TableResult]
    #: configured tables that can't be drilled: source → why (failed tables of the drill)
    missing: dict[str, str]


def _default_sample(manifest: Manifest) -> list[TableResult]:
    """The smallest complete table, and the largest of at most ``SAMPLE_MAX_BYTES``.

    Two sizes let the drill fit fixed and per-byte cost apart (module docstring). A table
    of no rows restores nothing and measures little: tables that hold rows come first.
    """
    complete = _complete(manifest)
    holding = [t for t in complete if t.rows and file_bytes(t) > 0] or complete
    if not holding:
        return []

    def size(t: TableResult) -> tuple[int, int, str]:
        return file_bytes(t), t.rows or 0, t.source

    smallest = min(holding, key=size)
    fitting = [t for t in holding if t is not smallest and file_bytes(t) <= SAMPLE_MAX_BYTES]
    return [smallest, max(fitting, key=size)] if fitting else [smallest]


def _choose(
    manifest: Manifest, settings: BackupSettings, requested: Sequence[TableRef] | None
) -> _Sample:
    if requested:
        entries = []
        for ref in dict.fromkeys(requested):
            entry = manifest.table(str(ref))
            if entry is None:
                raise BadInput(f"{ref} is not in backup run {manifest.run_id}")
            if entry.status != "complete":
                raise BadInput(f"{ref} failed in backup run {manifest.run_id}: {entry.error}")
            entries.append(entry)
        return _Sample(entries, {})
    if not settings.drill.tables:
        return _Sample(_default_sample(manifest), {})
    entries, missing = [], {}
    for name in settings.drill.tables:
        entry = manifest.table(name)
        if entry is None:
            missing[name] = f"configured drill table {name} is not in backup run {manifest.run_id}"
        elif entry.status != "complete":
            missing[name] = f"{name} failed in backup run {manifest.run_id}: {entry.error}"
        else:
            entries.append(entry)
    return _Sample(entries, missing)


def _batches(entries: Sequence[TableResult]) -> list[list[TableResult]]:
    """Groups without two tables of the same name: each group's scratch names are unique."""
    batches: list[list[TableResult]] = []
    for entry in entries:
        for batch in batches:
            if all(e.ref.table != entry.ref.table for e in batch):
                batch.append(entry)
                break
        else:
            batches.append([entry])
    return batches


def _scratch_problem(scratch: str, manifest: Manifest, settings: BackupSettings) -> str | None:
    """The drill drops what it restores: never into a dataset that holds backed-up data."""
    backed_up = {t.dataset for t in settings.table_refs} | {d.name for d in settings.datasets}
    for entry in manifest.tables:
        with contextlib.suppress(BadInput):  # a rejected name recorded as a failed table
            backed_up.add(entry.ref.dataset)
    if scratch in backed_up:
        return (
            f"backups.drill.scratch_dataset {scratch} holds backed-up tables: the drill "
            "restores into it and drops what it restored; configure a dataset of its own"
        )
    return None


# -- the drill -------------------------------------------------------------------------------
def run_drill(
    deps: DrillDeps,
    *,
    tables: Sequence[TableRef] | None = None,
    dry_run: bool = False,
    today: Date | None = None,
) -> DrillOutcome:
    """Drill ``today``'s restore (default: the UTC date now); see the module docstring.

    ``tables``: the sample instead of the configured one (each a complete table of the
    backup, else BadInput). ``dry_run``: plan only (which run, which tables, bytes, what
    would fail), nothing written or created. Raises TransientError when another delivery
    holds a fresh claim or a step failed transiently (nothing recorded: retry later).
    """
    s = deps.settings
    day = today or deps.now().astimezone(UTC).date()
    layout = DrillLayout(s.bucket, s.prefix, day)
    location = layout.uri(layout.record)
    existing = read_drill(deps.store, s.bucket, layout.record)
    if dry_run:
        plan = _plan(deps, day, tables, record_exists=existing is not None)
        return DrillOutcome("dry_run", plan=plan, location=location)
    if existing is not None:
        logger.info(
            "restore drill already recorded for the day",
            extra={"fields": {"date": day.isoformat(), "passed": existing.passed}},
        )
        return DrillOutcome("already_done", record=existing, location=location)

    manifest, notes = newest_complete_backup(deps.store, s.bucket, s.prefix)
    sample = _choose(manifest, s, tables) if manifest is not None else _Sample([], {})
    claim = _claim(deps, layout, _holder_seconds(deps, sample.entries))
    if claim is None:  # the claim was held by a delivery that has recorded the day since
        found = read_drill(deps.store, s.bucket, layout.record)
        assert found is not None
        return DrillOutcome("already_done", record=found, location=location)
    try:
        record = _Drill(deps, day, manifest, sample, notes).run()
        written = retry_transient(
            lambda: deps.store.write_once(
                s.bucket, layout.record, record.model_dump_json(indent=2).encode(), JSON
            ),
            deadline=deps.monotonic() + RECORD_WRITE_SECONDS,
            clock=Clock(deps.monotonic, deps.sleep),
        )
    except BaseException:
        # nothing recorded: let a redelivery (or the next attempt) claim at once
        with contextlib.suppress(Exception):
            deps.store.delete(s.bucket, layout.claim(claim.generation))
        raise
    if written is None:  # a takeover raced us to the record: the day has its record
        found = read_drill(deps.store, s.bucket, layout.record)
        assert found is not None
        return DrillOutcome("already_done", record=found, location=location)
    _log(record, location)
    return DrillOutcome("drilled", record=record, location=location)


def _log(record: DrillRecord, location: str) -> None:
    fields = {
        "date": record.date.isoformat(),
        "run_id": record.run_id,
        "passed": record.passed,
        "projected_hours": None
        if record.projected_hours is None
        else round(record.projected_hours, 4),
        "throughput_bytes_per_second": None
        if record.throughput_bytes_per_second is None
        else round(record.throughput_bytes_per_second),
        "model": record.model,
        "overhead_seconds": None
        if record.overhead_seconds is None
        else round(record.overhead_seconds, 3),
        "bandwidth_bytes_per_second": None
        if record.bandwidth_bytes_per_second is None
        else round(record.bandwidth_bytes_per_second),
        "tables": [t.source for t in record.tables],
        "failed": [t.source for t in record.tables if not t.ok],
        "not_compared": [t.source for t in record.tables if t.content == "not_compared"],
        "record": location,
        "error": record.error,
    }
    if record.passed:
        logger.info("restore drill passed", extra={"fields": fields})
    else:  # a breach of the recovery-time SLO: ERROR, for log-based alerting
        logger.error("restore drill failed", extra={"fields": fields})


def _holder_seconds(deps: DrillDeps, entries: Sequence[TableResult]) -> float:
    """How long this drill may hold its claim: the function's limit, or more for a CLI
    drill whose restore timeout (per round of concurrent tables) allows longer."""
    workers = max(1, deps.settings.max_concurrent_jobs)
    rounds = sum(math.ceil(len(b) / workers) for b in _batches(entries)) or 1
    longest = deps.restore_timeout * rounds
    if longest < FUNCTION_TIMEOUT_SECONDS:
        return float(FUNCTION_TIMEOUT_SECONDS)
    return longest + CLAIM_MARGIN_SECONDS


def _claims(deps: DrillDeps, layout: DrillLayout) -> dict[int, str]:
    out = {}
    for obj in deps.store.list(layout.bucket, f"{layout.base}/_claim"):
        match = _CLAIM_NAME.fullmatch(obj.name.rpartition("/")[2])
        if match:
            out[int(match.group(1) or 0)] = obj.name
    return out


def _claim(deps: DrillDeps, layout: DrillLayout, holder_seconds: float) -> DrillClaim | None:
    """Claim the day's drill; None if someone else's claim led to a record meanwhile.

    TransientError while another delivery holds a fresh claim (or won a takeover race).
    """
    for _ in range(3):
        claims = _claims(deps, layout)
        generation = max(claims, default=-1) + 1
        now = deps.now()
        if claims:
            try:
                current = DrillClaim.model_validate_json(
                    deps.store.read(layout.bucket, claims[generation - 1])
                )
            except NotFound:  # released since the listing: look again
                continue
            except ValidationError:
                current = None  # unreadable: treat as stale
            if current is not None:
                age = (now - current.claimed_at).total_seconds()
                if age < current.stale_after_seconds:
                    if read_drill(deps.store, layout.bucket, layout.record) is not None:
                        return None
                    raise TransientError(
                        f"another delivery has been drilling {layout.base} for {age:.0f}s; "
                        "retry later"
                    )
                logger.warning(
                    "restore drill claim is stale without a record; taking it over",
                    extra={"fields": {"claim": claims[generation - 1], "age_seconds": round(age)}},
                )
        mine = DrillClaim(
            claimed_at=now,
            nonce=uuid.uuid4().hex,
            generation=generation,
            stale_after_seconds=holder_seconds,
        )
        name = layout.claim(generation)
        if deps.store.write_once(layout.bucket, name, mine.model_dump_json().encode(), JSON):
            if read_drill(deps.store, layout.bucket, layout.record) is not None:
                # the holder we took over from finished after all: nothing left to do
                with contextlib.suppress(Exception):
                    deps.store.delete(layout.bucket, name)
                return None
            return mine
        raise TransientError(f"another delivery claimed {layout.base} just now; retry later")
    raise TransientError(f"the drill claims under {layout.base} keep changing; retry later")


class _Drill:
    def __init__(
        self,
        deps: DrillDeps,
        day: Date,
        manifest: Manifest | None,
        sample: _Sample,
        notes: list[str],
    ) -> None:
        self.deps = deps
        self.s = deps.settings
        self.day = day
        self.manifest = manifest
        self.sample = sample
        self.notes = list(notes)
        self.scratch = self.s.drill.scratch_dataset
        self.started_at = deps.now()

    def _record(self, tables: list[DrillTable], error: str | None = None) -> DrillRecord:
        m = self.manifest
        good = [t for t in tables if t.ok]
        totals = DrillTotals(
            rows=sum(t.rows_restored or 0 for t in good),
            bytes=sum(t.bytes for t in good),
            seconds=sum(t.seconds or 0.0 for t in good),
        )
        rate = throughput(totals.bytes, totals.seconds)
        complete = _complete(m) if m is not None else []
        full = sum(file_bytes(t) for t in complete) if m is not None else None
        concurrency = max(1, self.s.max_concurrent_jobs)
        model = fit_restore_model([(t.bytes, t.seconds) for t in good if t.seconds is not None])
        hours = None
        if model is not None and full is not None:
            hours = model.projected_seconds(full, len(complete), concurrency) / 3600
            if model.note and model.note not in self.notes:
                self.notes.append(model.note)
        if error is None and good and model is None:
            self.notes.append("the sample held no bytes: no throughput, no projection")
        ok = error is None and bool(tables) and all(t.ok for t in tables)
        return DrillRecord(
            date=self.day,
            run_id=m.run_id if m is not None else None,
            instant=m.instant if m is not None else None,
            backend=self.deps.backend,
            scratch_dataset=self.scratch,
            started_at=self.started_at,
            finished_at=self.deps.now(),
            tables=tables,
            totals=totals,
            throughput_bytes_per_second=rate,
            full_backup_bytes=full,
            full_backup_tables=len(complete),
            projected_hours=hours,
            passed=ok,
            error=error,
            notes=self.notes,
            model=model.kind if model is not None else None,
            overhead_seconds=model.overhead_seconds if model is not None else None,
            bandwidth_bytes_per_second=(
                model.bandwidth_bytes_per_second if model is not None else None
            ),
            concurrency=concurrency if model is not None else None,
        )

    def run(self) -> DrillRecord:
        m = self.manifest
        if m is None:
            return self._record(
                [],
                f"no complete nightly backup in gs://{self.s.bucket}/{self.s.prefix}/ "
                "to restore: nothing can be recovered from the backups",
            )
        missing = [
            DrillTable(source=source, scratch="", rows_expected=None, bytes=0, files=0,
                       ok=False, error=why, content_note="not restored")
            for source, why in self.sample.missing.items()
        ]  # fmt: skip
        problem = _scratch_problem(self.scratch, m, self.s)
        if problem is not None:
            return self._record(missing, problem)
        if not self.sample.entries:
            return self._record(missing, "no table of the backup to drill")
        targets = {e.source: TableRef(self.scratch, e.ref.table) for e in self.sample.entries}
        results: dict[str, DrillTable] = {}
        error = None
        try:
            self.deps.warehouse.ensure_dataset(
                self.scratch, table_expiration_hours=self.s.drill.table_expiration_hours
            )
            for batch in _batches(self.sample.entries):
                try:
                    results.update(self._restore(m, batch, targets))
                finally:
                    self._drop([targets[e.source] for e in batch])
        except (BadInput, PermanentError) as exc:
            # e.g. no permission to create the scratch dataset, the manifest gone since:
            # the restore can't be done, which is what a drill must find. A TransientError
            # propagates instead (redelivery), after the clean-up below.
            error = f"the drill could not restore run {m.run_id}: {exc}"
        finally:
            self._drop(list(targets.values()))
        tables = [results[e.source] for e in self.sample.entries if e.source in results]
        return self._record(missing + tables, error)

    def _drop(self, targets: Sequence[TableRef]) -> None:
        for target in targets:
            try:
                self.deps.warehouse.delete_table(target)
            except OpsuiteError as exc:
                note = (
                    f"scratch table {target} could not be dropped ({exc}); it expires within "
                    f"{self.s.drill.table_expiration_hours} h"
                )
                if note not in self.notes:
                    self.notes.append(note)
                logger.warning(
                    "scratch table not dropped",
                    extra={"fields": {"table": str(target), "error": str(exc)}},
                )

    def _restore(
        self, m: Manifest, batch: Sequence[TableResult], targets: dict[str, TableRef]
    ) -> dict[str, DrillTable]:
        d = self.deps
        for entry in batch:
            target = targets[entry.source]
            if d.warehouse.table_exists(target):  # a drill that died before its clean-up
                d.warehouse.delete_table(target)
                self.notes.append(f"dropped a leftover scratch table {target} first")
        restore_deps = RestoreDeps(
            d.warehouse,
            d.store,
            self.s.bucket,
            self.s.prefix,
            max_concurrent=self.s.max_concurrent_jobs,
            poll_interval=self.s.poll_interval_seconds,
            timeout_seconds=d.restore_timeout,
            sleep=d.sleep,
            monotonic=d.monotonic,
        )
        report = restore_run(
            m.run_id, restore_deps, tables=[e.ref for e in batch], target_dataset=self.scratch
        )
        self.notes.extend(n for n in report.notes if n not in self.notes)
        by_source = {r.source: r for r in report.tables}
        out = {}
        for entry in batch:
            table = self._check(m, entry, by_source[entry.source], targets[entry.source])
            d.on_table(table)
            out[entry.source] = table
        return out

    def _check(
        self, m: Manifest, entry: TableResult, restored: RestoredTable, target: TableRef
    ) -> DrillTable:
        """Compare the restored table with the manifest's rows and the source's content."""
        base = DrillTable(
            source=entry.source,
            scratch=str(target),
            rows_expected=entry.rows,
            rows_restored=restored.rows_restored,
            bytes=file_bytes(entry),
            files=len(entry.files),
            seconds=restored.elapsed_seconds,
            work_seconds=restored.seconds,
            queued_seconds=restored.queued_seconds,
            ok=False,
        )
        if restored.status != "restored":
            return base.model_copy(
                update={"error": restored.error or "not restored", "content_note": "not restored"}
            )
        wh = self.deps.warehouse
        # TransientError propagates (redelivery); anything else fails the table
        try:
            after = wh.fingerprint(target)
        except (BadInput, PermanentError) as exc:
            return base.model_copy(
                update={"error": f"the restored table could not be fingerprinted: {exc}"}
            )
        base = base.model_copy(update={"restored_fingerprint": FingerprintRecord.of(after)})
        problems = []
        if entry.rows is not None and restored.rows_restored != entry.rows:
            problems.append(
                f"restored {restored.rows_restored} rows, the manifest records {entry.rows}"
            )
        if after.rows != restored.rows_restored:
            problems.append(
                f"the restored table holds {after.rows} rows, the restore counted "
                f"{restored.rows_restored}"
            )
        content: ContentCheck = "not_compared"
        note: str | None = None
        before: Fingerprint | None = None
        buffered = entry.verification.streaming_buffer_rows if entry.verification else None
        if buffered:
            note = (
                f"not compared: the backup lacks {buffered} rows that were in the streaming "
                "buffer at the instant, so it can't match the source; rows were compared "
                "with the manifest"
            )
        else:
            try:
                before = wh.fingerprint(entry.ref, m.instant)
            except (BadInput, PermanentError) as exc:
                note = (
                    f"not compared: the source can't be read as of the backup's instant "
                    f"({exc}); rows were compared with the manifest"
                )
        if before is not None:
            if before.digest == after.digest and before.rows == after.rows:
                content = "equal"
            else:
                content = "differs"
                note = (
                    f"the restored content differs from the source at the backup's instant "
                    f"(source {before.rows} rows, digest {before.digest[:12]}; restored "
                    f"{after.rows} rows, digest {after.digest[:12]})"
                )
                problems.append(note)
        return base.model_copy(
            update={
                "source_fingerprint": FingerprintRecord.of(before) if before else None,
                "content": content,
                "content_note": note,
                "ok": not problems,
                "error": "; ".join(problems) or None,
            }
        )


def _plan(
    deps: DrillDeps, day: Date, tables: Sequence[TableRef] | None, *, record_exists: bool
) -> DrillPlan:
    s = deps.settings
    manifest, notes = newest_complete_backup(deps.store, s.bucket, s.prefix)
    scratch = s.drill.scratch_dataset

    def plan(
        manifest: Manifest | None, tables: list[PlannedDrillTable], error: str | None
    ) -> DrillPlan:
        complete = _complete(manifest) if manifest is not None else []
        return DrillPlan(
            date=day,
            run_id=manifest.run_id if manifest is not None else None,
            instant=manifest.instant if manifest is not None else None,
            scratch_dataset=scratch,
            table_expiration_hours=s.drill.table_expiration_hours,
            tables=tables,
            full_backup_bytes=sum(file_bytes(t) for t in complete) if manifest else None,
            full_backup_tables=len(complete),
            record_exists=record_exists,
            error=error,
            notes=notes,
        )

    if manifest is None:
        return plan(
            None, [], f"no complete nightly backup in gs://{s.bucket}/{s.prefix}/ to restore"
        )
    sample = _choose(manifest, s, tables)
    planned = [
        PlannedDrillTable(source=name, scratch="", rows=None, bytes=0, files=0, problem=why)
        for name, why in sample.missing.items()
    ]
    for entry in sample.entries:
        try:
            _spec, problem = check_files(entry, deps.store)
        except OpsuiteError as exc:
            problem = f"checking the files: {exc}"
        planned.append(
            PlannedDrillTable(
                source=entry.source,
                scratch=str(TableRef(scratch, entry.ref.table)),
                rows=entry.rows,
                bytes=file_bytes(entry),
                files=len(entry.files),
                problem=problem,
            )
        )
    return plan(manifest, planned, _scratch_problem(scratch, manifest, s))


# -- for people ------------------------------------------------------------------------------
def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _hours(hours: float) -> str:
    if hours >= 0.1:
        return f"{hours:.2f} h"
    return f"{hours * 3600:.1f} s ({hours:.5f} h)"


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def describe(item: DrillRecord | DrillPlan) -> list[str]:
    """Human lines for a drill record (or a dry run's plan), for the CLI and logs."""
    if isinstance(item, DrillPlan):
        return _describe_plan(item)
    r = item
    verdict = "PASSED" if r.passed else "FAILED"
    source = f"backup run {r.run_id} (instant {_when(r.instant)})" if r.run_id else "no backup"
    lines = [f"restore drill {r.date}: {verdict} - {source}"]
    for t in r.tables:
        rows = f"{t.rows_restored if t.rows_restored is not None else '-'}/"
        rows += f"{t.rows_expected if t.rows_expected is not None else '-'} rows"
        took = f" in {t.seconds:.2f}s" if t.seconds is not None else ""
        content = {"equal": "content equal", "differs": "content DIFFERS",
                   "not_compared": "content not compared"}[t.content]  # fmt: skip
        line = f"  {'ok  ' if t.ok else 'FAIL'} {t.source}"
        if t.scratch:
            line += f" -> {t.scratch}: {rows}, {_size(t.bytes)}{took}, {content}"
        lines.append(line)
        if t.error:
            lines.append(f"       {t.error}")
        elif t.content_note:
            lines.append(f"       {t.content_note}")
    if r.throughput_bytes_per_second is not None:
        lines.append(
            f"throughput      {_size(round(r.throughput_bytes_per_second))}/s "
            "(sequential, waiting for the warehouse included)"
        )
    if r.full_backup_bytes is not None:
        projection = _hours(r.projected_hours) if r.projected_hours is not None else "unknown"
        lines.append(
            f"full restore    {r.full_backup_tables} tables, {_size(r.full_backup_bytes)}: "
            f"projected {projection}"
        )
    if (
        r.model is not None
        and r.overhead_seconds is not None
        and r.bandwidth_bytes_per_second is not None
        and r.concurrency is not None
    ):
        rounds = math.ceil(r.full_backup_tables / r.concurrency)
        lines.append(
            f"model           {r.model}: {r.overhead_seconds:.2f}s a table + bytes at "
            f"{_size(round(r.bandwidth_bytes_per_second))}/s; {rounds} "
            f"round{'' if rounds == 1 else 's'} of up to {r.concurrency} tables at once, "
            "the bytes not sped up by concurrency"
        )
    lines.extend(f"note            {n}" for n in r.notes)
    if r.error:
        lines.append(f"error           {r.error}")
    return lines


def _describe_plan(p: DrillPlan) -> list[str]:
    source = f"backup run {p.run_id} (instant {_when(p.instant)})" if p.run_id else "no backup"
    lines = [f"restore drill {p.date} (dry run): would restore from {source}"]
    if p.record_exists:
        lines.append("  the day's drill is already recorded: a drill today reports that record")
    for t in p.tables:
        where = f" -> {t.scratch}" if t.scratch else ""
        rows = "-" if t.rows is None else str(t.rows)
        lines.append(f"  {t.source}{where}: {rows} rows, {_size(t.bytes)} in {_files(t.files)}")
        if t.problem:
            lines.append(f"       would fail: {t.problem}")
    lines.append(
        f"scratch         {p.scratch_dataset} (tables expire after {p.table_expiration_hours} h)"
    )
    if p.full_backup_bytes is not None:
        lines.append(f"full backup     {p.full_backup_tables} tables, {_size(p.full_backup_bytes)}")
    lines.extend(f"note            {n}" for n in p.notes)
    if p.error:
        lines.append(f"error           {p.error}")
    return lines


__all__ = [
    "DrillDeps",
    "DrillOutcome",
    "DrillPlan",
    "DrillRecord",
    "DrillTable",
    "RestoreModel",
    "describe",
    "fit_restore_model",
    "newest_complete_backup",
    "newest_drill",
    "run_drill",
    "throughput",
]
