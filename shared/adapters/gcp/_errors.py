"""Translate google-cloud exceptions into :mod:`shared.errors` at the adapter boundary.

Everything here imports the Google libraries lazily: the mapping runs only when an
exception is already on its way out, by which time a client has loaded them anyway.
(:func:`pooled_session`, the HTTP session both REST adapters build their client on,
lives here too: it is the other piece of boundary plumbing they share.)

The rules, in order:

* already one of ours → unchanged;
* ``RetryError`` (the client's own retry gave up), deadline/timeout, connection
  failures, HTTP 429/500/502/503/504 and the gRPC codes UNAVAILABLE, ABORTED,
  INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, CANCELLED →
  :class:`TransientError`;
* a structured error whose reason BigQuery documents as retryable
  (``backendError``, ``rateLimitExceeded``, the ``job*`` variants …) →
  :class:`TransientError`, whatever the HTTP code (BigQuery sends rate limits as 403);
* google-auth: a ``RefreshError`` caused by a transport failure (the metadata server or
  token endpoint did not answer) or flagged ``retryable`` → :class:`TransientError`,
  any other ``RefreshError`` → :class:`PermissionDenied`; no credentials at all
  (``DefaultCredentialsError``) → :class:`ConfigError`;
* 404/NOT_FOUND → :class:`NotFound`; 401/403/PERMISSION_DENIED/UNAUTHENTICATED →
  :class:`PermissionDenied`; 409/ALREADY_EXISTS → :class:`AlreadyExists`;
* any other API error (400, 412, …) → :class:`PermanentError`;
* a download whose CRC32C doesn't match (Cloud Storage ``DataCorruption``) →
  :class:`TransientError` (see :func:`translate` for why).

Anything else (``TypeError`` from a wrong argument, …) is a bug and propagates as is.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shared.errors import (
    AlreadyExists,
    ConfigError,
    NotFound,
    OpsuiteError,
    PermanentError,
    PermissionDenied,
    TransientError,
)

#: Structured error reasons (BigQuery / Cloud Storage JSON APIs) worth retrying. The
#: ``job*`` reasons are the ones google/cloud/bigquery/retry.py ``job_retry_reasons``
#: restarts a query job for (a job failed for a reason on BigQuery's side).
RETRYABLE_REASONS = frozenset(
    {
        "backendError",
        "internalError",
        "rateLimitExceeded",
        "badGateway",
        "timeout",
        "jobBackendError",
        "jobInternalError",
        "jobRateLimitExceeded",
    }
)
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
_REFRESH_TIMEOUT_SECONDS = 300.0  # google/cloud/client/__init__.py _CREDENTIALS_REFRESH_TIMEOUT


def _reason(exc: BaseException) -> str | None:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        return str(reason) if reason else None
    return None


def translate(exc: BaseException, what: str) -> OpsuiteError | None:
    """The :mod:`shared.errors` equivalent of ``exc``, or None if it is not a cloud error."""
    if isinstance(exc, OpsuiteError):
        return exc
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    message = f"{what}: {exc}"
    if isinstance(exc, gexc.RetryError):
        return TransientError(f"{what}: gave up retrying: {exc.cause or exc}")
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.code if isinstance(exc.code, int) else None
        reason = _reason(exc)
        if reason in RETRYABLE_REASONS or code in _TRANSIENT_HTTP:
            return TransientError(message)
        if reason == "quotaExceeded":  # a 403, but not a missing permission
            return PermanentError(message)
        if isinstance(
            exc,
            gexc.DeadlineExceeded
            | gexc.ServiceUnavailable
            | gexc.InternalServerError
            | gexc.Aborted
            | gexc.Unknown
            | gexc.ResourceExhausted
            | gexc.TooManyRequests
            | gexc.Cancelled,  # gRPC CANCELLED (499): the call was cut off, not refused
        ):
            return TransientError(message)
        if isinstance(exc, gexc.NotFound):
            return NotFound(message)
        if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
            return PermissionDenied(message)
        if isinstance(exc, gexc.Conflict):
            return AlreadyExists(message)
        return PermanentError(message)
    if isinstance(exc, auth_exc.RefreshError):
        return TransientError(message) if _transient_refresh(exc) else PermissionDenied(message)
    if isinstance(exc, auth_exc.TransportError):
        return TransientError(message)
    if isinstance(exc, auth_exc.DefaultCredentialsError):  # no (usable) credentials at all
        return ConfigError(
            f"{message} (run `gcloud auth application-default login`, or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key file)"
        )
    if isinstance(exc, ConnectionError | TimeoutError) or _is_requests_transport_error(exc):
        return TransientError(message)
    if _is_data_corruption(exc):
        # Transient, deliberately: GCS checks CRC32C on upload and serves the stored
        # hash with the bytes, and a short body is already turned into ConnectionError
        # (google/cloud/storage/_media/requests/download.py _write_to_stream), so a
        # full-length body that doesn't match was damaged on the way here; a fresh
        # download can succeed. The services' retry is bounded, so a mismatch that
        # persists still ends, as a TransientError that names the object.
        return TransientError(f"{what}: CRC32C mismatch, the downloaded bytes are corrupt")
    return None


def _is_data_corruption(exc: BaseException) -> bool:
    """``google.cloud.storage.exceptions.DataCorruption`` (a subclass of
    ``google.resumable_media.DataCorruption`` when that is installed), matched by name:
    the BigQuery adapter shares this module and must not import Cloud Storage."""
    return any(
        cls.__name__ == "DataCorruption"
        and cls.__module__.startswith(("google.cloud.storage", "google.resumable_media"))
        for cls in type(exc).__mro__
    )


def _transient_refresh(exc: BaseException) -> bool:
    """A ``RefreshError`` that a retry can cure.

    google/auth/compute_engine/credentials.py ``refresh`` wraps a metadata-server failure
    as ``RefreshError(transport_error)`` raised ``from`` it, and google/oauth2/_client.py
    flags token-endpoint answers it judges retryable (5xx, ``internal_failure`` …) with
    ``retryable=True``. Anything else (``invalid_grant``, a disabled account) is refused
    credentials.
    """
    from google.auth import exceptions as auth_exc

    if getattr(exc, "retryable", False) is True:
        return True
    causes = [exc.__cause__, *exc.args]
    return any(
        isinstance(c, auth_exc.TransportError | auth_exc.TimeoutError | ConnectionError)
        or (isinstance(c, BaseException) and _is_requests_transport_error(c))
        for c in causes
    )


def _is_requests_transport_error(exc: BaseException) -> bool:
    """A connection reset, timeout or truncated body from ``requests`` (used by the HTTP clients).

    Imported dynamically: ``requests`` ships without type information.
    """
    requests_exceptions = importlib.import_module("requests.exceptions")
    return isinstance(
        exc,
        requests_exceptions.ConnectionError
        | requests_exceptions.Timeout
        | requests_exceptions.ChunkedEncodingError,
    )


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Re-raise cloud exceptions from the block as :mod:`shared.errors` (``from`` the original)."""
    try:
        yield
    except OpsuiteError:
        raise
    except Exception as exc:
        mapped = translate(exc, what)
        if mapped is None:
            raise
        raise mapped from exc


