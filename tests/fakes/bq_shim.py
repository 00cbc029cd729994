"""A recording reverse proxy in front of bqemulator's REST API that closes its gaps.

The google-cloud-bigquery client talks to this shim exactly as it would to
``bigquery.googleapis.com``; the shim forwards to bqemulator (1.4.0) and makes the
answers match BigQuery's documented behaviour where the emulator differs. Every
request is recorded as the client sent it, so tests can also assert on the wire.

Emulator gaps compensated (each one seen on bqemulator 1.4.0):

1. **Duplicate job ids.** The emulator accepts ``jobs.insert`` with an id that exists
   and runs the job again. BigQuery answers HTTP 409 (reason ``duplicate``, status
   ``ALREADY_EXISTS``). The shim looks the id up first and answers the 409 itself.
   Inserts are serialised so two concurrent inserts of one id can't both pass.
2. **Snapshot decorators on extract.** ``sourceTable.tableId = "t@<epoch_ms>"`` is
   rejected (400 "Invalid table id for SQL"). The shim strips the decorator before
   forwarding; the emulator then exports the table's *current* state, so tests that
   need the instant semantics use an instant after the last modification (time travel
   itself is covered through ``FOR SYSTEM_TIME AS OF`` queries, which the emulator
   supports). The recorded request keeps the decorator.
3. **Wildcard destination URIs.** The emulator doesn't expand ``*``: it writes a file
   literally named ``part-*.avro`` (or fails with 500 when the directory is missing).
   BigQuery replaces ``*`` with a 12-digit zero-padded shard number; the emulator
   writes one file, so the shim forwards ``part-000000000000.avro``.
4. **Extract of a missing table.** The emulator answers 500; BigQuery answers 404
   ``notFound``. The shim checks the table (``tables.get``) and answers 404 itself.
5. **Extract statistics.** The emulator returns no ``statistics.extract``; the shim
   adds ``destinationUriFileCounts`` (on insert and on every later ``jobs.get``).
6. **Echoed configuration.** Replies carry the configuration the client sent
   (decorator, wildcard, original source URIs), not the rewritten one.
7. **No Cloud Storage.** Extract writes to ``BQEMU_GCS_LOCAL_ROOT/<bucket>/<name>``
   (the directory must exist, else 500; the root is read from the emulator's
   ``Settings.gcs_local_root`` at each job) and load reads from there. The shim creates the
   directory, then copies each exported file into the Cloud Storage emulator and
   removes the local copy; before a load it downloads the ``gs://`` sources
   (wildcards resolved) from the storage emulator into the local root. A missing
   destination bucket fails the extract job with ``notFound``; a load whose sources
   match no object fails with ``notFound`` (the emulator would say ``invalid``).
8. **tables.list pagination.** The emulator truncates at ``maxResults`` and never
   returns ``nextPageToken``, silently dropping tables. The shim fetches the full
   list and pages it itself (``pageToken`` is an offset).
9. **tables.list of a missing dataset.** The emulator answers 200 with no tables;
   BigQuery answers 404 ``notFound``. The shim checks the dataset first.
10. **Failed synchronous queries.** ``jobs.query`` on e.g. a missing table answers 200
    with an empty result and the fatal error in ``errors``; BigQuery answers with the
    HTTP error (404 ``notFound``, 400 ``invalidQuery`` …), so a client would read an
    empty result as "no rows". The shim turns such a reply into BigQuery's error.
11. **requirePartitionFilter on tables.insert.** The emulator reads the flag only from
    the deprecated ``timePartitioning.requirePartitionFilter`` (bqemulator/api/routes/
    tables.py) and drops the table-level field; the shim copies it there on the way in
    (the recorded request keeps what the client sent).

The emulator doesn't enforce ``requirePartitionFilter`` on queries either:
:meth:`BigQueryShim.enforce_partition_filter` answers a query over such a table that
lacks the adapter's all-partitions predicate with BigQuery's 400.

Fault injection: :meth:`BigQueryShim.fail_jobs_insert` / :meth:`fail_jobs_get` answer the
next N calls with BigQuery's 503 ``backendError`` without forwarding them.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from tests.fakes.http_proxy import RecordingProxy, Reply, ShimRequest

SHARD_ZERO = "000000000000"
_JOBS_RE = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)/jobs$")
_JOB_RE = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)/jobs/(?P<job>[^/]+)$")
_QUERIES_RE = re.compile(r"^/bigquery/v2/projects/(?P<project>[^/]+)/queries$")
_REASON_STATUS = {
    "notFound": (404, "NOT_FOUND"),
    "accessDenied": (403, "PERMISSION_DENIED"),
    "duplicate": (409, "ALREADY_EXISTS"),
}
_TABLES_RE = re.compile(
    r"^/bigquery/v2/projects/(?P<project>[^/]+)/datasets/(?P<dataset>[^/]+)/tables$"
)


def is_query(request: ShimRequest) -> bool:
    return request.method == "POST" and bool(_QUERIES_RE.match(request.path))


def bq_error(status: int, reason: str, message: str, grpc_status: str) -> Reply:
    """An error body in the shape BigQuery's JSON API uses."""
    return Reply.of_json(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
                "status": grpc_status,
            }
        },
    )


