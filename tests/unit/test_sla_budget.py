"""Windows-based SLO arithmetic: flooring, window counts, budget, multiwindow burn rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.services.sla_budget import (
    DEFAULT_BURN_RATE_WINDOWS,
    Budget,
    BurnRateWindow,
    Evaluation,
    WindowStats,
    burn_alerts,
    burn_rate,
    floor_to_cadence,
    window_stats,
)

QUARTER = timedelta(minutes=15)
END = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
# 2.88 s slots: 1 h = 1250 slots, 6 h = 7500, 3 d = 90 000, 30 d = 900 000, so the SRE
# workbook's 99.9 % examples become whole numbers of bad slots.
FINE = timedelta(milliseconds=2880)


def series(
    end: datetime, cadence: timedelta, count: int, bad_last: int = 0, unknown_last: int = 0
) -> list[Evaluation]:
    """``count`` consecutive slots ending at ``end``; the newest ``bad_last`` are bad, the
    ``unknown_last`` before them unknown, the rest good."""
    evaluations = []
    for age in range(count):
        good: bool | None = True
        if age < bad_last:
            good = False
        elif age < bad_last + unknown_last:
            good = None
        evaluations.append(Evaluation(at=end - age * cadence, good=good))
    return evaluations


# --- floor_to_cadence -------------------------------------------------------------------


def test_floor_rounds_down_to_the_quarter():
    assert floor_to_cadence(datetime(2024, 5, 1, 10, 7, 59, tzinfo=UTC), QUARTER) == END


def test_floor_keeps_an_exact_boundary_and_drops_one_microsecond_before_it():
    assert floor_to_cadence(END, QUARTER) == END
    just_before = END - timedelta(microseconds=1)
    assert floor_to_cadence(just_before, QUARTER) == datetime(2024, 5, 1, 9, 45, tzinfo=UTC)


def test_floor_of_a_non_utc_instant_is_the_same_instant_floored_in_utc():
    # 15:37 at +05:30 is 10:07Z: flooring to 1 h since the epoch gives 10:00Z, whereas
    # flooring the local wall clock would give 15:00+05:30 = 09:30Z.
    india = timezone(timedelta(hours=5, minutes=30))
    floored = floor_to_cadence(datetime(2024, 5, 1, 15, 37, tzinfo=india), timedelta(hours=1))
    assert floored == END
    assert floored.utcoffset() == timedelta(0)


def test_floor_of_redeliveries_is_stable():
    first = floor_to_cadence(datetime(2024, 5, 1, 10, 0, 3, tzinfo=UTC), QUARTER)
    again = floor_to_cadence(datetime(2024, 5, 1, 10, 14, 59, 999999, tzinfo=UTC), QUARTER)
    assert first == again == END


def test_floor_rejects_naive_and_non_positive_cadence():
    with pytest.raises(ValueError, match="aware"):
        floor_to_cadence(datetime(2024, 5, 1, 10, 7), QUARTER)
    with pytest.raises(ValueError, match="cadence"):
        floor_to_cadence(END, timedelta(0))


# --- window_stats ------------------------------------------------------------------------


def test_window_includes_end_and_excludes_end_minus_length():
    evaluations = [
        Evaluation(at=END, good=False),  # in: at == end
        Evaluation(at=END - timedelta(minutes=45), good=True),  # in: oldest slot
        Evaluation(at=END - timedelta(hours=1), good=False),  # out: at == end - length
        Evaluation(at=END + QUARTER, good=False),  # out: after end
    ]
    stats = window_stats(evaluations, END, timedelta(hours=1), QUARTER)
    assert stats == WindowStats(good=1, bad=1, unknown=0, expected=4)


def test_expected_counts_slots_in_a_window_that_ends_between_slots():
    # (09:07, 10:07] holds the slots 09:15, 09:30, 09:45 and 10:00.
    end = datetime(2024, 5, 1, 10, 7, tzinfo=UTC)
    assert window_stats([], end, timedelta(hours=1), QUARTER).expected == 4
    assert window_stats([], END, timedelta(days=28), QUARTER).expected == 2688


def test_duplicates_count_once_and_the_last_wins():
    india = timezone(timedelta(hours=5, minutes=30))
    same_instant = END.astimezone(india)
    evaluations = [
        Evaluation(at=END, good=False),
        Evaluation(at=same_instant, good=True),  # redelivery, recorded in another zone
        Evaluation(at=END - QUARTER, good=None),
        Evaluation(at=END - QUARTER, good=False),
    ]
    stats = window_stats(evaluations, END, timedelta(hours=1), QUARTER)
    assert (stats.good, stats.bad, stats.unknown, stats.total) == (1, 1, 0, 2)
    assert stats.coverage == 0.5


def test_window_stats_validates_its_inputs():
    with pytest.raises(ValueError, match="cadence"):
        window_stats([], END, timedelta(hours=1), timedelta(0))
    with pytest.raises(ValueError, match="shorter than the cadence"):
        window_stats([], END, timedelta(minutes=14), QUARTER)
    with pytest.raises(ValueError, match="aware"):
        window_stats([], datetime(2024, 5, 1, 10), timedelta(hours=1), QUARTER)
    with pytest.raises(ValueError, match="aware"):
        window_stats([Evaluation(datetime(2024, 5, 1), True)], END, timedelta(hours=1), QUARTER)


# --- Budget ------------------------------------------------------------------------------


def test_28_day_99_percent_budget_with_20_bad_slots():
    stats = window_stats(series(END, QUARTER, 2688, bad_last=20), END, timedelta(days=28), QUARTER)
    assert stats == WindowStats(good=2668, bad=20, unknown=0, expected=2688)
    assert stats.compliance == pytest.approx(2668 / 2688)
    budget = Budget(objective=0.99, stats=stats, window=timedelta(days=28))
    assert budget.allowed_bad == pytest.approx(26.88)
    assert budget.remaining_fraction == pytest.approx(1 - 20 / 26.88)  # 0.2560
    # Budget 1 % of 40 320 min = 403.2 min; 20 slots * 15 min = 300 min spent.
    assert budget.remaining_minutes == pytest.approx(103.2)
    assert not budget.exhausted


def test_unknowns_count_against_compliance_and_budget_but_are_reported_apart():
    evaluations = series(END, QUARTER, 2688, bad_last=10, unknown_last=10)
    stats = window_stats(evaluations, END, timedelta(days=28), QUARTER)
    assert (stats.good, stats.bad, stats.unknown) == (2668, 10, 10)
    assert stats.compliance == pytest.approx(2668 / 2688)
    assert stats.error_ratio == pytest.approx(20 / 2688)
    budget = Budget(objective=0.99, stats=stats, window=timedelta(days=28))
    assert budget.remaining_fraction == pytest.approx(1 - 20 / 26.88)


def test_budget_overspent_goes_negative_and_exactly_spent_is_exhausted():
    overspent = Budget(0.99, WindowStats(good=2658, bad=30, unknown=0, expected=2688), QUARTER)
    assert overspent.remaining_fraction == pytest.approx(1 - 30 / 26.88)
    assert overspent.remaining_fraction < 0
    assert overspent.exhausted
    # (1 - 0.99) * 100 is 1.0000000000000009 in floats: one bad slot spends it all.
    exact = Budget(0.99, WindowStats(good=99, bad=1, unknown=0, expected=100), QUARTER)
    assert exact.exhausted


def test_30_day_999_budget_two_percent_burned_in_one_hour():
    # 30 d at 2.88 s = 900 000 slots, 900 allowed; 18 bad slots = 2 % of the budget.
    stats = WindowStats(good=899_982, bad=18, unknown=0, expected=900_000)
    budget = Budget(objective=0.999, stats=stats, window=timedelta(days=30))
    assert budget.allowed_bad == pytest.approx(900)
    assert budget.remaining_fraction == pytest.approx(0.98)
    assert budget.remaining_minutes == pytest.approx(0.98 * 43.2)


def test_objective_is_validated_everywhere():
    stats = WindowStats(good=1, bad=0, unknown=0, expected=1)
    for objective in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="objective"):
            Budget(objective=objective, stats=stats, window=QUARTER)
        with pytest.raises(ValueError, match="objective"):
            burn_rate(stats, objective)
        with pytest.raises(ValueError, match="objective"):
            burn_alerts([], END, QUARTER, objective)


# --- burn rates (SRE workbook ch. 5, 30-day 99.9 % SLO) -----------------------------------


def test_two_percent_of_budget_in_one_hour_is_burn_rate_14_4_and_fires():
    end = floor_to_cadence(END, FINE)
    # 0.02 * 720 h / 1 h = 14.4: 18 bad of 1250 slots is an error ratio of 0.0144.
    evaluations = series(end, FINE, 1250, bad_last=18)
    stats = window_stats(evaluations, end, timedelta(hours=1), FINE)
    assert (stats.bad, stats.total, stats.expected) == (18, 1250, 1250)
    assert burn_rate(stats, 0.999) == pytest.approx(14.4)
    first = burn_alerts(evaluations, end, FINE, 0.999)[0]
    assert first.window == DEFAULT_BURN_RATE_WINDOWS[0]
    assert first.long_rate == pytest.approx(14.4)
    assert first.short_rate is not None and first.short_rate > 14.4
    # 18/1250/(1-0.999) is 14.399999999999986: an exact threshold must still fire.
    assert first.firing


def test_one_slot_fewer_than_two_percent_does_not_fire():
    end = floor_to_cadence(END, FINE)
    first = burn_alerts(series(end, FINE, 1250, bad_last=17), end, FINE, 0.999)[0]
    assert first.long_rate == pytest.approx(17 / 1250 / 0.001)  # 13.6
    assert not first.firing


def test_five_percent_in_six_hours_is_6_and_ten_percent_in_three_days_is_1():
    end = floor_to_cadence(END, FINE)
    six_hours = window_stats(series(end, FINE, 7500, bad_last=45), end, timedelta(hours=6), FINE)
    assert burn_rate(six_hours, 0.999) == pytest.approx(6.0)  # 0.05 * 720 / 6
    three_days = window_stats(series(end, FINE, 90_000, bad_last=90), end, timedelta(days=3), FINE)
    assert burn_rate(three_days, 0.999) == pytest.approx(1.0)  # 0.1 * 720 / 72


def test_long_window_burning_but_short_window_recovered_does_not_fire():
    # 1 h = 4 slots; the bad one is 30 min old, the newest (short window) is good.
    evaluations = series(END, QUARTER, 4)
    evaluations[2] = Evaluation(at=END - 2 * QUARTER, good=False)
    first = burn_alerts(evaluations, END, QUARTER, 0.999)[0]
    assert first.long_rate == pytest.approx(250.0)  # 1/4 / 0.001
    assert first.short_rate == pytest.approx(0.0)
    assert not first.firing


def test_both_windows_burning_fires_each_pair():
    evaluations = series(END, QUARTER, 288, bad_last=1)  # 3 d of slots, newest bad
    alerts = burn_alerts(evaluations, END, QUARTER, 0.999)
    assert [a.window for a in alerts] == list(DEFAULT_BURN_RATE_WINDOWS)
    rates = [(a.long_rate, a.short_rate) for a in alerts]
    assert rates == [
        pytest.approx((250.0, 1000.0)),  # 1/4, 1/1
        pytest.approx((1000 / 24, 250.0)),  # 1/24, 1/4
        pytest.approx((1000 / 288, 1000 / 24)),  # 1/288, 1/24
    ]
    assert all(a.firing for a in alerts)


def test_unknown_slots_burn_budget_and_can_fire():
    evaluations = series(END, QUARTER, 4, unknown_last=1)
    first = burn_alerts(evaluations, END, QUARTER, 0.999)[0]
    assert first.short_rate == pytest.approx(1000.0)
    assert first.firing


def test_empty_window_has_no_compliance_full_budget_and_no_alert():
    stats = window_stats([], END, timedelta(hours=1), QUARTER)
    assert stats == WindowStats(good=0, bad=0, unknown=0, expected=4)
    assert stats.compliance is None
    assert stats.error_ratio is None
    assert stats.coverage == 0.0
    budget = Budget(objective=0.99, stats=stats, window=timedelta(days=28))
    assert budget.remaining_fraction == 1.0
    assert budget.remaining_minutes == pytest.approx(403.2)
    assert not budget.exhausted
    assert burn_rate(stats, 0.99) is None
    alerts = burn_alerts([], END, QUARTER, 0.99)
    assert len(alerts) == 3
    assert all(a.long_rate is None and a.short_rate is None and not a.firing for a in alerts)


def test_burn_rate_window_rejects_a_short_window_longer_than_the_long_one():
    with pytest.raises(ValueError, match="shorter than short"):
        BurnRateWindow(long=timedelta(minutes=5), short=timedelta(hours=1), rate=14.4)
