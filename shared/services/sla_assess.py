"""One SLO at one instant: its record, window, error budget, burn rates and state (pure).

Given the SLI (:mod:`shared.services.sla_sli`) and the SLO's earlier history rows,
this computes the window's compliance, the budget and the multiwindow burn rates
(:mod:`shared.services.sla_budget`), the SLO's state after the evaluation, and the
state changes that become events.

State (stored in each history row, so the next evaluation knows the previous one):
- ``breaching``: the SLA is violated now. For ratio-stated SLAs (``availability``,
  ``ratio``: "99 %", "> 95 %") when the window's budget is overspent (at full coverage:
  compliance below the objective; a new deployment's first bad slot is not yet a miss);
  for bound-stated ones (freshness < 24 h, MAE < 4.5, RTO < 8 h) when this evaluation
  is bad. An unknown evaluation keeps the previous value (it is charged to the budget,
  which is how a long outage of the SLI itself shows).
- ``exhausted``: the error budget of the window is spent.
- ``burning``: the burn-rate window pairs (``1h/15m``...) whose both windows burn at
  their rate.
Each change is one transition: ``slo.breached`` when breaching or exhausted starts,
``slo.burn_rate`` when burning starts or its fastest firing pair changes,
``slo.recovered`` when one of them ends. An SLO whose SLI can't be measured has no
state and sends nothing (none today: ``detection`` reads the alert router's ledger).

Budgets of windows-based SLIs are shares of the window's slots (the allowed bad time:
28 d at 99 % = 403 min), so one bad slot of a new deployment spends 15 min of it;
burn rates are observed error ratios (bad / evaluated) over each window, so a new
evaluator's first bad slot is a fast burn (100x): the page a stale table deserves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from shared.config import BurnRateAlert, Slo
from shared.models import EvaluationRecord
from shared.services.sla_budget import (
    Budget,
    BurnAlert,
    BurnRateWindow,
    SlotSeries,
    WindowStats,
    burn_alerts_over,
)
from shared.services.sla_sli import REQUEST_KINDS, UNMEASURED_KINDS, WINDOW_TARGET_KINDS, SliResult

EventType = Literal["slo.breached", "slo.recovered", "slo.burn_rate"]
_COMPLIANCE_TOLERANCE = 1e-12


def duration_label(length: timedelta) -> str:
    """15 min → ``15m``, 1 h → ``1h``, 3 d → ``3d`` (a metric label: bounded, readable)."""
    seconds = int(length.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def burn_windows(alerts: Sequence[BurnRateAlert]) -> list[BurnRateWindow]:
    return [
        BurnRateWindow(
            long=timedelta(seconds=a.long_window.seconds),
            short=timedelta(seconds=a.short_window.seconds),
            rate=a.rate,
        )
        for a in alerts
    ]


def pair_label(window: BurnRateWindow) -> str:
    return f"{duration_label(window.long)}/{duration_label(window.short)}"


@dataclass(frozen=True)
class SloState:
    breaching: bool = False
    exhausted: bool = False
    burning: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: EvaluationRecord | None) -> SloState:
        if record is None:
            return cls()
        return cls(record.breaching, record.exhausted, tuple(record.burning))


@dataclass(frozen=True)
class Transition:
    event_type: EventType
    #: what changed: ``sli`` (breaching), ``budget`` (exhausted), ``burn`` (burn rate)
    condition: str
    slo: str
    at: datetime
    #: for ``burn``: the fastest firing window pair (``1h/15m``)
    pair: str | None = None

    @property
    def fingerprint(self) -> str:
        """Names the condition (same for its start and its end): a dedup/incident key."""
        return hashlib.sha256(f"opsuite|{self.slo}|{self.condition}".encode()).hexdigest()[:32]

    @property
    def event_id(self) -> str:
        """Names this one change: the key that makes its event be published once."""
        key = f"{self.slo}|{self.condition}|{self.event_type}|{self.pair}|{self.at.isoformat()}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]


def transitions(
    slo: str,
    at: datetime,
    before: SloState,
    after: SloState,
    *,
    budget_condition: bool = True,
    pace: Mapping[str, float] | None = None,
) -> list[Transition]:
    """The changes from ``before`` to ``after`` worth an event.

    ``budget_condition``: False for ratio-stated SLOs, whose breaching *is* the overspent
    budget (one problem, one event). ``pace``: each pair's burn rate threshold; burning
    is announced when it starts and when it speeds up (its fastest firing pair is a
    faster one), not when it slows down (that is no news), and recovers when no pair fires.
    """
    out: list[Transition] = []
    if after.breaching != before.breaching:
        out.append(
            Transition("slo.breached" if after.breaching else "slo.recovered", "sli", slo, at)
        )
    if budget_condition and after.exhausted != before.exhausted:
        kind: EventType = "slo.breached" if after.exhausted else "slo.recovered"
        out.append(Transition(kind, "budget", slo, at))
    fastest_before = before.burning[0] if before.burning else None
    fastest_after = after.burning[0] if after.burning else None
    if fastest_after != fastest_before:
        rate = pace or {}
        if fastest_after is None:
            out.append(Transition("slo.recovered", "burn", slo, at))
        elif fastest_before is None or rate.get(fastest_after, 0.0) > rate.get(fastest_before, 0.0):
            out.append(Transition("slo.burn_rate", "burn", slo, at, fastest_after))
    return out


def pair_rates(windows: Sequence[BurnRateWindow]) -> dict[str, float]:
    return {pair_label(w): w.rate for w in windows}


def slo_transitions(
    slo: Slo,
    at: datetime,
    before: SloState,
    after: SloState,
    windows: Sequence[BurnRateWindow],
) -> list[Transition]:
    """``transitions`` with the SLO's own rules (none for an SLI not measured yet)."""
    if slo.sli.kind in UNMEASURED_KINDS:
        return []
    return transitions(
        slo.name,
        at,
        before,
        after,
        budget_condition=slo.sli.kind not in WINDOW_TARGET_KINDS,
        pace=pair_rates(windows),
    )


