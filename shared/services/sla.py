"""The SLA evaluator: evaluate the configured SLOs at one instant, record, write, announce.

One evaluation (``evaluate``), for an instant floored to the cadence:
1. read the SLOs' history for their longest window (one query; the rows after the
   instant too, to recognise a late delivery);
2. SLOs already recorded at the instant are *replayed* from their rows (a redelivery:
   same state, same points, same events); the others are computed from inputs gathered
   with as few warehouse calls as possible (:func:`gather`: the health checks' metadata
   calls for freshness, availability and the newest backup; one query for the run
   history; one per threshold column; the newest drill record);
3. the new rows are appended in one load job whose id comes from the instant and the
   SLO set (a redelivery attaches to it instead of appending twice);
4. the metric points are written (⌈series / 200⌉ calls);
5. each state change is published once to the alerts topic (:mod:`shared.services.once`).
Inputs that can't be read make their SLIs unknown (recorded, charged to the budget,
never good); outputs (history, metrics, events) are retried inside the deadline and
then raise TransientError, so the delivery comes back and resumes from what is done.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.composition import Adapters
from shared.config import (
    AvailabilitySli,
    DetectionSli,
    FreshnessSli,
    RatioSli,
    RecoveryTimeSli,
    Settings,
    Slo,
    ThresholdSli,
)
from shared.errors import BadInput, ConfigError, NotFound, OpsuiteError, PermanentError
from shared.identifiers import TableRef
from shared.metrics import PREFIX
from shared.models import (
    DailyAggregate,
    DailyAggregateQuery,
    EvaluationRecord,
    MetricPoint,
    RunBucket,
    RunBucketQuery,
    WriteReport,
)
from shared.ports import EvaluationHistory, MetricWriter, ObjectStore, Publisher, Warehouse
from shared.retry import Clock, retry_transient
from shared.services.detection import Detection, detections
from shared.services.health import (
    HealthDeps,
    HealthRequest,
    check_could_not_run,
    run_checks,
    worst,
)
from shared.services.once import new_nonce, publish_once
from shared.services.sla_assess import (
    Assessment,
    SloState,
    Transition,
    assess,
    burn_windows,
    duration_label,
    latest_per_instant,
    pair_label,
    ratio_since,
    slo_transitions,
)
from shared.services.sla_budget import floor_to_cadence
from shared.services.sla_sli import (
    AggregateKey,
    CheckState,
    DrillSummary,
    Inputs,
    Unavailable,
    compute,
    threshold_since,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Monitoring refuses end times more than 5 min ahead: so do we, for ``at``
MAX_FUTURE = timedelta(minutes=5)
#: how long one input may be retried before its SLIs are recorded unknown
INPUT_RETRY_SECONDS = 20.0
#: the whole evaluation's budget for retrying outputs (below the 540 s function limit)
DEFAULT_DEADLINE_SECONDS = 300.0
EVENTS_PREFIX = "_opsuite/slo/events"
#: per SLO, the state the alerts topic was last told (what the next changes are from)
ANNOUNCED_PREFIX = "_opsuite/slo/announced"


@dataclass(frozen=True)
class SlaRequest:
    at: datetime | None = None
    slos: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass
class SlaDeps:
    settings: Settings
    warehouse: Warehouse
    store: ObjectStore
    publisher: Publisher
    metrics: MetricWriter
    history: EvaluationHistory
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    clock: Clock = field(default_factory=Clock)
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    input_retry_seconds: float = INPUT_RETRY_SECONDS
    #: ``clock.monotonic()`` when the trigger arrived: the deadline counts from there
    started: float | None = None

    @classmethod
    def of(cls, settings: Settings, adapters: Adapters, *, started: float | None = None) -> SlaDeps:
        """From the composition point's adapters; ConfigError if a backend lacks one."""
        if adapters.metrics is None or adapters.history is None:
            raise ConfigError("the SLA evaluator needs a metric writer and a history table")
        budget = settings.slos.time_budget_seconds
        return cls(
            settings=settings,
            warehouse=adapters.warehouse,
            store=adapters.store,
            publisher=adapters.publisher,
            metrics=adapters.metrics,
            history=adapters.history,
            deadline_seconds=budget,
            input_retry_seconds=min(INPUT_RETRY_SECONDS, budget / 5),
            started=started,
        )


@dataclass(frozen=True)
class PublishedEvent:
    transition: Transition
    message_id: str
    #: False: an earlier delivery had published it
    now: bool


