"""The MetricWriter contract: the same cases on the local store and the GCP adapter.

``gcp`` runs the real ``MetricServiceClient`` against the in-test gRPC fake of
``tests.contract.monitoring_support`` (skipped while that module is absent). Both
writers expose ``requests``: the number of series of each CreateTimeSeries request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.local.metric_store import LocalMetricStore
from shared.errors import BadInput
from shared.metrics import PREFIX
from shared.models import MetricPoint

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
AGE = PREFIX + "freshness/age_hours"
SLI = PREFIX + "slo/sli"
HEARTBEAT = PREFIX + "evaluator/heartbeat"


def clock() -> datetime:
    return NOW


@pytest.fixture(params=["local", "gcp"])
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "local":
        yield LocalMetricStore(tmp_path / "monitoring", clock=clock)
        return
    support = pytest.importorskip("tests.contract.monitoring_support")
    with support.gcp_metric_writer(clock) as gcp_writer:
        yield gcp_writer


def age(table: str, value: float, at: datetime = NOW) -> MetricPoint:
    return MetricPoint(AGE, {"table": table}, value, at)


def test_450_series_are_three_requests_and_all_written(writer: Any) -> None:
    points = [age(f"t{i:03d}", float(i)) for i in range(450)]

    report = writer.write(points)

    assert (report.written, report.already_present, report.rejected) == (450, 0, ())
    if hasattr(writer, "requests"):
        assert writer.requests == [200, 200, 50]
    stored = writer.query(AGE, NOW - timedelta(hours=1))
    assert sorted(p.labels["table"] for p in stored) == [f"t{i:03d}" for i in range(450)]
    assert {p.labels["table"]: p.value for p in stored}["t123"] == 123.0


def test_the_same_write_twice_is_already_present_and_stored_once(writer: Any) -> None:
    points = [age("a", 1.5), age("b", 2.5), MetricPoint(HEARTBEAT, {}, 1, NOW)]
    writer.write(points)

    again = writer.write(points)

    assert (again.written, again.already_present, again.rejected) == (0, 3, ())
    assert [(p.labels["table"], p.value) for p in writer.query(AGE, NOW)] == [
        ("a", 1.5),
        ("b", 2.5),
    ]
    assert [(p.value, p.at) for p in writer.query(HEARTBEAT, NOW)] == [(1, NOW)]


def test_two_instants_of_one_series_in_one_write_are_both_written_in_order(
    writer: Any,
) -> None:
    later, earlier = age("a", 2.0, NOW), age("a", 1.0, NOW - timedelta(minutes=15))

    report = writer.write([later, earlier, age("b", 9.0)])

    assert (report.written, report.already_present, report.rejected) == (3, 0, ())
    if hasattr(writer, "requests"):
        assert writer.requests == [2, 1]  # one point per series per request
    series_a = [
        (p.value, p.at)
        for p in writer.query(AGE, NOW - timedelta(hours=1))
        if p.labels["table"] == "a"
    ]
    assert series_a == [(1.0, NOW - timedelta(minutes=15)), (2.0, NOW)]


def test_a_point_26_hours_old_is_rejected_naming_25_hours(writer: Any) -> None:
    old = NOW - timedelta(hours=26)

    report = writer.write([age("old", 1.0, old), age("new", 2.0)])

    assert (report.written, report.already_present) == (1, 0)
    assert len(report.rejected) == 1 and "25 h" in report.rejected[0]
    assert "old" in report.rejected[0]
    assert [p.labels["table"] for p in writer.query(AGE, old - timedelta(hours=1))] == ["new"]


def test_a_point_6_minutes_ahead_is_rejected(writer: Any) -> None:
    ahead = NOW + timedelta(minutes=6)

    report = writer.write([age("ahead", 1.0, ahead), age("ok", 1.0, NOW + timedelta(minutes=4))])

    assert report.written == 1
    assert len(report.rejected) == 1 and "5 min" in report.rejected[0]
    assert [p.labels["table"] for p in writer.query(AGE, NOW - timedelta(hours=1))] == ["ok"]


@pytest.mark.parametrize(
    "bad",
    [
        MetricPoint(PREFIX + "slo/nope", {"slo": "x"}, 1.0, NOW),
        MetricPoint("custom.googleapis.com/other", {}, 1.0, NOW),
        MetricPoint(SLI, {}, 1.0, NOW),  # missing label
        MetricPoint(SLI, {"slo": "x", "extra": "y"}, 1.0, NOW),  # unknown label
        MetricPoint(HEARTBEAT, {}, True, NOW),  # bool is not an INT64
        MetricPoint(HEARTBEAT, {}, 1.5, NOW),  # a DOUBLE for an INT64
        MetricPoint(SLI, {"slo": "x"}, "0.9", NOW),  # type: ignore[arg-type]
    ],
    ids=[
        "unknown-name",
        "outside-prefix",
        "missing-label",
        "extra-label",
        "bool-int64",
        "double-int64",
        "str-double",
    ],
)
def test_unknown_type_wrong_labels_or_value_type_is_bad_input_and_nothing_written(
    writer: Any, bad: MetricPoint
) -> None:
    good = [age("a", 1.0), MetricPoint(SLI, {"slo": "y"}, 0.5, NOW)]

    with pytest.raises(BadInput):
        writer.write([*good, bad])

    assert writer.query(AGE, NOW - timedelta(hours=25)) == []
    assert writer.query(SLI, NOW - timedelta(hours=25)) == []


def test_query_window_bounds_are_inclusive_and_oldest_first(writer: Any) -> None:
    instants = [NOW - timedelta(hours=h) for h in (3, 2, 1, 0)]
    writer.write([age("a", float(i), at) for i, at in enumerate(instants)])

    def values(since: datetime, until: datetime | None = None) -> list[float]:
        return [p.value for p in writer.query(AGE, since, until)]

    assert values(instants[1], instants[2]) == [1.0, 2.0]
    assert values(instants[1]) == [1.0, 2.0, 3.0]
    assert values(instants[2], instants[2]) == [2.0]
    assert values(NOW + timedelta(seconds=1)) == []
    assert all(p.at.tzinfo is not None for p in writer.query(AGE, instants[0]))


# -- local store only: the request-level rules it enforces like Monitoring does ---------
@pytest.fixture
def store(tmp_path: Path) -> LocalMetricStore:
    return LocalMetricStore(tmp_path / "monitoring", clock=clock)


def test_local_same_series_same_instant_twice_in_one_write_is_bad_input(
    store: LocalMetricStore,
) -> None:
    with pytest.raises(BadInput, match="same instant"):
        store.write([age("a", 1.0), age("b", 1.0), age("a", 2.0)])
    assert store.query(AGE, NOW - timedelta(hours=1)) == []


def test_local_request_with_a_repeated_series_is_refused_like_monitoring(
    store: LocalMetricStore,
) -> None:
    with pytest.raises(BadInput, match="Duplicate TimeSeries encountered"):
        store._create_time_series([age("a", 1.0, NOW - timedelta(minutes=1)), age("a", 2.0)])
    assert store.query(AGE, NOW - timedelta(hours=1)) == []


def test_local_request_of_201_series_is_refused_like_monitoring(
    store: LocalMetricStore,
) -> None:
    with pytest.raises(BadInput, match="more than 200"):
        store._create_time_series([age(f"t{i}", 1.0) for i in range(201)])
    assert store.query(AGE, NOW - timedelta(hours=1)) == []


def test_local_point_older_than_the_newest_stored_is_already_present(
    store: LocalMetricStore,
) -> None:
    store.write([age("a", 2.0)])

    report = store.write([age("a", 1.0, NOW - timedelta(minutes=15))])

    assert (report.written, report.already_present) == (0, 1)
    assert [p.value for p in store.query(AGE, NOW - timedelta(hours=1))] == [2.0]


def test_local_stores_sharing_a_root_never_store_a_point_twice(tmp_path: Path) -> None:
    root = tmp_path / "monitoring"
    points = [age(f"t{i:03d}", float(i)) for i in range(300)]
    stores = [LocalMetricStore(root, clock=clock) for _ in range(4)]
    reports: list[Any] = []
    start = threading.Barrier(len(stores))

    def run(s: LocalMetricStore) -> None:
        start.wait()
        reports.append(s.write(points))

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(r.written for r in reports) == 300
    assert sum(r.already_present for r in reports) == 900
    assert len(LocalMetricStore(root, clock=clock).query(AGE, NOW)) == 300


def test_local_list_types_names_what_was_written(store: LocalMetricStore) -> None:
    assert store.list_types() == []
    store.write([age("a", 1.0), MetricPoint(HEARTBEAT, {}, 1, NOW)])
    assert store.list_types() == sorted([AGE, HEARTBEAT])
    assert all(p.suffix == ".jsonl" for p in store.root.iterdir())


def test_local_query_of_an_unknown_type_is_bad_input(store: LocalMetricStore) -> None:
    with pytest.raises(BadInput):
        store.query(PREFIX + "nope", NOW)
