"""Which google exceptions become which of ours (shared.adapters.gcp._errors.translate)."""

from __future__ import annotations

import pytest

pytest.importorskip("google.api_core")
pytest.importorskip("google.auth")

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from shared import errors
from shared.adapters.gcp._errors import translate
from shared.models import JobError


def raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    """``outer`` as google-auth raises it: ``raise outer from cause``."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


def metadata_blip() -> BaseException:
    # google/auth/compute_engine/credentials.py refresh():
    #     except exceptions.TransportError as caught_exc:
    #         new_exc = exceptions.RefreshError(caught_exc)
    #         raise new_exc from caught_exc
    transport = auth_exc.TransportError(
        "Failed to retrieve http://metadata.google.internal/... Compute Engine Metadata "
        "server unavailable."
    )
    return raised_from(auth_exc.RefreshError(transport), transport)


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        pytest.param(metadata_blip(), errors.TransientError, id="metadata-server-blip"),
        pytest.param(
            auth_exc.RefreshError("temporarily_unavailable", retryable=True),
            errors.TransientError,
            id="token-endpoint-says-retryable",
        ),
        pytest.param(
            raised_from(auth_exc.RefreshError("reset"), ConnectionResetError("reset")),
            errors.TransientError,
            id="refresh-connection-reset",
        ),
        pytest.param(
            auth_exc.RefreshError("invalid_grant: account disabled", {"error": "invalid_grant"}),
            errors.PermissionDenied,
            id="revoked-credentials",
        ),
        pytest.param(
            auth_exc.DefaultCredentialsError("Your default credentials were not found."),
            errors.ConfigError,
            id="no-credentials",
        ),
        pytest.param(
            auth_exc.MalformedError("bad key file"), errors.ConfigError, id="malformed-key-file"
        ),
    ],
)
def test_auth_errors_are_mapped_by_cause(
    original: BaseException, expected: type[errors.OpsuiteError]
) -> None:
    mapped = translate(original, "op")

    assert type(mapped) is expected
    assert str(mapped).startswith("op: ")


@pytest.mark.parametrize("reason", ["jobBackendError", "jobRateLimitExceeded", "jobInternalError"])
def test_retryable_job_reasons_are_transient(reason: str) -> None:
    api_error = gexc.BadRequest("job failed", errors=[{"reason": reason, "message": "x"}])

    assert type(translate(api_error, "op")) is errors.TransientError
    assert JobError(reason=reason, message="x").transient


def test_grpc_cancelled_is_transient() -> None:
    assert type(translate(gexc.Cancelled("499 the operation was cancelled"), "op")) is (
        errors.TransientError
    )


def test_permanent_job_reasons_stay_permanent() -> None:
    api_error = gexc.BadRequest("bad", errors=[{"reason": "invalid", "message": "x"}])

    assert type(translate(api_error, "op")) is errors.PermanentError
    assert not JobError(reason="invalid", message="x").transient