@dataclass(frozen=True)
class EvaluationOutcome:
    at: datetime
    assessments: list[Assessment]
    #: SLOs whose row for ``at`` already existed (replayed, not recomputed)
    replayed: tuple[str, ...]
    #: rows after ``at`` exist: a late delivery (recorded if missing; no points, no events)
    late: bool
    appended: bool
    metrics: WriteReport | None
    events: list[PublishedEvent]
    dry_run: bool
    points: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def breaching(self) -> list[str]:
        return [a.slo.name for a in self.assessments if a.record.breaching]


def cadence_of(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.slos.cadence_minutes)


def evaluation_instant(settings: Settings, moment: datetime) -> datetime:
    return floor_to_cadence(moment, cadence_of(settings))


def history_job_id(at: datetime, slos: Sequence[str]) -> str:
    """Deterministic from the instant and the SLO set (BigQuery job ids: [A-Za-z0-9_-])."""
    digest = hashlib.sha256(",".join(sorted(slos)).encode()).hexdigest()[:12]
    return f"opsuite_slo_{at.astimezone(UTC):%Y%m%dT%H%M%SZ}_{digest}"


def select_slos(settings: Settings, names: Sequence[str]) -> list[Slo]:
    if not settings.slos.objectives:
        raise BadInput("no SLOs are configured (slos.objectives in the configuration)")
    return settings.slos.named(names) if names else list(settings.slos.objectives)


# -- gathering the inputs ---------------------------------------------------------------
def freshness_names(settings: Settings) -> list[str]:
    """The tables a freshness SLI without its own list measures."""
    configured = [t.table for t in settings.health.freshness.tables]
    return configured or list(settings.backups.tables)


def _soft(deps: SlaDeps, call: Callable[[], T], what: str) -> T | Unavailable:
    """An input: retried briefly, then Unavailable (its SLIs become unknown)."""
    try:
        return retry_transient(
            call, deadline=deps.clock.monotonic() + deps.input_retry_seconds, clock=deps.clock
        )
    except OpsuiteError as exc:
        logger.warning(
            "SLI input unavailable",
            extra={"fields": {"input": what, "error_type": type(exc).__name__, "error": str(exc)}},
        )
        return Unavailable(f"{what}: {type(exc).__name__}: {exc}"[:500])


@dataclass(frozen=True)
class Gathered:
    inputs: Inputs
    #: hours since the newest complete backup's instant (None: none / not known)
    backup_hours: float | None = None


