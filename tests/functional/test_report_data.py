"""The report's data layer (:func:`shared.services.report.gather`) on the local stack.

The demo stack is built once for the session, and test_report and test_report_browser
report it too (seeded warehouse, tonight's backup, a restore drill, a two-day SLO
back-fill, a live evaluation, one SLO event routed through the alert router and then
resolved); each section is checked against the records it is
read from. Then an empty store, and sources that fail one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.config import RatioSli
from shared.manifest import CLAIM, MANIFEST, RunClaim
from shared.models import EvaluationRecord, RunBucketQuery
from shared.services.alert_router import LEDGER_PREFIX
from shared.services.drill import DrillDeps, run_drill
from shared.services.inventory import list_runs
from shared.services.report import ReportData, gather
from shared.services.seed import seed_demo
from shared.services.sla import MAX_FUTURE, current_status, slo_history, status_since
from shared.services.trigger_rejections import TriggerRejection, record_rejection
from tests.functional.report_stack import DAYS, JSON, Demo, ReadOnlyHistory, _gather, _read_only
from tests.helpers import (
    BUCKET,
    FOUR_TABLES,
    backup_now,
    make_example_stack,
    make_stack,
)


# -- (a) from the demo data -------------------------------------------------------------
def test_every_section_has_data_and_the_json_round_trips(report: ReportData) -> None:
    assert report.missing() == {}
    body = json.loads(report.to_json())
    assert set(body) >= {"slos", "budget", "freshness", "backups", "phases", "incidents"}
    assert body["backups"]["nights"][0]["instant"].endswith("+00:00")
    assert "<" not in report.to_json()  # safe inside <script>


@pytest.mark.parametrize("days", [1, DAYS, 60])
def test_the_history_is_read_once_for_every_section(demo: Demo, days: int) -> None:
    adapters = _read_only(demo.stack.adapters)
    data = gather(demo.stack.settings, adapters, now=demo.now, days=days)
    history = adapters.history
    assert isinstance(history, ReadOnlyHistory)
    [(since, until)] = history.reads
    # the window, or as far back as the SLOs' status needs (28 d and a slot), if further
    assert since == min(data.since, status_since(demo.stack.settings, demo.now))
    assert until == demo.now + MAX_FUTURE
    # and the status is what `sla status` computes from its own read
    expected = current_status(demo.stack.settings, demo.history, demo.now)
    assert [r.compliance for r in data.slos.rows] == [
        next(s.assessment.record.compliance for s in expected if s.slo.name == r.name)  # type: ignore[union-attr]
        for r in data.slos.rows
    ]


def test_the_slo_table_is_current_status(demo: Demo, report: ReportData) -> None:
    expected = {
        s.slo.name: s.assessment
        for s in current_status(demo.stack.settings, demo.history, demo.now)
    }
    rows = {r.name: r for r in report.slos.rows}
    assert set(rows) == set(expected)
    for name, a in expected.items():
        assert a is not None
        row, r = rows[name], a.record
        assert (row.evaluated_at, row.sli, row.good) == (r.at, r.value, r.good)
        assert (row.compliance, row.budget_remaining) == (r.compliance, r.budget_remaining)
        assert row.budget_remaining_minutes == round(a.budget.remaining_minutes, 3)
        assert (row.breaching, row.exhausted, row.burning) == (
            r.breaching,
            r.exhausted,
            tuple(r.burning),
        )
        assert row.objective == a.slo.objective and row.severity == a.slo.severity
    # most urgent first: breaching (by severity), exhausted, burning, ..., ok
    assert rows["data_freshness"].state == "breaching"
    urgency = ["breaching", "exhausted", "burning", "unknown", "not evaluated", "ok"]
    keys = [(urgency.index(r.state), r.severity) for r in report.slos.rows]
    assert keys == sorted(keys) and len({k[0] for k in keys}) > 1


def test_the_budget_series_are_the_history_and_burn_rates_the_assessment(
    demo: Demo, report: ReportData
) -> None:
    settings = demo.stack.settings
    statuses = {s.slo.name: s.assessment for s in current_status(settings, demo.history, demo.now)}
    by_slo = {b.slo: b for b in report.budget.slos}
    for name in ("data_freshness", "phase_success_rate", "model_accuracy"):
        rows = slo_history(settings, demo.history, name, report.since, demo.now)
        series = by_slo[name].points
        assert len(series) == len(rows) > 4 * 24 * (DAYS - 1) - 2  # every back-filled slot
        assert [(p.at, p.budget_remaining, p.compliance) for p in series] == [
            (r.at, r.budget_remaining, r.compliance) for r in rows
        ]
        a = statuses[name]
        assert a is not None
        rates = by_slo[name].burn_rates
        assert [(b.long_rate, b.short_rate, b.firing, b.threshold) for b in rates] == [
            (b.long_rate, b.short_rate, b.firing, b.window.rate) for b in a.burns
        ]
        assert [b.pair for b in rates] == ["1h/15m", "6h/1h", "3d/6h"]
        assert [b.notify for b in rates] == ["page", "page", "ticket"]
    # availability can't be back-filled: its one live evaluation
    assert len(by_slo["pipeline_availability"].points) == 1


def test_freshness_puts_todays_late_tables_first_with_the_newest_ages(
    demo: Demo, report: ReportData
) -> None:
    section = report.freshness
    assert section.slos == ("data_freshness",)
    tables = {t.table: t for t in section.tables}
    assert set(tables) == {t.table for t in demo.stack.settings.health.freshness.tables}
    [newest] = slo_history(
        demo.stack.settings, demo.history, "data_freshness", demo.now - timedelta(minutes=15),
        demo.now,
    )  # fmt: skip
    detail = json.loads(newest.detail)
    for table, age in detail["ages_hours"].items():
        assert tables[table].age_hours == age and tables[table].measured_at == newest.at
    # stale: older than the SLO's 24 h, past every table's warn_after (24 h or less)
    stale = set(detail["stale"])
    assert stale and all(tables[t].status != "green" != tables[t].today for t in stale)
    assert tables["nba_precompute.player_shot_zone_analysis"].status == "error"  # > 48 h
    order = [t.table for t in section.tables]
    first_green = min(i for i, t in enumerate(section.tables) if t.status == "green")
    assert all(order.index(t) < first_green for t in stale)
    # then the tables late earlier today (loaded since), then the oldest first
    rank = ["error", "warn", "no data", "green"]
    keys = [
        (rank.index(t.status), rank.index(t.today), -(t.age_hours or 0.0)) for t in section.tables
    ]
    assert keys == sorted(keys)
    run_history = tables["nba_orchestration.processor_run_history"]
    assert (run_history.warn_after_hours, run_history.error_after_hours) == (2, 6)
    assert [d.day for d in run_history.days] == [
        demo.now.date() - timedelta(days=i) for i in reversed(range(DAYS))
    ]
    assert sum(d.evaluations for d in run_history.days) > 4 * 24


def test_backups_are_list_runs_with_their_manifests_and_the_drill_record(
    demo: Demo, report: ReportData
) -> None:
    b = demo.stack.settings.backups
    runs = list_runs(demo.stack.adapters.store, BUCKET, b.prefix)
    assert [(n.run_id, n.status, n.rows, n.bytes, n.tables) for n in report.backups.nights] == [
        (r.run_id, r.status, r.rows, r.bytes, r.tables) for r in runs
    ]
    [night] = report.backups.nights
    manifest = demo.stack.manifest(demo.run_id)
    assert night.files == sum(len(t.files) for t in manifest.tables) > 0
    assert night.duration_seconds == (manifest.completed_at - manifest.created_at).total_seconds()
    assert night.verification == "verified" and night.verified_tables == len(manifest.tables)

    drill = report.backups.drill.drill
    assert drill is not None and report.backups.drill.missing is None
    record = demo.drill
    assert drill.projected_hours == record.projected_hours is not None
    assert drill.throughput_bytes_per_second == record.throughput_bytes_per_second
    assert (drill.run_id, drill.passed, drill.full_backup_bytes) == (
        record.run_id,
        record.passed,
        record.full_backup_bytes,
    )
    assert drill.max_hours == 8 and drill.within_max_hours is (record.projected_hours < 8)


def test_phases_per_day_are_the_run_history_as_counted(demo: Demo, report: ReportData) -> None:
    settings = demo.stack.settings
    assert report.phases.slo == "phase_success_rate"
    [slo] = [s for s in settings.slos.objectives if s.name == "phase_success_rate"]
    assert isinstance(slo.sli, RatioSli)
    pipeline = settings.health.pipeline
    assert pipeline is not None
    # yesterday is covered by the back-fill from end to end: the warehouse's runs of it
    yesterday = demo.now.date() - timedelta(days=1)
    start = datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=UTC)
    buckets = demo.stack.adapters.warehouse.run_buckets(
        RunBucketQuery(
            table=pipeline.ref,
            phase_column=pipeline.phase_column,
            status_column=pipeline.status_column,
            time_column=pipeline.time_column,
            success_values=tuple(pipeline.success_values),
            since=start,
            until=start + timedelta(days=1),
            bucket_seconds=settings.slos.cadence_minutes * 60,
        )
    )
    expected: dict[str, tuple[int, int]] = {}
    for bucket in buckets:
        if bucket.phase in slo.sli.phases:
            good, runs = expected.get(bucket.phase, (0, 0))
            expected[bucket.phase] = (good + bucket.succeeded, runs + bucket.runs)
    assert expected and sum(runs for _, runs in expected.values()) > 0
    found = {
        p.phase: next((d.succeeded, d.runs) for d in p.days if d.day == yesterday)
        for p in report.phases.phases
    }
    assert {k: v for k, v in found.items() if v != (0, 0)} == expected
    [overall] = [d for d in report.phases.overall if d.day == yesterday]
    assert (overall.succeeded, overall.runs) == tuple(
        map(sum, zip(*expected.values(), strict=True))
    )


def test_incidents_are_the_ledgers_episodes(demo: Demo, report: ReportData) -> None:
    store = demo.stack.adapters.store
    ledger = [json.loads(store.read(BUCKET, o.name)) for o in store.list(BUCKET, LEDGER_PREFIX)]
    firing = [r for r in ledger if r["status"] == "firing"]
    assert firing
    [incident] = report.incidents.incidents
    assert incident.fingerprint == demo.fingerprint
    assert incident.opened == datetime.fromisoformat(firing[0]["starts_at"])
    assert incident.notified == min(datetime.fromisoformat(r["notified_at"]) for r in firing)
    assert incident.detection_seconds == min(r["detection_seconds"] for r in firing)
    assert incident.receivers == tuple(sorted({r["receiver"] for r in firing}))
    assert incident.severity == firing[0]["severity"] and incident.source == "slo"
    assert (incident.status, incident.resolved) == ("resolved", demo.resolved_at)


class RecordedHistory:
    """A history holding ``rows`` (read as the port reads: since < at <= until)."""

    def __init__(self, rows: list[EvaluationRecord]) -> None:
        self.rows = rows

    def read(self, slos: Any, since: datetime, until: datetime) -> list[EvaluationRecord]:
        return [r for r in self.rows if r.slo in slos and since < r.at <= until]

    def append(self, job_id: str, records: Any) -> bool:
        raise AssertionError("the report appended to the history")


def _ratio_row(at: datetime, phases: dict[str, list[int]]) -> EvaluationRecord:
    good, total = sum(c[0] for c in phases.values()), sum(c[1] for c in phases.values())
    return EvaluationRecord(
        at=at, slo="phase_success_rate", kind="ratio", good=good == total, value=good / total,
        good_events=good, total_events=total, compliance=None, budget_remaining=None,
        breaching=False, exhausted=False, burning=(), detail=json.dumps({"phases": phases}),
        recorded_at=at,
    )  # fmt: skip


def test_a_row_counts_its_runs_on_the_day_its_interval_ends_in_and_none_after_now(
    tmp_path: Path,
) -> None:
    stack = make_example_stack(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    yesterday = today - timedelta(days=1)
    rows = [
        _ratio_row(yesterday, {"phase_2": [1, 2]}),  # (23:45, 00:00]: the day before
        _ratio_row(yesterday + timedelta(minutes=15), {"phase_2": [3, 3], "phase_4": [0, 1]}),
        _ratio_row(now + timedelta(minutes=1), {"phase_2": [5, 5]}),  # after the report's now
    ]
    adapters = replace(_read_only(stack.adapters), history=RecordedHistory(rows))
    try:
        report = gather(stack.settings, adapters, now=now, days=DAYS)
    finally:
        stack.adapters.close()

    by_phase = {
        p.phase: {d.day: (d.succeeded, d.runs) for d in p.days} for p in report.phases.phases
    }
    before = (yesterday - timedelta(days=1)).date()
    assert by_phase["phase_2"] == {before: (1, 2), yesterday.date(): (3, 3), today.date(): (0, 0)}
    assert [p.phase for p in report.phases.phases] == ["phase_4", "phase_2"]  # worst first
    overall = {d.day: (d.succeeded, d.runs, d.status) for d in report.phases.overall}
    assert overall[yesterday.date()] == (3, 4, "fail")  # 75 % < fail_below 80 %
    assert overall[before] == (1, 2, "fail") and overall[today.date()] == (0, 0, None)
    budget = {b.slo: b for b in report.budget.slos}["phase_success_rate"]
    assert [p.at for p in budget.points] == [rows[0].at, rows[1].at]


def test_missed_nights_are_rows_and_a_stalled_run_is_flagged(tmp_path: Path) -> None:
    """Nights without their nightly run are rows of their own (with the rejected trigger
    when there is one), from the first night backed up on; a subset run doesn't stand in
    for the nightly one; a run in progress past IN_PROGRESS_WARN_AFTER is stalled."""
    stack = make_stack(tmp_path)
    seed_demo(stack.adapters.warehouse)  # type: ignore[arg-type]
    store = stack.adapters.store
    template = stack.manifest(backup_now(stack))  # a real run (its date is outside)
    base = datetime.now(UTC).date() - timedelta(days=40)

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        d = base + timedelta(days=day)
        return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC)

    def night(day: int, run_id: str | None = None) -> None:
        instant = at(day, 9, 30)
        run_id = run_id or f"{instant:%Y%m%d}"
        manifest = template.model_copy(
            update={
                "run_id": run_id, "date": instant.date(), "instant": instant,
                "created_at": instant, "completed_at": instant + timedelta(minutes=4),
            }
        )  # fmt: skip
        store.write(
            BUCKET, f"backups/{run_id}/{MANIFEST}", manifest.model_dump_json().encode(), JSON
        )

    def claim(day: int, created: datetime) -> None:
        instant = at(day, 9, 30)
        record = RunClaim(
            run_id=f"{instant:%Y%m%d}", date=instant.date(), instant=instant,
            tables=FOUR_TABLES, created_at=created, backend="local",
        )  # fmt: skip
        store.write(
            BUCKET, f"backups/{record.run_id}/{CLAIM}", record.model_dump_json().encode(), JSON
        )

    night(-3)  # the first night backed up: nothing before it is missed
    night(2, f"{at(2, 0):%Y%m%d}-0123abcd")  # a subset run only
    night(3)
    night(4)
    claim(5, at(5, 9, 31))  # 26.5 h in progress at the report: stalled
    claim(6, at(6, 11))  # an hour: in progress
    for day in (1, -5):  # -5: before the first run, its trigger rejected (a broken deploy)
        record_rejection(
            store,
            BUCKET,
            TriggerRejection(
                base + timedelta(days=day), at(day, 9, 30), "ConfigError", "bad tables", "42"
            ),
        )
    try:
        adapters = _read_only(stack.adapters)
        report = gather(stack.settings, adapters, now=at(6, 12), days=6)
        wide = gather(stack.settings, adapters, now=at(6, 10), days=14)
        # day 6's claim (11:00) doesn't exist yet: its night is due at 09:30, missed at 10:30
        before, after = (
            gather(stack.settings, adapters, now=at(6, 10, minute), days=1) for minute in (29, 31)
        )
    finally:
        stack.adapters.close()

    def day_of(n: int) -> str:
        return f"{base + timedelta(days=n):%Y%m%d}"

    rows = [(n.run_id, n.status) for n in report.backups.nights]
    assert rows == [
        (day_of(6), "in progress"),
        (day_of(5), "in progress"),
        (day_of(4), "complete"),
        (day_of(3), "complete"),
        (f"{day_of(2)}-0123abcd", "complete"),
        (day_of(2), "missed"),
        (day_of(1), "missed"),
    ]  # newest first; the window (day 0 12:00, day 6 12:00] holds no due night of day 0
    by_id = {n.run_id: n for n in report.backups.nights}
    assert by_id[day_of(6)].note is None
    stalled = by_id[day_of(5)].note
    assert stalled is not None and "stalled" in stalled and "26.5 h" in stalled
    rejected = by_id[day_of(1)]
    assert rejected.note is not None and "ConfigError: bad tables" in rejected.note
    assert rejected.instant == at(1, 9, 30) and rejected.bytes == rejected.tables == 0
    assert by_id[day_of(2)].note == f"no run of {base + timedelta(days=2)} (scheduled 09:30 UTC)"
    # at 10:00, day 6's claim isn't there yet and its night isn't an hour overdue; nights
    # are missed from the first one that ran or whose trigger was rejected (day -5) on
    wide_rows = [(n.run_id, n.status) for n in wide.backups.nights]
    assert not [r for r in wide_rows if r[0].startswith(day_of(6))]
    assert (day_of(5), "in progress") in wide_rows  # 24.5 h: stalled
    assert [r for r in wide_rows if r[1] == "missed"] == [
        (day_of(d), "missed") for d in (2, 1, 0, -1, -2, -4, -5)
    ]
    assert (day_of(-3), "complete") in wide_rows and len(wide_rows) == 12
    assert "ConfigError: bad tables" in str(
        {n.run_id: n for n in wide.backups.nights}[day_of(-5)].note
    )
    # the hour's grace; and a stalled run is shown though it began before the window
    assert [(n.run_id, n.status) for n in before.backups.nights] == [(day_of(5), "in progress")]
    assert [(n.run_id, n.status) for n in after.backups.nights] == [
        (day_of(6), "missed"),
        (day_of(5), "in progress"),
    ]
    assert after.since > at(5, 9, 30) and "stalled" in str(after.backups.nights[1].note)


# -- (b) an empty store -----------------------------------------------------------------
def test_an_empty_stack_reports_what_is_missing_in_every_section(tmp_path: Path) -> None:
    stack = make_example_stack(tmp_path)
    try:
        report = gather(
            stack.settings, _read_only(stack.adapters), now=datetime.now(UTC), days=DAYS
        )
    finally:
        stack.adapters.close()
    missing = report.missing()
    assert set(missing) == {
        "slos", "budget", "freshness", "backups", "drill", "phases", "incidents",
    }  # fmt: skip
    assert "no SLO evaluations yet" in missing["slos"]
    assert "opsuite sla backfill" in missing["slos"] and "opsuite sla evaluate" in missing["slos"]
    assert "opsuite sla backfill" in missing["budget"]
    assert "opsuite sla backfill" in missing["freshness"]
    assert "opsuite backup" in missing["backups"] and "09:30 UTC" in missing["backups"]
    assert "opsuite drill" in missing["drill"]
    assert "phase_success_rate" in missing["phases"]
    assert "ledger" in missing["incidents"]
    assert report.slos.rows == () and report.backups.nights == ()
    assert json.loads(report.to_json())["backups"]["drill"]["drill"] is None


# -- (c) one source failing -------------------------------------------------------------
@pytest.mark.parametrize(
    ("failing", "failed"),
    [
        ({"store": "backups/"}, {"backups", "drill"}),
        ({"store": LEDGER_PREFIX}, {"incidents"}),
        ({"history": True}, {"slos", "budget", "freshness", "phases"}),
    ],
    ids=["backup-listing", "ledger-listing", "history"],
)
def test_a_failing_source_is_reported_in_its_own_sections_only(
    demo: Demo, report: ReportData, failing: dict[str, Any], failed: set[str]
) -> None:
    partial = _gather(demo, **failing)

    missing = partial.missing()
    assert set(missing) == failed
    assert all("TransientError" in why and "503" in why for why in missing.values())
    same: dict[str, Callable[[ReportData], object]] = {
        "slos": lambda r: r.slos,
        "budget": lambda r: r.budget,
        "freshness": lambda r: r.freshness,
        "backups": lambda r: r.backups.nights,
        "drill": lambda r: r.backups.drill,
        "phases": lambda r: r.phases,
        "incidents": lambda r: r.incidents,
    }
    for name, section in same.items():
        if name not in failed:
            assert section(partial) == section(report), name


def test_a_past_instant_sees_the_backups_and_drill_as_they_were_then(tmp_path: Path) -> None:
    """With ``--at`` in the past: a run that finished later was in progress, a drill made
    later did not exist; and stored instants without an offset (UTC) don't break it."""
    stack = make_stack(tmp_path)
    seed_demo(stack.adapters.warehouse)  # type: ignore[arg-type]
    store = stack.adapters.store
    run_id = backup_now(stack)
    manifest = stack.manifest(run_id)
    a = stack.adapters
    drilled = run_drill(DrillDeps(stack.settings.backups, a.warehouse, a.store, "local"))
    assert drilled.record is not None
    # an older night written without offsets, and a rejected trigger likewise
    old = manifest.instant - timedelta(days=2)
    naive = manifest.model_copy(
        update={
            "run_id": f"{old:%Y%m%d}", "date": old.date(),
            "instant": old.replace(tzinfo=None),
            "created_at": old.replace(tzinfo=None),
            "completed_at": (old + timedelta(minutes=3)).replace(tzinfo=None),
        }
    )  # fmt: skip
    store.write(
        BUCKET, f"backups/{naive.run_id}/{MANIFEST}", naive.model_dump_json().encode(), JSON
    )
    day = (old - timedelta(days=1)).date()
    record_rejection(
        store,
        BUCKET,
        TriggerRejection(day, datetime(day.year, day.month, day.day, 9, 31), "E", "bad", "1"),
    )
    midway = manifest.created_at + (manifest.completed_at - manifest.created_at) / 2
    try:
        adapters = _read_only(stack.adapters)
        then = gather(stack.settings, adapters, now=midway, days=5)
        now = gather(stack.settings, adapters, now=datetime.now(UTC), days=5)
        before = gather(
            stack.settings, adapters, now=drilled.record.finished_at - timedelta(seconds=1), days=5
        )
    finally:
        stack.adapters.close()
    by_id = {n.run_id: n for n in then.backups.nights}
    assert (by_id[run_id].status, by_id[run_id].duration_seconds) == ("in progress", None)
    assert by_id[run_id].verification == "not verified" and by_id[run_id].bytes == 0
    assert by_id[naive.run_id].status == "complete"
    assert by_id[naive.run_id].duration_seconds == 180.0
    assert by_id[f"{day:%Y%m%d}"].status == "missed" and "E: bad" in str(
        by_id[f"{day:%Y%m%d}"].note
    )
    assert {n.run_id: n.status for n in now.backups.nights}[run_id] == "complete"
    # the drill: not before it finished, then with a non-negative age
    assert then.backups.drill.drill is None and before.backups.drill.drill is None
    assert "no restore drill" in str(before.backups.drill.missing)
    drill = now.backups.drill.drill
    assert drill is not None and drill.age_hours >= 0
