"""The embedded Cloud Monitoring: one JSON-lines file per metric type under ``root``.

It enforces the rules Monitoring enforces (gcp-facts.md "Cloud Monitoring custom
metrics"), so a local test catches what production would reject:

* ``write`` groups points into requests exactly as the GCP adapter does: at most 200
  series per request and one point per series per request; a series' points at later
  instants go in later requests, in time order;
* each request is checked like ``CreateTimeSeries``: a repeated series ("Duplicate
  TimeSeries encountered") or more than 200 series refuse the whole request; a point
  older than 25 h or more than 5 min ahead is rejected; a point at or before its
  series' newest stored point is already there ("Points must be written in order");
* a request's lines are appended with one ``os.write`` per file, under a thread lock
  and an exclusive ``flock``, so two processes sharing ``root`` never interleave or
  store a point twice.

Not enforced: Monitoring's "one point per series every 5 s" (evaluations are minutes
apart).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.errors import BadInput
from shared.metrics import BY_TYPE, METRICS, MetricSpec, spec_for
from shared.models import MetricPoint, WriteReport

MAX_SERIES_PER_REQUEST = 200
MAX_AGE = timedelta(hours=25)
MAX_AHEAD = timedelta(minutes=5)
MAX_LABEL_VALUE = 1024

Series = tuple[str, tuple[tuple[str, str], ...]]


def now_utc() -> datetime:
    return datetime.now(UTC)


def _describe(point: MetricPoint) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(point.labels.items()))
    return f"{point.metric_type}{{{labels}}} at {point.at.isoformat()}"


def _check(point: MetricPoint) -> MetricSpec:
    """The point's catalog entry; BadInput for anything Monitoring refuses as malformed."""
    spec = spec_for(point.metric_type, point.labels)
    for key, label in point.labels.items():
        if not isinstance(label, str) or len(label) > MAX_LABEL_VALUE:
            raise BadInput(
                f"{point.metric_type}: label {key} must be a string of at most "
                f"{MAX_LABEL_VALUE} characters"
            )
    if not isinstance(point.at, datetime) or point.at.utcoffset() is None:
        raise BadInput(f"{point.metric_type}: point time {point.at!r} has no time zone")
    value = point.value
    if spec.value_type == "BOOL":
        ok = isinstance(value, bool)
    elif spec.value_type == "INT64":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:  # DOUBLE: an int is exact as a double, a bool is not a number here
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        raise BadInput(
            f"{point.metric_type}: value {value!r} is not a {spec.value_type} (shared/metrics.py)"
        )
    return spec


def _typed(spec: MetricSpec, value: Any) -> float | int | bool:
    if spec.value_type == "BOOL":
        return bool(value)
    if spec.value_type == "INT64":
        return int(value)
    return float(value)


