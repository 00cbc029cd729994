"""An in-test gRPC server for ``google.monitoring.v3.MetricService`` (CreateTimeSeries, ListTimeSeries).

The real ``google.cloud.monitoring_v3.MetricServiceClient`` talks to it over gRPC on
``127.0.0.1:<port>`` (see :meth:`FakeMonitoringServer.client`). It enforces the documented
write rules (gcp-facts.md "Cloud Monitoring custom metrics") with Monitoring's error texts:

* more than 200 series, or none, in one request → ``INVALID_ARGUMENT`` (nothing written);
* per series (a *partial* failure: the other series of the request are written and the
  message lists the failed indices the way Monitoring does, ``...: timeSeries[3,5-7]``):
  the same series twice in one request ("Duplicate TimeSeries encountered ..."), not
  exactly one point, a point not newer than the series' last ("Points must be written in
  order ..."), an end time more than 25 h old or more than 5 min ahead, a GAUGE whose
  start time differs from its end time, a value type other than the metric's first one.

The status also carries a ``CreateTimeSeriesSummary`` detail (total / success counts and
the error categories), as the service sends. It records every request and can be told to
fail the next N calls of a method (:meth:`FakeMonitoringServer.fail_next`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]
from google.cloud.monitoring_v3.types import metric_service
from google.protobuf import any_pb2, empty_pb2  # type: ignore[import-untyped, unused-ignore]
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_status import rpc_status  # type: ignore[import-untyped, unused-ignore]

from tests.fakes.grpc_fake import GrpcFake

SERVICE = "google.monitoring.v3.MetricService"
MAX_SERIES = 200
MAX_AGE = timedelta(hours=25)
MAX_AHEAD = timedelta(minutes=5)

DUPLICATE = (
    "Duplicate TimeSeries encountered. Only one point can be written per TimeSeries per request."
)
OUT_OF_ORDER = (
    "Points must be written in order. One or more of the points specified had an older "
    "start time than the most recent point."
)
TOO_OLD = "Data points cannot be written more than 25h in the past."
TOO_NEW = "Data points cannot be written more than 5m in the future."
PARTIAL = "One or more TimeSeries could not be written"

SeriesKey = tuple[str, tuple[tuple[str, str], ...], str, tuple[tuple[str, str], ...]]


@dataclass
class StoredPoint:
    at: datetime
    value: Any  # google.monitoring.v3.TypedValue (raw protobuf)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeMonitoringServer(GrpcFake):
    clock: Callable[[], datetime] = _utcnow
    requests: list[Any] = field(default_factory=list)
    series: dict[SeriesKey, list[StoredPoint]] = field(default_factory=dict)
    value_types: dict[str, str] = field(default_factory=dict)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FakeMonitoringServer:
        def unary(method: str, request_type: Any, serialize: Callable[[Any], bytes]) -> Any:
            handler = getattr(self, f"_{method}")

            def call(request: Any, context: grpc.ServicerContext) -> Any:
                fault = self._take_fault(method)
                if fault is not None:
                    self.calls.append((method, fault.code))
                    context.abort(fault.code, fault.details)
                try:
                    response = handler(request)
                except _Abort as abort:
                    self.calls.append((method, abort.code))
                    context.abort_with_status(rpc_status.to_status(abort.status))
                self.calls.append((method, grpc.StatusCode.OK))
                return response

            return grpc.unary_unary_rpc_method_handler(
                call,
                request_deserializer=request_type.pb().FromString,
                response_serializer=serialize,
            )

        handlers = {
            "CreateTimeSeries": unary(
                "CreateTimeSeries",
                metric_service.CreateTimeSeriesRequest,
                lambda m: m.SerializeToString(),
            ),
            "ListTimeSeries": unary(
                "ListTimeSeries",
                metric_service.ListTimeSeriesRequest,
                lambda m: m.SerializeToString(),
            ),
        }
        self._serve(SERVICE, handlers)
        return self

    def client(self) -> Any:
        """A real ``MetricServiceClient`` on an insecure channel to this server."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.monitoring_v3 import MetricServiceClient
        from google.cloud.monitoring_v3.services.metric_service.transports import (
            MetricServiceGrpcTransport,
        )

        channel = grpc.insecure_channel(self.address)
        transport = MetricServiceGrpcTransport(
            channel=channel,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )
        return MetricServiceClient(transport=transport)

    # -- test controls ------------------------------------------------------------------
    def fail_next(
        self,
        count: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        *,
        method: str = "CreateTimeSeries",
        details: str = "The service is currently unavailable.",
    ) -> None:
        self._add_fault(method, count, code, details)

    def create_requests(self) -> list[Any]:
        """The CreateTimeSeries requests received (raw protobuf), faults not included."""
        with self._lock:
            return list(self.requests)

    def points(self, metric_type: str) -> dict[SeriesKey, list[StoredPoint]]:
        with self._lock:
            return {k: list(v) for k, v in self.series.items() if k[0] == metric_type}

    # -- the service --------------------------------------------------------------------
    def _CreateTimeSeries(self, request: Any) -> Any:
        with self._lock:
            self.requests.append(request)
            if not re.fullmatch(r"projects/[a-z][-a-z0-9]{4,28}[a-z0-9]", request.name):
                raise _invalid(f"Field name had an invalid value of {request.name!r}.")
            count = len(request.time_series)
            if count == 0:
                raise _invalid("At least one TimeSeries must be specified.")
            if count > MAX_SERIES:
                raise _invalid(
                    "Field timeSeries had an invalid value: A maximum of "
                    f"{MAX_SERIES} TimeSeries can be written in a single request."
                )
            now = self.clock()
            failed: dict[str, list[int]] = {}
            seen: set[SeriesKey] = set()
            for index, ts in enumerate(request.time_series):
                key = _key(ts)
                error = self._check(ts, key, seen, now)
                seen.add(key)
                if error is not None:
                    failed.setdefault(error, []).append(index)
                    continue
                (point,) = ts.points
                self.series.setdefault(key, []).append(
                    StoredPoint(point.interval.end_time.ToDatetime(UTC), point.value)
                )
                self.value_types.setdefault(ts.metric.type, point.value.WhichOneof("value"))
            if failed:
                raise _partial(failed, count)
        return empty_pb2.Empty()

    def _check(self, ts: Any, key: SeriesKey, seen: set[SeriesKey], now: datetime) -> str | None:
        if key in seen:
            return DUPLICATE
        if len(ts.points) != 1:
            return (
                "Field timeSeries.points had an invalid value: Only one point can be written "
                "per TimeSeries per request."
            )
        (point,) = ts.points
        if not point.interval.HasField("end_time"):
            return "Field timeSeries.points.interval.end_time is required."
        end = point.interval.end_time.ToDatetime(UTC)
        kind = ts.metric_kind or 1  # unspecified → GAUGE for a new custom metric
        if (
            kind == 1
            and point.interval.HasField("start_time")
            and point.interval.start_time != point.interval.end_time
        ):
            return (
                "Field timeSeries.points.interval.start_time had an invalid value: "
                "The start time must be equal to the end time for the gauge metric."
            )
        if end < now - MAX_AGE:
            return TOO_OLD
        if end > now + MAX_AHEAD:
            return TOO_NEW
        which = point.value.WhichOneof("value")
        if which is None:
            return "Field timeSeries.points.value is required."
        expected = self.value_types.get(ts.metric.type)
        if expected is not None and expected != which:
            return (
                f"Value type for metric {ts.metric.type} must be "
                f"{_TYPE_NAMES.get(expected, expected)}, but is {_TYPE_NAMES.get(which, which)}."
            )
        previous = self.series.get(key)
        if previous and end <= previous[-1].at:
            return OUT_OF_ORDER
        return None

    def _ListTimeSeries(self, request: Any) -> Any:
        match = re.search(r'metric\.type\s*=\s*"([^"]+)"', request.filter)
        if match is None:
            raise _invalid(f"Field filter had an invalid value of {request.filter!r}.")
        metric_type = match.group(1)
        end = request.interval.end_time.ToDatetime(UTC)
        start = (
            request.interval.start_time.ToDatetime(UTC)
            if request.interval.HasField("start_time")
            else end
        )
        response = metric_service.ListTimeSeriesResponse.pb()()
        with self._lock:
            for key, stored in self.series.items():
                if key[0] != metric_type:
                    continue
                chosen = [p for p in stored if start <= p.at <= end]
                if not chosen:
                    continue
                ts = response.time_series.add()
                ts.metric.type = key[0]
                ts.metric.labels.update(dict(key[1]))
                ts.resource.type = key[2]
                ts.resource.labels.update(dict(key[3]))
                ts.metric_kind = 1  # GAUGE
                for p in reversed(chosen):  # newest first, as the service returns them
                    out = ts.points.add()
                    out.interval.end_time.FromDatetime(p.at)
                    out.interval.start_time.FromDatetime(p.at)
                    out.value.CopyFrom(p.value)
        return response