@dataclass(frozen=True)
class Assessment:
    slo: Slo
    record: EvaluationRecord
    stats: WindowStats
    budget: Budget
    burns: list[BurnAlert]
    #: the newest earlier row (its state is "before")
    previous: EvaluationRecord | None
    transitions: list[Transition]
    #: the SLI can be measured (not ``detection``): state, budget and events apply
    measured: bool
    #: the rows of the window (this one included), oldest first: history display, phases
    window_rows: tuple[EvaluationRecord, ...] = ()

    @property
    def shown_budget_minutes(self) -> float | None:
        """The budget left in minutes as the status shows it (None: not measured)."""
        return round(self.budget.remaining_minutes, 3) if self.measured else None

    @property
    def shown_coverage(self) -> float:
        """The window's evaluated share as the status shows it."""
        return round(self.stats.coverage, 6)

    @property
    def state(self) -> SloState:
        return SloState.of(self.record)


def backfilled(record: EvaluationRecord) -> bool:
    """A row written by ``sla backfill`` (its detail says so): it sent no events."""
    if '"backfilled"' not in record.detail:
        return False
    try:
        return json.loads(record.detail).get("backfilled") is True
    except (ValueError, AttributeError):
        return False


def latest_per_instant(rows: Iterable[EvaluationRecord]) -> list[EvaluationRecord]:
    """One row per ``at`` (at-least-once appends may record one twice: the newest
    ``recorded_at`` wins), oldest first."""
    chosen: dict[datetime, EvaluationRecord] = {}
    for row in rows:
        kept = chosen.get(row.at)
        if kept is None or row.recorded_at >= kept.recorded_at:
            chosen[row.at] = row
    return [chosen[at] for at in sorted(chosen)]


def ratio_since(
    history: Sequence[EvaluationRecord], at: datetime, window: timedelta, cadence: timedelta
) -> datetime:
    """Where a ratio SLI's interval starts: the previous evaluation that counted events
    (so runs of intervals whose evaluation was missed or unknown are counted once,
    later, not lost), at most a window back; without one, one cadence back."""
    known = [r.at for r in history if r.at < at and r.total_events is not None]
    start = max(known, default=at - cadence)
    return max(start, at - window)


def series_of(slo: Slo, rows: Iterable[EvaluationRecord], cadence: timedelta) -> SlotSeries:
    """The SLO's rows (deduplicated, ascending) as a series for window stats."""
    series = SlotSeries(cadence)
    for row in latest_per_instant(rows):
        add_to_series(series, slo, row)
    return series