def pooled_session(
    credentials: Any | None, scopes: Sequence[str], max_connections: int
) -> tuple[Any, Any]:
    """``(AuthorizedSession, credentials)`` for a client shared by ``max_connections`` threads.

    requests' default ``HTTPAdapter`` keeps 10 connections per host: more threads on one
    client log "Connection pool is full, discarding connection" and reconnect (a TLS
    handshake each time). The google-cloud clients take the session as ``_http``
    (google/cloud/client/__init__.py ``Client.__init__``; it builds the same
    ``AuthorizedSession`` itself when none is given). ``credentials`` None means
    Application Default Credentials; none found raises ``DefaultCredentialsError``
    (:class:`ConfigError` once translated).
    """
    import google.auth
    from google.auth.credentials import with_scopes_if_required
    from google.auth.transport.requests import AuthorizedSession

    adapters = importlib.import_module("requests.adapters")  # requests ships no types
    if credentials is None:
        credentials, _ = google.auth.default(scopes=list(scopes))
    credentials = with_scopes_if_required(credentials, list(scopes))  # type: ignore[no-untyped-call]
    session = AuthorizedSession(  # type: ignore[no-untyped-call]
        credentials, refresh_timeout=_REFRESH_TIMEOUT_SECONDS
    )
    size = max(1, int(max_connections))
    for prefix in ("https://", "http://"):
        session.mount(prefix, adapters.HTTPAdapter(pool_connections=size, pool_maxsize=size))
    return session, credentials
