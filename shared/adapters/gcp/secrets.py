"""The SecretStore port on Secret Manager (``google-cloud-secret-manager``, imported on first use).

Names are validated first (:func:`shared.adapters.local.secrets.parse_secret_name`, the
config's pattern): nothing that isn't a secret name reaches the API. A short id
(``slack-webhook``) is ``projects/<project>/secrets/slack-webhook/versions/latest``; a full
``projects/P/secrets/S`` gets ``/versions/latest``; ``.../versions/V`` is sent as is (another
project is allowed: cross-project access is IAM's business).

One ``AccessSecretVersion`` per name per ``ttl_seconds`` (300 s): values are cached, keyed by
the full version name (so ``latest`` is re-read when the entry expires; a rotation takes
effect within the TTL). The payload is checked against its ``data_crc32c`` when the response
carries one (a mismatch is :class:`TransientError`, nothing cached), decoded as UTF-8, and
registered with :func:`shared.log.redact` before it is returned. Errors are translated by
:mod:`shared.adapters.gcp._errors`: NOT_FOUND → :class:`NotFound`, PERMISSION_DENIED /
UNAUTHENTICATED → :class:`PermissionDenied`, UNAVAILABLE / DEADLINE_EXCEEDED /
RESOURCE_EXHAUSTED (after the retry below) → :class:`TransientError`, FAILED_PRECONDITION
(a disabled or destroyed version) and anything else → :class:`PermanentError`. The messages
carry the name and the service's text, never a value.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import google_crc32c

from shared import identifiers
from shared.adapters.gcp._errors import translated
from shared.adapters.local.secrets import DEFAULT_TTL_SECONDS, SecretCache, parse_secret_name
from shared.errors import PermanentError, TransientError
from shared.log import redact


class SecretManagerStore:
    def __init__(
        self,
        project: str,
        *,
        client: Any | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        retry_deadline: float = 30.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.project = identifiers.project_id(project)
        self.retry_deadline = retry_deadline
        self.timeout = timeout
        self.requests = 0  # AccessSecretVersion calls made (cache misses)
        self._client = client
        self._cache = SecretCache(ttl_seconds, clock)
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                with translated("Secret Manager client"):
                    from google.cloud.secretmanager_v1 import SecretManagerServiceClient

                    self._client = SecretManagerServiceClient()
            return self._client

    def resource_name(self, name: str) -> str:
        """The full version name ``name`` is read as (after validation)."""
        return parse_secret_name(name).resource(self.project)

    def _retry(self) -> Any:
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_exception_type

        # secretmanager_v1/services/secret_manager_service/transports/base.py
        # _prep_wrapped_messages: access_secret_version's default retry covers
        # ResourceExhausted and ServiceUnavailable only (initial 2 s, x2, max 60 s,
        # deadline 60 s; default_timeout 60 s). Same predicate plus DeadlineExceeded
        # (a read is idempotent), but a shorter first back-off and a deadline the caller
        # sets: a delivery must not spend a minute on one secret.
        return Retry(
            initial=0.25,
            maximum=5.0,
            multiplier=2.0,
            predicate=if_exception_type(
                gexc.ServiceUnavailable, gexc.ResourceExhausted, gexc.DeadlineExceeded
            ),
            timeout=self.retry_deadline,
        )

    def get(self, name: str) -> str:
        resource = self.resource_name(name)
        cached = self._cache.get(resource)
        if cached is not None:
            return cached
        client = self.client
        with self._lock:
            self.requests += 1
        with translated(f"secret {resource}"):
            response = client.access_secret_version(
                name=resource, retry=self._retry(), timeout=self.timeout
            )
        # as the local store: one trailing newline (``gcloud secrets versions add
        # --data-file`` keeps the file's) is not part of the value; receivers strip it too,
        # so register both spellings for redaction
        raw = _payload_text(resource, response.payload)
        value = raw.removesuffix("\n").removesuffix("\r")
        redact(raw)
        redact(value)
        if value.strip() != value:
            redact(value.strip())
        self._cache.put(resource, value)
        return value


def _payload_text(resource: str, payload: Any) -> str:
    data = bytes(payload.data)
    # ``data_crc32c`` is proto3 ``optional`` (a member of oneof ``_data_crc32c``,
    # types/resources.py SecretPayload): ``in`` tells a checksum of 0 from none sent.
    if "data_crc32c" in payload:
        expected = int(payload.data_crc32c) & 0xFFFFFFFF  # int64 on the wire, uint32 value
        if google_crc32c.value(data) != expected:
            raise TransientError(
                f"secret {resource}: CRC32C mismatch, the payload was damaged on the way"
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PermanentError(f"secret {resource}: the value is not UTF-8 text") from None