_TYPE_NAMES = {
    "bool_value": "BOOL",
    "int64_value": "INT64",
    "double_value": "DOUBLE",
    "string_value": "STRING",
    "distribution_value": "DISTRIBUTION",
}


def _key(ts: Any) -> SeriesKey:
    return (
        ts.metric.type,
        tuple(sorted(ts.metric.labels.items())),
        ts.resource.type,
        tuple(sorted(ts.resource.labels.items())),
    )


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.code = code
        self.status = status


def _invalid(message: str) -> _Abort:
    return _Abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message),
    )


def index_ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` → ``"0-2,5"`` (Monitoring's way of listing failed series)."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in indices[1:]:
        if i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        start = prev = i
    parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(parts)


def _partial(failed: dict[str, list[int]], total: int) -> _Abort:
    causes = "; ".join(f"{msg}: timeSeries[{index_ranges(idx)}]" for msg, idx in failed.items())
    summary = metric_service.CreateTimeSeriesSummary.pb()(
        total_point_count=total,
        success_point_count=total - sum(len(i) for i in failed.values()),
    )
    for msg, idx in failed.items():
        error = summary.errors.add()
        error.status.code = code_pb2.INVALID_ARGUMENT
        error.status.message = msg
        error.point_count = len(idx)
    detail = any_pb2.Any()
    detail.Pack(summary)
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=f"{PARTIAL}: {causes}", details=[detail]
    )
    return _Abort(grpc.StatusCode.INVALID_ARGUMENT, status)
