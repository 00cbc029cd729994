"""GCP adapters at the request level: what BigQuery and GCS answer that the emulators don't.

Each test points the official client at :class:`tests.fakes.bq_canned.CannedServer` on
loopback, gives it BigQuery's (or GCS's) real answer for the case, and asserts what the
adapter does and which requests it sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("google.cloud.bigquery")
pytest.importorskip("google.cloud.storage")

from shared import identifiers
from shared.errors import (
    ConfigError,
    NotFound,
    PermanentError,
    StillRunning,
    TransientError,
)
from shared.identifiers import TableRef
from shared.models import ExtractRequest, LoadRequest, SchemaField
from tests.fakes.bq_canned import (
    PROJECT,
    CannedServer,
    error_reply,
    job_exists,
    job_not_found,
    job_reply,
    jobs_get,
    jobs_insert,
    request_is,
)
from tests.fakes.http_proxy import Reply, ShimRequest

pytestmark = pytest.mark.timeout(60)

DATASET_PATH = rf"/bigquery/v2/projects/{PROJECT}/datasets/restored"
TABLES = rf"/bigquery/v2/projects/{PROJECT}/datasets/ds/tables/[^/]+"


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer()
    canned.start()
    try:
        yield canned
    finally:
        canned.stop()


def warehouse(server: CannedServer, **kwargs: Any) -> Any:
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    options: dict[str, Any] = {"retry_deadline": 2.0}
    options.update(kwargs)
    return BigQueryWarehouse(PROJECT, "US", client=server.bigquery_client(), **options)


def extract_request(job_id: str = "opsuite_backup_x_1") -> ExtractRequest:
    from datetime import UTC, datetime

    return ExtractRequest(
        job_id=job_id,
        source=TableRef("ds", "t"),
        instant=datetime(2026, 11, 21, tzinfo=UTC),
        destination_uri="gs://b/backups/ds/t/part-*.avro",
    )


def not_found_then(reply: Any, misses: int) -> list[Any]:
    return [job_not_found] * misses + [reply]


# -- item 1: ensure_dataset with restore's roles ----------------------------------------
def test_ensure_dataset_of_an_existing_dataset_needs_no_create_permission(
    server: CannedServer,
) -> None:
    # GIVEN restore's roles: datasets.get works, datasets.insert is denied (403, not 409)
    server.on(
        request_is("GET", DATASET_PATH),
        lambda _: Reply.of_json(
            200, {"datasetReference": {"projectId": PROJECT, "datasetId": "restored"}}
        ),
    )
    server.on(
        request_is("POST", rf"/bigquery/v2/projects/{PROJECT}/datasets"),
        error_reply(
            403, "accessDenied", "Access Denied: bigquery.datasets.create", "PERMISSION_DENIED"
        ),
    )

    warehouse(server).ensure_dataset("restored")

    assert server.recorded(lambda r: r.method == "POST") == []


def test_ensure_dataset_creates_a_missing_dataset_and_tolerates_a_race(
    server: CannedServer,
) -> None:
    server.on(
        request_is("GET", DATASET_PATH), error_reply(404, "notFound", "Not found", "NOT_FOUND")
    )
    server.on(
        request_is("POST", rf"/bigquery/v2/projects/{PROJECT}/datasets"),
        error_reply(409, "duplicate", "Already Exists: Dataset", "ALREADY_EXISTS"),
    )

    warehouse(server).ensure_dataset("restored")  # someone created it in between: fine

    (create,) = server.recorded(lambda r: r.method == "POST")
    assert create.json["datasetReference"]["datasetId"] == "restored"
    assert create.json["location"] == "US"


# -- item 2: jobs.get may 404 right after jobs.insert or a 409 ---------------------------
def test_attach_after_409_retries_a_brief_not_found(server: CannedServer) -> None:
    server.on(jobs_insert, job_exists)
    server.on_sequence(jobs_get, not_found_then(job_reply("DONE", kind="extract"), misses=2))

    status = warehouse(server).start_extract(extract_request())

    assert status.state == "DONE"
    assert len(server.recorded(jobs_get)) == 3


def test_poll_right_after_insert_retries_a_brief_not_found(server: CannedServer) -> None:
    server.on(jobs_insert, job_reply("RUNNING"))
    server.on_sequence(jobs_get, not_found_then(job_reply("DONE", kind="extract"), misses=2))
    adapter = warehouse(server)

    started = adapter.start_extract(extract_request())
    polled = adapter.get_job(started.job_id)

    assert (started.state, polled.state) == ("RUNNING", "DONE")


def test_lookup_of_a_job_never_inserted_is_not_found_at_once(server: CannedServer) -> None:
    server.on(jobs_get, job_not_found)

    with pytest.raises(NotFound):
        warehouse(server).get_job("opsuite_backup_never_1")

    assert len(server.recorded(jobs_get)) == 1  # the backup's existence probe stays one call


def test_not_found_after_insert_is_given_up_after_the_visibility_window(
    server: CannedServer,
) -> None:
    server.on(jobs_insert, job_exists)
    server.on(jobs_get, job_not_found)

    with pytest.raises(NotFound):
        warehouse(server, job_visibility_seconds=0.3).start_extract(extract_request())

    assert len(server.recorded(jobs_get)) >= 2


def test_load_attach_after_409_retries_a_brief_not_found(server: CannedServer) -> None:
    server.on(jobs_insert, job_exists)
    server.on_sequence(jobs_get, not_found_then(job_reply("DONE", kind="load"), misses=1))

    status = warehouse(server).start_load(load_request((SchemaField("id", "INT64"),)))

    assert status.state == "DONE"


# -- item 6: decimals -------------------------------------------------------------------
def load_request(schema: tuple[SchemaField, ...]) -> LoadRequest:
    return LoadRequest(
        job_id="opsuite_restore_x",
        destination=TableRef("ds", "t"),
        source_uris=("gs://b/backups/ds/t/part-000000000000.avro",),
        schema=schema,
    )


def test_avro_load_lets_decimals_become_bignumeric(server: CannedServer) -> None:
    server.on(jobs_insert, job_reply("DONE"))
    schema = (
        SchemaField("id", "INT64", "REQUIRED"),
        SchemaField("amount", "NUMERIC"),
        SchemaField("big", "BIGNUMERIC"),  # Avro decimal(77, 38): no NUMERIC holds it
    )

    warehouse(server).start_load(load_request(schema))

    (insert,) = server.recorded(jobs_insert)
    load = insert.json["configuration"]["load"]
    assert sorted(load["decimalTargetTypes"]) == ["BIGNUMERIC", "NUMERIC"]
    assert [f["type"] for f in load["schema"]["fields"]] == ["INT64", "NUMERIC", "BIGNUMERIC"]
    assert load["useAvroLogicalTypes"] is True


# -- item 7: replace_table --------------------------------------------------------------
LIVE, STAGING = TableRef("ds", "live"), TableRef("ds", "_opsuite_restore_1_live")


def copy_inserts(server: CannedServer) -> list[ShimRequest]:
    return server.recorded(
        lambda r: jobs_insert(r) and "copy" in ((r.json or {}).get("configuration") or {})
    )


def deletes(server: CannedServer) -> list[ShimRequest]:
    return server.recorded(lambda r: r.method == "DELETE")


def test_replace_table_uses_one_job_id_per_target_and_source(server: CannedServer) -> None:
    server.on(jobs_insert, job_reply("DONE"))
    server.on(jobs_get, job_reply("DONE", kind="copy"))
    server.on(request_is("DELETE", TABLES), lambda _: Reply(204))

    warehouse(server).replace_table(LIVE, STAGING)
    warehouse(server).replace_table(LIVE, STAGING)
    warehouse(server).replace_table(TableRef("ds", "other"), STAGING)

    ids = [r.json["jobReference"]["jobId"] for r in copy_inserts(server)]
    assert ids[0] == ids[1] != ids[2]


def test_replace_table_attaches_to_a_copy_inserted_before(server: CannedServer) -> None:
    # GIVEN an earlier insert whose response was lost: the retried insert answers 409
    server.on(jobs_insert, job_exists)
    server.on_sequence(jobs_get, not_found_then(job_reply("DONE", kind="copy"), misses=1))
    server.on(request_is("DELETE", TABLES), lambda _: Reply(204))

    warehouse(server).replace_table(LIVE, STAGING)

    (delete,) = deletes(server)
    assert delete.path.endswith("/tables/_opsuite_restore_1_live")


def test_replace_table_that_outlasts_its_wait_says_the_copy_may_still_run(
    server: CannedServer,
) -> None:
    server.on(jobs_insert, job_reply("RUNNING"))
    server.on(jobs_get, job_reply("RUNNING", kind="copy"))

    with pytest.raises(StillRunning) as caught:
        warehouse(server, copy_wait_seconds=0.5).replace_table(LIVE, STAGING)

    assert isinstance(caught.value, TransientError)
    (insert,) = copy_inserts(server)
    job_id = insert.json["jobReference"]["jobId"]
    assert caught.value.job_id == job_id
    assert job_id in str(caught.value) and "may still be running" in str(caught.value)
    assert "unchanged" not in str(caught.value)
    assert deletes(server) == []  # the source the copy reads is left alone


def test_replace_table_whose_copy_fails_reports_the_target_unchanged(
    server: CannedServer,
) -> None:
    failure = {"reason": "invalid", "message": "Incompatible table partitioning"}
    server.on(jobs_insert, job_reply("RUNNING"))
    server.on(jobs_get, job_reply("DONE", kind="copy", error=failure))

    with pytest.raises(PermanentError) as caught:
        warehouse(server).replace_table(LIVE, STAGING)

    assert not isinstance(caught.value, StillRunning)
    assert "Incompatible table partitioning" in str(caught.value)
    assert "ds.live is unchanged" in str(caught.value)
    assert deletes(server) == []


def test_replace_table_insert_lost_in_transit_checks_before_reporting(
    server: CannedServer,
) -> None:
    # jobs.insert keeps failing with 503 (the copy may or may not have been created);
    # jobs.get finds it running: the outcome is unknown, not "failed, target unchanged"
    server.on(jobs_insert, error_reply(503, "backendError", "try again", "UNAVAILABLE"))
    server.on(jobs_get, job_reply("RUNNING", kind="copy"))

    with pytest.raises(StillRunning):
        warehouse(server, retry_deadline=0.5, copy_wait_seconds=0.5).replace_table(LIVE, STAGING)

    assert deletes(server) == []


# -- item 9: query waits ----------------------------------------------------------------
QUERIES = rf"/bigquery/v2/projects/{PROJECT}/queries"


def slow_query(server: CannedServer, finishes_after: float | None) -> None:
    """A query that is still running until ``finishes_after`` s (None: never)."""
    started: list[float] = []
    job_ref = {"projectId": PROJECT, "jobId": "slow_count", "location": "US"}

    def done() -> bool:
        if not started:
            started.append(time.monotonic())
        return finishes_after is not None and time.monotonic() - started[0] >= finishes_after

    def results(_: ShimRequest) -> Reply:
        if not done():
            return Reply.of_json(200, {"jobComplete": False, "jobReference": job_ref})
        return Reply.of_json(
            200,
            {
                "jobComplete": True,
                "jobReference": job_ref,
                "schema": {"fields": [{"name": "n", "type": "INTEGER"}]},
                "rows": [{"f": [{"v": "7"}]}],
                "totalRows": "1",
            },
        )

    def job(_: ShimRequest) -> Reply:
        state = "DONE" if done() else "RUNNING"
        return Reply.of_json(
            200,
            {
                "jobReference": job_ref,
                "configuration": {"query": {"query": "SELECT 7"}},
                "status": {"state": state},
            },
        )

    table = {
        "tableReference": {"projectId": PROJECT, "datasetId": "ds", "tableId": "t"},
        "schema": {"fields": [{"name": "id", "type": "INTEGER"}]},
        "numRows": "7",
        "lastModifiedTime": "1795305599000",
    }
    server.on(request_is("GET", TABLES), lambda _: Reply.of_json(200, table))
    server.on(request_is("POST", QUERIES), results)
    server.on(request_is("GET", QUERIES + "/slow_count"), results)
    server.on(request_is("GET", rf"/bigquery/v2/projects/{PROJECT}/jobs/slow_count"), job)
    server.on(
        request_is("POST", rf"/bigquery/v2/projects/{PROJECT}/jobs/slow_count/cancel"),
        lambda _: Reply.of_json(200, {"job": {"jobReference": job_ref, "status": {}}}),
    )


def cancels(server: CannedServer) -> list[ShimRequest]:
    return server.recorded(lambda r: r.path.endswith("/cancel"))


def test_a_query_may_run_longer_than_the_retry_deadline(server: CannedServer) -> None:
    slow_query(server, finishes_after=1.5)

    count = warehouse(server, retry_deadline=1.0, query_wait_seconds=30).count_rows(
        TableRef("ds", "t")
    )

    assert count == 7
    assert cancels(server) == []


def test_a_query_past_its_wait_is_cancelled_and_not_retried(server: CannedServer) -> None:
    slow_query(server, finishes_after=None)

    with pytest.raises(PermanentError) as caught:
        warehouse(server, query_wait_seconds=0.5).count_rows(TableRef("ds", "t"))

    assert "did not finish within" in str(caught.value)
    assert cancels(server)  # the client asked BigQuery to cancel it


# -- item 8: a download whose CRC32C doesn't match ----------------------------------------
def test_download_crc_mismatch_is_translated_and_names_the_object(server: CannedServer) -> None:
    from shared.adapters.gcp.object_store import GcsObjectStore

    server.on(
        request_is("GET", r"/download/storage/v1/b/opsuite-backups/o/.+"),
        lambda _: Reply(
            200,
            b"hello",
            {
                "Content-Type": "application/octet-stream",
                "x-goog-hash": "crc32c=AAAAAA==",  # not the CRC32C of b"hello"
                "x-goog-stored-content-length": "5",
                "x-goog-generation": "1",
            },
        ),
    )
    store = GcsObjectStore(PROJECT, client=server.storage_client(), retry_deadline=1.0)

    with pytest.raises(TransientError) as caught:
        store.read("opsuite-backups", "backups/20261122/_manifest.json")

    assert "gs://opsuite-backups/backups/20261122/_manifest.json" in str(caught.value)
    assert "CRC32C" in str(caught.value)


# -- item 3: no credentials at all ------------------------------------------------------
@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    # google/auth/compute_engine/_metadata.py reads NO_GCE_CHECK once, at import, and
    # only the exact value "true" counts: set the module flag too (no metadata probes).
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)


@pytest.mark.usefixtures("no_credentials")
def test_missing_credentials_are_a_configuration_error() -> None:
    from shared.adapters.gcp.object_store import GcsObjectStore
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    with pytest.raises(ConfigError):
        _ = BigQueryWarehouse(PROJECT).client
    with pytest.raises(ConfigError):
        _ = GcsObjectStore(PROJECT).client


# -- item 11: a connection pool per concurrent job ----------------------------------------
def mounted_pool_sizes(session: Any) -> set[int]:
    from requests.adapters import HTTPAdapter

    sizes = set()
    for prefix in ("https://", "http://"):
        adapter = session.get_adapter(prefix + "bigquery.googleapis.com")
        assert isinstance(adapter, HTTPAdapter)
        sizes.add(adapter.poolmanager.connection_pool_kw["maxsize"])
    return sizes


def test_the_built_clients_pool_one_connection_per_concurrent_job() -> None:
    from google.auth.credentials import AnonymousCredentials

    from shared.adapters.gcp.object_store import GcsObjectStore
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    bq = BigQueryWarehouse(PROJECT, credentials=credentials, max_connections=16)
    gcs = GcsObjectStore(PROJECT, credentials=credentials, max_connections=16)
    try:
        assert mounted_pool_sizes(bq.client._http) == {16}
        assert mounted_pool_sizes(gcs.client._http) == {16}
    finally:
        bq.close()


def test_composition_sizes_the_pools_from_max_concurrent_jobs() -> None:
    from shared.composition import build_adapters
    from shared.config import parse_settings

    settings = parse_settings(
        {
            "version": 1,
            "gcp": {"project": PROJECT, "location": "US"},
            "backups": {"bucket": "opsuite-backups", "tables": ["ds.t"], "max_concurrent_jobs": 24},
        }
    )

    adapters = build_adapters(settings, "gcp")

    assert getattr(adapters.warehouse, "max_connections", None) == 24
    assert getattr(adapters.store, "max_connections", None) == 24
    assert type(adapters.metrics).__name__ == "MonitoringMetricWriter"
    assert getattr(adapters.metrics, "_client", "built") is None  # lazily, on first write


def test_replace_table_job_id_is_valid_for_any_bigquery_table_name(server: CannedServer) -> None:
    server.on(jobs_insert, job_reply("DONE"))
    server.on(jobs_get, job_reply("DONE", kind="copy"))
    server.on(request_is("DELETE", TABLES), lambda _: Reply(204))

    warehouse(server).replace_table(TableRef("ds", "Spieler Übersicht"), STAGING)

    [job_id] = [r.json["jobReference"]["jobId"] for r in copy_inserts(server)]
    assert job_id.startswith("opsuite_replace_ds-Spieler_")
    assert identifiers.job_id(job_id) == job_id


def test_jobs_done_at_insert_leave_nothing_behind(server: CannedServer) -> None:
    # a warm function instance inserts thousands of jobs: none may stay in memory
    server.on(jobs_insert, job_reply("DONE"))
    server.on(jobs_get, job_reply("DONE", kind="copy"))
    server.on(request_is("DELETE", TABLES), lambda _: Reply(204))
    wh = warehouse(server)

    for i in range(3):
        wh.replace_table(TableRef("ds", f"t{i}"), STAGING)

    assert wh._unseen_jobs == {}


def test_the_callers_time_left_bounds_a_time_travel_count(server: CannedServer) -> None:
    # the backup passes what is left before the function's 540 s kill; the adapter's own
    # (longer) limit must not override it
    from datetime import UTC, datetime

    from shared.models import SchemaField, TableInfo

    slow_query(server, finishes_after=None)
    table = TableRef("ds", "t")
    info = TableInfo(table, (SchemaField("id", "INT64"),), 0, 0, datetime.now(UTC))

    with pytest.raises(PermanentError) as caught:
        warehouse(server, query_wait_seconds=60).row_count_at(
            table, datetime.now(UTC), info=info, wait_seconds=0.5
        )

    assert "did not finish within 0.5 s" in str(caught.value)
    assert cancels(server)