def gather(
    deps: SlaDeps, slos: Sequence[Slo], at: datetime, since: dict[str, datetime]
) -> Gathered:
    """What ``slos`` need at ``at``; ``since``: each ratio SLO's interval start."""
    settings = deps.settings
    kinds = {s.sli.kind for s in slos}
    checks_needed: set[str] = {"backups"}
    for slo in slos:
        if isinstance(slo.sli, AvailabilitySli):
            checks_needed.update(slo.sli.checks)
    if "freshness" in kinds:
        checks_needed.add("freshness")
    mode = "full" if "pipeline" in checks_needed else "quick"
    order = [c for c in ("freshness", "backups", "pipeline", "dependencies") if c in checks_needed]
    results = run_checks(
        HealthRequest(mode=mode, checks=tuple(order)),  # type: ignore[arg-type]
        HealthDeps(settings, deps.warehouse, deps.store, now=lambda: at),
    )
    states: dict[str, CheckState] = {}
    for name, entries in results.items():
        states[name] = "error" if check_could_not_run(entries) else worst(e.status for e in entries)

    freshness: dict[str, float | None] | Unavailable | None = None
    if "freshness" in results:
        entries = results["freshness"]
        if check_could_not_run(entries):
            freshness = Unavailable(entries[0].output or "the freshness check failed")
        else:
            freshness = {}
            for entry in entries:
                seconds = entry.observed_value
                freshness[entry.component_id] = (
                    None if not isinstance(seconds, int | float) else seconds / 3600
                )

    backup_hours = None
    backups = {e.key: e for e in results.get("backups", [])}
    age, status = backups.get("backup:age"), backups.get("backup:status")
    if (
        age is not None
        and status is not None
        and status.observed_value == "complete"
        and isinstance(age.observed_value, int | float)
    ):
        backup_hours = age.observed_value / 3600

    runs: Sequence[RunBucket] | Unavailable | None = None
    ratio_slos = [s for s in slos if isinstance(s.sli, RatioSli)]
    pipeline = settings.health.pipeline
    if ratio_slos and pipeline is not None:
        start = min(since[s.name] for s in ratio_slos)
        query = RunBucketQuery(
            table=pipeline.ref,
            phase_column=pipeline.phase_column,
            status_column=pipeline.status_column,
            time_column=pipeline.time_column,
            success_values=tuple(pipeline.success_values),
            since=start,
            until=at,
            bucket_seconds=settings.slos.cadence_minutes * 60,
        )
        runs = _soft(deps, lambda: deps.warehouse.run_buckets(query), f"run history {query.table}")

    aggregates: dict[AggregateKey, Sequence[DailyAggregate] | Unavailable] = {}
    for slo in slos:
        sli = slo.sli
        if not isinstance(sli, ThresholdSli):
            continue
        key = AggregateKey.of(sli)
        longest = max(
            (
                s.sli
                for s in slos
                if isinstance(s.sli, ThresholdSli) and AggregateKey.of(s.sli) == key
            ),
            key=lambda t: t.days,
        )
        if key in aggregates:
            continue
        aggregate_query = DailyAggregateQuery(
            table=TableRef.parse(sli.table),
            column=sli.column,
            time_column=sli.time_column,
            since=threshold_since(longest, at),
            until=at,
            not_null=sli.not_null,
        )
        aggregates[key] = _soft(
            deps,
            functools.partial(deps.warehouse.daily_aggregates, aggregate_query),
            f"{sli.aggregate}({sli.column}) of {sli.table}",
        )

    drill: DrillSummary | Unavailable | None = None
    looked_up = False
    if any(isinstance(s.sli, RecoveryTimeSli) for s in slos):
        drill = _soft(deps, lambda: newest_drill_summary(deps), "restore drill records")
        looked_up = True
    found: Sequence[Detection] | Unavailable | None = None
    detection_slos = [s for s in slos if isinstance(s.sli, DetectionSli)]
    if detection_slos:
        start = min(since.get(s.name, at - cadence_of(settings)) for s in detection_slos)
        b = settings.backups
        found = _soft(deps, lambda: detections(deps.store, b.bucket, start, at), "the alert ledger")
    inputs = Inputs(
        at=at,
        detections=found,
        freshness=freshness,
        checks=states,
        runs=runs,
        aggregates=aggregates,
        drill=drill,
        drill_looked_up=looked_up,
    )
    return Gathered(inputs, backup_hours)


def newest_drill_summary(deps: SlaDeps) -> DrillSummary | None:
    from shared.services.drill import newest_drill

    b = deps.settings.backups
    record = newest_drill(deps.store, b.bucket, b.prefix)
    if record is None:
        return None
    return DrillSummary(
        day=record.date,
        finished_at=record.finished_at,
        passed=record.passed,
        projected_hours=record.projected_hours,
        error=record.error,
    )


