"""Back-fill the SLO history: evaluate every cadence slot of a past window at once.

A new deployment (or the demo) has no history, so its budgets and burn rates would
start from nothing. The warehouse remembers enough to reconstruct three SLI kinds:
``freshness`` (the tables' ``loaded_at`` columns: every load instant), ``ratio`` (the
run-history table) and ``threshold`` (the column's daily aggregates). Each is read
with ONE set-based query over the whole window (per table for freshness), sliced per
slot in memory, and computed by the same arithmetic as a live evaluation.

What the past can't tell (the health checks of then: ``availability``; drills as of
then: ``recovery_time``; ``detection``) is not back-filled: those slots have no row
and only lower the window's coverage, never its compliance. Slots already recorded
are kept (a re-run fills only the gaps). Rows are appended one load job per UTC day
of slots (a 28-day back-fill is 29 load jobs, far below BigQuery's 1 500 per table
per day), with ids from the day and the SLO set, so a re-run attaches. Metric
points are written only for the slots Monitoring still accepts (the last 25 h), one
request per slot (one point per series per request). No events: past state changes
are history, not pages; the next live evaluation announces the current state.

Known approximations, reported in each row's detail (``"backfilled": true``):
freshness is measured from ``loaded_at`` values (live evaluations use the table's
last-modified time); a threshold over a DATE column counts the slot's whole day.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import FreshnessSli, RatioSli, Settings, ThresholdSli
from shared.errors import BadInput, NotFound
from shared.identifiers import TableRef
from shared.models import (
    DailyAggregate,
    DailyAggregateQuery,
    EvaluationRecord,
    RunBucket,
    RunBucketQuery,
    WriteReport,
)
from shared.services.sla import (
    MAX_FUTURE,
    SlaDeps,
    _detail,
    _hard,
    cadence_of,
    history_job_id,
    metric_points,
    select_slos,
)
from shared.services.sla_assess import (
    Assessment,
    SloState,
    add_to_series,
    assess_next,
    burn_windows,
    latest_per_instant,
)
from shared.services.sla_budget import SlotSeries, floor_to_cadence
from shared.services.sla_sli import AggregateKey, Inputs, compute, threshold_since

BACKFILL_KINDS = frozenset({"freshness", "ratio", "threshold"})
#: how far back Monitoring takes points (25 h), less a margin for the time writing takes
METRICS_HORIZON = timedelta(hours=25) - timedelta(minutes=10)


@dataclass
class BackfillOutcome:
    start: datetime
    end: datetime
    slos: list[str]
    skipped_slos: dict[str, str]
    slots: int
    rows_written: int = 0
    rows_kept: int = 0
    load_jobs: int = 0
    metrics: WriteReport = field(default_factory=WriteReport)
    dry_run: bool = False
    #: the newest back-filled assessment per SLO
    last: dict[str, Assessment] = field(default_factory=dict)


def _loads(deps: SlaDeps, settings: Settings, start: datetime, end: datetime) -> dict[str, Any]:
    """Every freshness table's load instants (or None: the table doesn't exist)."""
    out: dict[str, list[datetime] | None] = {}
    for table in settings.health.freshness.tables:
        if table.loaded_at is None:
            continue
        since = start - timedelta(days=table.lookback_days)
        try:
            out[table.table] = sorted(
                _hard(
                    deps,
                    functools.partial(
                        deps.warehouse.load_times, table.ref, table.loaded_at, since, end
                    ),
                    deps.clock.monotonic() + deps.input_retry_seconds,
                )
            )
        except NotFound:
            out[table.table] = None
    return out


def _ages_at(
    loads: dict[str, Any], at: datetime, lookback: dict[str, int]
) -> dict[str, float | None]:
    ages: dict[str, float | None] = {}
    for table, instants in loads.items():
        if instants is None:
            ages[table] = None
            continue
        i = bisect.bisect_right(instants, at)
        if i:
            ages[table] = (at - instants[i - 1]).total_seconds() / 3600
        else:  # no load in the lookback: at least that old
            ages[table] = lookback[table] * 24.0 + 0.001
    return ages


def backfill(
    deps: SlaDeps,
    *,
    days: float | None = None,
    names: Sequence[str] = (),
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> BackfillOutcome:
    """Evaluate every slot in (end - days, end), end = now floored to the cadence (the
    live evaluation of ``end`` is the next step); ``days`` default: the longest window."""
    settings = deps.settings
    cadence = cadence_of(settings)
    chosen = select_slos(settings, names)
    skipped = {
        s.name: f"{s.sli.kind} SLIs can't be reconstructed from the warehouse"
        for s in chosen
        if s.sli.kind not in BACKFILL_KINDS
    }
    slos = [s for s in chosen if s.sli.kind in BACKFILL_KINDS]
    for slo in slos:
        if isinstance(slo.sli, FreshnessSli):
            tables = slo.sli.tables or [t.table for t in settings.health.freshness.tables]
            configured = {t.table: t for t in settings.health.freshness.tables}
            without = [t for t in tables if t not in configured or configured[t].loaded_at is None]
            if without:
                skipped[slo.name] = (
                    "freshness back-fill needs a loaded_at column for every table "
                    f"(health.freshness.tables): {', '.join(without)}"
                )
        if isinstance(slo.sli, RatioSli) and settings.health.pipeline is None:
            skipped[slo.name] = "health.pipeline is disabled"
    slos = [s for s in slos if s.name not in skipped]
    now = deps.now()
    end = floor_to_cadence(now, cadence)
    longest = max((timedelta(seconds=s.window.seconds) for s in chosen), default=cadence)
    span = timedelta(days=days) if days is not None else longest
    if span <= timedelta(0) or span > timedelta(days=400):
        raise BadInput("days: expected more than 0 and at most 400")
    start = floor_to_cadence(end - span, cadence)
    slots = [start + cadence * i for i in range(1, (end - start) // cadence)]
    outcome = BackfillOutcome(
        start, end, [s.name for s in slos], skipped, len(slots), dry_run=dry_run
    )
    if not slos or not slots:
        return outcome
    deadline = deps.clock.monotonic() + deps.deadline_seconds * 10
    names_ = [s.name for s in slos]
    # the rows before the range (state, windows) and in it (kept as they are)
    rows = _hard(deps, lambda: deps.history.read(names_, start - longest, end), deadline)
    by_slo: dict[str, list[EvaluationRecord]] = {n: [] for n in names_}
    for row in rows:
        if row.slo in by_slo:
            by_slo[row.slo].append(row)

    progress(f"reading the warehouse for {len(slots)} slots from {start:%Y-%m-%d %H:%M}Z")
    kinds = {s.sli.kind for s in slos}
    loads: dict[str, Any] = {}
    lookback = {t.table: t.lookback_days for t in settings.health.freshness.tables}
    if "freshness" in kinds:
        loads = _loads(deps, settings, start, end)
    buckets: dict[datetime, list[RunBucket]] = {}
    pipeline = settings.health.pipeline
    if "ratio" in kinds and pipeline is not None:
        query = RunBucketQuery(
            pipeline.ref,
            pipeline.phase_column,
            pipeline.status_column,
            pipeline.time_column,
            tuple(pipeline.success_values),
            start,
            end,
            int(cadence.total_seconds()),
        )
        for bucket in _hard(deps, lambda: deps.warehouse.run_buckets(query), deadline):
            buckets.setdefault(bucket.end, []).append(bucket)
    aggregates: dict[AggregateKey, list[DailyAggregate]] = {}
    for slo in slos:
        if isinstance(slo.sli, ThresholdSli) and AggregateKey.of(slo.sli) not in aggregates:
            sli = slo.sli
            aggregate_query = DailyAggregateQuery(
                TableRef.parse(sli.table),
                sli.column,
                sli.time_column,
                threshold_since(
                    max(
                        (s.sli for s in slos if isinstance(s.sli, ThresholdSli)),
                        key=lambda t: t.days,
                    ),
                    start,
                ),
                end,
                sli.not_null,
            )
            aggregates[AggregateKey.of(sli)] = _hard(
                deps,
                functools.partial(deps.warehouse.daily_aggregates, aggregate_query),
                deadline,
            )

    windows = burn_windows(settings.slos.burn_rates)
    freshness_names = [t.table for t in settings.health.freshness.tables]
    series: dict[str, SlotSeries] = {}
    previous: dict[str, EvaluationRecord | None] = {}
    kept: dict[str, dict[datetime, EvaluationRecord]] = {}
    for slo in slos:
        window = timedelta(seconds=slo.window.seconds)
        own = latest_per_instant(by_slo[slo.name])
        before = [r for r in own if r.at <= start]
        series[slo.name] = SlotSeries(cadence)
        for row in before:
            if row.at > start - window:
                add_to_series(series[slo.name], slo, row)
        previous[slo.name] = before[-1] if before else None
        kept[slo.name] = {r.at: r for r in own if start < r.at < end}

    recorded_at = now
    horizon = now - METRICS_HORIZON
    pending: list[EvaluationRecord] = []
    day = slots[0].date()
    metrics = WriteReport()

    def flush() -> None:
        nonlocal metrics
        if pending and not dry_run:
            # the id names exactly these rows: a re-run the same day that fills other
            # gaps is another job; the same rows again attach to the job that loaded them
            keys = sorted(f"{r.slo}@{r.at.isoformat()}" for r in pending)
            digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]
            job_id = history_job_id(
                datetime(day.year, day.month, day.day, tzinfo=UTC),
                [*sorted({r.slo for r in pending}), "backfill", digest],
            )
            batch = list(pending)
            if _hard(deps, lambda: deps.history.append(job_id, batch), deadline):
                outcome.rows_written += len(batch)
            else:
                outcome.rows_kept += len(batch)  # loaded by an earlier run of the same rows
            outcome.load_jobs += 1
        elif pending:
            outcome.rows_written += len(pending)  # a dry run: what would be recorded
        pending.clear()

    for at in slots:
        if at.date() != day:
            flush()
            progress(f"back-filled {day:%Y-%m-%d}")
            day = at.date()
        inputs = Inputs(
            at=at,
            freshness=_ages_at(loads, at, lookback) if loads else None,
            runs=buckets.get(at, []),
            aggregates=aggregates,
        )
        assessed: list[Assessment] = []
        for slo in slos:
            stored = kept[slo.name].get(at)
            if stored is not None:
                result: Any = stored
                detail = stored.detail
                outcome.rows_kept += 1
            else:
                result = compute(
                    slo, inputs, freshness_configured=freshness_names, ratio_since=at - cadence
                )
                detail = _detail({**result.detail, "backfilled": True})
            assessment = assess_next(
                slo,
                result,
                previous[slo.name],
                series[slo.name],
                at=at,
                cadence=cadence,
                windows=windows,
                recorded_at=recorded_at,
                detail=detail,
            )
            previous[slo.name] = assessment.record
            outcome.last[slo.name] = assessment
            assessed.append(assessment)
            if stored is None:
                pending.append(assessment.record)
        if at > horizon and at <= now + MAX_FUTURE and not dry_run:
            points = metric_points(assessed, settings, None)
            report = _hard(deps, functools.partial(deps.metrics.write, points), deadline)
            metrics = WriteReport(
                metrics.written + report.written,
                metrics.already_present + report.already_present,
                metrics.rejected + report.rejected,
            )
    flush()
    progress(f"back-filled {day:%Y-%m-%d}")
    outcome.metrics = metrics
    return outcome


def final_state(outcome: BackfillOutcome) -> dict[str, SloState]:
    return {name: SloState.of(a.record) for name, a in outcome.last.items()}
