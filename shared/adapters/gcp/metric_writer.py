"""The MetricWriter port on Cloud Monitoring (``google-cloud-monitoring``, imported on first use).

Every point is checked against the catalog (:func:`shared.metrics.spec_for`) before anything
is sent. Points are then batched as the service requires (gcp-facts.md "Cloud Monitoring
custom metrics"): at most 200 series per ``CreateTimeSeries``, exactly one point per series
per request, the points of one series in successive requests in time order. GAUGE points
carry only an end time (the service takes start == end), on the ``global`` resource.

Monitoring answers a request in which some series failed with INVALID_ARGUMENT and a message
listing the failed indices, e.g. ``One or more TimeSeries could not be written: Points must be
written in order. ...: timeSeries[0-12,15]``; the other series of that request *were*
written. "Points must be written in order" for a point we send means the series already has
a point at that instant or later: a redelivered evaluation, counted as ``already_present``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import identifiers
from shared.adapters.gcp._errors import translated
from shared.errors import BadInput
from shared.metrics import BY_TYPE, MetricSpec, spec_for
from shared.models import MetricPoint, WriteReport

MAX_SERIES_PER_REQUEST = 200
MAX_AGE = timedelta(hours=25)
MAX_AHEAD = timedelta(minutes=5)

#: The per-series causes that mean "this point (or a later one) is already there".
_ALREADY_PRESENT = re.compile(r"Points must be written in order|duplicate point", re.IGNORECASE)
#: ``<cause>: timeSeries[0-12,15]`` segments, separated by "; " (the index list ends a
#: segment: ``Field timeSeries[0].points[0]...`` inside a cause must not match).
_FAILED = re.compile(r"timeSeries\[([0-9][0-9,\- ]*)\](?=\s*(?:;|$))")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def failed_indices(message: str) -> dict[int, str]:
    """Index of each failed series in the request → its cause, from Monitoring's message."""
    out: dict[int, str] = {}
    body = message.split("could not be written:", 1)[-1]
    start = 0
    for match in _FAILED.finditer(body):
        cause = body[start : match.start()].strip().lstrip(";").strip().rstrip(":").strip()
        start = match.end()
        for part in match.group(1).split(","):
            part = part.strip()
            if not part:
                continue
            first, _, last = part.partition("-")
            for index in range(int(first), int(last or first) + 1):
                out[index] = cause
    return out