# -- the evaluation ---------------------------------------------------------------------
def evaluate(request: SlaRequest, deps: SlaDeps) -> EvaluationOutcome:
    settings = deps.settings
    slos = select_slos(settings, request.slos)
    now = deps.now()
    cadence = cadence_of(settings)
    moment = request.at or now
    if moment.tzinfo is None:
        raise BadInput("at: expected an RFC 3339 timestamp with a time zone")
    if moment > now + MAX_FUTURE:
        raise BadInput(f"at: {moment.isoformat()} is in the future")
    at = floor_to_cadence(moment, cadence)
    started = deps.started if deps.started is not None else deps.clock.monotonic()
    deadline = started + deps.deadline_seconds
    names = [s.name for s in slos]
    longest = max(timedelta(seconds=s.window.seconds) for s in slos)

    try:
        # up to now: any later row makes this a late delivery, however late
        rows = _hard(
            deps, lambda: deps.history.read(names, at - longest, now + MAX_FUTURE), deadline
        )
    except OpsuiteError:
        if not request.dry_run:
            _blind(deps, slos, at, deadline)
        raise
    by_slo: dict[str, list[EvaluationRecord]] = {n: [] for n in names}
    for row in rows:
        if row.slo in by_slo:
            by_slo[row.slo].append(row)
    announced = {n: read_announced(deps, n) for n in names}
    late = any(r.at > at for r in rows) or any(
        a is not None and a.at > at for a in announced.values()
    )
    existing = {
        n: max((r for r in by_slo[n] if r.at == at), key=lambda r: r.recorded_at, default=None)
        for n in names
    }
    missing = [s for s in slos if existing[s.name] is None]
    if late:
        # a later evaluation counted these runs / incidents already: not twice
        missing = [s for s in missing if not isinstance(s.sli, RatioSli | DetectionSli)]

    since = {
        s.name: ratio_since(by_slo[s.name], at, timedelta(seconds=s.window.seconds), cadence)
        for s in missing
        if isinstance(s.sli, RatioSli | DetectionSli)
    }
    gathered = gather(deps, missing, at, since) if missing else None
    computed: dict[str, EvaluationRecord] = {}
    if gathered is not None:
        recorded_at = deps.now()
        configured = freshness_names(settings)
        for slo in missing:
            result = compute(
                slo,
                gathered.inputs,
                freshness_configured=configured,
                ratio_since=since.get(slo.name, at - cadence),
            )
            extra: dict[str, Any] = {}
            if isinstance(slo.sli, AvailabilitySli) and gathered.backup_hours is not None:
                extra["backup_hours_since_complete"] = round(gathered.backup_hours, 3)
            assessment = assess(
                slo,
                result,
                by_slo[slo.name],
                at=at,
                cadence=cadence,
                windows=burn_windows(settings.slos.burn_rates),
                recorded_at=recorded_at,
                detail=_detail({**result.detail, **extra}),
            )
            computed[slo.name] = assessment.record

    notes: list[str] = []
    appended = False
    if request.dry_run:
        notes.append("dry run: nothing recorded, written or published")
    elif computed:
        new_rows = list(computed.values())
        job_id = history_job_id(at, [r.slo for r in new_rows])
        appended = _hard(deps, lambda: deps.history.append(job_id, new_rows), deadline)
        if not appended:
            # another delivery recorded this instant first: replay ITS rows, so that both
            # deliveries write the same points and announce the same changes
            again = _hard(deps, lambda: deps.history.read(names, at - cadence, at), deadline)
            for name in list(computed):
                theirs = latest_per_instant(r for r in again if r.at == at and r.slo == name)
                if theirs:
                    computed[name] = theirs[-1]
    attached = [] if appended or request.dry_run else list(computed)
    replayed = tuple(n for n in names if existing[n] is not None or n in attached)

    assessments = _assess_all(settings, slos, by_slo, existing, computed, announced, at)
    points = metric_points(assessments, settings, gathered.backup_hours if gathered else None)
    report: WriteReport | None = None
    events: list[PublishedEvent] = []
    if late:
        notes.append(
            "a later evaluation is already recorded: this late delivery writes no points "
            "and sends no events (Monitoring takes points in order only)"
        )
    elif not request.dry_run:
        # events first: a metric write that fails for good must not cost a page
        nonce = new_nonce()
        for assessment in assessments:
            for change in assessment.transitions:
                events.append(_publish(deps, assessment, change, deadline, nonce))
            if assessment.transitions:
                write_announced(deps, assessment.slo.name, at, SloState.of(assessment.record))
        report = _write_points(deps, points, deadline, notes)

    outcome = EvaluationOutcome(
        at=at,
        assessments=assessments,
        replayed=replayed,
        late=late,
        appended=appended,
        metrics=report,
        events=events,
        dry_run=request.dry_run,
        points=len(points),
        notes=notes,
    )
    logger.info(
        "SLOs evaluated",
        extra={
            "fields": {
                "at": at.isoformat(),
                "slos": names,
                "replayed": list(replayed),
                "late": late,
                "dry_run": request.dry_run,
                "breaching": outcome.breaching,
                "unknown": [a.slo.name for a in assessments if a.record.good is None],
                "events": [f"{e.transition.event_type}:{e.transition.slo}" for e in events],
                "points_written": report.written if report else 0,
                "points_present": report.already_present if report else 0,
            }
        },
    )
    return outcome


