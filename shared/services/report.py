"""The data of ``opsuite report`` (issue 11): what the suite already keeps, read once.

:func:`gather` reads, and never writes, the records the suite keeps on both backends,
through the ports only, and returns one frozen :class:`ReportData` with a section per
part of the report. Each section has its data, or ``missing``: what is missing and how
to get it, in plain words (the renderer shows that instead of an empty chart). A source
that can't be read fails its own sections, never the others.

Sources, and why (every one exists on both backends):

- ``slos``: :func:`shared.services.sla.current_status` (the history table), as
  ``opsuite sla status`` shows it; nothing is recomputed here.
- ``budget``: the evaluations history (``budget_remaining`` and ``compliance`` of each
  row, one per instant: :func:`~shared.services.sla_assess.latest_per_instant`), and
  the burn rates of ``current_status``'s assessment (its ``burns``: each configured
  ``slos.burn_rates`` pair's long and short rate against its threshold). Not the metric
  store's ``slo/burn_rate``: Monitoring takes points no older than 25 h, so a back-fill
  writes only its last day there, and a deployment whose evaluator missed slots has
  gaps; the history table holds every slot on both backends, and its rates are the very
  ones the evaluator's events carry. Rows hold which pairs fired (``burning``), not the
  rates, so the series carries ``burning`` and the rates are the newest evaluation's.
- ``freshness``: the freshness SLOs' rows (``detail.ages_hours``: every table's age at
  each instant, back-filled from the tables' ``loaded_at`` columns), for the same
  reason as above: ``freshness/age_hours`` in the metric store covers the last 25 h of
  a back-fill only. Each day's status is its worst age against ``health.freshness``'s
  thresholds (per-table overrides first), as the health check grades it.
- ``backups``: :func:`shared.services.inventory.read_runs`: each run and its manifest
  (files, duration, verification); the newest drill record
  (:func:`shared.services.drill.newest_drill`) against the recovery-time SLO's
  ``max_hours``.
- ``phases``: the ratio SLO's rows (``detail.phases``: each phase's successful runs and
  runs in the row's interval), summed per UTC day: the run history as the evaluator
  counted it, with no warehouse query. ``pipeline/phase_success`` in the metric store
  is a ratio over the SLO's window, not per day.
- ``incidents``: the alert router's ledger (:func:`shared.services.alert_router.
  ledger_records`, one listing per day of the window), one row per alert episode.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import ValidationError

from shared.composition import Adapters
from shared.config import FreshnessSli, RatioSli, RecoveryTimeSli, Settings, Slo
from shared.errors import BadInput, ConfigError, OpsuiteError
from shared.manifest import IN_PROGRESS_WARN_AFTER, Manifest, RunClaim
from shared.models import EvaluationRecord, as_utc, parse_utc_instant
from shared.ports import EvaluationHistory
from shared.services.health import freshness_status, ratio_status
from shared.services.sla import (
    MAX_FUTURE,
    SloStatus,
    freshness_names,
    parse_detail,
    status_of,
    status_since,
)
from shared.services.sla_assess import Assessment, duration_label, latest_per_instant, pair_label
from shared.services.sla_backfill import BACKFILL_KINDS
from shared.services.sla_sli import freshness_tables

if TYPE_CHECKING:
    from shared.services.inventory import RunSummary
    from shared.services.trigger_rejections import TriggerRejection

logger = logging.getLogger(__name__)
S = TypeVar("S")
T = TypeVar("T")

#: at most this many days (as ``sla backfill`` and BigQuery's partition limits go)
MAX_DAYS = 400
SloLabel = Literal["breaching", "exhausted", "burning", "unknown", "ok", "not evaluated"]
FreshnessStatus = Literal["green", "warn", "error", "no data"]
Verification = Literal["verified", "failed", "partly verified", "not verified"]
IncidentStatus = Literal["open", "resolved"]

_SLO_URGENCY: dict[str, int] = {
    "breaching": 0,
    "exhausted": 1,
    "burning": 2,
    "unknown": 3,
    "not evaluated": 4,
    "ok": 5,
}
_FRESHNESS_URGENCY: dict[str, int] = {"error": 0, "warn": 1, "no data": 2, "green": 3}
_FRESHNESS_OF: dict[str, FreshnessStatus] = {"pass": "green", "warn": "warn", "fail": "error"}
_HOW_TO_EVALUATE = "run `opsuite sla backfill` (the past) and `opsuite sla evaluate` (now)"


# -- the data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BurnRate:
    """One ``slos.burn_rates`` pair at the newest evaluation."""

    pair: str  # "1h/15m"
    long_window: str
    short_window: str
    threshold: float
    long_rate: float | None
    short_rate: float | None
    firing: bool
    notify: str  # page | ticket


@dataclass(frozen=True)
class SloRow:
    name: str
    description: str
    objective: float
    severity: str
    window: str  # "28d"
    kind: str
    runbook: str | None
    #: the newest evaluation's instant (None: never evaluated; every field below is None)
    evaluated_at: datetime | None
    sli: float | None
    good: bool | None
    compliance: float | None
    budget_remaining: float | None
    budget_remaining_minutes: float | None
    coverage: float | None
    breaching: bool
    exhausted: bool
    burning: tuple[str, ...]
    #: the most urgent of breaching, exhausted, burning, unknown (the SLI could not be
    #: measured), else ok; "not evaluated" without a row
    state: SloLabel


@dataclass(frozen=True)
class SlosSection:
    #: most urgent first (state, then severity), then as configured
    rows: tuple[SloRow, ...] = ()
    missing: str | None = None


@dataclass(frozen=True)
class BudgetPoint:
    at: datetime
    budget_remaining: float | None
    compliance: float | None
    burning: tuple[str, ...]


@dataclass(frozen=True)
class SloBudget:
    slo: str
    objective: float
    window: str
    #: one per evaluated instant in the report's window, oldest first
    points: tuple[BudgetPoint, ...] = ()
    #: the newest evaluation's, one per configured pair (empty: never evaluated)
    burn_rates: tuple[BurnRate, ...] = ()
    missing: str | None = None


@dataclass(frozen=True)
class BudgetSection:
    slos: tuple[SloBudget, ...] = ()
    missing: str | None = None


@dataclass(frozen=True)
class FreshnessDay:
    day: date
    status: FreshnessStatus
    #: the day's worst age (None: no evaluation that day, or the table was missing)
    max_age_hours: float | None
    evaluations: int


@dataclass(frozen=True)
class FreshnessRow:
    table: str
    warn_after_hours: float
    error_after_hours: float
    #: at the newest evaluation: the row's place in the table, late tables first
    status: FreshnessStatus
    #: today's (UTC) worst: the next key of the order (late earlier today, loaded since)
    today: FreshnessStatus
    #: at the newest evaluation (None: not measured, or the table was missing)
    age_hours: float | None
    measured_at: datetime | None
    days: tuple[FreshnessDay, ...]


@dataclass(frozen=True)
class FreshnessSection:
    slos: tuple[str, ...] = ()
    tables: tuple[FreshnessRow, ...] = ()
    missing: str | None = None


@dataclass(frozen=True)
class BackupNight:
    run_id: str
    instant: datetime
    #: complete | partial | failed | in progress | missed (no run of a night that was due)
    status: str
    tables: int
    failed_tables: int
    rows: int
    bytes: int
    files: int
    #: from the run's start (its claim) to its manifest (None: still in progress)
    duration_seconds: float | None
    verification: Verification
    #: tables whose export was checked against the source's rows and files and held
    verified_tables: int
    #: tables whose check failed
    verification_failures: tuple[str, ...]
    #: what an operator should know: a missed night's rejected trigger, a stalled run,
    #: the failed tables' errors
    note: str | None = None


@dataclass(frozen=True)
class DrillSummary:
    date: date
    run_id: str | None
    finished_at: datetime
    age_hours: float
    passed: bool
    error: str | None
    sample_tables: int
    sample_bytes: int
    sample_seconds: float
    throughput_bytes_per_second: float | None
    full_backup_bytes: int | None
    full_backup_tables: int
    projected_hours: float | None
    #: the recovery-time SLO's bound (None: no such SLO configured)
    max_hours: float | None
    #: projected_hours < max_hours (None: either is unknown)
    within_max_hours: bool | None
    model: str | None


@dataclass(frozen=True)
class DrillSection:
    drill: DrillSummary | None = None
    missing: str | None = None


@dataclass(frozen=True)
class BackupsSection:
    #: the runs of the window, newest first
    nights: tuple[BackupNight, ...] = ()
    missing: str | None = None
    drill: DrillSection = field(default_factory=DrillSection)


@dataclass(frozen=True)
class PhaseDay:
    day: date
    runs: int
    succeeded: int
    ratio: float | None
    status: str | None  # pass | warn | fail against health.pipeline's warn/fail_below


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    runs: int
    succeeded: int
    ratio: float | None
    days: tuple[PhaseDay, ...]


@dataclass(frozen=True)
class PhasesSection:
    slo: str | None = None
    warn_below: float | None = None
    fail_below: float | None = None
    #: the worst ratio over the window first
    phases: tuple[PhaseRow, ...] = ()
    #: every phase together, per day
    overall: tuple[PhaseDay, ...] = ()
    missing: str | None = None


@dataclass(frozen=True)
class Incident:
    """One alert episode (fingerprint and start) as the router's ledger records it."""

    fingerprint: str
    alertname: str
    source: str
    severity: str
    opened: datetime
    #: the first notification a receiver accepted (None: none yet)
    notified: datetime | None
    #: when the problem ended, from the resolution's record (None: still open)
    resolved: datetime | None
    detection_seconds: float | None
    status: IncidentStatus
    receivers: tuple[str, ...]
    failed_receivers: tuple[str, ...]
    suppressed_receivers: tuple[str, ...]


