"""The Publisher port: LocalBus and PubSubPublisher (the real client against the gRPC fake)."""

from __future__ import annotations

import grpc
import pytest

from shared.errors import BadInput, NotFound, PermanentError, TransientError
from tests.contract.support import PROJECT, Backend, GcpStack

pytestmark = pytest.mark.timeout(30)


def test_publish_returns_an_id_and_delivers_data_and_attributes(backend: Backend) -> None:
    attributes = {"kind": "backup.completed", "table": "ds.orders"}

    message_id = backend.publisher.publish(backend.topic, b'{"ok": true}', attributes)

    (message,) = backend.published(backend.topic)
    assert message_id
    assert message.message_id == message_id
    assert message.data == b'{"ok": true}'
    assert message.attributes == attributes


def test_each_publish_gets_its_own_id_in_order(backend: Backend) -> None:
    ids = [backend.publisher.publish(backend.topic, f"m{i}".encode(), {}) for i in range(3)]

    assert len(set(ids)) == 3
    assert [m.data for m in backend.published(backend.topic)] == [b"m0", b"m1", b"m2"]


# -- GCP only: the fake's rules and faults ------------------------------------------------
def test_pubsub_attributes_clashing_with_client_keywords_are_bad_input(
    gcp: tuple[Backend, GcpStack],
) -> None:
    backend, _ = gcp

    with pytest.raises(BadInput):  # PublisherClient.publish(..., timeout=..., **attributes)
        backend.publisher.publish(backend.topic, b"x", {"timeout": "1"})


def test_pubsub_unavailable_once_is_retried_by_the_client(gcp: tuple[Backend, GcpStack]) -> None:
    backend, stack = gcp
    stack.pubsub.fail_next(1, grpc.StatusCode.UNAVAILABLE)

    message_id = backend.publisher.publish(backend.topic, b"retried", {"a": "1"})

    assert [m.message_id for m in backend.published(backend.topic)] == [message_id]
    publishes = [code for method, code in stack.pubsub.calls if method == "Publish"]
    assert publishes[-2:] == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK]


def test_pubsub_unavailable_past_the_deadline_is_transient(gcp: tuple[Backend, GcpStack]) -> None:
    from shared.adapters.gcp.publisher import PubSubPublisher

    backend, stack = gcp
    publisher = PubSubPublisher(PROJECT, client=stack.publisher_client, timeout=1.0)
    stack.pubsub.fail_next(10_000, grpc.StatusCode.UNAVAILABLE)

    with pytest.raises(TransientError):
        publisher.publish(backend.topic, b"never", {})
    assert backend.published(backend.topic) == []


def test_pubsub_unknown_topic_is_not_found(gcp: tuple[Backend, GcpStack]) -> None:
    backend, _ = gcp

    with pytest.raises(NotFound):
        backend.publisher.publish("no-such-topic", b"x", {})


def test_pubsub_reserved_attribute_prefix_is_permanent(gcp: tuple[Backend, GcpStack]) -> None:
    backend, _ = gcp

    with pytest.raises(PermanentError):
        backend.publisher.publish(backend.topic, b"x", {"googclient_x": "1"})
    assert backend.published(backend.topic) == []


def test_pubsub_empty_message_is_permanent(gcp: tuple[Backend, GcpStack]) -> None:
    backend, _ = gcp

    with pytest.raises(PermanentError):
        backend.publisher.publish(backend.topic, b"", {})
