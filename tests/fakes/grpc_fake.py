"""What the in-test gRPC fakes share: a server on 127.0.0.1:0, a call log, injected faults."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]


@dataclass
class Fault:
    method: str
    remaining: int
    code: grpc.StatusCode
    details: str


@dataclass
class GrpcFake:
    calls: list[tuple[str, grpc.StatusCode]] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self, service: str, handlers: dict[str, Any]) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, handlers),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def _add_fault(self, method: str, count: int, code: grpc.StatusCode, details: str) -> None:
        with self._lock:
            self._faults.append(Fault(method, count, code, details))

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None
