"""What every GCP adapter promises at its boundary: lazy imports and translated errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared import errors
from shared.identifiers import TableRef

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]

HEAVY_MODULES = (
    "google.cloud.bigquery",
    "google.cloud.storage",
    "google.cloud.pubsub_v1",
    "google.api_core",
    "grpc",
    "requests",
)


def test_adapters_import_and_construct_without_loading_google_libraries() -> None:
    code = f"""
import json, sys
from shared.adapters.gcp.object_store import GcsObjectStore
from shared.adapters.gcp.publisher import PubSubPublisher
from shared.adapters.gcp.warehouse import BigQueryWarehouse
BigQueryWarehouse("opsuite-test", "EU")
GcsObjectStore("opsuite-test")
PubSubPublisher("opsuite-test")
heavy = {list(HEAVY_MODULES)!r}
print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )

    assert json.loads(out.stdout) == []


def test_adapters_validate_the_project_id() -> None:
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    with pytest.raises(errors.BadInput):
        BigQueryWarehouse("x`; DROP TABLE y; --")


def test_instants_become_exact_epoch_milliseconds() -> None:
    from shared.adapters.gcp.warehouse import epoch_millis

    instant = datetime(2026, 11, 21, 23, 59, 59, 999_999, tzinfo=UTC)
    shifted = instant.astimezone(timezone(timedelta(hours=-8)))

    assert epoch_millis(instant) == epoch_millis(shifted) == 1_795_305_599_999
    with pytest.raises(errors.BadInput):
        epoch_millis(datetime(2026, 11, 21))


def test_table_resource_becomes_table_info() -> None:
    from shared.adapters.gcp.warehouse import table_info_from_resource

    resource = {
        "tableReference": {"projectId": "p", "datasetId": "ds", "tableId": "t"},
        "schema": {"fields": [{"name": "id", "type": "INTEGER", "mode": "REQUIRED"}]},
        "numRows": "42",
        "numBytes": "1024",
        "lastModifiedTime": "1795305599999",
        "rangePartitioning": {
            "field": "id",
            "range": {"start": "0", "end": "100", "interval": "10"},
        },
        "labels": {"a": "b"},
    }

    info = table_info_from_resource(TableRef("ds", "t"), resource)

    assert (info.num_rows, info.num_bytes) == (42, 1024)
    assert info.modified == datetime(2026, 11, 21, 23, 59, 59, 999_000, tzinfo=UTC)
    assert info.schema[0].type == "INT64"
    assert dict(info.range_partitioning or {})["field"] == "id"
    assert info.time_partitioning is None
    assert dict(info.labels) == {"a": "b"}


def _api_errors() -> list[tuple[BaseException, type[errors.OpsuiteError]]]:
    pytest.importorskip("google.api_core")
    import requests
    from google.api_core import exceptions as gexc

    def bq(cls: type[gexc.GoogleAPICallError], reason: str) -> BaseException:
        return cls("boom", errors=[{"reason": reason, "message": "boom"}])

    return [
        (gexc.NotFound("no table"), errors.NotFound),
        (gexc.Forbidden("denied"), errors.PermissionDenied),
        (gexc.PermissionDenied("denied"), errors.PermissionDenied),
        (gexc.Unauthorized("who"), errors.PermissionDenied),
        (gexc.Conflict("dup"), errors.AlreadyExists),
        (gexc.AlreadyExists("dup"), errors.AlreadyExists),
        (gexc.BadRequest("bad"), errors.PermanentError),
        (gexc.InvalidArgument("bad"), errors.PermanentError),
        (gexc.PreconditionFailed("412"), errors.PermanentError),
        (gexc.TooManyRequests("slow down"), errors.TransientError),
        (gexc.InternalServerError("500"), errors.TransientError),
        (gexc.BadGateway("502"), errors.TransientError),
        (gexc.ServiceUnavailable("503"), errors.TransientError),
        (gexc.GatewayTimeout("504"), errors.TransientError),
        (gexc.DeadlineExceeded("late"), errors.TransientError),
        (gexc.ResourceExhausted("quota"), errors.TransientError),
        (gexc.Aborted("aborted"), errors.TransientError),
        (gexc.RetryError("gave up", gexc.ServiceUnavailable("503")), errors.TransientError),
        (bq(gexc.Forbidden, "rateLimitExceeded"), errors.TransientError),
        (bq(gexc.Forbidden, "quotaExceeded"), errors.PermanentError),
        (bq(gexc.BadRequest, "backendError"), errors.TransientError),
        (requests.ConnectionError("reset"), errors.TransientError),
        (requests.Timeout("slow"), errors.TransientError),
        (ConnectionResetError("reset"), errors.TransientError),
        (TimeoutError("slow"), errors.TransientError),
    ]


def test_cloud_errors_are_translated_at_the_boundary() -> None:
    from shared.adapters.gcp._errors import translated

    for original, expected in _api_errors():
        with pytest.raises(expected) as caught, translated("op"):
            raise original
        assert type(caught.value) is expected, (original, caught.value)
        assert caught.value.__cause__ is original
        assert str(caught.value).startswith("op")


def test_ours_and_unrelated_errors_pass_through_untouched() -> None:
    from shared.adapters.gcp._errors import translated

    ours = errors.BadInput("bad")
    with pytest.raises(errors.BadInput) as caught, translated("op"):
        raise ours
    assert caught.value is ours
    with pytest.raises(TypeError), translated("op"):
        raise TypeError("a bug, not a cloud error")
