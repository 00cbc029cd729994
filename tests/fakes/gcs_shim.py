"""A recording reverse proxy in front of gcp-storage-emulator that closes its gaps.

The google-cloud-storage client talks to this shim as it would to
``storage.googleapis.com``; requests are recorded as sent (query parameters such as
``ifGenerationMatch`` included) and forwarded to the in-process emulator. The
``Host`` header is passed through, so the media links the emulator builds point back
at the shim.

Emulator gaps compensated (gcp-storage-emulator 2026.7.19):

1. **Generation preconditions on uploads are ignored.** GCS answers 412
   ``conditionNotMet`` when ``ifGenerationMatch`` doesn't hold (``0``: the object must
   not exist; ``N``: its live generation must be ``N``). The shim checks the object's
   metadata first and answers the 412 itself. Uploads (and object deletes) are
   serialised so the check and the write are atomic as seen by clients of the shim.
2. **Object listings are not paginated.** The emulator ignores ``maxResults`` and
   ``pageToken`` and returns everything at once, so a client's page loop is never
   exercised. The shim fetches the full listing and pages it (``pageToken`` is an
   offset), as GCS does with ``nextPageToken``.
3. **Media downloads carry no ``X-Goog-Generation``.** GCS sends the generation (and
   metageneration) of the bytes it serves with them; the client library records it on
   the blob (google/cloud/storage/blob.py ``_extract_headers_from_download``) and pins
   retried range requests to it (``_media/requests/download.py``). The shim adds both
   headers, read while no upload or delete can run, so they describe the bytes served.

Fault injection: :meth:`GcsShim.fail_requests` answers the next N matching requests
with GCS's 503 (``backendError``); :meth:`GcsShim.lose_replies` lets them through and
then answers 503 (a write that landed but whose answer was lost).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.parser import BytesParser
from typing import Any
from urllib.parse import quote, unquote

from tests.fakes.http_proxy import RecordingProxy, Reply, ShimRequest

_UPLOAD_RE = re.compile(r"^/upload/storage/v1/b/(?P<bucket>[^/]+)/o$")
_LIST_RE = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)/o$")
_OBJECT_RE = re.compile(
    r"^(?P<download>/download)?/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>[^/]+)$"
)
PRECONDITION_MESSAGE = "At least one of the pre-conditions you specified did not hold."


def gcs_error(status: int, reason: str, message: str, **extra: str) -> Reply:
    return Reply.of_json(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason, **extra}],
            }
        },
    )


def is_upload(request: ShimRequest) -> bool:
    return request.method == "POST" and bool(_UPLOAD_RE.match(request.path))


def upload_object_name(request: ShimRequest) -> str | None:
    """The object name of a media, multipart or resumable-start upload request."""
    name = request.param("name")
    if name:
        return name
    if isinstance(request.json, dict) and request.json.get("name"):
        return str(request.json["name"])
    content_type = request.headers.get("Content-Type") or request.headers.get("content-type")
    if content_type and content_type.startswith("multipart/"):
        message = BytesParser().parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.raw_body
        )
        parts: Any = message.get_payload()
        if isinstance(parts, list) and parts:
            metadata = json.loads(parts[0].get_payload(decode=True))
            return str(metadata.get("name")) if metadata.get("name") else None
    return None


class _SharedExclusiveLock:
    """Many holders of the shared side (downloads) or one of the exclusive side (writes)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _backend_error(_: ShimRequest) -> Reply:
    return gcs_error(503, "backendError", "We encountered an internal error.")


class GcsShim(RecordingProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._objects_lock = _SharedExclusiveLock()

    def fail_requests(self, count: int, matches: Callable[[ShimRequest], bool]) -> None:
        self.fail_next(count, matches, _backend_error)

    def lose_replies(self, count: int, matches: Callable[[ShimRequest], bool]) -> None:
        """The next ``count`` matching requests are served, but answered with a 503."""

        def served_then_lost(request: ShimRequest) -> Reply:
            self.route(request)
            request.note = "reply lost"
            return _backend_error(request)

        self.fail_next(count, matches, served_then_lost)

    def uploads(self, bucket: str, name: str) -> list[ShimRequest]:
        return self.recorded(
            lambda r: (
                is_upload(r)
                and _UPLOAD_RE.match(r.path)["bucket"] == bucket  # type: ignore[index]
                and upload_object_name(r) == name
            )
        )

    def route(self, request: ShimRequest) -> Reply:
        if is_upload(request):
            with self._objects_lock.exclusive():
                return self._upload(request)
        match = _LIST_RE.match(request.path)
        if request.method == "GET" and match:
            return self._list(request)
        match = _OBJECT_RE.match(request.path)
        if match and request.method == "DELETE":
            with self._objects_lock.exclusive():
                return self.forward(request)
        if match and request.method == "GET" and request.param("alt") == "media":
            with self._objects_lock.shared():
                return self._download(request, match["bucket"], unquote(match["name"]))
        return self.forward(request)

    def _download(self, request: ShimRequest, bucket: str, name: str) -> Reply:
        reply = self.forward(request)
        if reply.status not in (200, 206):
            return reply
        metadata = self.call_upstream(
            "GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        )
        if metadata.status != 200:  # deleted meanwhile
            return metadata
        resource = metadata.json()
        reply.headers["X-Goog-Generation"] = str(resource["generation"])
        reply.headers["X-Goog-Metageneration"] = str(resource["metageneration"])
        return reply

    def _generation(self, bucket: str, name: str) -> int | None:
        reply = self.call_upstream(
            "GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        )
        if reply.status != 200:
            return None
        return int(reply.json()["generation"])

    def _upload(self, request: ShimRequest) -> Reply:
        expected = request.param("ifGenerationMatch")
        if expected is not None:
            bucket = _UPLOAD_RE.match(request.path)["bucket"]  # type: ignore[index]
            name = upload_object_name(request)
            current = self._generation(bucket, name) if name else None
            holds = current is None if int(expected) == 0 else current == int(expected)
            if not holds:
                request.note = "ifGenerationMatch failed"
                return gcs_error(
                    412,
                    "conditionNotMet",
                    PRECONDITION_MESSAGE,
                    locationType="header",
                    location="If-Match",
                )
        return self.forward(request)

    def _list(self, request: ShimRequest) -> Reply:
        query = {k: v for k, v in request.query.items() if k not in ("maxResults", "pageToken")}
        reply = self.forward(request, query=query)
        if reply.status != 200:
            return reply
        listing: dict[str, Any] = reply.json()
        items = sorted(listing.get("items") or [], key=lambda item: str(item["name"]))
        start = int(request.param("pageToken") or 0)
        size = int(request.param("maxResults") or 1000)
        listing["items"] = items[start : start + size]
        listing.pop("nextPageToken", None)
        if start + size < len(items):
            listing["nextPageToken"] = str(start + size)
        return Reply.of_json(200, listing)
