"""The GCP MetricWriter under test: the real ``MetricServiceClient`` against the gRPC fake.

``gcp_metric_writer(clock)`` starts :class:`tests.fakes.monitoring_fake.FakeMonitoringServer`
(whose 25 h / 5 min rules use the same ``clock``), builds the client on
``MetricServiceGrpcTransport(channel=grpc.insecure_channel(...))`` with anonymous
credentials (no metadata-server probe, no network) and yields the adapter;
``gcp_metric_stack`` yields ``(writer, fake)`` for request-level assertions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from shared.adapters.gcp.metric_writer import MonitoringMetricWriter
from tests.contract.support import PROJECT
from tests.fakes.monitoring_fake import FakeMonitoringServer

#: Short enough that a persistent UNAVAILABLE ends a test quickly, long enough for one retry.
RETRY_DEADLINE = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@contextmanager
def gcp_metric_stack(
    clock: Callable[[], datetime] = _utcnow, *, retry_deadline: float = RETRY_DEADLINE
) -> Iterator[tuple[MonitoringMetricWriter, FakeMonitoringServer]]:
    fake = FakeMonitoringServer(clock=clock).start()
    client = fake.client()
    try:
        writer = MonitoringMetricWriter(
            PROJECT, client=client, retry_deadline=retry_deadline, clock=clock
        )
        yield writer, fake
    finally:
        client.transport.close()
        fake.stop()


@contextmanager
def gcp_metric_writer(
    clock: Callable[[], datetime] = _utcnow, *, retry_deadline: float = RETRY_DEADLINE
) -> Iterator[MonitoringMetricWriter]:
    with gcp_metric_stack(clock, retry_deadline=retry_deadline) as (writer, _):
        yield writer