def _parse_at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class LocalMetricStore:
    def __init__(self, root: Path, clock: Callable[[], datetime] = now_utc) -> None:
        self.root = Path(root)
        self.clock = clock
        #: series per CreateTimeSeries-like request, in the order they were made
        self.requests: list[int] = []
        self._lock = threading.Lock()
        # per file: (bytes already read, newest instant per series): files only grow
        self._newest: dict[str, tuple[int, dict[Series, datetime]]] = {}

    def path(self, metric_type: str) -> Path:
        spec = BY_TYPE.get(metric_type)
        if spec is None:
            raise BadInput(f"{metric_type!r} is not one of the suite's metrics (shared/metrics.py)")
        # names are [a-z_/]: "." never occurs in one, so the mapping can't collide
        return self.root / (spec.name.replace("/", ".") + ".jsonl")

    # -- MetricWriter --------------------------------------------------------------------
    def write(self, points: Sequence[MetricPoint]) -> WriteReport:
        for point in points:
            _check(point)  # everything before anything is written, like the adapter
        by_series: dict[Series, list[MetricPoint]] = {}
        for point in points:
            by_series.setdefault(point.series, []).append(point)
        rounds: list[list[MetricPoint]] = []
        for series_points in by_series.values():
            series_points.sort(key=lambda p: p.at)
            for i, point in enumerate(series_points):
                if i and point.at == series_points[i - 1].at:
                    raise BadInput(
                        f"{_describe(point)}: two points of one series at the same instant"
                    )
                if i == len(rounds):
                    rounds.append([])
                rounds[i].append(point)
        written = already = 0
        rejected: list[str] = []
        for round_points in rounds:
            for start in range(0, len(round_points), MAX_SERIES_PER_REQUEST):
                report = self._create_time_series(
                    round_points[start : start + MAX_SERIES_PER_REQUEST]
                )
                written += report.written
                already += report.already_present
                rejected.extend(report.rejected)
        return WriteReport(written=written, already_present=already, rejected=tuple(rejected))

    def query(
        self, metric_type: str, since: datetime, until: datetime | None = None
    ) -> list[MetricPoint]:
        path = self.path(metric_type)  # BadInput for a type not in the catalog
        spec = BY_TYPE[metric_type]
        if not path.exists():
            return []
        with path.open("rb") as fo:
            fcntl.flock(fo, fcntl.LOCK_SH)
            try:
                data = fo.read()
            finally:
                fcntl.flock(fo, fcntl.LOCK_UN)
        out: list[MetricPoint] = []
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            at = _parse_at(row["at"])
            if at < since or (until is not None and at > until):
                continue
            out.append(
                MetricPoint(metric_type, dict(row["labels"]), _typed(spec, row["value"]), at)
            )
        out.sort(key=lambda p: (p.at, p.series))
        return out

    def list_types(self) -> list[str]:
        """The metric types that have points, sorted."""
        return sorted(m.type for m in METRICS if self.path(m.type).exists())

    # -- one CreateTimeSeries request ----------------------------------------------------
    def _create_time_series(self, points: Sequence[MetricPoint]) -> WriteReport:
        self.requests.append(len(points))
        if len(points) > MAX_SERIES_PER_REQUEST:
            raise BadInput(
                f"a CreateTimeSeries request may not have more than {MAX_SERIES_PER_REQUEST} "
                f"time series ({len(points)})"
            )
        seen: set[Series] = set()
        for point in points:
            _check(point)
            if point.series in seen:
                # Monitoring's text for two points of one series in one request
                raise BadInput(
                    f"Field timeSeries[{points.index(point)}] had an invalid value: "
                    f"Duplicate TimeSeries encountered. Only one point can be written per "
                    f"TimeSeries per request. ({_describe(point)})"
                )
            seen.add(point.series)
        now = self.clock()
        rejected: list[str] = []
        accepted: list[MetricPoint] = []
        for point in points:
            if point.at < now - MAX_AGE:
                rejected.append(
                    f"{_describe(point)}: older than 25 h before {now.isoformat()} "
                    "(Cloud Monitoring refuses it)"
                )
            elif point.at > now + MAX_AHEAD:
                rejected.append(
                    f"{_describe(point)}: more than 5 min ahead of {now.isoformat()} "
                    "(Cloud Monitoring refuses it)"
                )
            else:
                accepted.append(point)
        by_type: dict[str, list[MetricPoint]] = {}
        for point in accepted:
            by_type.setdefault(point.metric_type, []).append(point)
        written = already = 0
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock, ExitStack() as stack:
            fds: dict[str, int] = {}
            for metric_type in sorted(by_type):  # one lock order: no deadlock
                fd = os.open(self.path(metric_type), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                stack.callback(os.close, fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
                stack.callback(fcntl.flock, fd, fcntl.LOCK_UN)
                fds[metric_type] = fd
            for metric_type, type_points in by_type.items():
                fd = fds[metric_type]
                newest = self._refresh(metric_type, fd)
                lines: list[str] = []
                for point in type_points:
                    last = newest.get(point.series)
                    if last is not None and point.at <= last:
                        already += 1  # "Points must be written in order": a redelivery
                        continue
                    at = point.at.astimezone(UTC)
                    lines.append(
                        json.dumps(
                            {
                                "labels": dict(sorted(point.labels.items())),
                                "value": _typed(BY_TYPE[metric_type], point.value),
                                "at": at.isoformat(),
                            }
                        )
                    )
                    newest[point.series] = at
                    written += 1
                if lines:
                    data = ("\n".join(lines) + "\n").encode("utf-8")
                    offset = self._newest[metric_type][0]
                    end = os.fstat(fd).st_size
                    view = memoryview(data)
                    while view:  # one call for a regular file; loop only on a short write
                        view = view[os.write(fd, view) :]
                    if end == offset:  # nothing foreign since the refresh: skip our lines
                        self._newest[metric_type] = (end + len(data), newest)
        return WriteReport(written=written, already_present=already, rejected=tuple(rejected))

    def _refresh(self, metric_type: str, fd: int) -> dict[Series, datetime]:
        """The newest stored instant per series of ``metric_type`` (caller holds the flock)."""
        offset, newest = self._newest.get(metric_type, (0, {}))
        size = os.fstat(fd).st_size
        if size < offset:  # the file was replaced or truncated: read it again
            offset, newest = 0, {}
        if size > offset:
            data = os.pread(fd, size - offset, offset)
            complete = data.rfind(b"\n") + 1  # only whole lines
            for line in data[:complete].decode("utf-8").splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                series: Series = (metric_type, tuple(sorted(row["labels"].items())))
                at = _parse_at(row["at"])
                if series not in newest or at > newest[series]:
                    newest[series] = at
            offset += complete
        self._newest[metric_type] = (offset, newest)
        return newest
