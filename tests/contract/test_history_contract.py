"""The EvaluationHistory contract: the same cases on DuckDB and on BigQuery.

``gcp`` runs ``BigQueryEvaluationHistory`` through the real client against bqemulator,
behind :class:`tests.contract.history_support.UploadShim` (the emulator's upload host
ignores job ids and refuses the client's media type; the shim closes that, see its
module). What no emulator shows (a job still running, a job that failed, a 409 while
the job runs, the request's exact shape) is tested at the request level at the end,
against :class:`tests.fakes.bq_canned.CannedServer`.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.history_schema import HISTORY_COLUMNS, HISTORY_SCHEMA
from shared.errors import BadInput, PermanentError, StillRunning, TransientError
from shared.identifiers import TableRef
from shared.models import EvaluationRecord
from tests.contract.history_support import (
    T0,
    HistoryCase,
    UploadShim,
    append_in_process,
    hours,
    is_upload,
    multipart_parts,
    record,
    upload_job_id,
    uploaded_rows,
)
from tests.contract.support import PROJECT, SHORT_DEADLINE, Backend, GcpStack

pytestmark = pytest.mark.timeout(90)

EVERYTHING = (T0 - hours(24 * 400), T0 + hours(24 * 400))


@pytest.fixture(scope="session")
def upload_shim(gcp_stack: GcpStack) -> Iterator[UploadShim]:
    shim = UploadShim(gcp_stack.bq_shim.url)
    shim.start()
    try:
        yield shim
    finally:
        shim.stop()


@pytest.fixture(scope="session")
def upload_client(upload_shim: UploadShim) -> Iterator[Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": upload_shim.url},
    )
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call, unused-ignore]


def build_case(backend: Backend, request: pytest.FixtureRequest) -> HistoryCase:
    """The history port of ``backend``'s family on a table in the test's own dataset."""
    table = TableRef(backend.dataset, "slo_evaluations")
    if backend.name == "local":
        from shared.adapters.local.history import LocalEvaluationHistory
        from shared.adapters.local.warehouse import LocalWarehouse

        assert isinstance(backend.warehouse, LocalWarehouse)
        return HistoryCase(
            "local", LocalEvaluationHistory(backend.warehouse, table), backend.warehouse, table
        )
    from shared.adapters.gcp.history import BigQueryEvaluationHistory
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    # The backend's own warehouse talks to BigQueryShim directly; this one goes through
    # the UploadShim in front of it (same emulator, same datasets).
    warehouse = BigQueryWarehouse(
        PROJECT,
        "US",
        client=request.getfixturevalue("upload_client"),
        retry_deadline=SHORT_DEADLINE,
    )
    history = BigQueryEvaluationHistory(warehouse, table, wait_seconds=20)
    return HistoryCase("gcp", history, warehouse, table, request.getfixturevalue("upload_shim"))


@pytest.fixture
def case(backend: Backend, request: pytest.FixtureRequest) -> HistoryCase:
    return build_case(backend, request)


def read_all(case: HistoryCase, *slos: str) -> list[EvaluationRecord]:
    return case.history.read(slos or ("freshness", "availability"), *EVERYTHING)


# -- round trip ---------------------------------------------------------------------------
def test_every_field_round_trips_including_unknowns_and_burning(case: HistoryCase) -> None:
    unknown = record(
        at=T0.replace(microsecond=654321),
        slo="availability",
        kind="ratio",
        good=None,
        value=None,
        good_events=0,
        total_events=0,
        compliance=None,
        budget_remaining=None,
        breaching=True,
        exhausted=True,
        burning=(),
        detail='{"why": "no runs in the interval", "note": "élan ✓"}',
    )
    burning = record(
        at=T0 + hours(0.25),
        slo="availability",
        kind="ratio",
        good=False,
        value=0.875,
        good_events=7,
        total_events=8,
        compliance=0.98,
        budget_remaining=-0.25,
        breaching=True,
        exhausted=False,
        burning=("1h/5m", "6h/30m"),
    )
    plain = record(at=T0 + hours(0.5))

    assert case.history.append("opsuite_sla_roundtrip", [unknown, burning, plain]) is True

    assert read_all(case) == [unknown, burning, plain]
    for got in read_all(case):
        assert got.at.utcoffset() == hours(0) and got.recorded_at.utcoffset() == hours(0)
        assert isinstance(got.burning, tuple)


def test_read_window_excludes_since_and_includes_until(case: HistoryCase) -> None:
    rows = [record(at=T0 + hours(h)) for h in (0, 1, 2, 3)]
    case.history.append("opsuite_sla_window", rows)

    got = case.history.read(["freshness"], T0, T0 + hours(2))

    assert [r.at for r in got] == [T0 + hours(1), T0 + hours(2)]


def test_read_filters_by_slo(case: HistoryCase) -> None:
    case.history.append(
        "opsuite_sla_filter",
        [record(slo="freshness"), record(slo="availability"), record(slo="recovery")],
    )

    assert [r.slo for r in read_all(case, "availability", "recovery")] == [
        "availability",
        "recovery",
    ]
    assert read_all(case, "nothing_like_it") == []
    assert case.history.read([], *EVERYTHING) == []


def test_rows_are_ordered_by_at_then_recorded_at(case: HistoryCase) -> None:
    late = record(at=T0 + hours(1), recorded_at=T0 + hours(1.1))
    early_second = record(at=T0, recorded_at=T0 + hours(0.2))
    early_first = record(at=T0, recorded_at=T0 + hours(0.1))
    case.history.append("opsuite_sla_order", [late, early_second, early_first])

    assert read_all(case) == [early_first, early_second, late]


# -- idempotency ------------------------------------------------------------------------
def test_the_same_job_id_twice_appends_once(case: HistoryCase) -> None:
    rows = [record(), record(slo="availability")]

    first = case.history.append("opsuite_sla_20261122T0930", rows)
    second = case.history.append("opsuite_sla_20261122T0930", rows)

    assert (first, second) == (True, False)
    assert read_all(case) == sorted(rows, key=lambda r: r.slo)  # one instant: by slo


def test_different_job_ids_both_append_even_the_same_rows(case: HistoryCase) -> None:
    rows = [record()]

    assert case.history.append("opsuite_sla_x_a1", rows) is True
    assert case.history.append("opsuite_sla_x_a2", rows) is True

    assert read_all(case) == rows + rows  # duplicates are the reader's to drop


def test_concurrent_appends_of_one_job_id_append_once(case: HistoryCase) -> None:
    rows = [record(), record(slo="availability")]
    barrier = threading.Barrier(4)
    results: list[object] = []
    lock = threading.Lock()

    def append() -> None:
        barrier.wait()
        try:
            outcome: object = case.history.append("opsuite_sla_race", rows)
        except Exception as exc:  # surfaced in the assertion below
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=append) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sorted(results, key=str) == [False, False, False, True]
    assert len(read_all(case)) == 2


def test_an_invalid_job_id_or_record_is_refused_before_anything_is_written(
    case: HistoryCase,
) -> None:
    with pytest.raises(BadInput):
        case.history.append("not a job id; DROP TABLE x", [record()])
    with pytest.raises(BadInput):
        case.history.append("opsuite_sla_naive", [record(at=T0.replace(tzinfo=None))])
    with pytest.raises(BadInput):
        case.history.append("opsuite_sla_nan", [record(value=float("nan"))])
    with pytest.raises(BadInput):
        case.history.read(["freshness"], T0.replace(tzinfo=None), T0)

    assert not case.warehouse.table_exists(case.table)
    # the refused ids were not used up
    assert case.history.append("opsuite_sla_naive", [record()]) is True


# -- the table --------------------------------------------------------------------------
def test_a_missing_table_reads_as_empty(case: HistoryCase) -> None:
    assert read_all(case) == []
    assert not case.warehouse.table_exists(case.table)  # reading created nothing


def test_the_first_append_creates_the_table_partitioned_by_day_and_clustered(
    case: HistoryCase,
) -> None:
    assert case.history.append("opsuite_sla_first", [record()]) is True

    info = case.warehouse.get_table(case.table)
    assert [(f.name, f.type, f.mode) for f in info.schema] == [
        (f.name, f.type, f.mode) for f in HISTORY_SCHEMA
    ]
    assert tuple(f.name for f in info.schema) == HISTORY_COLUMNS
    assert info.time_partitioning is not None
    assert (info.time_partitioning.get("type"), info.time_partitioning.get("field")) == (
        "DAY",
        "at",
    )
    assert info.clustering == ("slo",)
    assert info.num_rows == 1


def test_an_existing_table_is_appended_to(case: HistoryCase) -> None:
    from shared.adapters.history_schema import HISTORY_SPEC

    case.warehouse.ensure_dataset(case.table.dataset)
    case.warehouse.create_table(case.table, HISTORY_SPEC)  # e.g. made by Terraform

    assert case.history.append("opsuite_sla_existing", [record()]) is True
    assert read_all(case) == [record()]


# -- local only -------------------------------------------------------------------------
def test_local_ledger_survives_the_file_being_released(
    local: Backend, request: pytest.FixtureRequest
) -> None:
    from shared.adapters.local.warehouse import LocalWarehouse

    case = build_case(local, request)
    case.history.append("opsuite_sla_release", [record()])
    assert isinstance(local.warehouse, LocalWarehouse)
    local.warehouse.close()  # what Adapters.release() does between requests

    assert case.history.append("opsuite_sla_release", [record()]) is False
    assert read_all(case) == [record()]


def test_local_append_is_atomic_a_failure_leaves_neither_rows_nor_ledger(
    local: Backend, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    case = build_case(local, request)
    case.history.append("opsuite_sla_before", [record(at=T0 - hours(1))])

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("crash after the rows were inserted")

    monkeypatch.setattr(local.warehouse, "touch", crash)
    with pytest.raises(RuntimeError):
        case.history.append("opsuite_sla_crash", [record(), record(slo="availability")])
    monkeypatch.undo()

    assert read_all(case) == [record(at=T0 - hours(1))]
    assert case.history.append("opsuite_sla_crash", [record()]) is True  # id not used up


def test_local_two_processes_append_one_job_id_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    table = ("opsuite_ops", "slo_evaluations")
    processes = [
        context.Process(
            target=append_in_process,
            args=(str(tmp_path), table, "opsuite_sla_two_procs", start, results),
        )
        for _ in range(2)
    ]
    for p in processes:
        p.start()
    start.set()
    outcomes = sorted([results.get(timeout=80), results.get(timeout=80)], key=str)
    for p in processes:
        p.join(30)

    assert outcomes == [False, True]
    from shared.adapters.local.history import LocalEvaluationHistory
    from shared.adapters.local.warehouse import LocalWarehouse

    warehouse = LocalWarehouse(tmp_path / "warehouse.duckdb", tmp_path / "gcs", tmp_path / "jobs")
    try:
        history = LocalEvaluationHistory(warehouse, TableRef(*table))
        got = history.read(["freshness", "availability"], *EVERYTHING)
        assert [r.slo for r in got] == ["availability", "freshness"]  # same at: by slo
    finally:
        warehouse.close()


# -- gcp: through the emulator ------------------------------------------------------------
def test_bigquery_append_is_one_upload_load_job_with_the_given_id(
    gcp: tuple[Backend, GcpStack], request: pytest.FixtureRequest
) -> None:
    case = build_case(gcp[0], request)
    assert case.upload_shim is not None
    rows = [record(burning=("1h/5m",)), record(slo="availability", good=None, value=None)]

    case.history.append("opsuite_sla_wire_1", rows)
    case.history.append("opsuite_sla_wire_1", rows)  # attaches, uploads nothing new

    first, second = case.upload_shim.uploads("opsuite_sla_wire_1")
    assert (first.status, second.status) == (200, 409)
    job, _ = multipart_parts(first)
    assert job["jobReference"] == {
        "jobId": "opsuite_sla_wire_1",
        "projectId": PROJECT,
        "location": "US",
    }
    load = job["configuration"]["load"]
    assert load["destinationTable"] == {
        "projectId": PROJECT,
        "datasetId": case.table.dataset,
        "tableId": "slo_evaluations",
    }
    assert (load["sourceFormat"], load["writeDisposition"], load["createDisposition"]) == (
        "NEWLINE_DELIMITED_JSON",
        "WRITE_APPEND",
        "CREATE_NEVER",
    )
    assert [(f["name"], f["type"], f["mode"]) for f in load["schema"]["fields"]] == [
        (f.name, f.type, f.mode) for f in HISTORY_SCHEMA
    ]
    assert "autodetect" not in load or load["autodetect"] is False
    lines = uploaded_rows(first)
    assert [line["slo"] for line in lines] == ["freshness", "availability"]
    assert lines[0]["at"] == "2026-11-22T09:30:00.000000Z"
    assert lines[0]["burning"] == ["1h/5m"]
    assert (lines[1]["good"], lines[1]["value"]) == (None, None)


# -- gcp: at the request level ------------------------------------------------------------
CANNED_TABLE = TableRef("ops", "slo_evaluations")
TABLE_PATH = rf"/bigquery/v2/projects/{PROJECT}/datasets/ops/tables/slo_evaluations"


@pytest.fixture
def server() -> Iterator[Any]:
    pytest.importorskip("google.cloud.bigquery")
    from tests.fakes.bq_canned import CannedServer

    canned = CannedServer()
    canned.start()
    try:
        yield canned
    finally:
        canned.stop()


def canned_history(server: Any, **kwargs: Any) -> Any:
    from shared.adapters.gcp.history import BigQueryEvaluationHistory
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    warehouse = BigQueryWarehouse(
        PROJECT, "US", client=server.bigquery_client(), retry_deadline=2.0
    )
    return BigQueryEvaluationHistory(warehouse, CANNED_TABLE, **kwargs)


def load_job(state: str, error: dict[str, str] | None = None) -> Callable[[Any], Any]:
    """A load job resource for the job an upload (or ``jobs.get``) names."""
    from tests.fakes.bq_canned import job_resource
    from tests.fakes.http_proxy import Reply

    def reply(request: Any) -> Any:
        body = job_resource(request, state, kind="load", error=error)
        job_id = upload_job_id(request) if is_upload(request) else None
        if job_id:
            body["jobReference"]["jobId"] = job_id
            body["id"] = f"{PROJECT}:US.{job_id}"
        return Reply.of_json(200, body)

    return reply


def table_exists_on(server: Any) -> None:
    from tests.fakes.bq_canned import request_is
    from tests.fakes.http_proxy import Reply

    server.on(
        request_is("GET", TABLE_PATH),
        lambda _: Reply.of_json(
            200,
            {
                "tableReference": {
                    "projectId": PROJECT,
                    "datasetId": "ops",
                    "tableId": "slo_evaluations",
                },
                "schema": {"fields": []},
            },
        ),
    )


def uploads_on(server: Any) -> list[Any]:
    return list(server.recorded(is_upload))


def test_a_409_attaches_to_the_running_job_and_waits_for_it(server: Any) -> None:
    from tests.fakes.bq_canned import job_exists, jobs_get

    table_exists_on(server)
    server.on(is_upload, job_exists)
    server.on_sequence(jobs_get, [load_job("RUNNING"), load_job("RUNNING"), load_job("DONE")])

    appended = canned_history(server).append("opsuite_sla_attach", [record()])

    assert appended is False
    assert len(uploads_on(server)) == 1
    polls = server.recorded(jobs_get)
    assert len(polls) == 3
    assert all(p.path.endswith("/jobs/opsuite_sla_attach") for p in polls)


def test_an_insert_answered_running_is_polled_until_done(server: Any) -> None:
    from tests.fakes.bq_canned import jobs_get

    table_exists_on(server)
    server.on(is_upload, load_job("RUNNING"))
    server.on_sequence(jobs_get, [load_job("RUNNING"), load_job("DONE")])

    assert canned_history(server).append("opsuite_sla_poll", [record()]) is True
    assert len(server.recorded(jobs_get)) == 2


def test_a_job_still_running_after_the_wait_is_transient_and_names_the_job(
    server: Any,
) -> None:
    from tests.fakes.bq_canned import jobs_get

    table_exists_on(server)
    server.on(is_upload, load_job("RUNNING"))
    server.on(jobs_get, load_job("RUNNING"))

    with pytest.raises(StillRunning) as caught:
        canned_history(server, wait_seconds=0.5).append("opsuite_sla_slow", [record()])

    assert caught.value.job_id == "opsuite_sla_slow"
    assert isinstance(caught.value, TransientError)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("invalid", PermanentError), ("backendError", TransientError)],
)
def test_a_failed_load_job_raises_with_bigquerys_message(
    server: Any, reason: str, expected: type[Exception]
) -> None:
    message = "Error while reading data, error message: JSON parsing error in row 1"
    table_exists_on(server)
    server.on(is_upload, load_job("DONE", error={"reason": reason, "message": message}))

    with pytest.raises(expected) as caught:
        canned_history(server).append("opsuite_sla_failed", [record()])

    assert message in str(caught.value)
    assert "opsuite_sla_failed" in str(caught.value)
    if expected is TransientError:
        assert not isinstance(caught.value, PermanentError)


def test_a_transient_failure_moves_on_to_the_next_attempts_job_id(server: Any) -> None:
    """A failed job id can never run again: the next attempt has its own id, and a
    redelivery walks the same ids (attaching) instead of appending twice."""
    failed = load_job("DONE", error={"reason": "backendError", "message": "try again"})
    table_exists_on(server)
    server.on_sequence(is_upload, [failed, load_job("DONE")])

    assert canned_history(server).append("opsuite_sla_retry", [record()]) is True
    ids = [upload_job_id(u) for u in uploads_on(server)]
    assert ids == ["opsuite_sla_retry", "opsuite_sla_retry-a2"]


def test_an_attached_job_that_failed_is_not_reported_as_appended(server: Any) -> None:
    from tests.fakes.bq_canned import job_exists, jobs_get

    table_exists_on(server)
    server.on(is_upload, job_exists)
    server.on(jobs_get, load_job("DONE", error={"reason": "invalid", "message": "bad row"}))

    with pytest.raises(PermanentError, match="bad row"):
        canned_history(server).append("opsuite_sla_failed_before", [record()])


def test_an_upload_answered_503_is_resent_and_a_409_then_attaches(server: Any) -> None:
    from tests.fakes.bq_canned import error_reply, job_exists, jobs_get

    table_exists_on(server)
    server.on_sequence(
        is_upload,
        [error_reply(503, "backendError", "Retrying may solve the problem.", "UNAVAILABLE"),
         job_exists],
    )  # fmt: skip
    server.on(jobs_get, load_job("DONE"))

    # the first insert may have reached BigQuery: its resend is told 409 and attaches
    assert canned_history(server).append("opsuite_sla_lost", [record()]) is False
    assert [upload_job_id(u) for u in uploads_on(server)] == ["opsuite_sla_lost"] * 2


def test_a_missing_table_is_created_partitioned_and_a_racing_creator_is_fine(
    server: Any,
) -> None:
    from tests.fakes.bq_canned import error_reply, request_is
    from tests.fakes.http_proxy import Reply

    dataset = rf"/bigquery/v2/projects/{PROJECT}/datasets/ops"
    server.on(request_is("GET", TABLE_PATH), error_reply(404, "notFound", "Not found", "NOT_FOUND"))
    server.on(request_is("GET", dataset), error_reply(404, "notFound", "Not found", "NOT_FOUND"))
    server.on(
        request_is("POST", rf"/bigquery/v2/projects/{PROJECT}/datasets"),
        lambda r: Reply.of_json(200, r.json),  # datasets.insert: created
    )
    server.on(
        request_is("POST", rf"{dataset}/tables"),
        error_reply(409, "duplicate", "Already Exists: Table", "ALREADY_EXISTS"),
    )
    server.on(is_upload, load_job("DONE"))
    history = canned_history(server)

    assert history.append("opsuite_sla_create", [record()]) is True
    assert history.append("opsuite_sla_create_2", [record()]) is True

    (created,) = server.recorded(request_is("POST", rf"{dataset}/tables"))
    assert created.json["timePartitioning"] == {"type": "DAY", "field": "at"}
    assert created.json["clustering"] == {"fields": ["slo"]}
    assert [f["name"] for f in created.json["schema"]["fields"]] == list(HISTORY_COLUMNS)
    # the table is looked up once per adapter, not once per append
    assert len(server.recorded(request_is("GET", TABLE_PATH))) == 1


def test_a_read_is_one_query_with_bound_parameters(server: Any) -> None:
    from tests.fakes.bq_canned import error_reply

    server.on(
        lambda r: r.method == "POST" and r.path.endswith("/queries"),
        error_reply(404, "notFound", "Not found: Table opsuite-test:ops.slo_evaluations",
                    "NOT_FOUND"),
    )  # fmt: skip

    got = canned_history(server).read(["freshness", "availability"], T0, T0 + hours(6))

    assert got == []  # a missing table reads as empty
    (query,) = server.recorded(lambda r: r.path.endswith("/queries"))
    assert "freshness" not in query.json["query"]
    parameters = {p["name"]: p for p in query.json["queryParameters"]}
    assert [v["value"] for v in parameters["slos"]["parameterValue"]["arrayValues"]] == [
        "freshness",
        "availability",
    ]
    assert parameters["since"]["parameterType"]["type"] == "TIMESTAMP"
    assert parameters["until"]["parameterType"]["type"] == "TIMESTAMP"
    assert "`at` > @since AND `at` <= @until" in query.json["query"]


def test_upload_retries_fit_the_retry_deadline() -> None:
    from shared.adapters.gcp.history import upload_retries

    # sleeps of 1, 2, 4, 8 s (+ up to 1 s jitter each) fit 30 s, a fifth (16 s) doesn't
    assert [upload_retries(d) for d in (0.5, 2.0, 5.0, 30.0)] == [0, 1, 2, 4]


def test_no_records_is_no_job(server: Any) -> None:
    assert canned_history(server).append("opsuite_sla_empty", []) is True
    assert server.recorded() == []


def test_records_are_validated_with_the_field_named(case: HistoryCase) -> None:
    with pytest.raises(BadInput, match="recorded_at"):
        case.history.append(
            "opsuite_sla_bad", [replace(record(), recorded_at=T0.replace(tzinfo=None))]
        )
