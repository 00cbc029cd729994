"""The Publisher port on Pub/Sub (``google-cloud-pubsub``, imported on first use).

``publish`` blocks until the server acknowledged the message and returns its id.
The client retries UNAVAILABLE, ABORTED, INTERNAL … with backoff (its defaults),
bounded here by ``timeout`` instead of the library's ten minutes; what is still
failing then surfaces as :class:`~shared.errors.TransientError`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from shared import identifiers
from shared.adapters.gcp._errors import translated
from shared.errors import BadInput, PermanentError, TransientError

#: Keyword arguments of ``PublisherClient.publish``: attributes can't be passed with these names.
RESERVED_ATTRIBUTE_NAMES = frozenset({"ordering_key", "retry", "timeout"})


class PubSubPublisher:
    def __init__(self, project: str, client: Any | None = None, *, timeout: float = 30.0) -> None:
        self.project = identifiers.project_id(project)
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                with translated("Pub/Sub client"):
                    from google.cloud.pubsub_v1 import (  # type: ignore[import-untyped, unused-ignore]
                        PublisherClient,
                    )

                    self._client = PublisherClient()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.stop()
                self._client = None

    def _retry(self) -> Any:
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_exception_type

        # The library's own publish policy, with our deadline.
        return Retry(
            initial=0.1,
            maximum=60.0,
            multiplier=4,
            predicate=if_exception_type(
                gexc.Aborted,
                gexc.Cancelled,
                gexc.DeadlineExceeded,
                gexc.InternalServerError,
                gexc.ResourceExhausted,
                gexc.ServiceUnavailable,
                gexc.Unknown,
            ),
            timeout=self.timeout,
        )

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{identifiers.topic_id(topic)}"

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        clash = RESERVED_ATTRIBUTE_NAMES.intersection(attributes)
        if clash:
            raise BadInput(f"attribute names {sorted(clash)} are reserved by the Pub/Sub client")
        from google.cloud.pubsub_v1.publisher.exceptions import (  # type: ignore[import-untyped, unused-ignore]
            MessageTooLargeError,
        )

        path = self.topic_path(topic)
        with translated(f"publish to {path}"):
            try:
                future = self.client.publish(
                    path, data, retry=self._retry(), timeout=self.timeout, **dict(attributes)
                )
            except MessageTooLargeError as exc:
                raise PermanentError(f"publish to {path}: {exc}") from exc
            try:
                # The retry deadline bounds the batch; the margin covers the last attempt.
                message_id = future.result(timeout=self.timeout + 5.0)
            except TimeoutError as exc:
                raise TransientError(
                    f"publish to {path}: not acknowledged in {self.timeout:g}s"
                ) from exc
        return str(message_id)