def service_unavailable(_: ShimRequest) -> Reply:
    return bq_error(
        503,
        "backendError",
        "Error encountered during execution. Retrying may solve the problem.",
        "UNAVAILABLE",
    )


def is_jobs_insert(request: ShimRequest) -> bool:
    return request.method == "POST" and bool(_JOBS_RE.match(request.path))


def is_jobs_get(request: ShimRequest) -> bool:
    return request.method == "GET" and bool(_JOB_RE.match(request.path))


def job_config(request: ShimRequest) -> dict[str, Any]:
    body = request.json if isinstance(request.json, dict) else {}
    config = body.get("configuration")
    return config if isinstance(config, dict) else {}


def job_id_of(request: ShimRequest) -> str | None:
    body = request.json if isinstance(request.json, dict) else {}
    job_id = body.get("jobReference", {}).get("jobId")
    if job_id:
        return str(job_id)
    match = _JOB_RE.match(request.path)
    return match["job"] if match else None


class ObjectBridge(Protocol):
    """Where exported files go and load sources come from (the Cloud Storage emulator)."""

    def put(self, bucket: str, name: str, data: bytes) -> bool:
        """Store an object; False if the bucket does not exist."""
        ...

    def names(self, bucket: str, prefix: str) -> list[str]: ...

    def get(self, bucket: str, name: str) -> bytes: ...


class StorageBridge:
    """:class:`ObjectBridge` over a ``google.cloud.storage.Client`` (pointed at the emulator)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def put(self, bucket: str, name: str, data: bytes) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self.client.bucket(bucket).blob(name).upload_from_string(
                data, content_type="application/octet-stream", timeout=30
            )
        except NotFound:
            return False
        return True

    def names(self, bucket: str, prefix: str) -> list[str]:
        from google.api_core.exceptions import NotFound

        try:
            return [b.name for b in self.client.list_blobs(bucket, prefix=prefix, timeout=30)]
        except NotFound:
            return []

    def get(self, bucket: str, name: str) -> bytes:
        return bytes(self.client.bucket(bucket).blob(name).download_as_bytes(timeout=30))


@dataclass
class JobPatch:
    """What the shim adds to the emulator's job resource, per job id."""

    configuration: dict[str, Any]
    statistics: dict[str, Any] = field(default_factory=dict)
    error_result: dict[str, Any] | None = None

    def apply(self, job: dict[str, Any]) -> dict[str, Any]:
        job["configuration"] = copy.deepcopy(self.configuration)
        job.setdefault("statistics", {}).update(copy.deepcopy(self.statistics))
        if self.error_result is not None:
            status = job.setdefault("status", {})
            status["errorResult"] = dict(self.error_result)
            status["errors"] = [dict(self.error_result)]
        return job


