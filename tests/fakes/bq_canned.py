"""A loopback HTTP server that answers Google JSON APIs from canned handlers.

For request-level tests of behaviours no emulator shows (a 404 right after
``jobs.insert``, a 403 on ``datasets.insert``, a job that never finishes, a download
whose CRC32C doesn't match): the official client talks to it as it would to
``bigquery.googleapis.com`` / ``storage.googleapis.com``; every request is recorded
(:class:`tests.fakes.http_proxy.ShimRequest`) and answered by the newest handler that
matches it, else by BigQuery's 404. Nothing is ever forwarded anywhere.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from tests.fakes.bq_shim import bq_error, is_jobs_get, is_jobs_insert, job_id_of
from tests.fakes.http_proxy import RecordingProxy, Reply, ShimRequest

Matcher = Callable[[ShimRequest], bool]
Responder = Callable[[ShimRequest], Reply]
PROJECT = "opsuite-test"


class CannedServer(RecordingProxy):
    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9")  # an upstream is required; never contacted
        self._handlers: list[tuple[Matcher, Responder]] = []
        self._handler_lock = threading.Lock()

    def on(self, matches: Matcher, reply: Responder) -> None:
        """Answer every request ``matches`` accepts with ``reply`` (newest handler wins)."""
        with self._handler_lock:
            self._handlers.insert(0, (matches, reply))

    def on_sequence(self, matches: Matcher, replies: list[Responder]) -> None:
        """Answer matching requests with ``replies`` in turn; the last one repeats."""
        remaining = list(replies)

        def reply(request: ShimRequest) -> Reply:
            with self._handler_lock:
                current = remaining.pop(0) if len(remaining) > 1 else remaining[0]
            return current(request)

        self.on(matches, reply)

    def route(self, request: ShimRequest) -> Reply:
        with self._handler_lock:
            handlers = list(self._handlers)
        for matches, reply in handlers:
            if matches(request):
                return reply(request)
        return bq_error(404, "notFound", f"Not found: {request.path}", "NOT_FOUND")

    def forward(self, request: ShimRequest, **_: Any) -> Reply:
        raise AssertionError(f"CannedServer has no upstream: {request.method} {request.path}")

    def bigquery_client(self, project: str = PROJECT) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.url},
        )

    def storage_client(self, project: str = PROJECT) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.url},
        )


# -- matchers ---------------------------------------------------------------------------
def request_is(method: str, pattern: str) -> Matcher:
    """Method and a regular expression the whole path must match."""
    compiled = re.compile(pattern)

    def matches(request: ShimRequest) -> bool:
        return request.method == method and bool(compiled.fullmatch(request.path))

    return matches


def jobs_insert(request: ShimRequest) -> bool:
    return is_jobs_insert(request)


def jobs_get(request: ShimRequest) -> bool:
    return is_jobs_get(request)


# -- replies ----------------------------------------------------------------------------
def job_resource(
    request: ShimRequest,
    state: str = "DONE",
    *,
    kind: str | None = None,
    error: dict[str, str] | None = None,
    statistics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A job resource for the job ``request`` names (insert body or ``jobs.get`` path)."""
    body = request.json if isinstance(request.json, dict) else {}
    configuration = dict(body.get("configuration") or {})
    if kind is not None and kind not in configuration:
        configuration = {kind: {}}
    status: dict[str, Any] = {"state": state}
    if error is not None:
        status["errorResult"] = dict(error)
        status["errors"] = [dict(error)]
    return {
        "kind": "bigquery#job",
        "id": f"{PROJECT}:US.{job_id_of(request)}",
        "jobReference": {"projectId": PROJECT, "jobId": job_id_of(request), "location": "US"},
        "configuration": configuration,
        "status": status,
        "statistics": statistics or {"creationTime": "1795305599000"},
    }


def job_reply(state: str = "DONE", **kwargs: Any) -> Responder:
    def reply(request: ShimRequest) -> Reply:
        return Reply.of_json(200, job_resource(request, state, **kwargs))

    return reply


def error_reply(status: int, reason: str, message: str, grpc_status: str) -> Responder:
    def reply(_: ShimRequest) -> Reply:
        return bq_error(status, reason, message, grpc_status)

    return reply


def job_not_found(request: ShimRequest) -> Reply:
    return bq_error(
        404, "notFound", f"Not found: Job {PROJECT}:US.{job_id_of(request)}", "NOT_FOUND"
    )


def job_exists(request: ShimRequest) -> Reply:
    message = f"Already Exists: Job {PROJECT}:US.{job_id_of(request)}"
    return bq_error(409, "duplicate", message, "ALREADY_EXISTS")
