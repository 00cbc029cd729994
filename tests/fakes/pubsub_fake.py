"""An in-test gRPC server for ``google.pubsub.v1.Publisher`` (Publish, GetTopic, CreateTopic).

The real ``google.cloud.pubsub_v1.PublisherClient`` talks to it over gRPC on
``127.0.0.1:<port>`` (see :meth:`FakePublisherServer.client`). It keeps the service's
documented rules, so a test that passes here doesn't pass by leniency:

* a Publish or GetTopic to a topic that doesn't exist → ``NOT_FOUND``
  ("Resource not found (resource=<topic>).");
* CreateTopic of an existing topic → ``ALREADY_EXISTS``;
* Publish needs 1-1000 messages and at most 10 MB serialized; each message needs
  non-empty data or at least one attribute; at most 100 attributes, keys of 1-256
  bytes not starting with ``goog``, values of at most 1024 bytes
  → ``INVALID_ARGUMENT`` otherwise.

It records every Publish request, returns increasing numeric message ids, and can be
told to fail the next N calls of a method with a given status code
(:meth:`FakePublisherServer.fail_next`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.pubsub_v1.types import pubsub as pubsub_types

from tests.fakes.grpc_fake import GrpcFake

SERVICE = "google.pubsub.v1.Publisher"
MAX_MESSAGES = 1000
MAX_REQUEST_BYTES = 10 * 1000 * 1000
MAX_ATTRIBUTES = 100
MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 1024


@dataclass(frozen=True)
class PublishedMessage:
    topic: str
    message_id: str
    data: bytes
    attributes: dict[str, str]


@dataclass
class FakePublisherServer(GrpcFake):
    topics: set[str] = field(default_factory=set)
    requests: list[Any] = field(default_factory=list)
    messages: list[PublishedMessage] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FakePublisherServer:
        def unary(method: str, request_type: Any, response_type: Any) -> Any:
            handler = getattr(self, f"_{method}")

            def call(request: Any, context: grpc.ServicerContext) -> Any:
                fault = self._take_fault(method)
                if fault is not None:
                    self.calls.append((method, fault.code))
                    context.abort(fault.code, fault.details)
                try:
                    response = handler(request, context)
                except _Abort as abort:
                    self.calls.append((method, abort.code))
                    context.abort(abort.code, abort.details)
                self.calls.append((method, grpc.StatusCode.OK))
                return response

            return grpc.unary_unary_rpc_method_handler(
                call,
                request_deserializer=request_type.pb().FromString,
                response_serializer=lambda message: message.SerializeToString(),
            )

        handlers = {
            "Publish": unary("Publish", pubsub_types.PublishRequest, pubsub_types.PublishResponse),
            "GetTopic": unary("GetTopic", pubsub_types.GetTopicRequest, pubsub_types.Topic),
            "CreateTopic": unary("CreateTopic", pubsub_types.Topic, pubsub_types.Topic),
        }
        self._serve(SERVICE, handlers)
        return self

    def client(self) -> Any:
        """A real ``PublisherClient`` whose transport is an insecure channel to this server."""
        from google.cloud.pubsub_v1 import PublisherClient
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        channel = grpc.insecure_channel(self.address)
        return PublisherClient(transport=PublisherGrpcTransport(channel=channel))

    # -- test controls ------------------------------------------------------------------
    def create_topic(self, path: str) -> None:
        with self._lock:
            self.topics.add(path)

    def fail_next(
        self,
        count: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        *,
        method: str = "Publish",
        details: str = "The service is currently unavailable.",
    ) -> None:
        self._add_fault(method, count, code, details)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def published(self, topic_path: str) -> list[PublishedMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic_path]

    # -- the service --------------------------------------------------------------------
    def _require_topic(self, name: str) -> None:
        if name not in self.topics:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Resource not found (resource={name}).")

    def _CreateTopic(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            if request.name in self.topics:
                raise _Abort(
                    grpc.StatusCode.ALREADY_EXISTS, "Resource already exists in the project"
                )
            self.topics.add(request.name)
        return pubsub_types.Topic.pb()(name=request.name)

    def _GetTopic(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self._require_topic(request.topic)
        return pubsub_types.Topic.pb()(name=request.topic)

    def _Publish(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.requests.append(request)
            self._require_topic(request.topic)
            _validate(request)
            ids = [str(next(self._ids)) for _ in request.messages]
            for message_id, message in zip(ids, request.messages, strict=True):
                self.messages.append(
                    PublishedMessage(
                        topic=request.topic,
                        message_id=message_id,
                        data=bytes(message.data),
                        attributes=dict(message.attributes),
                    )
                )
        return pubsub_types.PublishResponse.pb()(message_ids=ids)


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _invalid(details: str) -> _Abort:
    return _Abort(grpc.StatusCode.INVALID_ARGUMENT, details)


def _validate(request: Any) -> None:
    if not request.messages:
        raise _invalid("The request must contain at least one message.")
    if len(request.messages) > MAX_MESSAGES:
        raise _invalid(f"The value for message_count is too large. Max is {MAX_MESSAGES}.")
    if request.ByteSize() > MAX_REQUEST_BYTES:
        raise _invalid(f"The value for request_size is too large. Max is {MAX_REQUEST_BYTES}.")
    for message in request.messages:
        if not message.data and not message.attributes:
            raise _invalid(
                "One or more messages in the publish request is empty. Each message must "
                "contain either non-empty data, or at least one attribute."
            )
        if len(message.attributes) > MAX_ATTRIBUTES:
            raise _invalid(f"Too many attributes: at most {MAX_ATTRIBUTES} per message.")
        for key, value in message.attributes.items():
            key_bytes = len(key.encode("utf-8"))
            if not key_bytes or key_bytes > MAX_KEY_BYTES:
                raise _invalid(f"Invalid attribute key: 1-{MAX_KEY_BYTES} bytes required.")
            if key.startswith("goog"):
                raise _invalid(
                    f"The attribute key '{key}' is reserved: keys can't start with goog."
                )
            if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
                raise _invalid(f"The value of attribute '{key}' is longer than {MAX_VALUE_BYTES}.")