class BigQueryShim(RecordingProxy):
    def __init__(self, upstream: str, gcs_local_root: Path, objects: ObjectBridge) -> None:
        super().__init__(upstream)
        self.gcs_local_root = Path(gcs_local_root)
        self.objects = objects
        self._patches: dict[str, JobPatch] = {}
        self._insert_lock = threading.Lock()

    # -- fault injection ----------------------------------------------------------------
    def fail_jobs_insert(self, count: int) -> None:
        self.fail_next(count, is_jobs_insert, service_unavailable)

    def fail_jobs_get(self, count: int) -> None:
        self.fail_next(count, is_jobs_get, service_unavailable)

    def enforce_partition_filter(self, table: str, column: str) -> None:
        """Answer like BigQuery for ``table`` (id) requiring a filter on ``column``: a
        query naming it without ``(`column` IS NULL OR `column` >= ...)`` gets the 400."""
        predicate = re.compile(rf"`{re.escape(column)}` IS NULL OR `{re.escape(column)}` >=")

        def unfiltered(request: ShimRequest) -> bool:
            sql = str((request.json or {}).get("query", "")) if is_query(request) else ""
            return f".{table}`" in sql and not predicate.search(sql)

        def refuse(_: ShimRequest) -> Reply:
            return bq_error(
                400,
                "invalidQuery",
                f"Cannot query over table '{table}' without a filter over column(s) "
                f"'{column}' that can be used for partition elimination",
                "INVALID_ARGUMENT",
            )

        self.fail_next(10_000, unfiltered, refuse)

    def queries(self, since: int = 0) -> list[str]:
        """The SQL of every ``jobs.query`` recorded from index ``since`` on."""
        return [str(r.json["query"]) for r in self.recorded()[since:] if is_query(r)]

    def job_inserts(self, job_id: str) -> list[ShimRequest]:
        """Every ``jobs.insert`` the client sent for ``job_id`` (answered or not)."""
        return self.recorded(lambda r: is_jobs_insert(r) and job_id_of(r) == job_id)

    # -- routing ------------------------------------------------------------------------
    def route(self, request: ShimRequest) -> Reply:
        if is_jobs_insert(request):
            with self._insert_lock:
                return self._insert_job(request)
        if is_jobs_get(request):
            return self._get_job(request)
        match = _TABLES_RE.match(request.path)
        if request.method == "GET" and match:
            return self._list_tables(request)
        if request.method == "POST" and match:
            return self._insert_table(request)
        if request.method == "POST" and _QUERIES_RE.match(request.path):
            return self._query(request)
        return self.forward(request)

    def _query(self, request: ShimRequest) -> Reply:
        reply = self.forward(request)
        if reply.status != 200:
            return reply
        result = reply.json()
        errors = result.get("errors") or []
        failed = result.get("jobComplete") and not (result.get("schema") or {}).get("fields")
        if errors and failed:  # gap 10
            reason = str(errors[0].get("reason") or "invalidQuery")
            status, grpc_status = _REASON_STATUS.get(reason, (400, "INVALID_ARGUMENT"))
            request.note = "failed query turned into its HTTP error"
            return bq_error(status, reason, str(errors[0].get("message") or reason), grpc_status)
        return reply

    def _get_job(self, request: ShimRequest) -> Reply:
        reply = self.forward(request)
        job_id = job_id_of(request)
        patch = self._patches.get(job_id or "")
        if reply.status == 200 and patch is not None:
            return Reply.of_json(200, patch.apply(reply.json()))
        return reply

    def _job_exists(self, project: str, job_id: str) -> bool:
        reply = self.call_upstream(
            "GET", f"/bigquery/v2/projects/{quote(project)}/jobs/{quote(job_id)}"
        )
        return reply.status == 200

    def _insert_job(self, request: ShimRequest) -> Reply:
        project = _JOBS_RE.match(request.path)["project"]  # type: ignore[index]
        job_id = job_id_of(request)
        if job_id and self._job_exists(project, job_id):
            location = (request.json or {}).get("jobReference", {}).get("location") or "US"
            message = f"Already Exists: Job {project}:{location}.{job_id}"
            request.note = "duplicate job id"
            return bq_error(409, "duplicate", message, "ALREADY_EXISTS")
        config = job_config(request)
        if "extract" in config:
            return self._extract(request, project, job_id)
        if "load" in config:
            return self._load(request, job_id)
        return self.forward(request)

    # -- extract ------------------------------------------------------------------------
    def _local_path(self, uri: str) -> tuple[str, str, Path]:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return bucket, name, self.gcs_local_root / bucket / name

    def _extract(self, request: ShimRequest, project: str, job_id: str | None) -> Reply:
        original = copy.deepcopy(job_config(request))
        body = copy.deepcopy(request.json)
        extract = body["configuration"]["extract"]
        source = extract["sourceTable"]
        table_id = str(source["tableId"]).split("@", 1)[0]  # gap 2: drop the decorator
        source["tableId"] = table_id
        src_project = source.get("projectId") or project
        table_path = (
            f"/bigquery/v2/projects/{quote(src_project)}/datasets/"
            f"{quote(source['datasetId'])}/tables/{quote(table_id)}"
        )
        if self.call_upstream("GET", table_path).status == 404:  # gap 4
            request.note = "extract of a missing table"
            return bq_error(
                404,
                "notFound",
                f"Not found: Table {src_project}:{source['datasetId']}.{table_id}",
                "NOT_FOUND",
            )
        uris = list(extract.get("destinationUris") or [])
        if len(uris) != 1:
            return bq_error(400, "invalid", "bq_shim emulates exactly one URI", "INVALID_ARGUMENT")
        uri = uris[0].replace("*", SHARD_ZERO)  # gap 3
        extract["destinationUris"] = [uri]
        bucket, name, local = self._local_path(uri)
        local.parent.mkdir(parents=True, exist_ok=True)  # gap 7
        reply = self.forward(request, json_body=body)
        if reply.status != 200:
            return reply
        job = reply.json()
        patch = JobPatch(configuration=original)
        if not job.get("status", {}).get("errorResult"):
            data = local.read_bytes()
            local.unlink()
            if self.objects.put(bucket, name, data):
                patch.statistics = {
                    "extract": {"destinationUriFileCounts": ["1"], "inputBytes": str(len(data))}
                }
            else:
                patch.error_result = {
                    "reason": "notFound",
                    "message": f"Not found: Bucket {bucket}",
                }
        if job_id:
            self._patches[job_id] = patch
        return Reply.of_json(200, patch.apply(job))

    # -- load ---------------------------------------------------------------------------
    def _stage(self, uri: str) -> list[str]:
        """Copy the objects ``uri`` names (one ``*`` allowed) into the local root."""
        bucket, name, _ = self._local_path(uri)
        if "*" in name:
            prefix = name.split("*", 1)[0]
            names = [n for n in self.objects.names(bucket, prefix) if fnmatch.fnmatchcase(n, name)]
        else:
            names = [n for n in self.objects.names(bucket, name) if n == name]
        for object_name in names:
            target = self.gcs_local_root / bucket / object_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.objects.get(bucket, object_name))
        return [f"gs://{bucket}/{n}" for n in names]

    def _load(self, request: ShimRequest, job_id: str | None) -> Reply:
        original = copy.deepcopy(job_config(request))
        body = copy.deepcopy(request.json)
        load = body["configuration"]["load"]
        staged: list[str] = []
        missing: list[str] = []
        for uri in load.get("sourceUris") or []:
            found = self._stage(uri)
            staged.extend(found)
            if not found:
                missing.append(uri)
        load["sourceUris"] = staged or list(load.get("sourceUris") or [])
        try:
            reply = self.forward(request, json_body=body)
        finally:
            for uri in staged:
                self._local_path(uri)[2].unlink(missing_ok=True)
        if reply.status != 200:
            return reply
        patch = JobPatch(configuration=original)
        if missing:
            patch.error_result = {
                "reason": "notFound",
                "message": f"Not found: Uris List: {', '.join(missing)}",
            }
        if job_id:
            self._patches[job_id] = patch
        return Reply.of_json(200, patch.apply(reply.json()))

    # -- tables.insert ------------------------------------------------------------------
    def _insert_table(self, request: ShimRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        partitioning = body.get("timePartitioning")
        if body.get("requirePartitionFilter") and isinstance(partitioning, dict):  # gap 11
            patched = {**body, "timePartitioning": {**partitioning, "requirePartitionFilter": True}}
            return self.forward(request, json_body=patched)
        return self.forward(request)

    # -- tables.list --------------------------------------------------------------------
    def _list_tables(self, request: ShimRequest) -> Reply:
        match = _TABLES_RE.match(request.path)
        assert match is not None
        project, dataset = match["project"], match["dataset"]
        if self.call_upstream("GET", request.path.rsplit("/", 1)[0]).status == 404:  # gap 9
            request.note = "tables.list of a missing dataset"
            return bq_error(404, "notFound", f"Not found: Dataset {project}:{dataset}", "NOT_FOUND")
        query = {k: v for k, v in request.query.items() if k not in ("maxResults", "pageToken")}
        query["maxResults"] = ["1000000"]
        reply = self.forward(request, query=query)
        if reply.status != 200:
            return reply
        listing = reply.json()
        tables = list(listing.get("tables") or [])
        start = int(request.param("pageToken") or 0)
        size = int(request.param("maxResults") or 1000)
        listing["tables"] = tables[start : start + size]
        listing["totalItems"] = len(tables)
        listing.pop("nextPageToken", None)
        if start + size < len(tables):
            listing["nextPageToken"] = str(start + size)
        return Reply.of_json(200, listing)