def _assess_all(
    settings: Settings,
    slos: Sequence[Slo],
    by_slo: dict[str, list[EvaluationRecord]],
    existing: dict[str, EvaluationRecord | None],
    computed: dict[str, EvaluationRecord],
    announced: dict[str, Announced | None],
    at: datetime,
) -> list[Assessment]:
    """Every SLO's assessment from its recorded (or just computed) row; its transitions
    from the state last *announced* (not the previous row), so a change that a failed
    delivery recorded but never published is announced by the next evaluation."""
    cadence = cadence_of(settings)
    windows = burn_windows(settings.slos.burn_rates)
    out = []
    for slo in slos:
        row = existing[slo.name] or computed.get(slo.name)
        if row is None:  # a late ratio SLO: nothing to record or announce
            continue
        assessment = assess(
            slo,
            row,
            by_slo[slo.name],
            at=at,
            cadence=cadence,
            windows=windows,
            recorded_at=row.recorded_at,
        )
        known = announced[slo.name]
        before = known.state if known is not None and known.at <= at else SloState()
        if known is not None and known.at == at:
            before = SloState.of(row)  # this instant's changes are announced already
        changes = slo_transitions(slo, at, before, SloState.of(row), windows)
        out.append(replace(assessment, transitions=changes))
    return out


def _write_points(
    deps: SlaDeps, points: list[MetricPoint], deadline: float, notes: list[str]
) -> WriteReport | None:
    """Transient faults: retried, then raised (the redelivery replays: events already
    sent are not sent again). A refusal for good is logged and noted, not raised."""
    try:
        report = _hard(deps, lambda: deps.metrics.write(points), deadline)
    except (BadInput, PermanentError) as exc:
        logger.error(
            "metric points not written",
            extra={"fields": {"error_type": type(exc).__name__, "error": str(exc)}},
        )
        notes.append(f"metric points not written: {type(exc).__name__}: {exc}"[:500])
        return None
    if report.rejected:
        notes.append(f"{len(report.rejected)} metric points rejected: {report.rejected[0]}")
    return report


def _blind(deps: SlaDeps, slos: Sequence[Slo], at: datetime, deadline: float) -> None:
    """The history can't be read (BigQuery down): say so in Monitoring before asking for
    redelivery — the heartbeat and ``slo/unknown`` = 1 per SLO — best effort."""
    points = [_point("slo/unknown", {"slo": s.name}, 1, at) for s in slos]
    points.append(_point("evaluator/heartbeat", {}, 1, at))
    try:
        deps.metrics.write(points)
    except OpsuiteError as exc:
        logger.warning(
            "could not report the blind evaluation either",
            extra={"fields": {"error_type": type(exc).__name__, "error": str(exc)}},
        )


# -- the state last announced, per SLO ----------------------------------------------------
@dataclass(frozen=True)
class Announced:
    at: datetime
    state: SloState


def _announced_name(slo: str) -> str:
    return f"{ANNOUNCED_PREFIX}/{slo}.json"


def read_announced(deps: SlaDeps, slo: str) -> Announced | None:
    bucket = deps.settings.backups.bucket
    try:
        raw = deps.store.read(bucket, _announced_name(slo))
    except NotFound:
        return None
    try:
        data = json.loads(raw)
        return Announced(
            datetime.fromisoformat(data["at"]),
            SloState(bool(data["breaching"]), bool(data["exhausted"]), tuple(data["burning"])),
        )
    except (ValueError, KeyError, TypeError):
        logger.warning(
            "unreadable announced SLO state; starting afresh", extra={"fields": {"slo": slo}}
        )
        return None


def write_announced(deps: SlaDeps, slo: str, at: datetime, state: SloState) -> None:
    """After its events are published: the state the alert router now knows. Never moves
    backwards (a late delivery writes nothing; see ``evaluate``)."""
    body = {
        "at": at.isoformat(),
        "breaching": state.breaching,
        "exhausted": state.exhausted,
        "burning": list(state.burning),
    }
    current = read_announced(deps, slo)
    if current is not None and current.at > at:
        return
    _hard(
        deps,
        lambda: deps.store.write(
            deps.settings.backups.bucket,
            _announced_name(slo),
            json.dumps(body).encode(),
            "application/json",
        ),
        deps.clock.monotonic() + deps.input_retry_seconds,
    )


def _hard(deps: SlaDeps, call: Callable[[], T], deadline: float) -> T:
    """An output: retried inside the evaluation's deadline, then TransientError."""
    return retry_transient(call, deadline=deadline, clock=deps.clock)


