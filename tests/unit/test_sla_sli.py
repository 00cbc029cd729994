"""Each SLI kind's value at one instant from gathered inputs (shared/services/sla_sli.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

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
from shared.services.sla_sli import (
    AggregateKey,
    DrillSummary,
    Inputs,
    Unavailable,
    compute,
    sli_availability,
    sli_detection,
    sli_freshness,
    sli_ratio,
    sli_recovery_time,
    sli_threshold,
    threshold_since,
)

AT = datetime(2024, 5, 7, 10, 0, tzinfo=UTC)
Q = timedelta(minutes=15)
T1, T2, T3 = "nba_analytics.t1", "nba_analytics.t2", "nba_precompute.t3"


def freshness(**fields: Any) -> FreshnessSli:
    return FreshnessSli.model_validate({"kind": "freshness", **fields})


def threshold(**fields: Any) -> ThresholdSli:
    body = {
        "kind": "threshold",
        "table": "nba_predictions.prediction_accuracy",
        "column": "absolute_error",
        "time_column": "game_date",
        "bound": 4.5,
        **fields,
    }
    return ThresholdSli.model_validate(body)


def recovery(**fields: Any) -> RecoveryTimeSli:
    return RecoveryTimeSli.model_validate({"kind": "recovery_time", **fields})


def slo(sli: dict[str, Any], objective: float = 0.99) -> Slo:
    return Slo.model_validate(
        {"name": "s", "description": "d", "objective": objective, "severity": "P2", "sli": sli}
    )


def day(
    d: date, count: int, total: float, lo: float | None = None, hi: float | None = None
) -> DailyAggregate:
    return DailyAggregate(day=d, count=count, total=total, minimum=lo, maximum=hi)


# --- freshness --------------------------------------------------------------------------


def test_freshness_all_tables_within_max_age_is_good_with_the_worst_age() -> None:
    # limit 24 h; ages 3.25 h and 20.5 h: good, value = the worst (20.5)
    inputs = Inputs(at=AT, freshness={T1: 3.25, T2: 20.5})
    result = sli_freshness(freshness(), inputs, [T1, T2])
    assert result.good is True
    assert result.value == 20.5
    assert result.detail["max_age_hours"] == 24.0
    assert result.detail["ages_hours"] == {T1: 3.25, T2: 20.5}


def test_freshness_one_stale_table_is_bad_and_named() -> None:
    inputs = Inputs(at=AT, freshness={T1: 3.0, T2: 30.5, T3: 1.0})
    result = sli_freshness(freshness(), inputs, [T1, T2, T3])
    assert result.good is False
    assert result.value == 30.5
    assert result.detail["stale"] == [T2]
    assert result.detail["missing"] == []


def test_freshness_max_age_is_configurable() -> None:
    # the same 20.5 h is stale under a 12 h limit
    inputs = Inputs(at=AT, freshness={T1: 20.5})
    result = sli_freshness(freshness(max_age={"count": 12, "period": "hour"}), inputs, [T1])
    assert result.good is False
    assert result.detail["stale"] == [T1]


def test_freshness_a_missing_table_is_bad_and_listed_as_missing() -> None:
    # age None: the table (or its dataset) does not exist; value = worst measured age
    inputs = Inputs(at=AT, freshness={T1: 3.0, T2: None})
    result = sli_freshness(freshness(), inputs, [T1, T2])
    assert result.good is False
    assert result.detail["missing"] == [T2]
    assert result.detail["stale"] == []
    assert result.value == 3.0


def test_freshness_unavailable_is_unknown_never_good() -> None:
    inputs = Inputs(at=AT, freshness=Unavailable("warehouse down"))
    result = sli_freshness(freshness(), inputs, [T1])
    assert result.good is None
    assert result.value is None
    assert result.detail["unknown"] == "warehouse down"


def test_freshness_not_gathered_is_unknown() -> None:
    assert sli_freshness(freshness(), Inputs(at=AT), [T1]).good is None


def test_freshness_a_configured_table_absent_from_the_ages_is_unknown() -> None:
    inputs = Inputs(at=AT, freshness={T1: 1.0})
    result = sli_freshness(freshness(), inputs, [T1, T2])
    assert result.good is None
    assert result.detail["tables"] == [T2]


def test_freshness_named_subset_ignores_the_other_tables() -> None:
    # T2 is stale and T3 unmeasured, but the SLO only names T1
    inputs = Inputs(at=AT, freshness={T1: 2.0, T2: 99.0})
    subset = slo({"kind": "freshness", "tables": [T1]})
    result = compute(subset, inputs, freshness_configured=[T1, T2, T3], ratio_since=AT - Q)
    assert result.good is True
    assert result.value == 2.0
    assert list(result.detail["ages_hours"]) == [T1]
    # without the subset the configured tables apply: T2 is stale
    every = slo({"kind": "freshness"})
    result = compute(every, inputs, freshness_configured=[T1, T2], ratio_since=AT - Q)
    assert result.good is False
    assert result.detail["stale"] == [T2]


# --- availability -----------------------------------------------------------------------

AVAILABILITY = AvailabilitySli.model_validate(
    {"kind": "availability", "checks": ["freshness", "backups", "dependencies"]}
)


def test_availability_a_failing_check_is_bad() -> None:
    checks = {"freshness": "pass", "backups": "fail", "dependencies": "pass"}
    result = sli_availability(AVAILABILITY, Inputs(at=AT, checks=checks))
    assert result.good is False
    assert result.value == 0.0
    assert result.detail["failing"] == ["backups"]


def test_availability_a_check_that_could_not_run_is_unknown() -> None:
    checks = {"freshness": "pass", "backups": "error", "dependencies": "pass"}
    result = sli_availability(AVAILABILITY, Inputs(at=AT, checks=checks))
    assert result.good is None
    assert "backups" in result.detail["unknown"]


def test_availability_an_error_and_a_failure_is_bad() -> None:
    # another check failing decides it: the interval was bad whatever the errored one says
    checks = {"freshness": "error", "backups": "fail", "dependencies": "pass"}
    result = sli_availability(AVAILABILITY, Inputs(at=AT, checks=checks))
    assert result.good is False
    assert result.detail["failing"] == ["backups"]


def test_availability_warn_is_not_failing() -> None:
    checks = {"freshness": "warn", "backups": "pass", "dependencies": "warn"}
    result = sli_availability(AVAILABILITY, Inputs(at=AT, checks=checks))
    assert result.good is True
    assert result.value == 1.0


def test_availability_a_configured_check_that_did_not_report_counts_as_error() -> None:
    checks = {"freshness": "pass", "backups": "pass"}  # dependencies missing
    result = sli_availability(AVAILABILITY, Inputs(at=AT, checks=checks))
    assert result.good is None
    assert result.detail["checks"]["dependencies"] == "error"


def test_availability_only_the_configured_checks_count() -> None:
    sli = AvailabilitySli.model_validate({"kind": "availability", "checks": ["freshness"]})
    checks = {"freshness": "pass", "backups": "fail"}
    assert sli_availability(sli, Inputs(at=AT, checks=checks)).good is True


def test_availability_without_checks_is_unknown() -> None:
    assert sli_availability(AVAILABILITY, Inputs(at=AT)).good is None


# --- ratio ------------------------------------------------------------------------------

RATIO = RatioSli.model_validate({"kind": "ratio"})
SINCE = AT - Q  # 09:45; the interval is (09:45, 10:00]
BUCKETS = [
    RunBucket(end=SINCE, phase="p1", runs=10, succeeded=0),  # ends at since: out
    RunBucket(end=SINCE + timedelta(minutes=5), phase="p1", runs=4, succeeded=3),  # in
    RunBucket(end=AT, phase="p2", runs=6, succeeded=6),  # ends at at: in
    RunBucket(end=AT + Q, phase="p1", runs=10, succeeded=0),  # after at: out
]


def test_ratio_counts_only_buckets_in_since_at() -> None:
    # in: p1 3/4 and p2 6/6 -> 9/10 = 0.9
    result = sli_ratio(RATIO, Inputs(at=AT, runs=BUCKETS), SINCE, objective=0.95)
    assert (result.good_events, result.total_events) == (9, 10)
    assert result.value == 0.9
    assert result.detail["phases"] == {"p1": [3, 4], "p2": [6, 6]}
    assert result.detail["since"] == SINCE.isoformat()


def test_ratio_good_compares_the_interval_ratio_with_the_objective() -> None:
    inputs = Inputs(at=AT, runs=BUCKETS)
    assert sli_ratio(RATIO, inputs, SINCE, objective=0.95).good is False  # 0.9 < 0.95
    assert sli_ratio(RATIO, inputs, SINCE, objective=0.9).good is True  # 0.9 >= 0.9


def test_ratio_phases_filter() -> None:
    sli = RatioSli.model_validate({"kind": "ratio", "phases": ["p2"]})
    result = sli_ratio(sli, Inputs(at=AT, runs=BUCKETS), SINCE, objective=0.95)
    assert (result.good_events, result.total_events) == (6, 6)
    assert result.value == 1.0
    assert result.detail["phases"] == {"p2": [6, 6]}


def test_ratio_without_runs_is_good_with_no_value_and_zero_events() -> None:
    result = sli_ratio(RATIO, Inputs(at=AT, runs=[]), SINCE, objective=0.95)
    assert result.good is True
    assert result.value is None
    assert (result.good_events, result.total_events) == (0, 0)


def test_ratio_longer_interval_counts_more_buckets() -> None:
    # since one hour back: the bucket at 09:45 is in too -> 9/20 = 0.45
    result = sli_ratio(RATIO, Inputs(at=AT, runs=BUCKETS), AT - 4 * Q, objective=0.95)
    assert (result.good_events, result.total_events) == (9, 20)
    assert result.value == 0.45


def test_ratio_unavailable_or_unread_runs_are_unknown() -> None:
    down = sli_ratio(RATIO, Inputs(at=AT, runs=Unavailable("timeout")), SINCE, 0.95)
    assert (down.good, down.total_events) == (None, None)
    assert down.detail["unknown"] == "timeout"
    assert sli_ratio(RATIO, Inputs(at=AT), SINCE, 0.95).good is None


def test_compute_passes_ratio_since_and_the_objective() -> None:
    inputs = Inputs(at=AT, runs=BUCKETS)
    result = compute(
        slo({"kind": "ratio"}, objective=0.4),
        inputs,
        freshness_configured=[],
        ratio_since=AT - 4 * Q,
    )
    assert (result.good, result.total_events, result.value) == (True, 20, 0.45)


# --- threshold --------------------------------------------------------------------------

MAY = [date(2024, 5, d) for d in range(1, 9)]  # MAY[0] = May 1 ... MAY[6] = May 7 (AT's day)


def test_threshold_since_is_the_first_day_of_the_window_ending_today_utc() -> None:
    # 7 days ending 2024-05-07: May 1 .. May 7
    assert threshold_since(threshold(days=7), AT) == datetime(2024, 5, 1, tzinfo=UTC)
    assert threshold_since(threshold(days=1), AT) == datetime(2024, 5, 7, tzinfo=UTC)


def test_threshold_since_of_a_non_utc_instant_is_the_utc_day() -> None:
    # 2024-05-08T01:00+05:00 is 2024-05-07T20:00Z: today UTC is May 7
    east = datetime(2024, 5, 8, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    assert threshold_since(threshold(days=1), east) == datetime(2024, 5, 7, tzinfo=UTC)


def test_threshold_avg_combines_daily_sums_and_counts() -> None:
    # day 1: one row of 10 (avg 10); day 2: nine rows summing 9 (avg 1).
    # avg over the rows = 19 / 10 = 1.9 (good, < 4.5); the average of the daily
    # averages would be (10 + 1) / 2 = 5.5 (bad): the two must not be confused.
    sli = threshold(days=7)
    data = [day(MAY[0], 1, 10.0, 10.0, 10.0), day(MAY[1], 9, 9.0, 1.0, 1.0)]
    inputs = Inputs(at=AT, aggregates={AggregateKey.of(sli): data})
    result = sli_threshold(sli, inputs)
    assert result.value == 1.9
    assert result.good is True
    assert result.detail["rows"] == 10


def test_threshold_days_window_boundaries() -> None:
    # 7 days ending May 7: April 30 is out, May 1 and May 7 are in, May 8 is out.
    # in: 2 rows summing 4 + 3 rows summing 9 -> avg 13 / 5 = 2.6
    sli = threshold(days=7)
    data = [
        day(date(2024, 4, 30), 100, 1000.0),
        day(MAY[0], 2, 4.0),
        day(MAY[6], 3, 9.0),
        day(MAY[7], 100, 1000.0),
    ]
    result = sli_threshold(sli, Inputs(at=AT, aggregates={AggregateKey.of(sli): data}))
    assert result.detail["rows"] == 5
    assert result.value == 2.6


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("max", 9.0), ("min", 0.5), ("sum", 30.0)],
)
def test_threshold_max_min_sum(aggregate: str, expected: float) -> None:
    sli = threshold(aggregate=aggregate, days=7, bound=1000)
    data = [day(MAY[2], 4, 10.0, 0.5, 9.0), day(MAY[3], 5, 20.0, 1.0, 7.0)]
    result = sli_threshold(sli, Inputs(at=AT, aggregates={AggregateKey.of(sli): data}))
    assert result.value == expected


def test_threshold_good_when_below_or_above() -> None:
    data = [day(MAY[6], 2, 10.0)]  # avg 5.0
    below = threshold(bound=4.5, good_when="below")
    above = threshold(bound=4.5, good_when="above")
    key = AggregateKey.of(below)
    assert sli_threshold(below, Inputs(at=AT, aggregates={key: data})).good is False
    assert sli_threshold(above, Inputs(at=AT, aggregates={key: data})).good is True


def test_threshold_at_the_bound_is_not_below_it() -> None:
    # "MAE < 4.5": exactly 4.5 is bad
    sli = threshold(bound=4.5)
    data = [day(MAY[6], 2, 9.0)]
    assert sli_threshold(sli, Inputs(at=AT, aggregates={AggregateKey.of(sli): data})).good is False


def test_threshold_without_rows_is_unknown() -> None:
    sli = threshold(days=7)
    key = AggregateKey.of(sli)
    outside = [day(date(2024, 4, 1), 50, 100.0)]
    for data in ([], outside, [day(MAY[6], 0, 0.0)]):
        result = sli_threshold(sli, Inputs(at=AT, aggregates={key: data}))
        assert result.good is None
        assert result.detail["rows"] == 0


def test_threshold_not_queried_or_unavailable_is_unknown() -> None:
    sli = threshold()
    assert sli_threshold(sli, Inputs(at=AT)).good is None
    down = Inputs(at=AT, aggregates={AggregateKey.of(sli): Unavailable("quota")})
    assert sli_threshold(sli, down).detail["unknown"] == "quota"


def test_threshold_reports_the_baseline_beside_the_value() -> None:
    # avg 4.4 against the 4.27 baseline: +0.13
    sli = threshold(baseline=4.27)
    data = [day(MAY[6], 5, 22.0)]
    result = sli_threshold(sli, Inputs(at=AT, aggregates={AggregateKey.of(sli): data}))
    assert result.value == 4.4
    assert result.good is True
    assert result.detail["baseline"] == 4.27
    assert result.detail["vs_baseline"] == pytest.approx(0.13)


# --- recovery_time ----------------------------------------------------------------------


def drill(
    age: timedelta = timedelta(days=2),
    *,
    passed: bool = True,
    hours: float | None = 1.5,
    error: str | None = None,
) -> DrillSummary:
    finished = AT - age
    return DrillSummary(finished.date(), finished, passed, hours, error)


def test_recovery_a_fresh_passed_drill_under_max_hours_is_good() -> None:
    result = sli_recovery_time(recovery(), Inputs(at=AT, drill=drill(), drill_looked_up=True))
    assert result.good is True
    assert result.value == 1.5
    assert result.detail["drill_age_hours"] == 48.0
    assert "problem" not in result.detail


def test_recovery_a_failed_drill_is_bad_with_its_error() -> None:
    failed = drill(passed=False, error="row count mismatch in nba_analytics.t1")
    result = sli_recovery_time(recovery(), Inputs(at=AT, drill=failed, drill_looked_up=True))
    assert result.good is False
    assert "row count mismatch in nba_analytics.t1" in result.detail["problem"]


def test_recovery_a_drill_older_than_allowed_is_bad() -> None:
    # 9 days old, limit 8 days (192 h)
    old = drill(age=timedelta(days=9))
    result = sli_recovery_time(recovery(), Inputs(at=AT, drill=old, drill_looked_up=True))
    assert result.good is False
    assert "216 h old" in result.detail["problem"]


def test_recovery_projected_at_or_over_max_hours_is_bad() -> None:
    for hours in (8.0, 9.25):
        slow = drill(hours=hours)
        result = sli_recovery_time(
            recovery(max_hours=8), Inputs(at=AT, drill=slow, drill_looked_up=True)
        )
        assert result.good is False
        assert result.value == hours
        assert "projected" in result.detail["problem"]
    just_under = drill(hours=7.99)
    assert sli_recovery_time(recovery(), Inputs(at=AT, drill=just_under)).good is True


def test_recovery_a_drill_without_projection_is_bad() -> None:
    result = sli_recovery_time(recovery(), Inputs(at=AT, drill=drill(hours=None)))
    assert result.good is False
    assert result.value is None


def test_recovery_no_drill_recorded_is_bad_once_looked_up() -> None:
    result = sli_recovery_time(recovery(), Inputs(at=AT, drill=None, drill_looked_up=True))
    assert result.good is False
    assert result.detail["problem"] == "no restore drill recorded"


def test_recovery_not_looked_up_or_unavailable_is_unknown() -> None:
    assert sli_recovery_time(recovery(), Inputs(at=AT)).good is None
    down = Inputs(at=AT, drill=Unavailable("bucket unreachable"), drill_looked_up=True)
    assert sli_recovery_time(recovery(), down).good is None


# --- detection --------------------------------------------------------------------------


def _incident(minutes_late: float, notified_ago: timedelta) -> Detection:
    notified = AT - notified_ago
    return Detection("f" * 32, notified - timedelta(minutes=minutes_late), notified)


def test_detection_counts_the_incidents_first_notified_in_the_interval() -> None:
    sli = DetectionSli.model_validate({"kind": "detection", "max_minutes": 30})
    found = [
        _incident(12, timedelta(minutes=5)),  # in (AT - Q, AT]: 12 min, within 30
        _incident(45, timedelta(minutes=1)),  # in: 45 min late
        _incident(2, Q),  # exactly at since: out (the previous interval counted it)
        _incident(1, timedelta(hours=2)),  # long before: out
    ]
    result = sli_detection(sli, Inputs(at=AT, detections=found), AT - Q)
    # 2 incidents, 1 within 30 min: a bad interval, events 1 of 2, worst 45 min
    assert (result.good, result.good_events, result.total_events) == (False, 1, 2)
    assert result.value == 45.0
    assert result.detail["late"] == 1 and result.detail["minutes"] == [12.0, 45.0]
    # no incident: a good interval without events (nothing was late)
    quiet = sli_detection(sli, Inputs(at=AT, detections=[]), AT - Q)
    assert (quiet.good, quiet.value, quiet.total_events) == (True, None, 0)
    # exactly 30 minutes is in time
    on_time = sli_detection(sli, Inputs(at=AT, detections=[_incident(30, Q / 2)]), AT - Q)
    assert on_time.good is True


def test_detection_without_the_ledger_is_unknown() -> None:
    sli = DetectionSli.model_validate({"kind": "detection"})
    assert sli_detection(sli, Inputs(at=AT), AT - Q).good is None
    down = Inputs(at=AT, detections=Unavailable("bucket unreachable"))
    result = sli_detection(sli, down, AT - Q)
    assert result.good is None and "bucket unreachable" in result.detail["unknown"]
    via_compute = compute(
        slo({"kind": "detection"}), down, freshness_configured=[T1], ratio_since=AT - Q
    )
    assert via_compute.good is None
