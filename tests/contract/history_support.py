"""Support for the evaluation-history contract: records, the upload-host shim, helpers.

bqemulator (1.4.0) serves BigQuery's upload host (``/upload/bigquery/v2/.../jobs``) but
differs from BigQuery there in three ways, each seen on this machine:

1. It refuses the media part of a multipart upload whose type is ``*/*`` (400 "second
   part has unsupported Content-Type"); google-cloud-bigquery always sends ``*/*``
   (client.py ``_GENERIC_CONTENT_TYPE``) and BigQuery takes it.
2. It ignores ``jobReference.jobId`` and names the job ``bqemu_<hex>`` ("the upload
   host generates the job id", bqemulator/api/routes/upload.py), so ``jobs.get`` of the
   caller's id answers 404.
3. Hence a duplicate job id is never refused: BigQuery answers 409 ``duplicate``.

:class:`UploadShim` sits in front of :class:`tests.fakes.bq_shim.BigQueryShim` and
closes those gaps for multipart uploads (what ``load_table_from_json`` sends below
5 MiB): it gives the media part a type the emulator takes, answers a known job id with
BigQuery's 409, and maps the caller's id to the emulator's on the way in (``jobs.get``)
and out (replies). Inserts are serialised, so two concurrent inserts of one id can't
both pass. Everything else is forwarded unchanged.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.errors import TransientError
from shared.identifiers import TableRef
from shared.models import EvaluationRecord
from shared.ports import EvaluationHistory, Warehouse
from tests.fakes.bq_shim import bq_error
from tests.fakes.http_proxy import RecordingProxy, Reply, ShimRequest

UPLOAD_RE = re.compile(r"^/upload/bigquery/v2/projects/(?P<project>[^/]+)/jobs$")
_JOB_RE = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)/jobs/(?P<job>[^/]+)$")
T0 = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
RECORDED = datetime(2026, 11, 22, 9, 31, 2, 123456, tzinfo=UTC)


def record(at: datetime = T0, slo: str = "freshness", **changes: Any) -> EvaluationRecord:
    """A plausible evaluation of ``slo`` at ``at``; any field can be overridden."""
    base = EvaluationRecord(
        at=at,
        slo=slo,
        kind="freshness",
        good=True,
        value=3.25,
        good_events=None,
        total_events=None,
        compliance=0.995,
        budget_remaining=0.5,
        breaching=False,
        exhausted=False,
        burning=(),
        detail='{"ages_hours": {"nba_analytics.player_game_summary": 3.25}}',
        recorded_at=RECORDED,
    )
    return replace(base, **changes)


@dataclass
class HistoryCase:
    """One adapter family's history port on a fresh table, and the warehouse it is in."""

    name: str
    history: EvaluationHistory
    warehouse: Warehouse
    table: TableRef
    upload_shim: UploadShim | None = None  # gcp only: the requests the client sent


# -- multipart bodies -------------------------------------------------------------------
def multipart_parts(request: ShimRequest) -> tuple[dict[str, Any], bytes]:
    """The job resource and the media bytes of a ``multipart/related`` upload."""
    content_type = next(v for k, v in request.headers.items() if k.lower() == "content-type")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
        head + request.raw_body
    )
    metadata, media = list(message.iter_parts())
    job: Any = metadata.get_payload(decode=True)
    data: Any = media.get_payload(decode=True)
    return json.loads(job), bytes(data)


def uploaded_rows(request: ShimRequest) -> list[dict[str, Any]]:
    """The newline-delimited JSON rows of an upload."""
    return [json.loads(line) for line in multipart_parts(request)[1].decode().splitlines()]


def is_upload(request: ShimRequest) -> bool:
    return request.method == "POST" and bool(UPLOAD_RE.match(request.path))


def upload_job_id(request: ShimRequest) -> str | None:
    job_id = multipart_parts(request)[0].get("jobReference", {}).get("jobId")
    return str(job_id) if job_id else None


# -- the shim ---------------------------------------------------------------------------
class UploadShim(RecordingProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._emulator_ids: dict[str, str] = {}  # caller's job id -> the emulator's
        self._insert_lock = threading.Lock()

    def uploads(self, job_id: str | None = None) -> list[ShimRequest]:
        return self.recorded(
            lambda r: is_upload(r) and (job_id is None or upload_job_id(r) == job_id)
        )

    def route(self, request: ShimRequest) -> Reply:
        if is_upload(request) and request.param("uploadType") == "multipart":
            with self._insert_lock:
                return self._upload(request)
        match = _JOB_RE.match(request.path)
        if request.method == "GET" and match and match["job"] in self._emulator_ids:
            ours = match["job"]
            theirs = self._emulator_ids[ours]
            reply = self.forward(request, path=request.path[: match.start("job")] + theirs)
            return _renamed(reply, ours)
        return self.forward(request)

    def _upload(self, request: ShimRequest) -> Reply:
        project = UPLOAD_RE.match(request.path)["project"]  # type: ignore[index]
        ours = upload_job_id(request)
        if ours and ours in self._emulator_ids:  # gap 3
            request.note = "duplicate job id"
            return bq_error(
                409, "duplicate", f"Already Exists: Job {project}:US.{ours}", "ALREADY_EXISTS"
            )
        body = request.raw_body.replace(  # gap 1: the first media header only
            b"\r\ncontent-type: */*\r\n", b"\r\ncontent-type: application/octet-stream\r\n", 1
        )
        reply = self.forward(request, body=body)
        if reply.status != 200 or not ours:
            return reply
        self._emulator_ids[ours] = str(reply.json()["jobReference"]["jobId"])  # gap 2
        return _renamed(reply, ours)


def _renamed(reply: Reply, job_id: str) -> Reply:
    if reply.status != 200:
        return reply
    job = reply.json()
    reference = job.setdefault("jobReference", {})
    reference["jobId"] = job_id
    job["id"] = f"{reference.get('projectId')}:{reference.get('location') or 'US'}.{job_id}"
    return Reply.of_json(200, job)


# -- two processes (local) --------------------------------------------------------------
def append_in_process(
    root: str, table: tuple[str, str], job_id: str, start: Any, results: Any
) -> None:
    """Child process: open the warehouse file, append once, let go of the file.

    While the other process holds the file the warehouse answers TransientError
    ("busy"); the child retries as a redelivery would, for at most 60 s.
    """
    from shared.adapters.local.history import LocalEvaluationHistory
    from shared.adapters.local.warehouse import LocalWarehouse

    base = Path(root)
    start.wait(30)
    deadline = time.monotonic() + 60
    while True:
        warehouse = LocalWarehouse(base / "warehouse.duckdb", base / "gcs", base / "jobs")
        try:
            history = LocalEvaluationHistory(warehouse, TableRef(*table))
            results.put(history.append(job_id, [record(), record(slo="availability")]))
            return
        except TransientError:
            if time.monotonic() > deadline:
                results.put("busy for 60 s")
                return
            time.sleep(0.02)
        finally:
            warehouse.close()


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