def _detail(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    if len(text) > 8000:  # a row stays small; say so rather than cut JSON in half
        text = json.dumps({"truncated": True, "keys": sorted(data)[:50]})
    return text


def parse_detail(record: EvaluationRecord) -> dict[str, Any]:
    try:
        value = json.loads(record.detail or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- metric points ----------------------------------------------------------------------
def _point(name: str, labels: dict[str, str], value: float | int, at: datetime) -> MetricPoint:
    return MetricPoint(PREFIX + name, labels, value, at)


def phase_success(assessment: Assessment, phases: Sequence[str]) -> dict[str, float]:
    """Success ratio per configured phase over the SLO's window (from the rows' detail)."""
    totals: dict[str, list[int]] = {p: [0, 0] for p in phases}
    for row in assessment.window_rows:
        for phase, counts in parse_detail(row).get("phases", {}).items():
            if phase in totals and isinstance(counts, list) and len(counts) == 2:
                totals[phase][0] += int(counts[0])
                totals[phase][1] += int(counts[1])
    return {p: good / total for p, (good, total) in totals.items() if total}


def metric_points(
    assessments: Sequence[Assessment], settings: Settings, backup_hours: float | None
) -> list[MetricPoint]:
    """Every point of one evaluation; label values only from the configuration."""
    if not assessments:
        return []
    at = assessments[0].record.at
    points: list[MetricPoint] = []
    freshness_labels = set(freshness_names(settings))
    ages: dict[str, float] = {}
    for a in assessments:
        r, labels = a.record, {"slo": a.slo.name}
        points.append(_point("slo/unknown", labels, int(r.good is None), at))
        if r.value is not None:
            points.append(_point("slo/sli", labels, float(r.value), at))
        if r.good is not None:
            points.append(_point("slo/good", labels, int(r.good), at))
        if not a.measured:
            continue
        if r.compliance is not None:
            points.append(_point("slo/compliance", labels, float(r.compliance), at))
        if r.budget_remaining is not None:
            points.append(_point("slo/budget_remaining", labels, float(r.budget_remaining), at))
            points.append(
                _point("slo/budget_remaining_minutes", labels, a.budget.remaining_minutes, at)
            )
        rates: dict[str, float] = {}
        for burn in a.burns:
            for length, rate in (
                (burn.window.long, burn.long_rate),
                (burn.window.short, burn.short_rate),
            ):
                if rate is not None:
                    rates[duration_label(length)] = rate
        for window, rate in sorted(rates.items()):
            points.append(_point("slo/burn_rate", {"slo": a.slo.name, "window": window}, rate, at))
        detail = parse_detail(r)
        if isinstance(a.slo.sli, FreshnessSli):
            for table, age in (detail.get("ages_hours") or {}).items():
                if table in freshness_labels and isinstance(age, int | float):
                    ages[table] = float(age)
        if backup_hours is None and isinstance(
            detail.get("backup_hours_since_complete"), int | float
        ):
            backup_hours = float(detail["backup_hours_since_complete"])
    for table, age in sorted(ages.items()):
        points.append(_point("freshness/age_hours", {"table": table}, age, at))
    # one series per phase: from the ratio SLO with the longest window (two ratio SLOs on
    # one phase must not write its series twice in one request)
    ratios = [a for a in assessments if isinstance(a.slo.sli, RatioSli) and a.slo.sli.phases]
    if ratios:
        widest = max(ratios, key=lambda a: a.slo.window.seconds)
        assert isinstance(widest.slo.sli, RatioSli)
        for phase, ratio in sorted(phase_success(widest, widest.slo.sli.phases).items()):
            points.append(_point("pipeline/phase_success", {"phase": phase}, ratio, at))
    if backup_hours is not None:
        points.append(_point("backup/hours_since_complete", {}, backup_hours, at))
    points.append(_point("evaluator/heartbeat", {}, 1, at))
    return points


# -- events -----------------------------------------------------------------------------
def runbook_url(runbook: str | None, base: str | None) -> str | None:
    """A repository path (``README.md#restore``) joined to ``slos.runbook_base_url``."""
    if runbook is None or base is None or runbook.startswith(("http://", "https://")):
        return runbook
    return base.rstrip("/") + "/" + runbook


def event_body(
    assessment: Assessment, change: Transition, runbook_base: str | None = None
) -> dict[str, Any]:
    slo, r = assessment.slo, assessment.record
    return {
        "type": change.event_type,
        "slo": slo.name,
        "description": slo.description,
        "severity": slo.severity,
        "condition": change.condition,
        "burn_pair": change.pair,
        "at": r.at.isoformat(),
        "objective": slo.objective,
        "window": duration_label(timedelta(seconds=slo.window.seconds)),
        "sli": {"kind": r.kind, "good": r.good, "value": r.value},
        "compliance": r.compliance,
        "budget_remaining": r.budget_remaining,
        "budget_remaining_minutes": round(assessment.budget.remaining_minutes, 3),
        "burn_rates": [
            {
                "window": f"{duration_label(b.window.long)}/{duration_label(b.window.short)}",
                "threshold": b.window.rate,
                "long": b.long_rate,
                "short": b.short_rate,
                "firing": b.firing,
            }
            for b in assessment.burns
        ],
        "state": {"breaching": r.breaching, "exhausted": r.exhausted, "burning": list(r.burning)},
        "detail": parse_detail(r),
        "runbook": runbook_url(slo.runbook, runbook_base),
        "fingerprint": change.fingerprint,
        "event_id": change.event_id,
    }


def _publish(
    deps: SlaDeps, assessment: Assessment, change: Transition, deadline: float, nonce: str
) -> PublishedEvent:
    settings = deps.settings
    body = json.dumps(
        event_body(assessment, change, settings.slos.runbook_base_url), default=str
    ).encode()
    urgency = "page"
    if change.pair is not None:
        tiers = {pair_label(w): a.notify for w, a in zip(
            burn_windows(settings.slos.burn_rates), settings.slos.burn_rates, strict=True
        )}  # fmt: skip
        urgency = tiers.get(change.pair, "page")
    attributes = {
        "event_type": change.event_type,
        "slo": change.slo,
        "severity": assessment.slo.severity,
        "urgency": urgency,
        "condition": change.condition,
        "fingerprint": change.fingerprint,
        "event_id": change.event_id,
    }
    base = f"{EVENTS_PREFIX}/{change.at.astimezone(UTC):%Y%m%d}/{change.event_id}"

    def once() -> PublishedEvent:
        published = publish_once(
            deps.store,
            settings.backups.bucket,
            base,
            lambda: deps.publisher.publish(settings.slos.alerts_topic, body, attributes),
            now=deps.now(),
            clock=deps.clock,
            nonce=nonce,
        )
        return PublishedEvent(change, published.message_id, published.now)

    return _hard(deps, once, deadline)


__all__ = [
    "EvaluationOutcome",
    "SlaDeps",
    "SlaRequest",
    "evaluate",
    "evaluation_instant",
    "history_job_id",
    "metric_points",
]


# -- reading the state back (opsuite sla status / history) -------------------------------
@dataclass(frozen=True)
class SloStatus:
    slo: Slo
    #: the newest evaluation replayed with its window (None: never evaluated)
    assessment: Assessment | None


def current_status(
    settings: Settings, history: EvaluationHistory, now: datetime, names: Sequence[str] = ()
) -> list[SloStatus]:
    """Each SLO's newest recorded evaluation with its window stats (one history read)."""
    slos = select_slos(settings, names)
    rows = history.read([s.name for s in slos], status_since(settings, now), now + MAX_FUTURE)
    return status_of(settings, rows, names)


def status_since(settings: Settings, now: datetime) -> datetime:
    """How far back :func:`status_of` needs the rows: the longest window and a slot."""
    longest = max(
        (timedelta(seconds=s.window.seconds) for s in settings.slos.objectives),
        default=timedelta(0),
    )
    return now - longest - cadence_of(settings)


def status_of(
    settings: Settings, rows: Sequence[EvaluationRecord], names: Sequence[str] = ()
) -> list[SloStatus]:
    """:func:`current_status` over rows already read (from :func:`status_since` on)."""
    slos = select_slos(settings, names)
    cadence = cadence_of(settings)
    windows = burn_windows(settings.slos.burn_rates)
    out = []
    for slo in slos:
        own = [r for r in rows if r.slo == slo.name]
        if not own:
            out.append(SloStatus(slo, None))
            continue
        newest = max(own, key=lambda r: (r.at, r.recorded_at))
        out.append(
            SloStatus(
                slo,
                assess(
                    slo,
                    newest,
                    own,
                    at=newest.at,
                    cadence=cadence,
                    windows=windows,
                    recorded_at=newest.recorded_at,
                ),
            )
        )
    return out


def slo_history(
    settings: Settings, history: EvaluationHistory, name: str, since: datetime, until: datetime
) -> list[EvaluationRecord]:
    """One SLO's rows in (since, until], one per instant, oldest first."""
    (slo,) = select_slos(settings, [name])
    return latest_per_instant(history.read([slo.name], since, until))
