"""Is the pipeline healthy? Freshness, backups, pipeline runs, dependencies.

Pure status logic (``freshness_status``, ``ratio_status``, ``worst``) is separate from
the probing, so the SLA evaluator can reuse it. Every check runs on its own thread
under its own deadline: one that errors or times out becomes a ``fail`` entry with
the reason and the others still report. The result renders as the IETF health check
document (``application/health+json``, draft-inadarei-api-health-check).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared import __version__
from shared.config import FreshnessTable, Settings
from shared.errors import BadInput, NotFound, OpsuiteError
from shared.manifest import (
    CLAIM,
    IN_PROGRESS_WARN_AFTER,
    MANIFEST,
    Manifest,
    RunClaim,
    RunLayout,
)
from shared.models import RunHistoryQuery
from shared.ports import ObjectStore, Warehouse
from shared.services.trigger_rejections import newest_rejection

logger = logging.getLogger(__name__)

Status = Literal["pass", "warn", "fail"]
Mode = Literal["quick", "full"]
CHECKS = ("freshness", "backups", "pipeline", "dependencies")
MODES = ("quick", "full")
_RANK: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}
MEDIA_TYPE = "application/health+json"
#: a name that need not exist: a HEAD on it proves the bucket answers and we may read it
PROBE_OBJECT = "_opsuite_health_probe"


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=lambda s: _RANK[s], default="pass")


def freshness_status(age_seconds: float, warn_after: float, error_after: float) -> Status:
    if age_seconds > error_after:
        return "fail"
    if age_seconds > warn_after:
        return "warn"
    return "pass"


def ratio_status(ratio: float, warn_below: float, fail_below: float) -> Status:
    if ratio < fail_below:
        return "fail"
    if ratio < warn_below:
        return "warn"
    return "pass"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class CheckEntry:
    """One array element of ``checks["component:measurement"]``."""

    key: str  # component:measurement
    component_id: str
    component_type: str
    status: Status
    time: datetime
    observed_value: Any = None
    observed_unit: str | None = None
    output: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "componentId": self.component_id,
            "componentType": self.component_type,
            "status": self.status,
            "time": _iso(self.time),
        }
        if self.observed_value is not None:
            out["observedValue"] = self.observed_value
        if self.observed_unit:
            out["observedUnit"] = self.observed_unit
        if self.output:
            out["output"] = self.output
        out.update(self.details)
        return out


@dataclass(frozen=True)
class HealthReport:
    mode: Mode
    checks: list[CheckEntry]
    generated: datetime

    @property
    def status(self) -> Status:
        return worst(c.status for c in self.checks)

    def document(self) -> dict[str, Any]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for entry in self.checks:
            grouped.setdefault(entry.key, []).append(entry.document())
        failing = [c for c in self.checks if c.status != "pass"]
        return {
            "status": self.status,
            "version": "1",
            "releaseId": __version__,
            "serviceId": "opsuite-health",
            "description": "BigQuery pipeline health: freshness, backups, runs, dependencies",
            "notes": [f"mode={self.mode}", f"generated={_iso(self.generated)}"],
            "output": "; ".join(f"{c.component_id}: {c.output}" for c in failing if c.output)[
                :2000
            ],
            "checks": grouped,
        }


@dataclass
class HealthDeps:
    settings: Settings
    warehouse: Warehouse
    store: ObjectStore
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class HealthRequest:
    mode: Mode = "quick"
    checks: tuple[str, ...] = CHECKS


def parse_health_params(params: dict[str, list[str]]) -> HealthRequest:
    """Query parameters → request. Unknown, repeated or oversized values are BadInput."""
    allowed = {"mode", "checks"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise BadInput(f"unknown parameter {unknown[0][:40]!r}")
    for name, values in params.items():
        if len(values) != 1:
            raise BadInput(f"parameter {name!r} given {len(values)} times")
        if len(values[0]) > 200:
            raise BadInput(f"parameter {name!r} is longer than 200 characters")
    mode = params.get("mode", ["quick"])[0]
    if mode not in MODES:
        raise BadInput(f"unknown mode {mode[:40]!r}")
    checks: tuple[str, ...] = CHECKS
    if "checks" in params:
        names = [c.strip() for c in params["checks"][0].split(",") if c.strip()]
        bad = [c for c in names if c not in CHECKS]
        if bad or not names:
            raise BadInput(f"unknown check {bad[0][:40]!r}" if bad else "checks is empty")
        checks = tuple(dict.fromkeys(names))
        if mode == "quick" and FULL_ONLY & set(checks):
            raise BadInput("the pipeline check runs queries: use mode=full")
    return HealthRequest(mode=mode, checks=checks)  # type: ignore[arg-type]


# -- the checks -----------------------------------------------------------------------
def _freshness_tables(settings: Settings) -> list[FreshnessTable]:
    """Configured freshness tables; by default every explicit backup table."""
    configured = settings.health.freshness.tables
    if configured:
        return list(configured)
    return [FreshnessTable(table=t) for t in settings.backups.tables]


def check_freshness(deps: HealthDeps, mode: Mode) -> list[CheckEntry]:
    health = deps.settings.health.freshness
    now = deps.now()
    by_dataset: dict[str, list[FreshnessTable]] = {}
    for t in _freshness_tables(deps.settings):
        by_dataset.setdefault(t.ref.dataset, []).append(t)
    entries: list[CheckEntry] = []
    for dataset, tables in sorted(by_dataset.items()):
        try:
            # Quick mode must cost nothing: free metadata calls only (no newest partition).
            metadata = deps.warehouse.dataset_metadata(
                dataset, [t.ref.table for t in tables], partitions=mode == "full"
            )
        except NotFound:
            entries.extend(
                CheckEntry(
                    f"{t.table}:freshness",
                    t.table,
                    "datastore",
                    "fail",
                    now,
                    output=f"dataset {dataset} not found",
                )
                for t in tables
            )
            continue
        for t in tables:
            warn = (t.warn_after or health.warn_after).seconds
            error = (t.error_after or health.error_after).seconds
            meta = metadata.get(t.ref.table)
            key = f"{t.table}:freshness"
            if meta is None:
                entries.append(
                    CheckEntry(key, t.table, "datastore", "fail", now, output="table not found")
                )
                continue
            loaded_at, source = meta.last_modified, "last_modified"
            if mode == "full" and t.loaded_at:
                since = (now - timedelta(days=t.lookback_days)).date()
                loaded_at = deps.warehouse.newest_value(
                    t.ref, t.loaded_at, t.partition_field, since
                )
                source = t.loaded_at
            if loaded_at is None:
                entries.append(
                    CheckEntry(
                        key, t.table, "datastore", "fail", now, output=f"no value of {source} found"
                    )
                )
                continue
            age = max(0.0, (now - loaded_at).total_seconds())
            status = freshness_status(age, warn, error)
            output = (
                ""
                if status == "pass"
                else (
                    f"last loaded {age / 3600:.1f} h ago "
                    f"({'error' if status == 'fail' else 'warn'} "
                    f"after {(error if status == 'fail' else warn) / 3600:g} h)"
                )
            )
            entries.append(
                CheckEntry(
                    key,
                    t.table,
                    "datastore",
                    status,
                    now,
                    round(age),
                    "s",
                    output,
                    {
                        "maxLoadedAt": _iso(loaded_at),
                        "measuredFrom": source,
                        "newestPartition": meta.newest_partition,
                        "streamingBufferRows": meta.streaming_buffer_rows,
                        "warnAfterSeconds": warn,
                        "errorAfterSeconds": error,
                    },
                )
            )
    return entries


def newest_run(
    store: ObjectStore, bucket: str, prefix: str
) -> tuple[Manifest | None, RunClaim | None]:
    """The newest finished run's manifest and, if newer, an unfinished run's claim."""
    base = f"{prefix}/" if prefix else ""
    runs: dict[str, set[str]] = {}
    for obj in store.list(bucket, base):
        run_id, _, leaf = obj.name[len(base) :].partition("/")
        if leaf in (MANIFEST, CLAIM):
            runs.setdefault(run_id, set()).add(leaf)
    manifest = claim = None
    for run_id in sorted(runs, key=lambda r: r[:8] + ("1" if "-" not in r else "0"), reverse=True):
        leaves = runs[run_id]
        if MANIFEST in leaves:
            manifest = Manifest.model_validate_json(
                store.read(bucket, f"{base}{run_id}/{MANIFEST}")
            )
            break
        if claim is None:
            claim = RunClaim.model_validate_json(store.read(bucket, f"{base}{run_id}/{CLAIM}"))
    return manifest, claim


def check_backups(deps: HealthDeps, mode: Mode) -> list[CheckEntry]:
    b = deps.settings.backups
    thresholds = deps.settings.health.backups
    now = deps.now()
    manifest, claim = newest_run(deps.store, b.bucket, b.prefix)
    rejected = _trigger_rejected(deps, manifest, claim)
    if manifest is None:
        return [
            CheckEntry(
                "backup:age",
                f"gs://{b.bucket}/{b.prefix}",
                "component",
                "fail",
                now,
                output="no completed backup run found",
            ),
            *rejected,
        ]
    # the age of the data it holds: a backfill of an old date finished a minute ago is
    # not a fresh backup (its instant is that night's)
    age = max(0.0, (now - manifest.instant).total_seconds())
    age_status = freshness_status(
        age, thresholds.warn_after.seconds, thresholds.error_after.seconds
    )
    complete = [t for t in manifest.tables if t.status == "complete"]
    verified = all(t.verification is not None and t.verification.ok for t in complete)
    rows_unchecked = [
        t.source for t in complete if t.verification and t.verification.rows_exported is None
    ]
    buffered = {
        t.source: t.verification.streaming_buffer_rows
        for t in complete
        if t.verification and t.verification.streaming_buffer_rows
    }
    run_statuses: dict[str, Status] = {"complete": "pass", "partial": "warn", "failed": "fail"}
    run_status = run_statuses[manifest.status]
    if not verified:
        run_status = "fail"
    elif (rows_unchecked or buffered) and run_status == "pass":
        run_status = "warn"  # files listed but rows not counted, or rows left in a buffer
    component = f"run {manifest.run_id}"
    entries = [
        CheckEntry(
            "backup:age",
            component,
            "component",
            age_status,
            now,
            round(age),
            "s",
            "" if age_status == "pass" else f"newest backup holds data from {age / 3600:.1f} h ago",
            {"instant": _iso(manifest.instant), "completedAt": _iso(manifest.completed_at)},
        ),
        CheckEntry(
            "backup:status",
            component,
            "component",
            run_status,
            now,
            manifest.status,
            None,
            "; ".join(f"{t.source}: {t.error}" for t in manifest.failed)[:500]
            or ("" if verified else "a table's files were not verified")
            or (
                f"rows not counted in the files of {len(rows_unchecked)} tables"
                if rows_unchecked
                else ""
            )
            or "; ".join(
                f"{source}: {rows} rows were in the streaming buffer, not in the backup"
                for source, rows in buffered.items()
            )[:500],
            {
                "tables": len(manifest.tables),
                "failedTables": len(manifest.failed),
                "verified": verified,
                **({"streamingBufferRows": buffered} if buffered else {}),
            },
        ),
    ]
    if claim is not None:
        running = (now - claim.created_at).total_seconds()
        stalled = running > IN_PROGRESS_WARN_AFTER.total_seconds()
        entries.append(
            CheckEntry(
                "backup:inProgress",
                f"run {claim.run_id}",
                "component",
                "warn" if stalled else "pass",
                now,
                round(running),
                "s",
                "a newer run has not finished" if stalled else "",
            )
        )
    return [*entries, *rejected]


#: A rejection older than this is reported without looking for nightly runs day by day.
REJECTION_LOOKBACK_DAYS = 31


def _trigger_rejected(
    deps: HealthDeps, manifest: Manifest | None, claim: RunClaim | None
) -> list[CheckEntry]:
    """A ``backup:trigger`` failure when the newest run is missing because its trigger
    was rejected (the backup function could not read its configuration)."""
    rejection = newest_rejection(deps.store, deps.settings.backups.bucket)
    if rejection is None:
        return []
    # only a full nightly run shows the problem was fixed (a subset run id has "-hash")
    full = [r.date for r in (manifest, claim) if r is not None and "-" not in r.run_id]
    newest = max(full, default=None)
    if newest is not None and newest >= rejection.date:
        return []  # a nightly run of that day (or later) exists: fixed since
    # newer subset runs can hide the nightly runs: look for one of that night or later
    b = deps.settings.backups
    day, today = rejection.date, deps.now().date()
    while day <= today and (today - rejection.date).days <= REJECTION_LOOKBACK_DAYS:
        night = RunLayout(b.bucket, b.prefix, day.strftime("%Y%m%d"))
        if any(deps.store.stat(b.bucket, night.name(leaf)) for leaf in (MANIFEST, CLAIM)):
            return []
        day += timedelta(days=1)
    return [
        CheckEntry(
            "backup:trigger",
            "backup_export",
            "component",
            "fail",
            deps.now(),
            rejection.date.isoformat(),
            None,
            f"backup trigger rejected at {_iso(rejection.rejected_at)}: {rejection.error}"[:500],
            {"errorType": rejection.error_type, "messageId": rejection.message_id},
        )
    ]


def check_pipeline(deps: HealthDeps, mode: Mode) -> list[CheckEntry]:
    p = deps.settings.health.pipeline
    now = deps.now()
    if p is None:
        return []
    history = deps.warehouse.run_history(
        RunHistoryQuery(
            p.ref,
            p.phase_column,
            p.processor_column,
            p.status_column,
            p.time_column,
            p.error_column,
            tuple(p.success_values),
            now - timedelta(seconds=p.window.seconds),
            p.recent_errors,
        )
    )
    entries = []
    for phase in history.phases:
        ratio = phase.succeeded / phase.runs if phase.runs else 1.0
        status = ratio_status(ratio, p.warn_below, p.fail_below)
        errors = [e for e in history.errors if e.phase == phase.phase]
        messages = dict.fromkeys(f"{e.processor}: {e.message or e.status}" for e in errors)
        output = "; ".join(messages)[:500]
        entries.append(
            CheckEntry(
                f"{phase.phase}:successRatio",
                phase.phase,
                "component",
                status,
                now,
                round(ratio, 4),
                "ratio",
                output if status != "pass" else "",
                {
                    "runs": phase.runs,
                    "succeeded": phase.succeeded,
                    "lastRun": _iso(phase.last_run) if phase.last_run else None,
                },
            )
        )
    if not history.phases:
        entries.append(
            CheckEntry(
                "pipeline:runs",
                str(p.ref),
                "component",
                "fail",
                now,
                0,
                "runs",
                f"no runs in the last {p.window.count} {p.window.period}(s)",
            )
        )
    entries.append(
        CheckEntry(
            "pipeline:recentErrors",
            str(p.ref),
            "component",
            "pass" if not history.errors else "warn",
            now,
            len(history.errors),
            "errors",
            "",
            {
                "errors": [
                    {
                        "time": _iso(e.time) if e.time else None,
                        "phase": e.phase,
                        "processor": e.processor,
                        "status": e.status,
                        "message": (e.message or "")[:300],
                    }
                    for e in history.errors
                ]
            },
        )
    )
    return entries


def check_dependencies(deps: HealthDeps, mode: Mode) -> list[CheckEntry]:
    entries = []
    probes: list[tuple[str, str, Callable[[], object]]] = [
        ("bigquery", "datastore", deps.warehouse.ping),
        (
            "storage",
            "datastore",
            lambda: deps.store.stat(deps.settings.backups.bucket, PROBE_OBJECT),
        ),
    ]
    for name, kind, probe in probes:
        t0 = time.perf_counter()
        try:
            probe()
            status: Status = "pass"
            output = ""
        except OpsuiteError as exc:
            status, output = "fail", f"{type(exc).__name__}: {exc}"[:300]
        elapsed = round((time.perf_counter() - t0) * 1000, 1)
        entries.append(
            CheckEntry(
                f"{name}:responseTime", name, kind, status, deps.now(), elapsed, "ms", output
            )
        )
    return entries


CHECK_FUNCTIONS: dict[str, Callable[[HealthDeps, Mode], list[CheckEntry]]] = {
    "freshness": check_freshness,
    "backups": check_backups,
    "pipeline": check_pipeline,
    "dependencies": check_dependencies,
}
#: query-based checks run only in full mode
FULL_ONLY = {"pipeline"}


def run_health(
    request: HealthRequest, deps: HealthDeps, timeout: float | None = None
) -> HealthReport:
    results = run_checks(request, deps, timeout)
    return HealthReport(request.mode, [e for n in results for e in results[n]], deps.now())


def check_could_not_run(entries: list[CheckEntry]) -> bool:
    """The check itself failed (raised, timed out): its entries say nothing of the pipeline."""
    return len(entries) == 1 and entries[0].key.endswith(":check")


def run_checks(
    request: HealthRequest, deps: HealthDeps, timeout: float | None = None
) -> dict[str, list[CheckEntry]]:
    """Each requested check's entries, in request order (the SLA evaluator reads them
    per check); a check that raised or timed out is one ``<check>:check`` fail entry."""
    limit = timeout if timeout is not None else deps.settings.health.check_timeout_seconds
    names = [n for n in request.checks if request.mode == "full" or n not in FULL_ONLY]
    results: dict[str, list[CheckEntry]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="health")
    futures = {n: pool.submit(CHECK_FUNCTIONS[n], deps, request.mode) for n in names}
    deadline = time.monotonic() + limit
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            results[name] = [_failed(name, deps, f"timed out after {limit:g} s")]
        except OpsuiteError as exc:
            results[name] = [_failed(name, deps, f"{type(exc).__name__}: {exc}")]
        except Exception as exc:  # a bug in one check must not hide the others
            logger.exception("health check crashed", extra={"fields": {"check": name}})
            results[name] = [_failed(name, deps, f"internal error ({type(exc).__name__})")]
    pool.shutdown(wait=False, cancel_futures=True)  # a hung probe must not hold the answer
    return {n: results[n] for n in names}


def _failed(check: str, deps: HealthDeps, reason: str) -> CheckEntry:
    return CheckEntry(f"{check}:check", check, "component", "fail", deps.now(), output=reason[:300])
