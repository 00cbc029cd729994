"""Windows-based SLO arithmetic: compliance, error budget and burn-rate alerts.

The SLA evaluator runs on a fixed cadence (e.g. every 15 min) and records one
``Evaluation`` per cadence slot: good, bad or unknown (the SLI could not be computed).
Everything here is pure: no I/O, no clock, stdlib only.

Conventions:
- Every instant is an aware datetime; naive ones raise ``ValueError``.
- Slots are multiples of the cadence since the Unix epoch (``floor_to_cadence``), so a
  redelivered Pub/Sub message evaluates, and records, the same instant.
- A window of ``length`` ending at ``end`` is the half-open interval
  ``(end - length, end]``: the evaluation at ``end`` is in, the one at ``end - length``
  is out, so consecutive windows never share a slot.
- Unknown intervals are never good: they count in the denominator of compliance and
  against the budget, and are reported separately. Slots with no evaluation at all are
  not charged; they only lower ``coverage``.
- Burn rate = error ratio / (1 - objective); an alert fires only when both its long and
  short window burn at or above its rate (SRE workbook ch. 5, multiwindow multi-burn-rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 1 - 0.999 is 0.0010000000000000009 in binary floating point, so an error ratio of exactly
# 0.0144 gives a burn rate of 14.399999999999986: compare thresholds with a tolerance.
_RATE_REL_TOL = 1e-9


def _require_aware(name: str, instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {instant!r}")


def _require_cadence(cadence: timedelta) -> None:
    if cadence <= timedelta(0):
        raise ValueError(f"cadence must be positive, got {cadence!r}")


def _require_objective(objective: float) -> None:
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective must be strictly between 0 and 1, got {objective!r}")


def floor_to_cadence(instant: datetime, cadence: timedelta) -> datetime:
    """Floor ``instant`` to a multiple of ``cadence`` since the Unix epoch, in UTC.

    10:07:59Z with a 15 min cadence gives 10:00:00Z; an instant on a slot boundary is
    returned unchanged. A non-UTC aware datetime is floored as the same instant in UTC.
    """
    _require_aware("instant", instant)
    _require_cadence(cadence)
    slots = (instant - _EPOCH) // cadence  # exact integer arithmetic on microseconds
    return _EPOCH + slots * cadence


@dataclass(frozen=True)
class Evaluation:
    """One evaluated slot. ``good`` is None when the SLI could not be computed."""

    at: datetime
    good: bool | None


@dataclass(frozen=True)
class BurnRateWindow:
    """A long and a short window that must both burn at ``rate`` or more to alert."""

    long: timedelta
    short: timedelta
    rate: float

    def __post_init__(self) -> None:
        if self.short <= timedelta(0):
            raise ValueError(f"short window must be positive, got {self.short!r}")
        if self.long < self.short:
            raise ValueError(f"long window {self.long!r} is shorter than short {self.short!r}")
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate!r}")


DEFAULT_BURN_RATE_WINDOWS: tuple[BurnRateWindow, ...] = (
    BurnRateWindow(long=timedelta(hours=1), short=timedelta(minutes=15), rate=14.4),
    BurnRateWindow(long=timedelta(hours=6), short=timedelta(hours=1), rate=6.0),
    BurnRateWindow(long=timedelta(days=3), short=timedelta(hours=6), rate=1.0),
)


@dataclass(frozen=True)
class WindowStats:
    """Counts of evaluated slots in one window; ``expected`` is the number of slots."""

    good: int
    bad: int
    unknown: int
    expected: int

    @property
    def total(self) -> int:
        return self.good + self.bad + self.unknown

    @property
    def coverage(self) -> float:
        return self.total / self.expected if self.expected else 0.0

    @property
    def compliance(self) -> float | None:
        """Good over all evaluated slots; unknown slots count in the denominator."""
        total = self.total
        return self.good / total if total else None

    @property
    def error_ratio(self) -> float | None:
        total = self.total
        return (self.bad + self.unknown) / total if total else None


def window_stats(
    evaluations: Iterable[Evaluation],
    end: datetime,
    length: timedelta,
    cadence: timedelta,
) -> WindowStats:
    """Count the evaluations with ``end - length < at <= end``.

    ``expected`` is the number of cadence slots (multiples of ``cadence`` since the epoch)
    in that same half-open interval. Evaluations recorded twice for the same ``at`` (at-least-
    once delivery) count once: the last one given wins.
    """
    _require_aware("end", end)
    _require_cadence(cadence)
    if length < cadence:
        raise ValueError(f"window length {length!r} is shorter than the cadence {cadence!r}")
    start = end - length
    latest: dict[datetime, bool | None] = {}
    for evaluation in evaluations:
        _require_aware("evaluation.at", evaluation.at)
        if start < evaluation.at <= end:
            latest[evaluation.at] = evaluation.good  # aware datetimes hash by instant
    values = list(latest.values())
    expected = (end - _EPOCH) // cadence - (start - _EPOCH) // cadence
    return WindowStats(
        good=sum(1 for v in values if v is True),
        bad=sum(1 for v in values if v is False),
        unknown=sum(1 for v in values if v is None),
        expected=expected,
    )


@dataclass(frozen=True)
class Budget:
    """The error budget of ``objective`` over the slots of ``stats`` (a ``window`` long)."""

    objective: float
    stats: WindowStats
    window: timedelta
    #: what the budget is a share of: the evaluated slots (default; events, for
    #: request-based SLIs), or ``"expected"``: every slot of the window, so the budget is
    #: the window's allowed bad time (28 d at 99 % = 403 min) from the first evaluation on,
    #: and one bad 15-min slot of a new deployment spends 15 min of it, not all of it
    base: str = "total"

    def __post_init__(self) -> None:
        _require_objective(self.objective)
        if self.window <= timedelta(0):
            raise ValueError(f"window must be positive, got {self.window!r}")
        if self.base not in ("total", "expected"):
            raise ValueError(f"base must be 'total' or 'expected', got {self.base!r}")

    @property
    def _base_count(self) -> int:
        if self.base == "expected":
            return max(self.stats.expected, self.stats.total)
        return self.stats.total

    @property
    def allowed_bad(self) -> float:
        """How many slots may be bad or unknown while meeting the objective."""
        return (1.0 - self.objective) * self._base_count

    @property
    def remaining_fraction(self) -> float:
        """1 - spent/allowed; negative once overspent; 1.0 when nothing was evaluated."""
        if self.stats.total == 0:
            return 1.0
        return 1.0 - (self.stats.bad + self.stats.unknown) / self.allowed_bad

    @property
    def remaining_minutes(self) -> float:
        window_minutes = self.window / timedelta(minutes=1)
        return self.remaining_fraction * (1.0 - self.objective) * window_minutes

    @property
    def exhausted(self) -> bool:
        """True once bad + unknown slots reach the allowed count (exactly spent counts)."""
        if self.stats.total == 0:
            return False
        spent = self.stats.bad + self.stats.unknown
        # (1 - 0.99) * 100 is 1.0000000000000009: spending exactly the budget must exhaust it.
        return self.remaining_fraction <= 0.0 or math.isclose(
            spent, self.allowed_bad, rel_tol=_RATE_REL_TOL
        )


def burn_rate(stats: WindowStats, objective: float) -> float | None:
    """Error ratio / (1 - objective); None when the window has no evaluations."""
    _require_objective(objective)
    ratio = stats.error_ratio
    return None if ratio is None else ratio / (1.0 - objective)


def _burns_at(rate: float | None, threshold: float) -> bool:
    if rate is None:
        return False
    return rate >= threshold or math.isclose(rate, threshold, rel_tol=_RATE_REL_TOL)


@dataclass(frozen=True)
class BurnAlert:
    window: BurnRateWindow
    long_rate: float | None
    short_rate: float | None
    firing: bool


def burn_alerts(
    evaluations: Iterable[Evaluation],
    end: datetime,
    cadence: timedelta,
    objective: float,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> list[BurnAlert]:
    """One ``BurnAlert`` per window pair, firing only if both windows burn at its rate."""
    recorded = list(evaluations)
    return burn_alerts_over(
        lambda length: window_stats(recorded, end, length, cadence), objective, windows
    )


def burn_alerts_over(
    stats_for: Callable[[timedelta], WindowStats],
    objective: float,
    windows: Sequence[BurnRateWindow] = DEFAULT_BURN_RATE_WINDOWS,
) -> list[BurnAlert]:
    """``burn_alerts`` over any way of counting a window (``stats_for(length)``)."""
    _require_objective(objective)
    alerts: list[BurnAlert] = []
    for window in windows:
        long_rate = burn_rate(stats_for(window.long), objective)
        short_rate = burn_rate(stats_for(window.short), objective)
        firing = _burns_at(long_rate, window.rate) and _burns_at(short_rate, window.rate)
        alerts.append(BurnAlert(window, long_rate, short_rate, firing))
    return alerts


@dataclass(frozen=True)
class EventCount:
    """Request-based: the events an evaluation counted (since the previous one)."""

    at: datetime
    good: int
    total: int


def request_stats(
    counts: Iterable[EventCount], end: datetime, length: timedelta, cadence: timedelta
) -> WindowStats:
    """Events counted by the evaluations with ``end - length < at <= end``, as slot-like
    stats: ``good`` and ``bad`` are events (so compliance = good events / events, and
    the budget is (1 - objective) x events); ``expected`` is the number of cadence slots.
    An evaluation recorded twice for one ``at`` counts once (the last given wins)."""
    _require_aware("end", end)
    _require_cadence(cadence)
    start = end - length
    latest: dict[datetime, EventCount] = {}
    for count in counts:
        _require_aware("count.at", count.at)
        if count.good < 0 or count.total < count.good:
            raise ValueError(f"event counts must satisfy 0 <= good <= total, got {count!r}")
        if start < count.at <= end:
            latest[count.at] = count
    good = sum(c.good for c in latest.values())
    total = sum(c.total for c in latest.values())
    expected = (end - _EPOCH) // cadence - (start - _EPOCH) // cadence
    return WindowStats(good=good, bad=total - good, unknown=0, expected=expected)


class SlotSeries:
    """One SLO's evaluations, ascending and one per instant, with prefix sums, so that
    the stats of any window ending at or before the newest one cost O(log n): an
    evaluation reads its window and six burn-rate windows; a 28-day back-fill does so
    2 688 times per SLO. Counts match ``window_stats`` / ``request_stats``."""

    def __init__(self, cadence: timedelta) -> None:
        _require_cadence(cadence)
        self.cadence = cadence
        self._at: list[datetime] = []
        # prefix sums: index i = totals of the first i evaluations
        self._sums: list[tuple[int, int, int, int, int]] = [(0, 0, 0, 0, 0)]

    def __len__(self) -> int:
        return len(self._at)

    def append(
        self, at: datetime, good: bool | None, events: tuple[int, int] | None = None
    ) -> None:
        """Add the evaluation at ``at`` (later than every one so far); ``events``: the
        (good, total) events it counted, for request-based SLIs."""
        _require_aware("at", at)
        if self._at and at <= self._at[-1]:
            raise ValueError(f"evaluations must be appended in order: {at} after {self._at[-1]}")
        g, b, u, eg, et = self._sums[-1]
        if events is not None and not 0 <= events[0] <= events[1]:
            raise ValueError(f"event counts must satisfy 0 <= good <= total, got {events!r}")
        good_events, total_events = events or (0, 0)
        self._at.append(at)
        self._sums.append(
            (
                g + (good is True),
                b + (good is False),
                u + (good is None),
                eg + good_events,
                et + total_events,
            )
        )

    def _range(self, end: datetime, length: timedelta) -> tuple[int, int]:
        import bisect

        _require_aware("end", end)
        return bisect.bisect_right(self._at, end - length), bisect.bisect_right(self._at, end)

    def _expected(self, end: datetime, length: timedelta) -> int:
        start = end - length
        return (end - _EPOCH) // self.cadence - (start - _EPOCH) // self.cadence

    def slots(self, end: datetime, length: timedelta) -> WindowStats:
        """Windows-based: as ``window_stats`` over these evaluations."""
        if length < self.cadence:
            raise ValueError(f"window length {length!r} is shorter than the cadence")
        lo, hi = self._range(end, length)
        a, b = self._sums[lo], self._sums[hi]
        return WindowStats(b[0] - a[0], b[1] - a[1], b[2] - a[2], self._expected(end, length))

    def events(self, end: datetime, length: timedelta) -> WindowStats:
        """Request-based: as ``request_stats`` over these evaluations' events."""
        lo, hi = self._range(end, length)
        a, b = self._sums[lo], self._sums[hi]
        good, total = b[3] - a[3], b[4] - a[4]
        return WindowStats(good, total - good, 0, self._expected(end, length))
