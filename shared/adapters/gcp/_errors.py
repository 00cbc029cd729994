"""Translate google-cloud exceptions into :mod:`shared.errors` at the adapter boundary.

Everything here imports the Google libraries lazily: the mapping runs only when an
exception is already on its way out, by which time a client has loaded them anyway.

The rules, in order:

* already one of ours → unchanged;
* ``RetryError`` (the client's own retry gave up), deadline/timeout, connection
  failures, HTTP 429/500/502/503/504 and the gRPC codes UNAVAILABLE, ABORTED,
  INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED → :class:`TransientError`;
* a structured error whose reason BigQuery documents as retryable
  (``backendError``, ``rateLimitExceeded`` …) → :class:`TransientError`, whatever the
  HTTP code (BigQuery sends rate limits as 403);
* 404/NOT_FOUND → :class:`NotFound`; 401/403/PERMISSION_DENIED/UNAUTHENTICATED →
  :class:`PermissionDenied`; 409/ALREADY_EXISTS → :class:`AlreadyExists`;
* any other API error (400, 412, …) → :class:`PermanentError`.

Anything else (``TypeError`` from a wrong argument, …) is a bug and propagates as is.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from shared.errors import (
    AlreadyExists,
    NotFound,
    OpsuiteError,
    PermanentError,
    PermissionDenied,
    TransientError,
)

#: Structured error reasons (BigQuery / Cloud Storage JSON APIs) worth retrying.
RETRYABLE_REASONS = frozenset(
    {"backendError", "internalError", "rateLimitExceeded", "badGateway", "timeout"}
)
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})


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
            | gexc.TooManyRequests,
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
        return PermissionDenied(message)
    if isinstance(exc, auth_exc.TransportError):
        return TransientError(message)
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return PermanentError(message)
    if isinstance(exc, ConnectionError | TimeoutError) or _is_requests_transport_error(exc):
        return TransientError(message)
    return None


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
