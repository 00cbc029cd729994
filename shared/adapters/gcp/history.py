"""The SLA evaluator's history on BigQuery: one load job per append, one query per read.

* **Append** = one load job under the caller's job id, ``WRITE_APPEND`` with the
  explicit schema, the records uploaded as newline-delimited JSON
  (``Client.load_table_from_json``: for under 5 MiB a single multipart upload to
  ``/upload/bigquery/v2/projects/P/jobs?uploadType=multipart`` carrying the job
  resource, job id included, and the rows; google/cloud/bigquery/client.py
  ``load_table_from_file``). No staging object and no streaming buffer: the rows are
  in managed storage once the job is DONE, and a load job is all or nothing.
* **Idempotent by job id.** A second insert of an id answers 409; the upload raises
  ``resumable_media.InvalidResponse``, which the client turns into
  ``google.api_core.exceptions.Conflict`` (``exceptions.from_http_response``), i.e.
  :class:`~shared.errors.AlreadyExists` here: the existing job is attached to
  (``jobs.get``, waited for) and nothing is appended twice. The upload's own retry
  (google/resumable_media/requests/_request_helpers.py ``wait_and_retry``: 408, 429,
  5xx and connection errors) re-sends the whole request, so an insert whose answer was
  lost comes back as that 409 and attaches too. That retry takes a count, not a
  deadline: the count is derived from the warehouse's ``retry_deadline``.
* **Bounded wait.** The job is waited for ``wait_seconds``; still running then →
  :class:`~shared.errors.StillRunning` (transient: the same job id attaches again). A
  failed job → TransientError or PermanentError by BigQuery's reason, with its
  message. A failed job id can't run again: the caller needs a new id to retry it.
* **The table** is partitioned by DAY on ``at`` and clustered by ``slo``, created on
  this adapter's first append when missing (``ensure_dataset`` + ``create_table``; a
  concurrent creator's AlreadyExists is fine). Loads never create it
  (``CREATE_NEVER``): a table made by a load would lack the partitioning.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from time import monotonic, sleep
from typing import Any

from shared import identifiers
from shared.adapters.gcp._errors import translated
from shared.adapters.gcp.warehouse import BigQueryWarehouse, quoted_column
from shared.adapters.history_schema import (
    HISTORY_COLUMNS,
    HISTORY_SCHEMA,
    HISTORY_SPEC,
    check_records,
    check_window,
    json_row,
    record_from_values,
)
from shared.errors import AlreadyExists, NotFound, PermanentError, StillRunning, TransientError
from shared.identifiers import TableRef
from shared.models import EvaluationRecord, JobStatus, schema_to_api

#: How long an append waits for its load job (a few rows: seconds on BigQuery).
WAIT_SECONDS = 30.0
#: load jobs per append (each under its own id) before giving up on a transient failure
ATTEMPTS = 3
_POLL_FIRST_DELAY = 0.2
logger = logging.getLogger(__name__)
_POLL_MAX_DELAY = 2.0


def upload_retries(deadline: float) -> int:
    """How many retries of the upload fit in ``deadline`` seconds of backoff.

    resumable_media sleeps 1, 2, 4 ... s (doubling from ``initial_delay`` 1.0) plus up
    to 1 s of jitter before each retry (google/resumable_media/_helpers.py
    ``calculate_retry_wait``): n retries sleep at most 2**n - 1 + n seconds.
    """
    retries = 0
    while 2 ** (retries + 1) - 1 + (retries + 1) <= deadline:
        retries += 1
    return retries


class BigQueryEvaluationHistory:
    def __init__(
        self,
        warehouse: BigQueryWarehouse,
        table: TableRef,
        *,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.warehouse = warehouse
        self.table = TableRef(
            identifiers.dataset_id(table.dataset), identifiers.table_id(table.table)
        )
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._table_ready = False

    # -- append -------------------------------------------------------------------------
    def append(self, job_id: str, records: Sequence[EvaluationRecord]) -> bool:
        job_id = identifiers.job_id(job_id)
        check_records(records)
        if not records:
            return True  # nothing to load: no job
        self._ensure_table()
        rows = [json_row(r) for r in records]
        # A job id whose load failed can never run again: a transient failure moves on to
        # the next attempt's id (``<id>-a2``, ``<id>-a3``), and a redelivery walks the same
        # ids, attaching to whichever ran, so the rows are appended at most once.
        for attempt in range(1, ATTEMPTS + 1):
            attempt_id = job_id if attempt == 1 else f"{job_id}-a{attempt}"
            inserted, status = self._insert(attempt_id, rows)
            status = self._wait(attempt_id, status)
            if status.error is None:
                return inserted
            if not status.error.transient:
                raise PermanentError(
                    f"history append into {self.table}: load job {attempt_id} failed "
                    f"({status.error.reason}: {status.error.message}); nothing was appended"
                )
            logger.warning(
                "history load failed transiently; trying the next attempt's job id",
                extra={"fields": {"job_id": attempt_id, "reason": status.error.reason}},
            )
        assert status.error is not None
        raise TransientError(
            f"history append into {self.table}: {ATTEMPTS} load jobs ({job_id}, ...-a2, "
            f"...-a{ATTEMPTS}) failed transiently, the last with {status.error.reason}: "
            f"{status.error.message}; nothing was appended"
        )

    def _load_config(self) -> Any:
        from google.cloud.bigquery import LoadJobConfig, SchemaField

        # ignore_unknown_values and max_bad_records keep their defaults (False, 0):
        # a row BigQuery can't read fails the whole job instead of being dropped.
        return LoadJobConfig(
            source_format="NEWLINE_DELIMITED_JSON",
            schema=[SchemaField.from_api_repr(f) for f in schema_to_api(HISTORY_SCHEMA)],
            write_disposition="WRITE_APPEND",
            create_disposition="CREATE_NEVER",
        )

    def _insert(self, job_id: str, rows: list[dict[str, Any]]) -> tuple[bool, JobStatus]:
        """(True, status) for a job this call inserted; (False, status) after a 409."""
        warehouse = self.warehouse
        config = self._load_config()
        insert: Callable[[], Any] = lambda: warehouse.client.load_table_from_json(  # noqa: E731
            rows,
            warehouse._table_ref(self.table),
            num_retries=upload_retries(warehouse.retry_deadline),
            job_id=job_id,
            location=warehouse.location,
            project=warehouse.project,
            job_config=config,
            timeout=warehouse.retry_deadline,
        )
        try:
            with translated(f"load into {self.table} as job {job_id}"):
                job = insert()
        except AlreadyExists:  # BigQuery's 409: this job id ran (or runs) already
            warehouse._expect_job(job_id)  # jobs.get may 404 for a moment after a 409
            return False, warehouse.get_job(job_id)
        status = warehouse._status(job)
        if not status.done:
            warehouse._expect_job(job_id)
        return True, status

    def _wait(self, job_id: str, status: JobStatus) -> JobStatus:
        # Our own bounded wait, as BigQueryWarehouse.replace_table's: job.result(timeout=)
        # bounds each HTTP request, not the whole wait (google/cloud/bigquery/job/base.py).
        deadline = monotonic() + self.wait_seconds
        delay = _POLL_FIRST_DELAY
        while not status.done:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise StillRunning(
                    f"history append into {self.table}: load job {job_id} did not finish "
                    f"within {self.wait_seconds:g} s and may still be running; an append "
                    "with the same job id attaches to it",
                    job_id,
                )
            sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX_DELAY)
            try:
                status = self.warehouse.get_job(job_id)
            except TransientError:
                continue  # a failed poll says nothing about the load: wait on
        return status

    def _ensure_table(self) -> None:
        """Dataset and table on first use (one free ``tables.get`` per adapter after that)."""
        with self._lock:
            if self._table_ready:
                return
        if not self.warehouse.table_exists(self.table):
            self.warehouse.ensure_dataset(self.table.dataset)
            # AlreadyExists: a concurrent first append created it, which is what we wanted
            with contextlib.suppress(AlreadyExists):
                self.warehouse.create_table(self.table, HISTORY_SPEC)
        with self._lock:
            self._table_ready = True

    # -- read ---------------------------------------------------------------------------
    def read(self, slos: Sequence[str], since: datetime, until: datetime) -> list[EvaluationRecord]:
        from google.cloud.bigquery import ArrayQueryParameter, ScalarQueryParameter

        start, end = check_window(since, until)
        names = list(dict.fromkeys(str(s) for s in slos))
        if not names:
            return []
        at, slo = quoted_column("at"), quoted_column("slo")
        columns = ", ".join(quoted_column(c) for c in HISTORY_COLUMNS)
        sql = (
            f"SELECT {columns} FROM {self.warehouse._sql_table(self.table)} "
            f"WHERE {at} > @since AND {at} <= @until AND {slo} IN UNNEST(@slos) "
            f"ORDER BY {at}, {quoted_column('recorded_at')}, {slo}"
        )
        parameters = [
            ScalarQueryParameter("since", "TIMESTAMP", start),
            ScalarQueryParameter("until", "TIMESTAMP", end),
            ArrayQueryParameter("slos", "STRING", names),
        ]
        try:
            rows = self.warehouse._query(sql, f"history of {self.table}", parameters)
        except NotFound:
            return []  # no table (or dataset) yet: nothing was ever appended
        return [record_from_values(r) for r in rows]
