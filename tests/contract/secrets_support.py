"""The SecretStore backends under contract: files under a root, and Secret Manager on the gRPC fake.

Each :class:`SecretBackend` bundles a store built with a :class:`ManualClock`, plus the
test-side levers to change what is stored underneath it (``add_version``), to forbid a
secret (``deny``) and to count what reached the storage (``requests``: files read, or
AccessSecretVersion calls). ``gcp_secret_stack`` yields ``(store, fake)`` for the
GCP-only tests; the client is the real ``SecretManagerServiceClient`` on
``SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(...))`` with anonymous
credentials (no metadata-server probe, no network).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.gcp.secrets import SecretManagerStore
from shared.adapters.local.secrets import LocalSecretStore
from tests.contract.support import PROJECT
from tests.fakes.secretmanager_fake import FakeSecretManagerServer

#: Short enough that a persistent UNAVAILABLE ends a test quickly, long enough for retries.
RETRY_DEADLINE = 2.0
TTL = 300.0


@dataclass
class ManualClock:
    """Monotonic seconds that move only when told to."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SecretBackend:
    name: str
    store: Any  # SecretStore
    clock: ManualClock
    #: add a version of secret id ``S`` in PROJECT holding ``value``; returns its number
    add_version: Callable[[str, str], int]
    #: make secret id ``S`` unreadable to the store
    deny: Callable[[str], None]
    #: reads that reached the storage so far
    requests: Callable[[], int]


def local_backend(root: Path, clock: ManualClock | None = None) -> SecretBackend:
    """``<root>/S`` holds the latest value; each version is kept as ``<root>/S@N`` too."""
    clock = clock or ManualClock()
    root.mkdir(parents=True, exist_ok=True)
    store = LocalSecretStore(root, ttl_seconds=TTL, clock=clock)
    counts: dict[str, int] = {}

    def add_version(secret: str, value: str) -> int:
        number = counts.get(secret, 0) + 1
        counts[secret] = number
        for path in (root / f"{secret}@{number}", root / secret):
            path.write_text(value + "\n", encoding="utf-8")  # as `echo value > file` would
            path.chmod(0o600)
        return number

    def deny(secret: str) -> None:
        (root / secret).chmod(0o000)

    return SecretBackend("local", store, clock, add_version, deny, lambda: store.reads)


@contextmanager
def gcp_secret_stack(
    clock: ManualClock | None = None,
    *,
    ttl_seconds: float = TTL,
    retry_deadline: float = RETRY_DEADLINE,
) -> Iterator[tuple[SecretManagerStore, FakeSecretManagerServer]]:
    fake = FakeSecretManagerServer().start()
    client = fake.client()
    try:
        store = SecretManagerStore(
            PROJECT,
            client=client,
            ttl_seconds=ttl_seconds,
            retry_deadline=retry_deadline,
            timeout=RETRY_DEADLINE,
            clock=clock or ManualClock(),
        )
        yield store, fake
    finally:
        client.transport.close()
        fake.stop()


@contextmanager
def gcp_backend(clock: ManualClock | None = None) -> Iterator[SecretBackend]:
    clock = clock or ManualClock()
    with gcp_secret_stack(clock) as (store, fake):

        def add_version(secret: str, value: str) -> int:
            return fake.add_version(f"projects/{PROJECT}/secrets/{secret}", value)

        def deny(secret: str) -> None:
            fake.deny(f"projects/{PROJECT}/secrets/{secret}")

        yield SecretBackend(
            "gcp", store, clock, add_version, deny, lambda: len(fake.access_requests())
        )


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
