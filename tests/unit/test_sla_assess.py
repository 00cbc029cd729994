"""One SLO at one instant: window, budget, burn rates, state, transitions, replay
(shared/services/sla_assess.py) and the new parts of shared/services/sla_budget.py
(``SlotSeries``, ``request_stats``, ``burn_alerts_over``, ``Budget(base="expected")``).

Hand-computed numbers follow the SRE workbook (ch. 2 and 5): 28 d at a 15-min cadence is
2 688 slots; 99 % leaves 1 % of them = 26.88 slots = 403.2 min of allowed bad time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.config import Slo, parse_settings
from shared.errors import ConfigError
from shared.models import EvaluationRecord
from shared.services.sla_assess import (
    Assessment,
    SloState,
    Transition,
    assess,
    burn_windows,
    duration_label,
    latest_per_instant,
    ratio_since,
    transitions,
)
from shared.services.sla_budget import (
    DEFAULT_BURN_RATE_WINDOWS,
    Budget,
    BurnRateWindow,
    Evaluation,
    EventCount,
    SlotSeries,
    WindowStats,
    burn_alerts_over,
    request_stats,
    window_stats,
)
from shared.services.sla_sli import SliResult

AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
Q = timedelta(minutes=15)
H = timedelta(hours=1)
RECORDED = AT + timedelta(seconds=30)
WINDOWS = DEFAULT_BURN_RATE_WINDOWS
ALL_PAIRS = ("1h/15m", "6h/1h", "3d/6h")

GOOD = SliResult(True, 1.0)
BAD = SliResult(False, 0.0)
UNKNOWN = SliResult(None, None, detail={"unknown": "warehouse down"})


def make_slo(sli: dict[str, Any], objective: float = 0.99, **fields: Any) -> Slo:
    body = {"name": "s", "description": "d", "objective": objective, "severity": "P1"}
    return Slo.model_validate({**body, **fields, "sli": sli})


AVAIL = make_slo({"kind": "availability"})
FRESH = make_slo({"kind": "freshness"})
RATIO = make_slo({"kind": "ratio"}, objective=0.95)
THRESHOLD = make_slo(
    {"kind": "threshold", "table": "a.b", "column": "c", "time_column": "t", "bound": 4.5}
)
RECOVERY = make_slo({"kind": "recovery_time"})
DETECT = make_slo({"kind": "detection"}, objective=0.95)


def row(
    slo: Slo,
    at: datetime,
    good: bool | None,
    *,
    events: tuple[int, int] | None = None,
    breaching: bool = False,
    exhausted: bool = False,
    burning: Sequence[str] = (),
    recorded_at: datetime | None = None,
) -> EvaluationRecord:
    good_events, total_events = events if events is not None else (None, None)
    return EvaluationRecord(
        at=at,
        slo=slo.name,
        kind=slo.sli.kind,
        good=good,
        value=None,
        good_events=good_events,
        total_events=total_events,
        compliance=None,
        budget_remaining=None,
        breaching=breaching,
        exhausted=exhausted,
        burning=tuple(burning),
        detail="{}",
        recorded_at=recorded_at or at + timedelta(seconds=30),
    )


def back(slo: Slo, count: int, good: bool | None = True, **state: Any) -> list[EvaluationRecord]:
    """``count`` rows at AT - Q, AT - 2Q, ...; ``state`` goes on the newest (AT - Q)."""
    return [row(slo, AT - i * Q, good, **(state if i == 1 else {})) for i in range(1, count + 1)]


def ratio_result(good: int, total: int, objective: float = 0.95) -> SliResult:
    value = good / total if total else None
    return SliResult(value is None or value >= objective, value, good, total)


def run(
    slo: Slo,
    result: SliResult | EvaluationRecord,
    history: Sequence[EvaluationRecord] = (),
    *,
    at: datetime = AT,
    windows: Sequence[BurnRateWindow] = WINDOWS,
) -> Assessment:
    return assess(
        slo, result, list(history), at=at, cadence=Q, windows=windows, recorded_at=RECORDED
    )


# --- Budget(base="expected") ------------------------------------------------------------


def test_expected_base_budget_is_a_share_of_the_windows_slots() -> None:
    # one bad slot out of 2 688 expected: allowed 0.01 x 2688 = 26.88 slots,
    # remaining 1 - 1/26.88 = 0.96280; in minutes 0.96280 x 403.2 = 388.2 = 403.2 - 15
    stats = WindowStats(good=0, bad=1, unknown=0, expected=2688)
    budget = Budget(0.99, stats, timedelta(days=28), "expected")
    assert budget.allowed_bad == pytest.approx(26.88)
    assert budget.remaining_fraction == pytest.approx(1 - 1 / 26.88)
    assert budget.remaining_minutes == pytest.approx(388.2)
    assert not budget.exhausted
    # base "total": the same slot is the whole budget of one evaluation, 100 times over
    total = Budget(0.99, stats, timedelta(days=28))
    assert total.allowed_bad == pytest.approx(0.01)
    assert total.remaining_fraction == pytest.approx(-99.0)


def test_expected_base_never_falls_below_the_evaluated_slots() -> None:
    # more evaluations than slots (a window ending between slots): the base is 10, not 4
    stats = WindowStats(good=9, bad=1, unknown=0, expected=4)
    budget = Budget(0.9, stats, H, "expected")
    assert budget.allowed_bad == pytest.approx(1.0)
    assert budget.exhausted  # 1 bad of 1 allowed: exactly spent


def test_expected_base_is_exhausted_after_27_bad_slots_of_28_days() -> None:
    # 26 bad: 1 - 26/26.88 = 0.0327 left; 27 bad: 1 - 27/26.88 = -0.0045, spent
    window = timedelta(days=28)
    at_26 = Budget(0.99, WindowStats(0, 26, 0, 2688), window, "expected")
    at_27 = Budget(0.99, WindowStats(0, 26, 1, 2688), window, "expected")  # unknown counts
    assert at_26.remaining_fraction == pytest.approx(0.032738, abs=1e-6)
    assert not at_26.exhausted
    assert at_27.remaining_fraction == pytest.approx(-0.004464, abs=1e-6)
    assert at_27.exhausted


def test_budget_rejects_an_unknown_base() -> None:
    with pytest.raises(ValueError, match="base"):
        Budget(0.99, WindowStats(1, 0, 0, 1), H, "events")


# --- request_stats ----------------------------------------------------------------------


def test_request_stats_counts_the_events_of_evaluations_in_the_half_open_window() -> None:
    # window (09:00, 10:00]: the count at 09:00 is out, the one at 10:00 in, 10:15 out
    counts = [
        EventCount(AT - H, 50, 100),
        EventCount(AT - 3 * Q, 9, 10),
        EventCount(AT, 18, 20),
        EventCount(AT + Q, 0, 100),
    ]
    # good 9 + 18 = 27, total 30: bad 3; 4 slots expected
    assert request_stats(counts, AT, H, Q) == WindowStats(good=27, bad=3, unknown=0, expected=4)


def test_request_stats_duplicates_count_once_the_last_wins() -> None:
    counts = [EventCount(AT, 1, 10), EventCount(AT, 18, 20)]
    assert request_stats(counts, AT, Q, Q) == WindowStats(18, 2, 0, 1)


def test_request_stats_validates_counts_and_instants() -> None:
    with pytest.raises(ValueError, match="good <= total"):
        request_stats([EventCount(AT, 5, 3)], AT, H, Q)
    with pytest.raises(ValueError, match="good <= total"):
        request_stats([EventCount(AT, -1, 3)], AT, H, Q)
    with pytest.raises(ValueError, match="aware"):
        request_stats([], datetime(2024, 5, 1, 10), H, Q)


# --- burn_alerts_over -------------------------------------------------------------------


def test_burn_alerts_over_reads_each_pairs_long_and_short_window() -> None:
    # 99.9 % of events, so a burn rate is error ratio / 0.001:
    # 1h: 15/1000 -> 15, 15m: 3/200 -> 15: both >= 14.4, fires
    # 6h: 30/6000 -> 5 < 6 (its short 1h burns at 15): does not fire
    # 3d: 80/72000 -> 1.11, 6h: 5: both >= 1, fires
    by_length = {
        H: WindowStats(985, 15, 0, 4),
        Q: WindowStats(197, 3, 0, 1),
        6 * H: WindowStats(5970, 30, 0, 24),
        timedelta(days=3): WindowStats(71920, 80, 0, 288),
    }
    asked: list[timedelta] = []

    def stats_for(length: timedelta) -> WindowStats:
        asked.append(length)
        return by_length[length]

    alerts = burn_alerts_over(stats_for, 0.999, WINDOWS)
    assert [a.firing for a in alerts] == [True, False, True]
    assert alerts[0].long_rate == pytest.approx(15.0)
    assert alerts[0].short_rate == pytest.approx(15.0)
    assert alerts[1].long_rate == pytest.approx(5.0)
    assert alerts[2].long_rate == pytest.approx(80 / 72000 / 0.001)
    assert set(asked) == set(by_length)


def test_burn_alerts_over_an_empty_window_never_fires() -> None:
    alerts = burn_alerts_over(lambda length: WindowStats(0, 0, 0, 4), 0.99, WINDOWS)
    assert [(a.long_rate, a.short_rate, a.firing) for a in alerts] == [(None, None, False)] * 3


# --- SlotSeries -------------------------------------------------------------------------

STEPS = [Q, Q, Q, Q, 2 * Q, 5 * Q, timedelta(minutes=7), timedelta(minutes=8), 6 * H]
LENGTHS = [Q, timedelta(minutes=37), H, 6 * H, timedelta(days=3), timedelta(days=28)]
INDIA = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slot_series_equals_window_stats_and_request_stats(seed: int) -> None:
    rng = random.Random(seed)
    series = SlotSeries(Q)
    evaluations: list[Evaluation] = []
    counts: list[EventCount] = []
    at = datetime(2024, 4, 1, tzinfo=UTC)
    for _ in range(500):
        at += rng.choice(STEPS)  # on the grid mostly, sometimes between slots, some gaps
        good = rng.choice([True, True, True, False, None])
        events = None
        if rng.random() < 0.8:
            total = rng.randint(0, 40)
            events = (rng.randint(0, total), total)
            counts.append(EventCount(at, *events))
        series.append(at, good, events)
        evaluations.append(Evaluation(at, good))
    instants = [e.at for e in evaluations]
    ends = rng.sample(instants, 60)
    ends += [instants[0], instants[-1], instants[0] - timedelta(days=1)]
    ends += [instants[-1] + timedelta(days=4), instants[-1] + timedelta(minutes=7)]
    ends += [e + timedelta(microseconds=1) for e in rng.sample(instants, 10)]
    ends += [e - timedelta(microseconds=1) for e in rng.sample(instants, 10)]
    ends += [e.astimezone(INDIA) for e in rng.sample(instants, 10)]  # same instants
    checked = 0
    for length in LENGTHS:
        # boundaries: a window starting exactly at an evaluation (which is then out)
        for end in ends + [e + length for e in rng.sample(instants, 10)]:
            assert series.slots(end, length) == window_stats(evaluations, end, length, Q)
            assert series.events(end, length) == request_stats(counts, end, length, Q)
            checked += 1
    assert len(series) == 500
    assert checked == len(LENGTHS) * (len(ends) + 10)


def test_slot_series_window_is_half_open() -> None:
    series = SlotSeries(Q)
    series.append(AT - H, False, (0, 5))
    series.append(AT, True, (4, 4))
    # (09:00, 10:00]: the bad evaluation at 09:00 is out
    assert series.slots(AT, H) == WindowStats(good=1, bad=0, unknown=0, expected=4)
    assert series.events(AT, H) == WindowStats(good=4, bad=0, unknown=0, expected=4)
    # one microsecond longer: it is in
    longer = H + timedelta(microseconds=1)
    assert series.slots(AT, longer) == WindowStats(good=1, bad=1, unknown=0, expected=5)


def test_slot_series_append_out_of_order_or_twice_is_refused() -> None:
    series = SlotSeries(Q)
    series.append(AT, True)
    with pytest.raises(ValueError, match="in order"):
        series.append(AT - Q, True)
    with pytest.raises(ValueError, match="in order"):
        series.append(AT, False)
    with pytest.raises(ValueError, match="good <= total"):
        series.append(AT + Q, True, (5, 3))
    with pytest.raises(ValueError, match="aware"):
        series.append(datetime(2024, 5, 2), True)
    assert len(series) == 1


def test_slot_series_refuses_a_window_shorter_than_the_cadence() -> None:
    with pytest.raises(ValueError, match="shorter than the cadence"):
        SlotSeries(Q).slots(AT, timedelta(minutes=5))


# --- budget through assess ----------------------------------------------------------------


def test_new_deployment_one_bad_slot_spends_15_minutes_of_403() -> None:
    a = run(AVAIL, BAD)
    assert a.stats == WindowStats(good=0, bad=1, unknown=0, expected=2688)
    assert a.record.budget_remaining == pytest.approx(1 - 1 / 26.88)  # 0.962798
    assert a.budget.remaining_minutes == pytest.approx(403.2 - 15)
    assert a.record.compliance == 0.0
    assert not a.record.exhausted


def test_window_starts_after_at_minus_the_window() -> None:
    # a bad row exactly 28 days back is out; one slot later it is in
    window = timedelta(days=28)
    out = run(AVAIL, GOOD, [row(AVAIL, AT - window, False)])
    assert (out.stats.good, out.stats.bad) == (1, 0)
    assert out.window_rows == (out.record,)
    inside = run(AVAIL, GOOD, [row(AVAIL, AT - window + Q, False)])
    assert (inside.stats.good, inside.stats.bad) == (1, 1)


def test_request_based_budget_is_a_share_of_the_windows_events() -> None:
    # events 990/1000, 995/1000, now 985/1000: 2970 good of 3000, 30 bad;
    # allowed 5 % of 3000 = 150; remaining 1 - 30/150 = 0.8; compliance 0.99 >= 0.95
    history = [
        row(RATIO, AT - 2 * Q, True, events=(990, 1000)),
        row(RATIO, AT - Q, True, events=(995, 1000)),
        row(RATIO, AT - 3 * Q, None),  # unknown: no events, charged nothing
    ]
    a = run(RATIO, ratio_result(985, 1000), history)
    assert a.stats == WindowStats(good=2970, bad=30, unknown=0, expected=2688)
    assert a.record.compliance == pytest.approx(0.99)
    assert a.record.budget_remaining == pytest.approx(0.8)
    assert a.budget.remaining_minutes == pytest.approx(0.8 * 0.05 * 28 * 24 * 60)
    assert not a.record.breaching and not a.record.exhausted
    # 15m: 15/1000 = 0.015 / 0.05 = 0.3; 1h: 30/3000 = 0.01 / 0.05 = 0.2
    assert a.burns[0].short_rate == pytest.approx(0.3)
    assert a.burns[0].long_rate == pytest.approx(0.2)


def test_request_based_budget_exhausted_by_events() -> None:
    # 900/1000 then 940/1000: 160 bad of 2000, allowed 100: remaining 1 - 160/100 = -0.6
    history = [row(RATIO, AT - Q, True, events=(900, 1000))]
    a = run(RATIO, ratio_result(940, 1000), history)
    assert a.record.budget_remaining == pytest.approx(-0.6)
    assert a.record.exhausted
    assert a.record.breaching  # 1840/2000 = 0.92 < 0.95


# --- breaching per kind ----------------------------------------------------------------


def test_availability_breaches_when_the_windows_budget_is_overspent() -> None:
    # 28 d at 99 %: 2688 slots, 26.88 may be bad. The current slot alone decides nothing:
    # 25 bad earlier + now bad = 26 <= 26.88: not breaching (compliance 0 over 26
    # evaluated slots would say "breaching": sparse history must not)
    a = run(AVAIL, BAD, back(AVAIL, 25, good=False))
    assert a.record.compliance == 0.0
    assert not a.record.breaching
    # 26 + 1 = 27 > 26.88: breaching
    assert run(AVAIL, BAD, back(AVAIL, 26, good=False)).record.breaching
    # now good, but 27 bad earlier: still overspent
    assert run(AVAIL, GOOD, back(AVAIL, 27, good=False)).record.breaching
    # at full coverage it is compliance < objective: 2661 good + 27 bad of 2688
    history = back(AVAIL, 2687)
    for i in range(26):
        history[i * 50] = replace(history[i * 50], good=False)
    full = run(AVAIL, BAD, history)
    assert full.stats.total == 2688
    assert full.record.compliance == pytest.approx(2661 / 2688)
    assert full.record.breaching


def test_ratio_breaches_on_the_windows_event_compliance() -> None:
    # 80/100 earlier + 100/100 now: 180/200 = 0.9 < 0.95 although this interval was good
    history = [row(RATIO, AT - Q, False, events=(80, 100))]
    a = run(RATIO, ratio_result(100, 100), history)
    assert a.record.good is True
    assert a.record.compliance == pytest.approx(0.9)
    assert a.record.breaching


@pytest.mark.parametrize("slo", [FRESH, THRESHOLD, RECOVERY], ids=lambda s: s.sli.kind)
def test_bound_stated_slos_breach_when_the_current_evaluation_is_bad(slo: Slo) -> None:
    # 99 good + now bad: compliance 0.99 (fine) but the bound is violated now
    a = run(slo, BAD, back(slo, 99))
    assert a.record.breaching
    assert ("slo.breached", "sli") in [(t.event_type, t.condition) for t in a.transitions]
    # bad before (breaching), good now: recovered, although the compliance is only 1/2
    b = run(slo, GOOD, back(slo, 1, good=False, breaching=True))
    assert not b.record.breaching
    assert ("slo.recovered", "sli") in [(t.event_type, t.condition) for t in b.transitions]


@pytest.mark.parametrize("slo", [FRESH, THRESHOLD, RECOVERY], ids=lambda s: s.sli.kind)
@pytest.mark.parametrize("was_breaching", [True, False])
def test_unknown_keeps_the_previous_breaching_state(slo: Slo, was_breaching: bool) -> None:
    history = back(slo, 4, good=not was_breaching, breaching=was_breaching)
    a = run(slo, UNKNOWN, history)
    assert a.record.good is None
    assert a.record.breaching is was_breaching
    assert "sli" not in [t.condition for t in a.transitions]


def test_ratio_without_events_in_the_window_keeps_the_previous_state() -> None:
    # the run history could not be read: no events, no compliance, state unchanged
    history = [row(RATIO, AT - Q, None, breaching=True)]
    a = run(RATIO, UNKNOWN, history)
    assert a.record.compliance is None
    assert a.record.budget_remaining is None
    assert a.record.breaching
    assert a.transitions == []


def test_exhausting_the_budget_is_one_budget_breach() -> None:
    # a bound-stated SLO (freshness): breaching follows the current slot, so the budget
    # is its own condition. 26 bad earlier + now bad = 27 > 26.88 allowed
    history = back(FRESH, 26, good=False, breaching=True, burning=ALL_PAIRS)
    a = run(FRESH, BAD, history)
    assert a.record.exhausted
    assert a.record.budget_remaining == pytest.approx(1 - 27 / 26.88)
    assert [(t.event_type, t.condition) for t in a.transitions] == [("slo.breached", "budget")]
    # 25 + 1 = 26: not yet
    not_yet = run(FRESH, BAD, back(FRESH, 25, good=False, breaching=True, burning=ALL_PAIRS))
    assert not not_yet.record.exhausted
    assert not_yet.transitions == []


# --- burning ---------------------------------------------------------------------------


def test_a_first_bad_slot_fires_every_pair_fastest_first_and_sends_one_burn_event() -> None:
    # one evaluated slot, bad: error ratio 1 in every window, burn rate 1/0.01 = 100
    a = run(AVAIL, BAD)
    assert all(b.long_rate == pytest.approx(100) for b in a.burns)
    assert a.record.burning == ALL_PAIRS
    burn = [t for t in a.transitions if t.condition == "burn"]
    assert [(t.event_type, t.pair) for t in burn] == [("slo.burn_rate", "1h/15m")]
    # configured slowest first: still listed fastest (highest rate) first
    reversed_order = run(AVAIL, BAD, windows=list(reversed(WINDOWS)))
    assert reversed_order.record.burning == ALL_PAIRS


def test_only_the_slow_pair_fires_for_one_bad_slot_two_hours_back() -> None:
    # 24 slots in (04:00, 10:00], one bad at 08:00; now good.
    # 15m: 0; 1h: 0; 6h: 1/24 = 0.0417 -> 4.17 (< 6, >= 1); 3d: same 24 slots -> 4.17
    history = back(AVAIL, 23)
    history[7] = replace(history[7], good=False)  # AT - 8Q = 08:00
    a = run(AVAIL, GOOD, history)
    rates = {(b.window.long, b.window.short): (b.long_rate, b.short_rate) for b in a.burns}
    assert rates[(6 * H, H)] == (pytest.approx(100 / 24), 0.0)
    assert a.record.burning == ("3d/6h",)


def test_a_change_of_pace_is_a_burn_event_of_the_same_condition() -> None:
    # bad at 09:15 and 09:30, now good: 15m 0; 1h 2/4 -> 50; 6h 2/24 -> 8.33; 3d 8.33
    # pairs firing: 6h/1h (8.33 >= 6 and 50 >= 6) and 3d/6h; 1h/15m not (short is 0)
    history = back(AVAIL, 23, burning=("3d/6h",))
    history[1] = replace(history[1], good=False)
    history[2] = replace(history[2], good=False)
    a = run(AVAIL, GOOD, history)
    assert a.record.burning == ("6h/1h", "3d/6h")
    burn = [t for t in a.transitions if t.condition == "burn"]
    assert [(t.event_type, t.pair) for t in burn] == [("slo.burn_rate", "6h/1h")]
    first = Transition("slo.burn_rate", "burn", "s", AT - H, "3d/6h")
    assert burn[0].fingerprint == first.fingerprint
    assert burn[0].event_id != first.event_id


# --- transitions -------------------------------------------------------------------------


def _kinds(before: SloState, after: SloState) -> list[tuple[str, str, str | None]]:
    pace = {"1h/15m": 14.4, "6h/1h": 6.0, "3d/6h": 1.0}
    changes = transitions("s", AT, before, after, pace=pace)
    return [(t.event_type, t.condition, t.pair) for t in changes]


def test_transitions_are_exactly_the_documented_state_changes() -> None:
    ok = SloState()
    assert _kinds(ok, ok) == []
    assert _kinds(ok, SloState(breaching=True)) == [("slo.breached", "sli", None)]
    assert _kinds(SloState(breaching=True), ok) == [("slo.recovered", "sli", None)]
    assert _kinds(ok, SloState(exhausted=True)) == [("slo.breached", "budget", None)]
    assert _kinds(SloState(exhausted=True), ok) == [("slo.recovered", "budget", None)]
    # all three pairs start at once: one event, named by the fastest
    assert _kinds(ok, SloState(burning=ALL_PAIRS)) == [("slo.burn_rate", "burn", "1h/15m")]
    # speeding up is news, slowing down (1h/15m stops, 6h/1h still firing) is not ...
    slow, fast = SloState(burning=("6h/1h", "3d/6h")), SloState(burning=ALL_PAIRS)
    assert _kinds(fast, slow) == []
    assert _kinds(slow, fast) == [("slo.burn_rate", "burn", "1h/15m")]
    # ... a slower pair joining or leaving while the fastest stays is not
    assert _kinds(SloState(burning=("1h/15m",)), fast) == []
    assert _kinds(fast, SloState(burning=("1h/15m",))) == []
    assert _kinds(slow, ok) == [("slo.recovered", "burn", None)]
    # a ratio-stated SLO's breaching is its overspent budget: no separate budget event
    both = SloState(breaching=True, exhausted=True)
    ratio_stated = transitions("s", AT, ok, both, budget_condition=False)
    assert [(t.event_type, t.condition) for t in ratio_stated] == [("slo.breached", "sli")]


def test_transitions_of_one_evaluation_come_in_order_sli_budget_burn() -> None:
    after = SloState(breaching=True, exhausted=True, burning=("3d/6h",))
    assert [t.condition for t in transitions("s", AT, SloState(), after)] == [
        "sli",
        "budget",
        "burn",
    ]


def test_fingerprint_names_the_condition_and_event_id_the_change() -> None:
    breached = Transition("slo.breached", "sli", "s", AT)
    recovered = Transition("slo.recovered", "sli", "s", AT + Q)
    assert breached.fingerprint == recovered.fingerprint
    assert breached.fingerprint != Transition("slo.breached", "sli", "t", AT).fingerprint
    assert breached.fingerprint != Transition("slo.breached", "budget", "s", AT).fingerprint
    assert breached.event_id != recovered.event_id
    assert breached.event_id == Transition("slo.breached", "sli", "s", AT).event_id
    assert breached.event_id != Transition("slo.breached", "sli", "s", AT + Q).event_id


# --- replay, history handling ------------------------------------------------------------


@pytest.mark.parametrize(
    ("slo", "result", "history"),
    [
        (AVAIL, BAD, back(AVAIL, 3)),
        (FRESH, GOOD, back(FRESH, 3, good=False, breaching=True, burning=ALL_PAIRS)),
        (RATIO, ratio_result(10, 100), [row(RATIO, AT - Q, True, events=(50, 50))]),
    ],
    ids=["availability", "freshness", "ratio"],
)
def test_replaying_the_stored_record_gives_the_same_record_and_events(
    slo: Slo, result: SliResult, history: list[EvaluationRecord]
) -> None:
    first = run(slo, result, history)
    assert first.transitions  # something to replay
    # a redelivery: the history now holds this row (and a later one, ignored)
    stored = [*history, first.record, row(slo, AT + Q, False, breaching=True)]
    again = run(slo, first.record, stored)
    assert again.record == first.record
    assert [t.event_id for t in again.transitions] == [t.event_id for t in first.transitions]
    assert again.stats == first.stats
    assert again.budget == first.budget
    assert again.burns == first.burns


def test_replay_keeps_the_stored_state_and_does_not_recompute_it() -> None:
    # the row stored for AT says breaching and burning the slow pair; recomputed from
    # this history it would be neither: the replay announces what was recorded
    first = run(AVAIL, GOOD, back(AVAIL, 3))
    assert first.transitions == []
    stored = replace(first.record, breaching=True, burning=("3d/6h",), compliance=0.5)
    again = run(AVAIL, stored, [*back(AVAIL, 3), stored])
    assert again.record == stored
    assert [(t.event_type, t.condition, t.pair) for t in again.transitions] == [
        ("slo.breached", "sli", None),
        ("slo.burn_rate", "burn", "3d/6h"),
    ]


def test_assess_ignores_history_rows_at_or_after_the_instant() -> None:
    history = back(AVAIL, 8)
    plain = run(AVAIL, BAD, history)
    noisy = [
        row(AVAIL, AT, True, breaching=True, recorded_at=AT - Q),
        row(AVAIL, AT + Q, False, exhausted=True),
        *history,
    ]
    a = run(AVAIL, BAD, noisy)
    assert a.record == plain.record
    assert a.stats == plain.stats == WindowStats(good=8, bad=1, unknown=0, expected=2688)
    assert a.previous == history[0]
    assert all(r.at < AT for r in a.window_rows[:-1])
    assert a.window_rows[-1] is a.record


def test_duplicates_per_instant_the_newest_recorded_at_wins() -> None:
    older = row(FRESH, AT - Q, True, recorded_at=AT - Q + timedelta(seconds=10))
    newer = row(FRESH, AT - Q, False, breaching=True, recorded_at=AT - Q + timedelta(minutes=3))
    assert latest_per_instant([newer, older]) == [newer]
    assert latest_per_instant([older, newer]) == [newer]
    a = run(FRESH, BAD, [newer, older])
    assert a.previous == newer
    assert a.stats == WindowStats(good=0, bad=2, unknown=0, expected=2688)
    assert "sli" not in [t.condition for t in a.transitions]  # was breaching already


def test_latest_per_instant_is_oldest_first() -> None:
    rows = [row(AVAIL, AT - i * Q, True) for i in (2, 5, 1, 3)]
    assert [r.at for r in latest_per_instant(rows)] == [AT - i * Q for i in (5, 3, 2, 1)]


def test_ratio_since_is_the_previous_row_that_counted_events() -> None:
    window = timedelta(days=28)
    history = [
        row(RATIO, AT - 3 * Q, True, events=(10, 10)),
        row(RATIO, AT - 2 * Q, None),  # unknown: its runs are counted later, not lost
        row(RATIO, AT - Q, None),
        row(RATIO, AT, True, events=(1, 1)),  # at the instant itself: not "previous"
    ]
    assert ratio_since(history, AT, window, Q) == AT - 3 * Q


def test_ratio_since_counts_a_row_with_zero_events() -> None:
    history = [row(RATIO, AT - 2 * Q, True, events=(0, 0))]
    assert ratio_since(history, AT, timedelta(days=28), Q) == AT - 2 * Q


def test_ratio_since_defaults_to_one_cadence_back_and_is_bounded_by_the_window() -> None:
    assert ratio_since([], AT, timedelta(days=28), Q) == AT - Q
    assert ratio_since([row(RATIO, AT - Q, None)], AT, timedelta(days=28), Q) == AT - Q
    old = [row(RATIO, AT - timedelta(days=2), True, events=(5, 5))]
    assert ratio_since(old, AT, timedelta(days=1), Q) == AT - timedelta(days=1)


def test_detection_is_request_based_over_incidents() -> None:
    # 19 incidents on time earlier, now 1 late of 1: 19/20 = 0.95 at the objective (0.95)
    history = [row(DETECT, AT - i * Q, True, events=(1, 1)) for i in range(1, 20)]
    a = run(DETECT, SliResult(False, 45.0, 0, 1), history)
    assert a.measured
    assert a.record.compliance == pytest.approx(0.95)
    assert not a.record.breaching  # the budget (1 late of 20 allowed) is spent, not overspent
    # one more late incident: 19/21 < 0.95, overspent: breaching (ratio-stated: no budget event)
    worse = run(DETECT, SliResult(False, 40.0, 0, 1), [*history, a.record], at=AT + Q)
    assert worse.record.breaching
    assert ("slo.breached", "sli") in [(t.event_type, t.condition) for t in worse.transitions]
    assert "budget" not in [t.condition for t in worse.transitions]


def test_record_carries_the_sli_result_and_the_given_detail() -> None:
    result = SliResult(False, 30.5, detail={"stale": ["a.b"]})
    a = assess(
        FRESH,
        result,
        [],
        at=AT,
        cadence=Q,
        windows=WINDOWS,
        recorded_at=RECORDED,
        detail='{"stale": ["a.b"]}',
    )
    r = a.record
    assert (r.at, r.slo, r.kind, r.good, r.value) == (AT, "s", "freshness", False, 30.5)
    assert (r.detail, r.recorded_at) == ('{"stale": ["a.b"]}', RECORDED)


def test_duration_labels() -> None:
    assert [duration_label(d) for d in (Q, H, 6 * H, timedelta(days=3))] == [
        "15m",
        "1h",
        "6h",
        "3d",
    ]
    assert duration_label(timedelta(minutes=90)) == "90m"
    assert duration_label(timedelta(hours=36)) == "36h"
    assert duration_label(timedelta(seconds=45)) == "45s"


def test_a_cadence_the_config_accepts_can_be_assessed() -> None:
    body = {
        "backups": {"bucket": "nba-props-backups", "tables": ["nba_analytics.t1"]},
        "slos": {
            "cadence_minutes": 60,
            "objectives": [
                {
                    "name": "up",
                    "description": "d",
                    "objective": 0.99,
                    "severity": "P0",
                    "sli": {"kind": "availability"},
                }
            ],
        },
    }
    try:
        settings = parse_settings(body)
    except ConfigError:
        return  # refused up front (naming the burn-rate window): as good as working
    slo = settings.slos.objectives[0]
    a = assess(
        slo,
        BAD,
        [],
        at=AT,
        cadence=H,
        windows=burn_windows(settings.slos.burn_rates),
        recorded_at=RECORDED,
    )
    assert a.record.good is False


# --- back-filled rows sent nothing: the first live evaluation announces ------------------


def test_the_first_live_evaluation_after_a_backfill_announces_the_current_state() -> None:
    filled = [
        replace(r, detail='{"backfilled": true}')
        for r in back(FRESH, 8, good=False, breaching=True, burning=("1h/15m",))
    ]
    # every back-filled row is breaching, yet none was announced: the live one is
    a = run(FRESH, BAD, filled)
    assert a.previous is None
    assert ("slo.breached", "sli") in [(t.event_type, t.condition) for t in a.transitions]
    # the budget still counts the back-filled slots: 9 bad of 2688
    assert a.stats.bad == 9
    # once a live row exists, it is the previous state: no second announcement
    live = replace(a.record, detail="{}")
    later = run(FRESH, BAD, [*filled, live], at=AT + Q)
    assert later.previous == live
    assert [t.condition for t in later.transitions if t.condition == "sli"] == []
