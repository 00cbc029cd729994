"""The restore drill's restore-time model: one table takes ``overhead + bytes / bandwidth``.

Hand-computed numbers throughout (MB = 10**6 bytes, TB = 10**12).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest

from shared.services.drill import DrillRecord, RestoreModel, fit_restore_model, throughput

MB = 1_000_000
TB = 1_000_000_000_000


def test_two_points_fit_overhead_and_bandwidth() -> None:
    # 1 MB in 5 s and 101 MB in 15 s: 100 MB more took 10 s more -> 10 MB/s, and the
    # 1 MB table's 5 s is 0.1 s of bytes and 4.9 s of fixed cost
    model = fit_restore_model([(1 * MB, 5.0), (101 * MB, 15.0)])

    assert model is not None and model.kind == "two-point"
    assert model.bandwidth_bytes_per_second == pytest.approx(10 * MB)
    assert model.overhead_seconds == pytest.approx(4.9)
    assert model.table_seconds(1 * MB) == pytest.approx(5.0)  # both points on the line
    assert model.table_seconds(101 * MB) == pytest.approx(15.0)


def test_the_order_of_the_tables_does_not_matter() -> None:
    assert fit_restore_model([(101 * MB, 15.0), (1 * MB, 5.0)]) == fit_restore_model(
        [(1 * MB, 5.0), (101 * MB, 15.0)]
    )


def test_projection_pays_the_overhead_once_per_round_of_concurrent_tables() -> None:
    model = RestoreModel("two-point", overhead_seconds=4.9, bandwidth_bytes_per_second=10 * MB)

    # 100 tables, 16 at a time: ceil(100/16) = 7 rounds x 4.9 s = 34.3 s; the bytes are
    # not sped up by concurrency: 1e12 B / 1e7 B/s = 100 000 s
    seconds = model.projected_seconds(TB, 100, concurrency=16)

    assert seconds == pytest.approx(34.3 + 100_000)
    assert seconds / 3600 == pytest.approx(27.7873, abs=1e-4)
    # one table at a time: every table pays its overhead
    assert model.projected_seconds(TB, 100, concurrency=1) == pytest.approx(490 + 100_000)
    assert model.projected_seconds(0, 0, concurrency=16) == 0.0


def test_the_fit_projects_far_less_than_scaling_the_sample_by_bytes() -> None:
    # the review's case: the time of small tables is nearly all fixed cost
    timings = [(1 * MB, 5.0), (101 * MB, 15.0)]
    model = fit_restore_model(timings)
    assert model is not None
    full_bytes, full_tables = 20_000 * MB, 100  # 20 GB

    fitted = model.projected_seconds(full_bytes, full_tables, concurrency=16)
    # the old projection: full bytes at the sample's bytes / seconds
    old = full_bytes / (throughput(102 * MB, 20.0) or math.nan)

    assert fitted == pytest.approx(7 * 4.9 + 2_000)  # 2034.3 s = 0.57 h
    assert old == pytest.approx(3921.5686, abs=1e-3)  # 1.09 h
    # the old default (the smallest table alone): 20 GB at 1 MB / 5 s = 27.8 h, a breach
    assert full_bytes / (throughput(1 * MB, 5.0) or math.nan) / 3600 == pytest.approx(27.7778)


def test_a_negative_fitted_overhead_is_clamped_to_zero() -> None:
    # 10 MB in 1 s, 30 MB in 5 s: the line through both crosses 0 B at -1 s
    model = fit_restore_model([(10 * MB, 1.0), (30 * MB, 5.0)])

    assert model is not None and model.kind == "two-point"
    assert model.overhead_seconds == 0.0
    assert model.bandwidth_bytes_per_second == pytest.approx(5 * MB)  # the slope is kept
    assert model.table_seconds(10 * MB) >= 1.0 and model.table_seconds(30 * MB) >= 5.0


def test_one_table_counts_its_time_as_overhead_and_as_bytes() -> None:
    # 1 MB in 5 s can't be split into fixed and per-byte cost: the projection takes both
    model = fit_restore_model([(1 * MB, 5.0)])

    assert model is not None and model.kind == "single-table"
    assert model.overhead_seconds == 5.0
    assert model.bandwidth_bytes_per_second == pytest.approx(0.2 * MB)
    assert model.note
    # never below either reading of the one measurement: all fixed (7 rounds x 5 s) or
    # all per byte (20 GB at 0.2 MB/s = 100 000 s)
    seconds = model.projected_seconds(20_000 * MB, 100, concurrency=16)
    assert seconds == pytest.approx(35 + 100_000)
    # a backup of that one table: 5 s + 5 s, twice what it took (the price of not knowing)
    assert model.projected_seconds(1 * MB, 1, concurrency=16) == pytest.approx(10.0)


@pytest.mark.parametrize(
    "timings",
    [
        pytest.param([(10 * MB, 5.0), (15 * MB, 9.0)], id="less-than-twice-the-size"),
        pytest.param([(1 * MB, 9.0), (100 * MB, 6.0)], id="bigger-was-faster"),
        pytest.param([(1 * MB, 6.0), (100 * MB, 6.0)], id="bigger-as-fast"),
        pytest.param([(7 * MB, 6.0), (7 * MB, 8.0)], id="same-size"),
    ],
)
def test_no_meaningful_fit_falls_back_to_min_seconds_and_the_pooled_rate(
    timings: list[tuple[int, float]],
) -> None:
    model = fit_restore_model(timings)

    assert model is not None and model.kind == "fallback" and model.note
    total_bytes = sum(b for b, _ in timings)
    total_seconds = sum(s for _, s in timings)
    assert model.bandwidth_bytes_per_second == pytest.approx(total_bytes / total_seconds)
    # at least the fastest table's time; lifted if the pooled rate under-predicts another
    assert model.overhead_seconds >= min(s for _, s in timings)
    for n_bytes, seconds in timings:
        assert model.table_seconds(n_bytes) >= seconds - 1e-9


def test_the_fallback_overhead_is_the_fastest_table_when_that_covers_all() -> None:
    # 10 MB in 5 s, 15 MB in 6 s: 25 MB in 11 s pooled; 5 s + 15 MB / (25/11 MB/s) =
    # 5 + 6.6 s >= 6 s, so nothing needs lifting
    model = fit_restore_model([(10 * MB, 5.0), (15 * MB, 6.0)])

    assert model is not None and model.kind == "fallback"
    assert model.overhead_seconds == 5.0
    assert model.bandwidth_bytes_per_second == pytest.approx(25 * MB / 11)


def test_the_fallback_overhead_is_lifted_so_no_measured_table_is_under_predicted() -> None:
    # 10 MB in 1 s, 15 MB in 20 s: pooled 25 MB / 21 s; the 15 MB table predicted at
    # 1 + 15 * 21 / 25 = 13.6 s < 20 s: the overhead rises by 6.4 s to 7.4 s
    model = fit_restore_model([(10 * MB, 1.0), (15 * MB, 20.0)])

    assert model is not None and model.kind == "fallback"
    assert model.overhead_seconds == pytest.approx(20 - 15 * 21 / 25)
    assert model.table_seconds(15 * MB) == pytest.approx(20.0)


def test_more_tables_fit_the_smallest_and_largest_and_cover_the_rest() -> None:
    # the line through (1 MB, 5 s) and (101 MB, 15 s) predicts 51 MB at 10 s; a 51 MB
    # table measured at 12 s lifts the overhead by 2 s, keeping the bandwidth
    model = fit_restore_model([(1 * MB, 5.0), (51 * MB, 12.0), (101 * MB, 15.0)])

    assert model is not None and model.kind == "two-point"
    assert model.bandwidth_bytes_per_second == pytest.approx(10 * MB)
    assert model.overhead_seconds == pytest.approx(6.9)
    # of several tables of the smallest size, the slowest one is the fit's point
    slow = fit_restore_model([(1 * MB, 4.0), (1 * MB, 5.0), (101 * MB, 15.0)])
    assert slow is not None and slow.overhead_seconds == pytest.approx(4.9)


def test_a_zero_byte_table_measures_the_overhead_alone() -> None:
    model = fit_restore_model([(0, 4.0), (10 * MB, 5.0)])

    assert model is not None and model.kind == "two-point"
    assert model.overhead_seconds == pytest.approx(4.0)
    assert model.bandwidth_bytes_per_second == pytest.approx(10 * MB)


@pytest.mark.parametrize(
    "timings",
    [
        pytest.param([], id="nothing-measured"),
        pytest.param([(0, 3.0)], id="no-bytes"),
        pytest.param([(1 * MB, 0.0)], id="no-time"),
        pytest.param([(1 * MB, math.nan)], id="nan"),
        pytest.param([(1 * MB, math.inf)], id="inf"),
    ],
)
def test_without_bytes_and_time_there_is_no_model(timings: list[tuple[int, float]]) -> None:
    assert fit_restore_model(timings) is None


def test_unusable_timings_are_left_out_of_the_fit() -> None:
    model = fit_restore_model([(1 * MB, 5.0), (50 * MB, 0.0), (101 * MB, 15.0)])

    assert model is not None and model.kind == "two-point"
    assert model.overhead_seconds == pytest.approx(4.9)


def test_throughput() -> None:
    assert throughput(1_000_000, 2.0) == 500_000.0
    assert throughput(0, 2.0) is None  # nothing measured
    assert throughput(10, 0.0) is None


def test_a_record_written_before_the_model_still_reads() -> None:
    # records of earlier drills have no model fields: readers (newest_drill, the SLA
    # evaluator) must still take them
    at = datetime(2026, 11, 30, 10, tzinfo=UTC)
    old = {
        "date": date(2026, 11, 30).isoformat(),
        "run_id": "20261130",
        "instant": at.isoformat(),
        "backend": "gcp",
        "scratch_dataset": "opsuite_drill",
        "started_at": at.isoformat(),
        "finished_at": at.isoformat(),
        "tables": [],
        "totals": {"rows": 0, "bytes": 0, "seconds": 0.0},
        "throughput_bytes_per_second": 1000.0,
        "full_backup_bytes": 3_600_000,
        "full_backup_tables": 3,
        "projected_hours": 1.0,
        "passed": True,
    }

    record = DrillRecord.model_validate(old)

    assert record.projected_hours == 1.0 and record.model is None
    assert record.overhead_seconds is None and record.concurrency is None
