"""MonitoringMetricWriter through the real MetricServiceClient against the Monitoring gRPC fake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc  # type: ignore[import-untyped, unused-ignore]
import pytest

from shared.adapters.gcp.metric_writer import failed_indices
from shared.errors import BadInput, TransientError
from shared.metrics import PREFIX
from shared.models import MetricPoint
from tests.contract.monitoring_support import gcp_metric_stack
from tests.contract.support import PROJECT
from tests.fakes.monitoring_fake import OUT_OF_ORDER

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SLI = PREFIX + "slo/sli"
GOOD = PREFIX + "slo/good"
AGE = PREFIX + "freshness/age_hours"


def clock() -> datetime:
    return NOW


def sli(slo: str, value: float, at: datetime = NOW) -> MetricPoint:
    return MetricPoint(SLI, {"slo": slo}, value, at)


def test_requests_are_global_gauges_with_typed_values_and_end_time_only() -> None:
    with gcp_metric_stack(clock) as (writer, fake):
        report = writer.write(
            [sli("freshness", 0.5), MetricPoint(GOOD, {"slo": "freshness"}, 1, NOW)]
        )

        assert report.written == 2 and report.already_present == 0 and not report.rejected
        (request,) = fake.create_requests()
        assert request.name == f"projects/{PROJECT}"
        by_type = {ts.metric.type: ts for ts in request.time_series}
        for ts in by_type.values():
            assert ts.resource.type == "global"
            assert dict(ts.resource.labels) == {"project_id": PROJECT}
            assert ts.metric_kind == 1  # GAUGE
            (point,) = ts.points
            assert not point.interval.HasField("start_time")
            assert point.interval.end_time.ToDatetime(UTC) == NOW
        assert by_type[SLI].points[0].value.WhichOneof("value") == "double_value"
        assert by_type[SLI].points[0].value.double_value == 0.5
        assert by_type[GOOD].points[0].value.WhichOneof("value") == "int64_value"
        assert dict(by_type[SLI].metric.labels) == {"slo": "freshness"}


def test_450_series_go_in_200_200_50_with_one_point_per_series() -> None:
    points = [MetricPoint(AGE, {"table": f"ds.t{i}"}, float(i), NOW) for i in range(450)]
    with gcp_metric_stack(clock) as (writer, fake):
        report = writer.write(points)

        assert report.written == 450
        assert writer.requests == [200, 200, 50]
        for request in fake.create_requests():
            keys = [tuple(sorted(ts.metric.labels.items())) for ts in request.time_series]
            assert len(keys) == len(set(keys)) <= 200
            assert all(len(ts.points) == 1 for ts in request.time_series)


def test_points_of_one_series_go_in_successive_requests_oldest_first() -> None:
    times = [NOW - timedelta(minutes=m) for m in (0, 30, 15)]  # given out of order
    with gcp_metric_stack(clock) as (writer, fake):
        report = writer.write(
            [sli("a", 0.1 * i, at) for i, at in enumerate(times)] + [sli("b", 1.0)]
        )

        assert report.written == 4 and not report.rejected
        assert writer.requests == [2, 1, 1]
        sent = [
            ts.points[0].interval.end_time.ToDatetime(UTC)
            for request in fake.create_requests()
            for ts in request.time_series
            if ts.metric.labels["slo"] == "a"
        ]
        assert sent == sorted(times)


def test_redelivery_counts_as_already_present_through_points_must_be_written_in_order() -> None:
    points = [sli("a", 0.9), sli("b", 0.8)]
    with gcp_metric_stack(clock) as (writer, fake):
        assert writer.write(points).written == 2

        again = writer.write([*points, sli("c", 0.7)])

        assert (again.written, again.already_present, again.rejected) == (1, 2, ())
        assert fake.calls[-1] == ("CreateTimeSeries", grpc.StatusCode.INVALID_ARGUMENT)
        assert len(fake.points(SLI)) == 3  # c was written despite the partial failure


def test_points_outside_25h_and_5min_are_rejected_and_not_sent() -> None:
    old = sli("old", 0.1, NOW - timedelta(hours=25, seconds=1))
    ahead = sli("ahead", 0.1, NOW + timedelta(minutes=5, seconds=1))
    with gcp_metric_stack(clock) as (writer, fake):
        report = writer.write([old, ahead, sli("ok", 0.2)])

        assert report.written == 1
        assert len(report.rejected) == 2 and "25 h" in report.rejected[0]
        (request,) = fake.create_requests()
        assert [ts.metric.labels["slo"] for ts in request.time_series] == ["ok"]


def test_unavailable_then_ok_is_written_once() -> None:
    with gcp_metric_stack(clock) as (writer, fake):
        fake.fail_next(1, grpc.StatusCode.UNAVAILABLE)

        report = writer.write([sli("a", 0.5)])

        assert report.written == 1 and report.already_present == 0
        assert [c for _, c in fake.calls] == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK]
        assert [len(v) for v in fake.points(SLI).values()] == [1]


def test_unavailable_past_the_deadline_is_transient() -> None:
    with gcp_metric_stack(clock, retry_deadline=1.0) as (writer, fake):
        fake.fail_next(10_000, grpc.StatusCode.UNAVAILABLE)

        with pytest.raises(TransientError):
            writer.write([sli("a", 0.5)])
        assert len(fake.calls) >= 2  # retried before giving up
        assert fake.points(SLI) == {}


@pytest.mark.parametrize(
    "point",
    [
        MetricPoint(PREFIX + "no/such", {"slo": "a"}, 1.0, NOW),
        MetricPoint(SLI, {"slo": "a", "user": "u1"}, 1.0, NOW),  # label not in the catalog
        MetricPoint(GOOD, {"slo": "a"}, 0.5, NOW),  # INT64 metric
        MetricPoint(SLI, {"slo": "a"}, 1.0, NOW.replace(tzinfo=None)),
    ],
)
def test_invalid_points_are_bad_input_and_nothing_is_sent(point: MetricPoint) -> None:
    with gcp_metric_stack(clock) as (writer, fake):
        with pytest.raises(BadInput):
            writer.write([sli("fine", 1.0), point])
        assert fake.calls == [] and writer.requests == []


def test_same_series_twice_at_one_instant_is_bad_input() -> None:
    with gcp_metric_stack(clock) as (writer, fake):
        with pytest.raises(BadInput):
            writer.write([sli("a", 1.0), sli("a", 0.5)])
        assert fake.calls == []


def test_query_returns_points_oldest_first() -> None:
    with gcp_metric_stack(clock) as (writer, _):
        writer.write(
            [sli("a", 0.1, NOW - timedelta(hours=2)), sli("b", 0.2, NOW - timedelta(hours=1))]
        )
        writer.write([sli("a", 0.3, NOW)])

        points = writer.query(SLI, NOW - timedelta(hours=3))

        assert [(p.labels["slo"], p.value, p.at) for p in points] == [
            ("a", 0.1, NOW - timedelta(hours=2)),
            ("b", 0.2, NOW - timedelta(hours=1)),
            ("a", 0.3, NOW),
        ]
        assert writer.query(SLI, NOW - timedelta(minutes=30))[0].value == 0.3


# -- the fake's own rules, through the real client ------------------------------------------
def _raw_series(client_types: object, slo: str, at: datetime, points: int = 1) -> object:
    from google.cloud.monitoring_v3 import types

    return types.TimeSeries(
        metric={"type": SLI, "labels": {"slo": slo}},
        resource={"type": "global", "labels": {"project_id": PROJECT}},
        points=[
            types.Point(
                interval=types.TimeInterval(end_time=at), value=types.TypedValue(double_value=1.0)
            )
            for _ in range(points)
        ],
    )


def test_fake_refuses_more_than_200_series_and_duplicates_with_monitorings_texts() -> None:
    from google.api_core import exceptions as gexc

    with gcp_metric_stack(clock) as (writer, fake):
        client = writer.client
        with pytest.raises(gexc.InvalidArgument, match="maximum of 200 TimeSeries"):
            client.create_time_series(
                name=f"projects/{PROJECT}",
                time_series=[_raw_series(None, f"s{i}", NOW) for i in range(201)],
            )
        with pytest.raises(gexc.InvalidArgument, match="Duplicate TimeSeries encountered") as info:
            client.create_time_series(
                name=f"projects/{PROJECT}",
                time_series=[_raw_series(None, "x", NOW), _raw_series(None, "x", NOW)],
            )
        assert failed_indices(info.value.message) == {
            1: "Duplicate TimeSeries encountered. Only one point can be written per "
            "TimeSeries per request."
        }
        assert len(fake.points(SLI)) == 1  # index 0 was written


def test_failed_indices_parses_monitorings_ranges() -> None:
    message = (
        f"One or more TimeSeries could not be written: {OUT_OF_ORDER}: timeSeries[0-2,5]; "
        "Field timeSeries[3].points[0].value had an invalid value: timeSeries[3]"
    )
    parsed = failed_indices(message)
    assert sorted(parsed) == [0, 1, 2, 3, 5]
    assert parsed[5] == OUT_OF_ORDER
    assert parsed[3].startswith("Field timeSeries[3].points[0]")