def add_to_series(series: SlotSeries, slo: Slo, row: EvaluationRecord) -> None:
    events = None
    if slo.sli.kind in REQUEST_KINDS and row.total_events is not None:
        events = (row.good_events or 0, row.total_events)
    series.append(row.at, row.good, events)


def assess(
    slo: Slo,
    result: SliResult | EvaluationRecord,
    history: Sequence[EvaluationRecord],
    *,
    at: datetime,
    cadence: timedelta,
    windows: Sequence[BurnRateWindow],
    recorded_at: datetime,
    detail: str = "{}",
) -> Assessment:
    """Assess ``slo`` at ``at``: ``result`` is the new SLI, or the row already recorded
    for ``at`` (a redelivery replays it: same state, same transitions, same points).
    ``history``: this SLO's rows (any order, duplicates allowed); rows at or after
    ``at`` are ignored."""
    window = timedelta(seconds=slo.window.seconds)
    earlier = latest_per_instant(r for r in history if r.at < at)
    # the state last *announced*: back-filled rows sent no events, so the first live
    # evaluation after a back-fill announces the current state once
    previous = next((r for r in reversed(earlier) if not backfilled(r)), None)
    in_window = [r for r in earlier if r.at > at - window]
    series = series_of(slo, in_window, cadence)
    assessment = assess_next(
        slo,
        result,
        previous,
        series,
        at=at,
        cadence=cadence,
        windows=windows,
        recorded_at=recorded_at,
        detail=detail,
    )
    return replace(assessment, window_rows=(*in_window, assessment.record))


def assess_next(
    slo: Slo,
    result: SliResult | EvaluationRecord,
    previous: EvaluationRecord | None,
    series: SlotSeries,
    *,
    at: datetime,
    cadence: timedelta,
    windows: Sequence[BurnRateWindow],
    recorded_at: datetime,
    detail: str = "{}",
) -> Assessment:
    """``assess`` given the previous row and the series of the earlier rows; the new
    row is appended to ``series`` (a back-fill keeps one series per SLO this way)."""
    window = timedelta(seconds=slo.window.seconds)
    measured = slo.sli.kind not in UNMEASURED_KINDS
    if isinstance(result, EvaluationRecord):
        record = result
    else:
        record = EvaluationRecord(
            at=at,
            slo=slo.name,
            kind=slo.sli.kind,
            good=result.good,
            value=result.value,
            good_events=result.good_events,
            total_events=result.total_events,
            compliance=None,
            budget_remaining=None,
            breaching=False,
            exhausted=False,
            burning=(),
            detail=detail,
            recorded_at=recorded_at,
        )
    add_to_series(series, slo, record)
    request_based = slo.sli.kind in REQUEST_KINDS

    def stats_for(length: timedelta) -> WindowStats:
        return series.events(at, length) if request_based else series.slots(at, length)

    stats = stats_for(window)
    budget = Budget(slo.objective, stats, window, "total" if request_based else "expected")
    burns = burn_alerts_over(stats_for, slo.objective, windows)
    before = SloState.of(previous)
    if not isinstance(result, EvaluationRecord):
        if not measured:
            state = SloState()
        else:
            compliance = stats.compliance
            if slo.sli.kind in WINDOW_TARGET_KINDS:
                # the objective over the window is missed once the budget is overspent:
                # at full coverage that is compliance < objective; with sparse history (a
                # new deployment) one bad slot is not yet a missed 99 % over 28 days
                breaching = (
                    before.breaching
                    if compliance is None
                    else budget.remaining_fraction < -_COMPLIANCE_TOLERANCE
                )
            else:
                breaching = before.breaching if result.good is None else not result.good
            state = SloState(
                breaching=breaching,
                exhausted=budget.exhausted,
                burning=tuple(
                    pair_label(b.window)
                    for b in sorted(burns, key=lambda b: -b.window.rate)
                    if b.firing
                ),
            )
        record = replace(
            record,
            compliance=None if stats.compliance is None else round(stats.compliance, 9),
            budget_remaining=(
                round(budget.remaining_fraction, 9) if measured and stats.total else None
            ),
            breaching=state.breaching,
            exhausted=state.exhausted,
            burning=state.burning,
        )
    changes = slo_transitions(slo, at, before, SloState.of(record), windows)
    return Assessment(
        slo=slo,
        record=record,
        stats=stats,
        budget=budget,
        burns=burns,
        previous=previous,
        transitions=changes,
        measured=measured,
    )
