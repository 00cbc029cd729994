"""A small threaded HTTP reverse proxy that records traffic and can inject faults.

It is the base of the emulator shims (:mod:`tests.fakes.bq_shim`,
:mod:`tests.fakes.gcs_shim`): a subclass overrides :meth:`RecordingProxy.route` to answer
a request itself, rewrite it before forwarding, or patch the upstream reply.

Every request is recorded as the client sent it (method, path, query, JSON body),
with the status the proxy finally answered and whether it reached the upstream.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "accept-encoding",
    }
)


@dataclass
class ShimRequest:
    """One request as the client sent it; ``status``/``forwarded`` are filled in on reply."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    json: Any = None
    status: int | None = None
    forwarded: bool = False
    note: str = ""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, payload: Any) -> Reply:
        return cls(
            status,
            json.dumps(payload).encode("utf-8"),
            {"Content-Type": "application/json; charset=UTF-8"},
        )

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    remaining: int
    matches: Callable[[ShimRequest], bool]
    reply: Callable[[ShimRequest], Reply]


class RecordingProxy:
    """Forward to ``upstream`` (``http://host:port``), recording every exchange."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.requests: list[ShimRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("proxy not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- fault injection and inspection --------------------------------------------------
    def fail_next(
        self,
        count: int,
        matches: Callable[[ShimRequest], bool],
        reply: Callable[[ShimRequest], Reply],
    ) -> None:
        """Answer the next ``count`` matching requests with ``reply`` (nothing forwarded)."""
        with self._lock:
            self._faults.append(Fault(count, matches, reply))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def recorded(self, matches: Callable[[ShimRequest], bool] | None = None) -> list[ShimRequest]:
        with self._lock:
            return [r for r in self.requests if matches is None or matches(r)]

    def _take_fault(self, request: ShimRequest) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(request):
                    fault.remaining -= 1
                    return fault
        return None

    # -- request handling ---------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items()}
        request = ShimRequest(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            raw_body=raw,
            json=_maybe_json(raw, headers.get("Content-Type", "")),
        )
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault(request)
        try:
            reply = fault.reply(request) if fault else self.route(request)
        except Exception as exc:  # a shim bug must be visible, not a hang
            reply = Reply.of_json(
                500, {"error": {"code": 500, "message": f"shim error: {exc!r}", "errors": []}}
            )
            request.note = f"shim error: {exc!r}"
        request.status = reply.status
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(reply.body)

    def route(self, request: ShimRequest) -> Reply:
        """Answer ``request``; the default forwards it unchanged."""
        return self.forward(request)

    def forward(
        self,
        request: ShimRequest,
        *,
        method: str | None = None,
        path: str | None = None,
        query: dict[str, list[str]] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        record: bool = True,
    ) -> Reply:
        """Send (a possibly rewritten copy of) ``request`` upstream and return its reply."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Accept-Encoding"] = "identity"
        payload = request.raw_body if body is None else body
        if json_body is not None:
            payload = json.dumps(json_body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        target = path or request.path
        params = request.query if query is None else query
        if params:
            target += "?" + urlencode(list(_pairs(params.items())))
        reply = self.call_upstream(method or request.method, target, payload, headers)
        if record:
            request.forwarded = True
        return reply

    def call_upstream(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            sent = dict(headers or {})
            sent.setdefault("Host", f"{self.upstream_host}:{self.upstream_port}")
            sent["Content-Length"] = str(len(body))
            conn.request(method, target, body=body if body else None, headers=sent)
            response = conn.getresponse()
            data = response.read()
            return Reply(response.status, data, {k: v for k, v in response.getheaders()})
        finally:
            conn.close()


def _pairs(items: Iterable[tuple[str, list[str]]]) -> Iterable[tuple[str, str]]:
    for key, values in items:
        for value in values:
            yield key, value


def _maybe_json(raw: bytes, content_type: str) -> Any:
    if not raw or "json" not in content_type.lower():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