class MonitoringMetricWriter:
    def __init__(
        self,
        project: str,
        client: Any | None = None,
        *,
        retry_deadline: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.project = identifiers.project_id(project)
        self.retry_deadline = retry_deadline
        self.clock = clock
        self.requests: list[int] = []  # series per CreateTimeSeries request sent
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                with translated("Cloud Monitoring client"):
                    from google.cloud.monitoring_v3 import MetricServiceClient

                    self._client = MetricServiceClient()
            return self._client

    @property
    def name(self) -> str:
        return f"projects/{self.project}"

    def _retry(self) -> Any:
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_exception_type

        # monitoring_v3/services/metric_service/transports/base.py _prep_wrapped_messages:
        # create_time_series has NO default retry (only a 12 s timeout); list_time_series
        # retries ServiceUnavailable only. Retrying a write is safe here: a point the
        # failed attempt did write comes back as "Points must be written in order".
        return Retry(
            initial=0.2,
            maximum=5.0,
            multiplier=2.0,
            predicate=if_exception_type(
                gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.ResourceExhausted
            ),
            timeout=self.retry_deadline,
        )

    # -- write --------------------------------------------------------------------------
    def write(self, points: Sequence[MetricPoint]) -> WriteReport:
        specs = [self._validate(p) for p in points]
        seen: set[tuple[object, datetime]] = set()
        for point in points:
            if (point.series, point.at) in seen:
                raise BadInput(
                    f"{_describe(point)}: the same series twice at the same instant in one write"
                )
            seen.add((point.series, point.at))

        now = self.clock()
        rejected: list[str] = []
        sendable: list[tuple[MetricPoint, MetricSpec]] = []
        for point, spec in zip(points, specs, strict=True):
            if point.at < now - MAX_AGE:
                rejected.append(f"{_describe(point)}: older than 25 h (Monitoring refuses it)")
            elif point.at > now + MAX_AHEAD:
                rejected.append(
                    f"{_describe(point)}: more than 5 min ahead (Monitoring refuses it)"
                )
            else:
                sendable.append((point, spec))

        written = already = 0
        for batch in _batches(sendable):
            ok, present, lost = self._send(batch)
            written += ok
            already += present
            rejected.extend(lost)
        return WriteReport(written=written, already_present=already, rejected=tuple(rejected))

    def _validate(self, point: MetricPoint) -> MetricSpec:
        spec = spec_for(point.metric_type, point.labels)
        if point.at.tzinfo is None or point.at.utcoffset() is None:
            raise BadInput(f"{_describe(point)}: 'at' must be timezone-aware")
        value = point.value
        if spec.value_type == "BOOL":
            ok = isinstance(value, bool)
        elif spec.value_type == "INT64":
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise BadInput(
                f"{_describe(point)}: value {value!r} is not a {spec.value_type} "
                "(shared/metrics.py)"
            )
        for key, label in point.labels.items():
            if not isinstance(label, str) or len(label) > 1024:
                raise BadInput(f"{_describe(point)}: label {key!r} must be a string ≤ 1024 chars")
        return spec

    def _send(self, batch: list[tuple[MetricPoint, MetricSpec]]) -> tuple[int, int, list[str]]:
        from google.api_core import exceptions as gexc

        series = [self._time_series(point, spec) for point, spec in batch]
        self.requests.append(len(series))
        what = f"create_time_series ({len(series)} series) in {self.name}"
        with translated(what):
            try:
                # client.py create_time_series: returns None; a partial failure raises
                # InvalidArgument naming the failed indices (the rest were written).
                self.client.create_time_series(
                    name=self.name,
                    time_series=series,
                    retry=self._retry(),
                    timeout=min(self.retry_deadline, 12.0),
                )
            except gexc.InvalidArgument as exc:
                failed = failed_indices(str(exc.message))
                if not failed or max(failed) >= len(batch):
                    raise  # not a per-series answer: PermanentError via translated
                present = 0
                lost: list[str] = []
                for index, cause in sorted(failed.items()):
                    if _ALREADY_PRESENT.search(cause):
                        present += 1
                    else:
                        lost.append(f"{_describe(batch[index][0])}: {cause}")
                return len(batch) - len(failed), present, lost
        return len(batch), 0, []

    def _time_series(self, point: MetricPoint, spec: MetricSpec) -> Any:
        from google.api import metric_pb2  # type: ignore[import-untyped, unused-ignore]
        from google.cloud.monitoring_v3 import types

        if spec.value_type == "BOOL":
            value = types.TypedValue(bool_value=bool(point.value))
        elif spec.value_type == "INT64":
            value = types.TypedValue(int64_value=int(point.value))
        else:
            value = types.TypedValue(double_value=float(point.value))
        # GAUGE: end time only (the service sets start = end).
        interval = types.TimeInterval(end_time=point.at)
        return types.TimeSeries(
            metric={"type": point.metric_type, "labels": dict(point.labels)},
            resource={"type": "global", "labels": {"project_id": self.project}},
            metric_kind=metric_pb2.MetricDescriptor.GAUGE,
            value_type=metric_pb2.MetricDescriptor.ValueType.Value(spec.value_type),
            points=[types.Point(interval=interval, value=value)],
        )

    # -- query --------------------------------------------------------------------------
    def query(
        self, metric_type: str, since: datetime, until: datetime | None = None
    ) -> list[MetricPoint]:
        spec = BY_TYPE.get(metric_type)
        if spec is None:
            raise BadInput(f"{metric_type!r} is not one of the suite's metrics (shared/metrics.py)")
        from google.cloud.monitoring_v3 import types

        # no ``until``: everything up to the newest point Monitoring accepts (5 min ahead)
        end = until if until is not None else self.clock() + timedelta(minutes=5)
        out: list[MetricPoint] = []
        with translated(f"list_time_series {metric_type} in {self.name}"):
            # The pager fetches further pages as it is iterated; its default retry covers
            # ServiceUnavailable only (transports/base.py), so ours is passed.
            pager = self.client.list_time_series(
                name=self.name,
                filter=f'metric.type = "{metric_type}"',
                interval=types.TimeInterval(start_time=since, end_time=end),
                view=types.ListTimeSeriesRequest.TimeSeriesView.FULL,
                retry=self._retry(),
            )
            for ts in pager:
                labels = dict(ts.metric.labels)
                for p in ts.points:
                    out.append(
                        MetricPoint(
                            metric_type=metric_type,
                            labels=labels,
                            value=_value(p.value, spec),
                            at=p.interval.end_time,  # proto-plus: DatetimeWithNanoseconds (UTC)
                        )
                    )
        out.sort(key=lambda p: (p.at, p.series))
        return out


def _value(value: Any, spec: MetricSpec) -> float | int | bool:
    if spec.value_type == "BOOL":
        return bool(value.bool_value)
    if spec.value_type == "INT64":
        return int(value.int64_value)
    return float(value.double_value)


def _describe(point: MetricPoint) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(point.labels.items()))
    return f"{point.metric_type}{{{labels}}} at {point.at.isoformat()}"


def _batches(
    items: list[tuple[MetricPoint, MetricSpec]],
) -> Iterator[list[tuple[MetricPoint, MetricSpec]]]:
    """≤ 200 distinct series per request; a series' points in successive requests, oldest first.

    Points are ordered by (position in their series, time), then cut greedily: a request ends
    at 200 series or when the next point's series is already in it.
    """
    by_series: dict[object, list[tuple[MetricPoint, MetricSpec]]] = {}
    for item in items:
        by_series.setdefault(item[0].series, []).append(item)
    ordered: list[tuple[int, datetime, int, tuple[MetricPoint, MetricSpec]]] = []
    for n, group in enumerate(by_series.values()):
        group.sort(key=lambda it: it[0].at)
        ordered.extend((rank, it[0].at, n, it) for rank, it in enumerate(group))
    ordered.sort(key=lambda row: (row[0], row[1], row[2]))
    batch: list[tuple[MetricPoint, MetricSpec]] = []
    in_batch: set[object] = set()
    for _, _, _, item in ordered:
        series = item[0].series
        if len(batch) >= MAX_SERIES_PER_REQUEST or series in in_batch:
            yield batch
            batch, in_batch = [], set()
        batch.append(item)
        in_batch.add(series)
    if batch:
        yield batch