@dataclass(frozen=True)
class IncidentsSection:
    #: open ones first, then the newest first
    incidents: tuple[Incident, ...] = ()
    missing: str | None = None


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    days: int
    #: the window is (since, generated_at]; per-day sections cover its UTC days
    since: datetime
    backend: str
    slos: SlosSection
    budget: BudgetSection
    freshness: FreshnessSection
    backups: BackupsSection
    phases: PhasesSection
    incidents: IncidentsSection

    def missing(self) -> dict[str, str]:
        """Each section (and the drill) whose data is missing, and why."""
        found = {
            name: getattr(self, name).missing
            for name in ("slos", "budget", "freshness", "backups", "phases", "incidents")
        }
        found["drill"] = self.backups.drill.missing
        return {k: v for k, v in found.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON types only: instants and days as ISO 8601, tuples as lists."""
        converted = _jsonable(asdict(self))
        assert isinstance(converted, dict)
        return converted

    def to_json(self) -> str:
        """Compact JSON, safe to inline in an HTML ``<script>`` element (``<``, ``>`` and
        ``&`` are escaped as ``\\u003c``..., which JSON readers decode unchanged)."""
        text = json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- gathering --------------------------------------------------------------------------
def gather(settings: Settings, adapters: Adapters, *, now: datetime, days: int) -> ReportData:
    """Every section of the report over the ``days`` days up to ``now`` (reads only)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise BadInput("now: expected a timezone-aware instant")
    if not 1 <= days <= MAX_DAYS:
        raise BadInput(f"days: expected 1 to {MAX_DAYS}, got {days}")
    now = now.astimezone(UTC)
    since = now - timedelta(days=days)
    first_day = now.date() - timedelta(days=days - 1)
    window_days = tuple(first_day + timedelta(days=i) for i in range(days))
    sources = _Sources(settings, adapters, now, since)
    history_what = f"the SLO evaluations history ({settings.slos.history.ref})"
    backups_what = f"the backup runs in gs://{settings.backups.bucket}/{settings.backups.prefix}/"
    return ReportData(
        generated_at=now,
        days=days,
        since=since,
        backend=adapters.backend,
        slos=_section(history_what, lambda: _slos(sources), lambda why: SlosSection(missing=why)),
        budget=_section(
            history_what, lambda: _budget(sources, days), lambda why: BudgetSection(missing=why)
        ),
        freshness=_section(
            history_what,
            lambda: _freshness(sources, window_days),
            lambda why: FreshnessSection(missing=why),
        ),
        backups=_section(
            backups_what,
            lambda: _backups(sources, days),
            lambda why: BackupsSection(missing=why, drill=_drill_section(sources)),
        ),
        phases=_section(
            history_what,
            lambda: _phases(sources, window_days),
            lambda why: PhasesSection(missing=why),
        ),
        incidents=_section(
            f"the alert router's ledger (gs://{settings.backups.bucket}/_opsuite/alerts/ledger/)",
            lambda: _incidents(sources),
            lambda why: IncidentsSection(missing=why),
        ),
    )


def _section(what: str, build: Callable[[], S], failed: Callable[[str], S]) -> S:
    """``build()``; a source that can't be read (or holds an unreadable record) is this
    section's ``missing``, never the report's failure."""
    try:
        return build()
    except (OpsuiteError, ValidationError) as exc:
        logger.warning(
            "report section not read",
            extra={"fields": {"source": what, "error_type": type(exc).__name__}},
        )
        reason = str(exc).splitlines()[0][:300] if str(exc) else "no detail"
        return failed(
            f"could not read {what}: {type(exc).__name__}: {reason}. "
            "The other sections do not depend on it; run the report again once it answers."
        )


class _Once(Generic[T]):
    """A read made at most once, its result or its error shared by the sections."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._value: list[T] = []
        self._error: OpsuiteError | None = None

    def get(self) -> T:
        if not self._value and self._error is None:
            try:
                self._value.append(self._read())
            except OpsuiteError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value[0]


class _Sources:
    """The reads several sections share: the history's rows and the current status."""

    def __init__(self, settings: Settings, adapters: Adapters, now: datetime, since: datetime):
        self.settings = settings
        self.adapters = adapters
        self.now = now
        self.since = since
        self._read = _Once(self._read_history)
        self._rows = _Once(self._read_rows)
        self._status = _Once(self._read_status)

    def history(self) -> EvaluationHistory:
        if self.adapters.history is None:
            raise ConfigError(f"the {self.adapters.backend} backend has no SLO history table")
        return self.adapters.history

    def _read_history(self) -> list[EvaluationRecord]:
        """One read for every section: the report's window and, before it, as far back as
        the SLOs' status needs (their longest window)."""
        names = [s.name for s in self.settings.slos.objectives]
        since = min(self.since, status_since(self.settings, self.now))
        return self.history().read(names, since, self.now + MAX_FUTURE)

    def _read_rows(self) -> dict[str, list[EvaluationRecord]]:
        by_slo: dict[str, list[EvaluationRecord]] = {}
        for row in self._read.get():
            if self.since < row.at <= self.now:
                by_slo.setdefault(row.slo, []).append(row)
        return {name: latest_per_instant(own) for name, own in by_slo.items()}

    def _read_status(self) -> list[SloStatus]:
        # as `opsuite sla status` shows it (current_status): the same rows, the same range
        since = status_since(self.settings, self.now)
        return status_of(self.settings, [r for r in self._read.get() if r.at > since])

    def rows(self, slo: str) -> list[EvaluationRecord]:
        """``slo``'s rows in (since, now], one per instant, oldest first."""
        return self._rows.get().get(slo, [])

    def status(self) -> list[SloStatus]:
        return self._status.get()


def _no_slos() -> str:
    return (
        "no SLOs are configured: add slos.objectives to the configuration "
        "(config/opsuite.example.yaml has the pipeline's six)"
    )


# -- 1. the SLOs now --------------------------------------------------------------------
def _label(a: Assessment | None) -> SloLabel:
    if a is None:
        return "not evaluated"
    r = a.record
    if r.breaching:
        return "breaching"
    if r.exhausted:
        return "exhausted"
    if r.burning:
        return "burning"
    return "unknown" if r.good is None else "ok"


def _window(slo: Slo) -> str:
    return duration_label(timedelta(seconds=slo.window.seconds))


def _slo_row(status: SloStatus) -> SloRow:
    slo, a = status.slo, status.assessment
    common: dict[str, Any] = {
        "name": slo.name,
        "description": slo.description,
        "objective": slo.objective,
        "severity": slo.severity,
        "window": _window(slo),
        "kind": slo.sli.kind,
        "runbook": slo.runbook,
        "state": _label(a),
    }
    if a is None:
        return SloRow(
            **common,
            evaluated_at=None,
            sli=None,
            good=None,
            compliance=None,
            budget_remaining=None,
            budget_remaining_minutes=None,
            coverage=None,
            breaching=False,
            exhausted=False,
            burning=(),
        )
    r = a.record
    return SloRow(
        **common,
        evaluated_at=r.at,
        sli=r.value,
        good=r.good,
        compliance=r.compliance,
        budget_remaining=r.budget_remaining,
        # as `opsuite sla status --json` shows them
        budget_remaining_minutes=a.shown_budget_minutes,
        coverage=a.shown_coverage,
        breaching=r.breaching,
        exhausted=r.exhausted,
        burning=tuple(r.burning),
    )


def _slos(sources: _Sources) -> SlosSection:
    if not sources.settings.slos.objectives:
        return SlosSection(missing=_no_slos())
    statuses = sources.status()
    if all(s.assessment is None for s in statuses):
        return SlosSection(missing=f"no SLO evaluations yet: {_HOW_TO_EVALUATE}")
    rows = [_slo_row(s) for s in statuses]
    rows.sort(key=lambda r: (_SLO_URGENCY[r.state], r.severity))  # stable: config order
    return SlosSection(rows=tuple(rows))


# -- 2. error budget and burn rates ------------------------------------------------------
def _burn_rates(settings: Settings, a: Assessment) -> tuple[BurnRate, ...]:
    # current_status assesses with burn_windows(settings.slos.burn_rates): same order
    alerts = settings.slos.burn_rates
    out = []
    for burn, alert in zip(a.burns, alerts, strict=True):
        out.append(
            BurnRate(
                pair=pair_label(burn.window),
                long_window=duration_label(burn.window.long),
                short_window=duration_label(burn.window.short),
                threshold=burn.window.rate,
                long_rate=burn.long_rate,
                short_rate=burn.short_rate,
                firing=burn.firing,
                notify=alert.notify,
            )
        )
    return tuple(out)


def _budget(sources: _Sources, days: int) -> BudgetSection:
    settings = sources.settings
    if not settings.slos.objectives:
        return BudgetSection(missing=_no_slos())
    statuses = {s.slo.name: s for s in sources.status()}
    out = []
    for slo in settings.slos.objectives:
        rows = sources.rows(slo.name)
        a = statuses[slo.name].assessment
        points = tuple(
            BudgetPoint(r.at, r.budget_remaining, r.compliance, tuple(r.burning)) for r in rows
        )
        missing = None
        if not points:
            missing = (
                f"no evaluations of {slo.name} in the last {days} days: {_HOW_TO_EVALUATE}"
                + (
                    f" (a {slo.sli.kind} SLI can't be back-filled: only live evaluations fill it)"
                    if slo.sli.kind not in BACKFILL_KINDS
                    else ""
                )
            )
        out.append(
            SloBudget(
                slo=slo.name,
                objective=slo.objective,
                window=_window(slo),
                points=points,
                burn_rates=() if a is None or not a.measured else _burn_rates(settings, a),
                missing=missing,
            )
        )
    if all(b.missing for b in out):
        return BudgetSection(
            missing=f"no SLO evaluations in the last {days} days: {_HOW_TO_EVALUATE}"
        )
    return BudgetSection(slos=tuple(out))


# -- 3. freshness -----------------------------------------------------------------------
def _thresholds(settings: Settings, table: str) -> tuple[float, float]:
    """(warn, error) seconds of ``table``: its health.freshness override, else the default."""
    health = settings.health.freshness
    own = next((t for t in health.tables if t.table == table), None)
    warn = (own.warn_after if own and own.warn_after else health.warn_after).seconds
    error = (own.error_after if own and own.error_after else health.error_after).seconds
    return float(warn), float(error)


def _grade(age_hours: float | None, warn: float, error: float) -> FreshnessStatus:
    if age_hours is None:  # measured and absent: the table (or its dataset) is missing
        return "error"
    return _FRESHNESS_OF[freshness_status(age_hours * 3600, warn, error)]


def _freshness(sources: _Sources, window_days: Sequence[date]) -> FreshnessSection:
    settings = sources.settings
    slos = [s for s in settings.slos.objectives if isinstance(s.sli, FreshnessSli)]
    if not slos:
        return FreshnessSection(
            missing="no freshness SLO is configured (slos.objectives with sli.kind: freshness): "
            "the report draws freshness from its evaluations"
        )
    configured = freshness_names(settings)
    tables: list[str] = []
    for slo in slos:
        assert isinstance(slo.sli, FreshnessSli)
        tables += [t for t in freshness_tables(slo.sli, configured) if t not in tables]
    # per table: (instant, age) of every evaluation that measured it
    ages: dict[str, list[tuple[datetime, float | None]]] = {t: [] for t in tables}
    for slo in slos:
        for row in sources.rows(slo.name):
            measured = parse_detail(row).get("ages_hours")
            if not isinstance(measured, dict):
                continue  # an unknown evaluation (the warehouse could not be read)
            for table, age in measured.items():
                if table in ages:
                    ages[table].append(
                        (row.at, float(age) if isinstance(age, int | float) else None)
                    )
    if not any(ages.values()):
        names = ", ".join(s.name for s in slos)
        return FreshnessSection(
            slos=tuple(s.name for s in slos),
            missing=f"no evaluations of {names} in the window: {_HOW_TO_EVALUATE}; the "
            "back-fill reads each table's health.freshness.tables[].loaded_at column",
        )
    rows = []
    for table in tables:
        warn, error = _thresholds(settings, table)
        seen = sorted(ages[table], key=lambda m: m[0])
        cells = []
        for day in window_days:
            that_day = [age for at, age in seen if at.date() == day]
            if not that_day:
                cells.append(FreshnessDay(day, "no data", None, 0))
                continue
            worst = None if None in that_day else max(a for a in that_day if a is not None)
            cells.append(FreshnessDay(day, _grade(worst, warn, error), worst, len(that_day)))
        newest = seen[-1] if seen else None
        rows.append(
            FreshnessRow(
                table=table,
                warn_after_hours=warn / 3600,
                error_after_hours=error / 3600,
                status=_grade(newest[1], warn, error) if newest else "no data",
                today=cells[-1].status,  # the window ends on the report's day
                age_hours=newest[1] if newest else None,
                measured_at=newest[0] if newest else None,
                days=tuple(cells),
            )
        )
    rows.sort(
        key=lambda r: (
            _FRESHNESS_URGENCY[r.status],
            _FRESHNESS_URGENCY[r.today],
            -(r.age_hours if r.age_hours is not None else math.inf),
            r.table,
        )
    )
    return FreshnessSection(slos=tuple(s.name for s in slos), tables=tuple(rows))


# -- 4. backups and the newest drill -----------------------------------------------------


def _backups(sources: _Sources, days: int) -> BackupsSection:
    from shared.services.inventory import read_runs
    from shared.services.trigger_rejections import rejections_since

    b = sources.settings.backups
    store = sources.adapters.store
    # as they stood at ``now``: a record made later (a back-fill of an earlier night, a
    # run started since) is not in a report of that moment
    runs = [
        (run, record)
        for run, record in read_runs(store, b.bucket, b.prefix)
        if as_utc(record.created_at) <= sources.now
    ]
    nights = []
    for run, record in runs:
        instant = parse_utc_instant(run.instant)
        if instant is None or instant > sources.now:
            continue
        if isinstance(record, Manifest) and as_utc(record.completed_at) > sources.now:
            # finished after the report's instant: then, it was still in progress
            run = replace(run, status="in progress", failed=0, rows=0, bytes=0)
            record = RunClaim(
                run_id=record.run_id, date=record.date, instant=record.instant,
                tables=[t.source for t in record.tables], created_at=record.created_at,
                backend=record.backend,
            )  # fmt: skip
        # a run still in progress is shown however old it is: a stalled one is a problem
        # now, not history
        if instant > sources.since or isinstance(record, RunClaim):
            nights.append(_night(sources, run, record, instant))
    drill = _drill_section(sources)
    rejected = {
        day: r
        for day, r in rejections_since(store, b.bucket, sources.since.date()).items()
        if as_utc(r.rejected_at) <= sources.now
    }
    if not runs and not rejected:
        return BackupsSection(
            missing=f"no backup runs in gs://{b.bucket}/{b.prefix}/: run `opsuite backup` "
            f"(the nightly run is scheduled at {b.schedule_utc} UTC)",
            drill=drill,
        )
    # a night without its nightly run (``YYYYMMDD``; a subset run doesn't stand in for
    # it), once its run is an hour overdue: from the first night the backup ran or its
    # trigger was rejected (before that, the suite was not deployed)
    nightly = {r.run_id for r, _ in runs}
    dates = [d for d in (_run_date(r.run_id) for r, _ in runs) if d is not None]
    first = min([*dates, *rejected], default=sources.now.date())
    hour, minute = (int(x) for x in b.schedule_utc.split(":"))
    day = max(first, sources.since.date())
    while day <= sources.now.date():
        due = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        if f"{day:%Y%m%d}" not in nightly and sources.since < due and due + _DUE <= sources.now:
            nights.append(_missed(day, due, rejected.get(day)))
        day += timedelta(days=1)
    nights.sort(key=lambda n: (n.instant, n.run_id), reverse=True)
    if not nights:
        return BackupsSection(
            missing=f"no backup runs in the last {days} days in gs://{b.bucket}/{b.prefix}/: "
            f"run `opsuite backup` (the nightly run is scheduled at {b.schedule_utc} UTC)",
            drill=drill,
        )
    return BackupsSection(nights=tuple(nights), drill=drill)


#: a night's run is missed once this long past its scheduled time without a claim
_DUE = timedelta(hours=1)


def _run_date(run_id: str) -> date | None:
    try:
        return datetime.strptime(run_id[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _missed(day: date, due: datetime, rejection: TriggerRejection | None) -> BackupNight:
    note = f"no run of {day} (scheduled {due:%H:%M} UTC)"
    if rejection is not None:
        note += (
            f": its trigger was rejected at {rejection.rejected_at:%H:%M} UTC "
            f"({rejection.error_type}: {rejection.error})"[:400]
        )
    return BackupNight(
        run_id=f"{day:%Y%m%d}",
        instant=due,
        status="missed",
        tables=0,
        failed_tables=0,
        rows=0,
        bytes=0,
        files=0,
        duration_seconds=None,
        verification="not verified",
        verified_tables=0,
        verification_failures=(),
        note=note,
    )


def _night(
    sources: _Sources, run: RunSummary, record: Manifest | RunClaim, instant: datetime
) -> BackupNight:
    files, duration, verified, failures = 0, None, 0, []
    verification: Verification = "not verified"
    note = None
    if isinstance(record, Manifest):
        files = sum(len(t.files) for t in record.tables)
        duration = (as_utc(record.completed_at) - as_utc(record.created_at)).total_seconds()
        complete = [t for t in record.tables if t.status == "complete"]
        checked = [t for t in complete if t.verification is not None]
        verified = sum(1 for t in checked if t.verification and t.verification.ok)
        failures = [t.source for t in checked if t.verification and not t.verification.ok]
        if failures:
            verification = "failed"
        elif complete and verified == len(complete):
            verification = "verified"
        elif verified:
            verification = "partly verified"
        if record.failed:
            note = "; ".join(f"{t.source}: {t.error or t.status}" for t in record.failed)[:400]
    else:
        running = sources.now - as_utc(record.created_at)
        if running > IN_PROGRESS_WARN_AFTER:
            note = (
                f"stalled: in progress for {running.total_seconds() / 3600:,.1f} h since its "
                f"claim (the health check warns after {IN_PROGRESS_WARN_AFTER.seconds // 3600} "
                "h); `opsuite backup` resumes it"
            )
    return BackupNight(
        run_id=run.run_id,
        instant=instant,
        status=run.status,
        tables=run.tables,
        failed_tables=run.failed,
        rows=run.rows,
        bytes=run.bytes,
        files=files,
        duration_seconds=duration,
        verification=verification,
        verified_tables=verified,
        verification_failures=tuple(failures),
        note=note,
    )


def _drill_section(sources: _Sources) -> DrillSection:
    return _section(
        "the restore drill records",
        lambda: _drill(sources),
        lambda why: DrillSection(missing=why),
    )


def _drill(sources: _Sources) -> DrillSection:
    from shared.services.drill import newest_drill

    b = sources.settings.backups
    record = newest_drill(sources.adapters.store, b.bucket, b.prefix, before=sources.now)
    if record is None:
        return DrillSection(
            missing="no restore drill recorded: run `opsuite drill` (it restores a sample of "
            "the newest complete backup and projects a full restore's time)"
        )
    bound = next(
        (
            s.sli.max_hours
            for s in sources.settings.slos.objectives
            if isinstance(s.sli, RecoveryTimeSli)
        ),
        None,
    )
    projected = record.projected_hours
    within = None if bound is None or projected is None else projected < bound
    return DrillSection(
        drill=DrillSummary(
            date=record.date,
            run_id=record.run_id,
            finished_at=record.finished_at,
            age_hours=round((sources.now - as_utc(record.finished_at)).total_seconds() / 3600, 3),
            passed=record.passed,
            error=record.error,
            sample_tables=sum(1 for t in record.tables if t.ok),
            sample_bytes=record.totals.bytes,
            sample_seconds=record.totals.seconds,
            throughput_bytes_per_second=record.throughput_bytes_per_second,
            full_backup_bytes=record.full_backup_bytes,
            full_backup_tables=record.full_backup_tables,
            projected_hours=projected,
            max_hours=bound,
            within_max_hours=within,
            model=record.model,
        )
    )


# -- 5. pipeline phases -----------------------------------------------------------------
def _phase_day(
    day: date, counts: tuple[int, int] | None, warn: float | None, fail: float | None
) -> PhaseDay:
    succeeded, runs = counts or (0, 0)
    ratio = succeeded / runs if runs else None
    status = None
    if ratio is not None and warn is not None and fail is not None:
        status = ratio_status(ratio, warn, fail)
    return PhaseDay(day, runs, succeeded, ratio, status)


def _phases(sources: _Sources, window_days: Sequence[date]) -> PhasesSection:
    settings = sources.settings
    ratio_slos = [s for s in settings.slos.objectives if isinstance(s.sli, RatioSli)]
    if not ratio_slos:
        return PhasesSection(
            missing="no phase success SLO is configured (slos.objectives with sli.kind: ratio "
            "over health.pipeline's run history): the report counts runs from its evaluations"
        )

    def breadth(s: Slo) -> tuple[bool, int, int]:
        assert isinstance(s.sli, RatioSli)
        return (not s.sli.phases, len(s.sli.phases), s.window.seconds)

    # the SLO that counts the most phases (no filter: every phase)
    slo = max(ratio_slos, key=breadth)
    pipeline = settings.health.pipeline
    warn = pipeline.warn_below if pipeline else None
    fail = pipeline.fail_below if pipeline else None
    per_phase: dict[str, dict[date, list[int]]] = {}
    known = set(window_days)
    evaluated = False
    for row in sources.rows(slo.name):
        phases = parse_detail(row).get("phases")
        if not isinstance(phases, dict):
            continue  # an unknown evaluation: the run history was not read
        evaluated = True
        # a row counts the runs of its interval (since, at]: they belong to the day the
        # interval ends in (a run at 23:50 is in the row of 00:00, and in its own day)
        day = (row.at - timedelta(microseconds=1)).date()
        if day not in known:
            continue
        for phase, counts in phases.items():
            if isinstance(counts, list) and len(counts) == 2:
                cell = per_phase.setdefault(str(phase), {}).setdefault(day, [0, 0])
                cell[0] += int(counts[0])
                cell[1] += int(counts[1])
    if not evaluated:
        return PhasesSection(
            slo=slo.name,
            warn_below=warn,
            fail_below=fail,
            missing=f"no evaluations of {slo.name} in the window: {_HOW_TO_EVALUATE}",
        )
    if not per_phase:
        return PhasesSection(
            slo=slo.name,
            warn_below=warn,
            fail_below=fail,
            missing=f"{slo.name} was evaluated but counted no processor runs in the window: "
            "the pipeline ran nothing (or its run history is not where health.pipeline says)",
        )
    rows = []
    for phase, by_day in per_phase.items():
        good = sum(c[0] for c in by_day.values())
        runs = sum(c[1] for c in by_day.values())
        cells = tuple(
            _phase_day(d, (by_day[d][0], by_day[d][1]) if d in by_day else None, warn, fail)
            for d in window_days
        )
        rows.append(PhaseRow(phase, runs, good, good / runs if runs else None, cells))
    rows.sort(key=lambda r: (r.ratio if r.ratio is not None else math.inf, r.phase))
    overall = []
    for d in window_days:
        good = sum(by_day[d][0] for by_day in per_phase.values() if d in by_day)
        runs = sum(by_day[d][1] for by_day in per_phase.values() if d in by_day)
        overall.append(_phase_day(d, (good, runs), warn, fail))
    return PhasesSection(
        slo=slo.name,
        warn_below=warn,
        fail_below=fail,
        phases=tuple(rows),
        overall=tuple(overall),
    )


# -- 6. incidents -----------------------------------------------------------------------
def _router_deps(sources: _Sources) -> Any:
    from shared.services.alert_router import RouterDeps

    # notifiers that don't exist: the report reads the ledger, it never sends
    return RouterDeps(
        alerting=sources.settings.alerting,
        store=sources.adapters.store,
        bucket=sources.settings.backups.bucket,
        notifiers=lambda _receiver: (),
    )


def _episodes(records: Iterable[dict[str, Any]]) -> list[Incident]:
    grouped: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
    for record in records:
        fingerprint, opened = record.get("fingerprint"), parse_utc_instant(record.get("starts_at"))
        if isinstance(fingerprint, str) and opened is not None:
            grouped.setdefault((fingerprint, opened), []).append(record)
    out = []
    for (fingerprint, opened), own in grouped.items():
        firing = [r for r in own if r.get("alert_status") == "firing"]
        closing = [r for r in own if r.get("alert_status") == "resolved"]
        told = [r for r in firing if r.get("status") == "firing"]
        notified = [
            t for t in (parse_utc_instant(r.get("notified_at")) for r in told) if t is not None
        ]
        detection = [
            float(r["detection_seconds"])
            for r in told
            if isinstance(r.get("detection_seconds"), int | float)
        ]
        ends = [
            t
            for t in (
                parse_utc_instant(r.get("ends_at")) or parse_utc_instant(r.get("time"))
                for r in closing
            )
            if t is not None
        ]
        receivers = sorted({str(r.get("receiver")) for r in told})
        newest = max(own, key=lambda r: str(r.get("time") or ""))
        out.append(
            Incident(
                fingerprint=fingerprint,
                alertname=str(newest.get("alertname") or ""),
                source=str(newest.get("source") or ""),
                severity=str(newest.get("severity") or ""),
                opened=opened,
                notified=min(notified, default=None),
                resolved=min(ends, default=None),
                detection_seconds=min(detection, default=None),
                status="resolved" if closing else "open",
                receivers=tuple(receivers),
                failed_receivers=_others(firing, "failed", receivers),
                suppressed_receivers=_others(firing, "suppressed", receivers),
            )
        )
    out.sort(key=lambda i: i.opened, reverse=True)
    out.sort(key=lambda i: i.severity)  # stable: P0 before P3, each newest first
    out.sort(key=lambda i: i.status != "open")  # open ones first
    return out


def _others(records: Iterable[dict[str, Any]], status: str, told: Sequence[str]) -> tuple[str, ...]:
    """The receivers with a ``status`` record for the episode that were never told."""
    return tuple(
        sorted({str(r.get("receiver")) for r in records if r.get("status") == status} - set(told))
    )


def _incidents(sources: _Sources) -> IncidentsSection:
    from shared.services.alert_router import ledger_records

    deps = _router_deps(sources)
    records: list[dict[str, Any]] = []
    # the ledger is filed by the episode's start day: one listing per day of the window
    day, last = sources.since.date(), sources.now.date()
    while day <= last:
        records += ledger_records(deps, f"{day:%Y%m%d}/")
        day += timedelta(days=1)
    incidents = [
        i for i in _episodes(records) if sources.since < i.opened <= sources.now + MAX_FUTURE
    ]
    if not incidents:
        return IncidentsSection(
            missing=f"no alert episodes in the router's ledger for the window (gs://"
            f"{sources.settings.backups.bucket}/_opsuite/alerts/ledger/): nothing was routed, "
            "or the alert router is not deployed; `opsuite alerts log` shows the ledger"
        )
    return IncidentsSection(incidents=tuple(incidents))


__all__ = [
    "BackupNight",
    "BackupsSection",
    "BudgetPoint",
    "BudgetSection",
    "BurnRate",
    "DrillSection",
    "DrillSummary",
    "FreshnessDay",
    "FreshnessRow",
    "FreshnessSection",
    "Incident",
    "IncidentsSection",
    "PhaseDay",
    "PhaseRow",
    "PhasesSection",
    "ReportData",
    "SloBudget",
    "SloRow",
    "SlosSection",
    "gather",
]
