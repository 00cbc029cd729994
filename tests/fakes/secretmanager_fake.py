"""An in-test gRPC server for ``google.cloud.secretmanager.v1.SecretManagerService`` (AccessSecretVersion).

The real ``google.cloud.secretmanager_v1.SecretManagerServiceClient`` talks to it over gRPC
on ``127.0.0.1:<port>`` (see :meth:`FakeSecretManagerServer.client`). It keeps the
service's documented rules, with its error texts, so an adapter doesn't pass by leniency:

* the name must be ``projects/*/secrets/*/versions/*`` (a project id or number, a secret id
  of ``[A-Za-z0-9_-]{1,255}``, a version that is ``latest`` or a positive number)
  → ``INVALID_ARGUMENT`` otherwise;
* an unknown secret → ``NOT_FOUND`` "Secret [...] not found or has no versions."; an
  unknown version of a known secret → ``NOT_FOUND`` "Secret Version [...] not found.";
* ``latest`` is the most recently added version (docs: "an alias to the most recently
  created SecretVersion"), whatever its state; a DISABLED or DESTROYED version →
  ``FAILED_PRECONDITION`` "Secret Version [...] is in DISABLED state.";
* a resource the caller may not read (:meth:`deny`) → ``PERMISSION_DENIED``
  "Permission 'secretmanager.versions.access' denied for resource '...' (or it may not
  exist).";
* the response names the resolved version (``.../versions/3`` for ``latest``) and carries
  the payload's ``data_crc32c`` (the service computes one when the writer sent none).

It records every request name, and can be told to fail the next N calls
(:meth:`fail_next`, e.g. UNAVAILABLE to exercise the client's retry) or to send a wrong
checksum (:meth:`corrupt_next`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
import grpc  # type: ignore[import-untyped, unused-ignore]
from google.cloud.secretmanager_v1.types import service

from tests.fakes.grpc_fake import GrpcFake

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
_VERSION_NAME = re.compile(
    r"projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})"
    r"/secrets/(?P<secret>[A-Za-z0-9_-]{1,255})/versions/(?P<version>latest|[1-9][0-9]{0,19})"
)


@dataclass
class StoredVersion:
    number: int
    data: bytes
    state: str = "ENABLED"  # ENABLED | DISABLED | DESTROYED
    #: False: answer without ``data_crc32c``, as versions added before checksums did
    checksum: bool = True


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass
class FakeSecretManagerServer(GrpcFake):
    #: ``projects/P/secrets/S`` → its versions, oldest first
    secrets: dict[str, list[StoredVersion]] = field(default_factory=dict)
    #: the ``name`` of every AccessSecretVersion request received (faults included)
    requests: list[str] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)
    _corrupt: int = 0

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FakeSecretManagerServer:
        def access(request: Any, context: grpc.ServicerContext) -> Any:
            method = "AccessSecretVersion"
            with self._lock:
                self.requests.append(request.name)
            fault = self._take_fault(method)
            if fault is not None:
                self.calls.append((method, fault.code))
                context.abort(fault.code, fault.details)
            try:
                response = self._access(request)
            except _Abort as abort:
                self.calls.append((method, abort.code))
                context.abort(abort.code, abort.details)
            self.calls.append((method, grpc.StatusCode.OK))
            return response

        handlers = {
            "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                access,
                request_deserializer=service.AccessSecretVersionRequest.pb().FromString,
                response_serializer=lambda message: message.SerializeToString(),
            )
        }
        self._serve(SERVICE, handlers)
        return self

    def client(self) -> Any:
        """A real ``SecretManagerServiceClient`` on an insecure channel to this server."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.secretmanager_v1 import SecretManagerServiceClient
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        transport = SecretManagerServiceGrpcTransport(
            channel=grpc.insecure_channel(self.address),
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )
        return SecretManagerServiceClient(transport=transport)

    # -- test controls ------------------------------------------------------------------
    def add_version(self, secret: str, data: bytes | str, *, checksum: bool = True) -> int:
        """Add a version to ``projects/P/secrets/S`` (created on first use); its number."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with self._lock:
            versions = self.secrets.setdefault(secret, [])
            versions.append(StoredVersion(len(versions) + 1, payload, checksum=checksum))
            return len(versions)

    def set_state(self, secret: str, number: int, state: str) -> None:
        with self._lock:
            self.secrets[secret][number - 1].state = state

    def deny(self, resource: str) -> None:
        """PERMISSION_DENIED for ``resource`` (a secret, or one version name) and below it."""
        with self._lock:
            self.denied.add(resource)

    def corrupt_next(self, count: int = 1) -> None:
        """The next ``count`` successful answers carry a checksum that doesn't match."""
        with self._lock:
            self._corrupt += count

    def fail_next(
        self,
        count: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        *,
        details: str = "The service is currently unavailable.",
    ) -> None:
        self._add_fault("AccessSecretVersion", count, code, details)

    def access_requests(self) -> list[str]:
        with self._lock:
            return list(self.requests)

    # -- the service --------------------------------------------------------------------
    def _access(self, request: Any) -> Any:
        name = request.name
        match = _VERSION_NAME.fullmatch(name)
        if match is None:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid resource field value in the request: name {name!r} is not "
                "projects/*/secrets/*/versions/*.",
            )
        secret = name.rsplit("/versions/", 1)[0]
        with self._lock:
            if any(name == d or name.startswith(d + "/") for d in self.denied):
                raise _Abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"Permission 'secretmanager.versions.access' denied for resource "
                    f"'{name}' (or it may not exist).",
                )
            versions = self.secrets.get(secret)
            if not versions:
                raise _Abort(
                    grpc.StatusCode.NOT_FOUND, f"Secret [{secret}] not found or has no versions."
                )
            wanted = match.group("version")
            number = len(versions) if wanted == "latest" else int(wanted)
            if number > len(versions):
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
            version = versions[number - 1]
            resolved = f"{secret}/versions/{number}"
            if version.state != "ENABLED":
                raise _Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Secret Version [{resolved}] is in {version.state} state.",
                )
            checksum = google_crc32c.value(version.data)
            if self._corrupt > 0:
                self._corrupt -= 1
                checksum ^= 0x1
        response = service.AccessSecretVersionResponse.pb()(name=resolved)
        response.payload.data = version.data
        if version.checksum:
            response.payload.data_crc32c = checksum
        return response
