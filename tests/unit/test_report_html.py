"""The report renderer's limits: what a long window or a large project draws.

No stack: a ReportData made here, rendered, and its chart specs read back. A window
longer than WEEKLY_AFTER_DAYS is drawn a column per week (each week its worst day); more
than MAX_ROWS tables or phases draw the most urgent and count the rest; a budget series
longer than MAX_POINTS keeps each span's lowest and highest point.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.services.report import (
    BackupsSection,
    BudgetPoint,
    BudgetSection,
    FreshnessDay,
    FreshnessRow,
    FreshnessSection,
    IncidentsSection,
    PhaseDay,
    PhaseRow,
    PhasesSection,
    ReportData,
    SlosSection,
)
from shared.services.report_html import MAX_POINTS, MAX_ROWS, WEEKLY_AFTER_DAYS, _thin, render

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday


def _data(days: int, **sections: Any) -> ReportData:
    why = "not in this test"
    return ReportData(
        generated_at=NOW,
        days=days,
        since=NOW - timedelta(days=days),
        backend="local",
        slos=SlosSection(missing=why),
        budget=sections.get("budget", BudgetSection(missing=why)),
        freshness=sections.get("freshness", FreshnessSection(missing=why)),
        backups=BackupsSection(missing=why),
        phases=sections.get("phases", PhasesSection(missing=why)),
        incidents=IncidentsSection(missing=why),
    )


def _window(days: int) -> list[date]:
    return [NOW.date() - timedelta(days=days - 1 - i) for i in range(days)]


def _table(name: str, statuses: list[str], now: str = "green") -> FreshnessRow:
    cells = tuple(
        FreshnessDay(d, s, None if s == "no data" else 3.0 + i, 0 if s == "no data" else 4)  # type: ignore[arg-type]
        for i, (d, s) in enumerate(zip(_window(len(statuses)), statuses, strict=True))
    )
    return FreshnessRow(name, 24, 48, now, cells[-1].status, 1.0, NOW, cells)  # type: ignore[arg-type]


def _specs(page: str) -> dict[str, Any]:
    found = re.search(r'id="specs">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def test_a_window_up_to_the_limit_is_drawn_a_column_a_day() -> None:
    days = WEEKLY_AFTER_DAYS
    row = _table("a.t", ["green"] * days)
    page = render(_data(days, freshness=FreshnessSection(("f",), (row,))), ())
    values = _specs(page)["freshness"]["data"]["values"]
    assert [v["day"] for v in values] == [d.isoformat() for d in _window(days)]
    assert "per day" in page and "week from" not in page


def test_a_longer_window_is_a_column_a_week_with_its_worst_day() -> None:
    days = 100
    window = _window(days)
    statuses = ["green"] * days
    statuses[10] = "warn"  # a week with one warn day and one error day: error
    statuses[12] = "error"
    statuses[40] = "warn"
    monday = next(i for i in range(50, 57) if window[i].weekday() == 0)
    for i in range(monday, monday + 7):
        statuses[i] = "no data"  # a whole week without data
    statuses[70] = "no data"  # one day without data in a week that had some: green
    page = render(_data(days, freshness=FreshnessSection(("f",), (_table("a.t", statuses),))), ())
    cells = {v["day"]: v for v in _specs(page)["freshness"]["data"]["values"]}

    def week(i: int) -> dict[str, Any]:
        monday = window[i] - timedelta(days=window[i].weekday())
        return cells[max(monday, window[0]).isoformat()]

    assert len(cells) == len({d - timedelta(days=d.weekday()) for d in window}) == 15
    assert (week(10)["status"], week(10)["glyph"]) == ("error", "✕")
    assert week(10)["max_age_hours"] == max(3.0 + j for j in range(days) if week(j) is week(10))
    assert (week(40)["status"], week(40)["glyph"]) == ("warn", "!")
    # a week without data is no data; one where a day had none among green days stays
    # green (today before its first run must not grey out a good week), marked "·"
    nodata = [w for w in cells.values() if w["status"] == "no data"]
    assert len(nodata) == 1 and nodata[0]["days_with_data"] == 0 and nodata[0]["glyph"] == "–"
    assert (week(70)["status"], week(70)["glyph"]) == ("green", "·")
    assert week(70)["days_with_data"] == week(70)["days"] - 1
    partial = [w for w in cells.values() if w["glyph"] == "·"]
    assert all(w["status"] == "green" and w["days_with_data"] < w["days"] for w in partial)
    # the first column starts on the window's first day, not on the Monday before it
    assert min(cells) == window[0].isoformat() and sum(c["days"] for c in cells.values()) == days
    assert "per week (its worst day with data)" in page and "· some days without data" in page


def test_phases_per_week_sum_their_runs() -> None:
    days = 70
    cells = tuple(
        PhaseDay(d, 4, 3 if i % 7 else 0, 0.75 if i % 7 else 0.0, "pass" if i % 7 else "fail")
        for i, d in enumerate(_window(days))
    )
    section = PhasesSection("p", 0.9, 0.5, (PhaseRow("scrape", 4 * days, 0, None, cells),))
    values = _specs(render(_data(days, phases=section), ()))["phases"]["data"]["values"]
    for v in values:
        assert v["runs"] == 4 * v["days"]
        assert v["ratio"] == v["succeeded"] / v["runs"]
    # every whole week holds a failed day (i % 7 == 0)
    assert {v["status"] for v in values if v["days"] == 7} == {"fail"}


def test_more_rows_than_the_cap_draw_the_most_urgent_and_count_the_rest() -> None:
    rows = [_table(f"d.late_{i:03}", ["error"] * 3, now="error") for i in range(MAX_ROWS + 5)]
    rows += [_table(f"d.ok_{i:03}", ["green"] * 3) for i in range(40)]
    page = render(_data(3, freshness=FreshnessSection(("f",), tuple(rows))), ())
    spec = _specs(page)["freshness"]
    drawn = spec["encoding"]["y"]["sort"]
    assert drawn == [r.table for r in rows[:MAX_ROWS]]
    assert {v["table"] for v in spec["data"]["values"]} == set(drawn)
    hidden = len(rows) - MAX_ROWS
    assert f'data-capped="freshness" data-hidden="{hidden}"' in page
    assert f"the other {hidden} are not drawn (5 of them late now, listed above)" in page
    # every late table is still listed, drawn or not
    assert all(f'data-table="d.late_{i:03}"' in page for i in range(MAX_ROWS + 5))


def _points(budgets: list[float]) -> list[BudgetPoint]:
    start = NOW - timedelta(minutes=15 * len(budgets))
    return [
        BudgetPoint(start + timedelta(minutes=15 * i), b, None, ()) for i, b in enumerate(budgets)
    ]


@pytest.mark.parametrize("n", [MAX_POINTS, MAX_POINTS + 1, 3 * MAX_POINTS + 17, 38_400])
def test_thinning_keeps_every_spans_extremes_the_ends_and_time_order(n: int) -> None:
    rng = random.Random(n)
    budgets = [rng.uniform(0.2, 0.8) for _ in range(n)]
    dip, peak = n // 3, (2 * n) // 3
    budgets[dip], budgets[peak] = -0.9, 0.99  # one slot each: evenly spaced picks miss them
    points = _points(budgets)
    kept = _thin(points)
    assert len(kept) <= MAX_POINTS
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert [p.at for p in kept] == sorted({p.at for p in kept})  # in order, no repeats
    assert points[dip] in kept and points[peak] in kept
    if n <= MAX_POINTS:
        assert kept == points
    else:
        assert len(kept) > MAX_POINTS - 4  # the budget is used, not a handful of points


def test_the_budget_chart_draws_the_thinned_series() -> None:
    budgets = [0.5] * 5000
    budgets[1234] = -0.4
    from shared.services.report import SloBudget

    section = BudgetSection((SloBudget("s", 0.99, "28d", tuple(_points(budgets))),))
    values = _specs(render(_data(28, budget=section), ()))["budget"]["data"]["values"]
    assert len(values) <= MAX_POINTS and min(v["budget"] for v in values) == -0.4
