"""Each SLI kind's value at one instant, from inputs already gathered (pure).

The evaluator (:mod:`shared.services.sla`) gathers what the instant's SLIs need with
as few warehouse calls as possible (live), or slices it out of a few set-based
queries (back-fill, :mod:`shared.services.sla_backfill`); the arithmetic here is the
same for both. An input that could not be read is :class:`Unavailable` and makes
the SLIs that need it unknown (``good`` None), never good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from shared.config import (
    AvailabilitySli,
    DetectionSli,
    FreshnessSli,
    RatioSli,
    RecoveryTimeSli,
    Slo,
    ThresholdSli,
)
from shared.models import DailyAggregate, RunBucket
from shared.services.detection import Detection

#: what the availability SLI knows of one health check: "error" = it could not run
CheckState = Literal["pass", "warn", "fail", "error"]


@dataclass(frozen=True)
class Unavailable:
    """An input that could not be read, and why (reported in the record's detail)."""

    reason: str


@dataclass(frozen=True)
class DrillSummary:
    """What the recovery-time SLI needs of the newest restore drill."""

    day: date
    finished_at: datetime
    passed: bool
    projected_hours: float | None
    error: str | None = None


@dataclass(frozen=True)
class AggregateKey:
    """Threshold SLIs over the same column of the same table share one query."""

    table: str
    column: str
    time_column: str
    not_null: str | None

    @classmethod
    def of(cls, sli: ThresholdSli) -> AggregateKey:
        return cls(sli.table, sli.column, sli.time_column, sli.not_null)


@dataclass(frozen=True)
class Inputs:
    """Everything the SLIs of one instant are computed from.

    ``freshness``: hours since each table's last load (None: the table or its dataset
    does not exist). ``runs``: run buckets ending in (``runs_since``, ``at``] per ratio
    SLO's own interval, filtered below. ``checks``: health check states (availability).
    A missing key means "not gathered": an SLI needing it is unknown.
    """

    at: datetime
    freshness: Mapping[str, float | None] | Unavailable | None = None
    checks: Mapping[str, CheckState] | None = None
    runs: Sequence[RunBucket] | Unavailable | None = None
    aggregates: Mapping[AggregateKey, Sequence[DailyAggregate] | Unavailable] = field(
        default_factory=dict
    )
    drill: DrillSummary | Unavailable | None = None
    #: the newest drill lookup was made (None above then means "no drill recorded")
    drill_looked_up: bool = False
    #: incidents first notified, from the alert router's ledger (filtered per SLO)
    detections: Sequence[Detection] | Unavailable | None = None


@dataclass(frozen=True)
class SliResult:
    good: bool | None
    value: float | None
    good_events: int | None = None
    total_events: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def unknown(reason: str, **detail: Any) -> SliResult:
    return SliResult(None, None, detail={"unknown": reason, **detail})


#: SLI kinds that can't be measured (their evaluations are all unknown, and the evaluator
#: sends no budget or burn-rate events for them): none any more
UNMEASURED_KINDS: frozenset[str] = frozenset()
#: SLI kinds whose SLA is a ratio over the window: breaching = compliance < objective.
#: The others state a bound that holds at every instant (age < 24 h, MAE < 4.5, RTO <
#: 8 h): breaching = the current evaluation is bad.
WINDOW_TARGET_KINDS = frozenset({"availability", "ratio", "detection"})
#: request-based SLIs: compliance = good events / events (runs; incidents)
REQUEST_KINDS = frozenset({"ratio", "detection"})


def freshness_tables(slo: FreshnessSli, configured: Sequence[str]) -> list[str]:
    return list(slo.tables) or list(configured)


def sli_freshness(sli: FreshnessSli, inputs: Inputs, tables: Sequence[str]) -> SliResult:
    ages = inputs.freshness
    if ages is None:
        return unknown("freshness was not measured")
    if isinstance(ages, Unavailable):
        return unknown(ages.reason)
    limit = sli.max_age.seconds / 3600
    known = {t: ages[t] for t in tables if t in ages}
    not_measured = sorted(set(tables) - set(known))
    missing = sorted(t for t, age in known.items() if age is None)
    stale = sorted(t for t, age in known.items() if age is not None and age > limit)
    measured = [age for age in known.values() if age is not None]
    detail: dict[str, Any] = {
        "max_age_hours": limit,
        "ages_hours": {t: None if a is None else round(a, 3) for t, a in sorted(known.items())},
    }
    if stale or missing:
        detail.update(stale=stale, missing=missing)
        worst = max(measured, default=None)
        return SliResult(False, None if worst is None else round(worst, 3), detail=detail)
    if not_measured:
        return unknown("some tables were not measured", tables=not_measured, **detail)
    return SliResult(True, round(max(measured, default=0.0), 3), detail=detail)


def sli_availability(sli: AvailabilitySli, inputs: Inputs) -> SliResult:
    if inputs.checks is None:
        return unknown("the health checks did not run")
    states = {name: inputs.checks.get(name, "error") for name in sli.checks}
    failing = sorted(n for n, s in states.items() if s == "fail")
    errored = sorted(n for n, s in states.items() if s == "error")
    detail: dict[str, Any] = {"checks": dict(sorted(states.items()))}
    if failing:
        return SliResult(False, 0.0, detail={**detail, "failing": failing})
    if errored:
        return unknown(f"checks could not run: {', '.join(errored)}", **detail)
    return SliResult(True, 1.0, detail=detail)


def sli_ratio(sli: RatioSli, inputs: Inputs, since: datetime, objective: float) -> SliResult:
    """Runs in (since, at]: good = the interval's success ratio meets the objective (an
    interval without runs is good: nothing failed); the window's compliance comes from
    the events (``good_events`` / ``total_events``), not from ``good``."""
    runs = inputs.runs
    if runs is None:
        return unknown("the run history was not read")
    if isinstance(runs, Unavailable):
        return unknown(runs.reason)
    phases: dict[str, list[int]] = {}
    for bucket in runs:
        if not since < bucket.end <= inputs.at:
            continue
        if sli.phases and bucket.phase not in sli.phases:
            continue
        counts = phases.setdefault(bucket.phase, [0, 0])
        counts[0] += bucket.succeeded
        counts[1] += bucket.runs
    good = sum(c[0] for c in phases.values())
    total = sum(c[1] for c in phases.values())
    detail: dict[str, Any] = {
        "since": since.isoformat(),
        "phases": {p: c for p, c in sorted(phases.items())},
    }
    value = good / total if total else None
    ok = True if value is None else value >= objective
    return SliResult(ok, None if value is None else round(value, 6), good, total, detail)


def threshold_since(sli: ThresholdSli, at: datetime) -> datetime:
    """The first instant of the SLI's ``days`` (today, UTC, is the last of them)."""
    first = at.astimezone(UTC).date() - timedelta(days=sli.days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def sli_threshold(sli: ThresholdSli, inputs: Inputs) -> SliResult:
    days = inputs.aggregates.get(AggregateKey.of(sli))
    if days is None:
        return unknown("the aggregate was not queried")
    if isinstance(days, Unavailable):
        return unknown(days.reason)
    first = threshold_since(sli, inputs.at).date()
    today = inputs.at.astimezone(UTC).date()
    chosen = [d for d in days if first <= d.day <= today]
    count = sum(d.count for d in chosen)
    detail: dict[str, Any] = {
        "bound": sli.bound,
        "good_when": sli.good_when,
        "aggregate": sli.aggregate,
        "days": sli.days,
        "rows": count,
    }
    if sli.baseline is not None:
        detail["baseline"] = sli.baseline
    if not count:
        return unknown(f"no rows of {sli.table} in the last {sli.days} days", **detail)
    value: float
    if sli.aggregate == "avg":
        value = sum(d.total for d in chosen) / count
    elif sli.aggregate == "sum":
        value = sum(d.total for d in chosen)
    elif sli.aggregate == "max":
        value = max(d.maximum for d in chosen if d.maximum is not None)
    else:
        value = min(d.minimum for d in chosen if d.minimum is not None)
    good = value < sli.bound if sli.good_when == "below" else value > sli.bound
    if sli.baseline is not None:
        detail["vs_baseline"] = round(value - sli.baseline, 6)
    return SliResult(good, round(value, 6), detail=detail)


def sli_recovery_time(sli: RecoveryTimeSli, inputs: Inputs) -> SliResult:
    """Bad without a drill: an unproven restore is the risk this SLO is about."""
    drill = inputs.drill
    if isinstance(drill, Unavailable):
        return unknown(drill.reason)
    if drill is None:
        if not inputs.drill_looked_up:
            return unknown("the drill records were not read")
        return SliResult(False, None, detail={"problem": "no restore drill recorded"})
    age_hours = (inputs.at - drill.finished_at).total_seconds() / 3600
    limit_hours = sli.max_drill_age.seconds / 3600
    detail: dict[str, Any] = {
        "drill": drill.day.isoformat(),
        "drill_age_hours": round(age_hours, 3),
        "max_hours": sli.max_hours,
        "max_drill_age_hours": limit_hours,
        "projected_hours": drill.projected_hours,
    }
    problems = []
    if not drill.passed:
        problems.append(f"the newest drill failed: {drill.error or 'see its record'}")
    if age_hours > limit_hours:
        problems.append(f"the newest drill is {age_hours:.0f} h old (limit {limit_hours:g} h)")
    if drill.projected_hours is None:
        problems.append("the newest drill projected no restore time")
    elif drill.projected_hours >= sli.max_hours:
        problems.append(
            f"a full restore is projected at {drill.projected_hours:.2f} h "
            f"(limit {sli.max_hours:g} h)"
        )
    if problems:
        detail["problem"] = "; ".join(problems)
    value = None if drill.projected_hours is None else round(drill.projected_hours, 4)
    return SliResult(not problems, value, detail=detail)


def sli_detection(sli: DetectionSli, inputs: Inputs, since: datetime) -> SliResult:
    """Request-based over the alert router's ledger: each incident first notified since
    the previous evaluation is an event, good when notified within ``max_minutes`` of
    its start. An interval without incidents is good with no events (nothing was late)."""
    found = inputs.detections
    if found is None:
        return unknown("the alert router's ledger was not read")
    if isinstance(found, Unavailable):
        return unknown(found.reason)
    limit = sli.max_minutes * 60
    seconds = [d.seconds for d in found if since < d.notified_at <= inputs.at]
    good = sum(1 for s in seconds if s <= limit)
    worst = max(seconds, default=None)
    detail: dict[str, Any] = {
        "since": since.isoformat(),
        "incidents": len(seconds),
        "late": len(seconds) - good,
        "max_minutes": sli.max_minutes,
        "minutes": [round(s / 60, 2) for s in seconds][:50],
    }
    value = None if worst is None else round(worst / 60, 3)
    return SliResult(good == len(seconds), value, good, len(seconds), detail)


def compute(
    slo: Slo, inputs: Inputs, *, freshness_configured: Sequence[str], ratio_since: datetime
) -> SliResult:
    """The SLI of ``slo`` at ``inputs.at``."""
    sli = slo.sli
    if isinstance(sli, FreshnessSli):
        return sli_freshness(sli, inputs, freshness_tables(sli, freshness_configured))
    if isinstance(sli, AvailabilitySli):
        return sli_availability(sli, inputs)
    if isinstance(sli, RatioSli):
        return sli_ratio(sli, inputs, ratio_since, slo.objective)
    if isinstance(sli, ThresholdSli):
        return sli_threshold(sli, inputs)
    if isinstance(sli, RecoveryTimeSli):
        return sli_recovery_time(sli, inputs)
    return sli_detection(sli, inputs, ratio_since)
