"""Fixtures for the contract suite: the same tests against the local and the GCP adapters.

GCP side, one of each per session: bqemulator (its pytest plugin's ``bqemu_server``,
settings overridden below) behind :class:`tests.fakes.bq_shim.BigQueryShim`,
gcp-storage-emulator in-process behind :class:`tests.fakes.gcs_shim.GcsShim`, and the
Pub/Sub gRPC fake. Each test gets its own dataset, bucket and topic names, so tests
share the servers without seeing each other's state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from shared.identifiers import TableRef
from tests.contract.support import PROJECT, SHORT_DEADLINE, Backend, GcpStack, Message


# -- the GCP stack (session) ------------------------------------------------------------
@pytest.fixture(scope="session")
def bqemu_settings(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Overrides bqemulator's plugin fixture: our project, a gs:// root, quiet logs."""
    config = pytest.importorskip("bqemulator.config")
    return config.Settings(
        persistence_mode=config.PersistenceMode.EPHEMERAL,
        rest_host="127.0.0.1",
        rest_port=0,
        grpc_host="127.0.0.1",
        grpc_port=0,
        default_project_id=PROJECT,
        gcs_local_root=tmp_path_factory.mktemp("bqemu-gcs"),
        log_level=config.LogLevel.WARNING,
        metrics_enabled=False,
    )


@pytest.fixture(scope="session")
def storage_emulator_url() -> Iterator[str]:
    server_module = pytest.importorskip("gcp_storage_emulator.server")
    server = server_module.create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    host, port = server._api._httpd.server_address[:2]  # the emulator exposes no getter
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcp_stack(
    request: pytest.FixtureRequest, bqemu_settings: Any, storage_emulator_url: str
) -> Iterator[GcpStack]:
    pytest.importorskip("google.cloud.bigquery")
    pytest.importorskip("google.cloud.storage")
    pytest.importorskip("google.cloud.pubsub_v1")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, storage

    from tests.fakes.bq_shim import BigQueryShim, StorageBridge
    from tests.fakes.gcs_shim import GcsShim
    from tests.fakes.pubsub_fake import FakePublisherServer

    bqemu_server = request.getfixturevalue("bqemu_server")

    def storage_client(url: str) -> Any:
        return storage.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": url},
        )

    direct_storage = storage_client(storage_emulator_url)
    gcs_root = Path(bqemu_settings.gcs_local_root)
    bq_shim = BigQueryShim(bqemu_server.rest_url, gcs_root, StorageBridge(direct_storage)).start()
    gcs_shim = GcsShim(storage_emulator_url).start()
    pubsub = FakePublisherServer().start()
    bq_client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bq_shim.url},
    )
    publisher_client = pubsub.client()
    try:
        yield GcpStack(
            bq_shim=bq_shim,
            gcs_shim=gcs_shim,
            pubsub=pubsub,
            bq_client=bq_client,
            storage_client=storage_client(gcs_shim.url),
            direct_storage=direct_storage,
            publisher_client=publisher_client,
            gcs_local_root=gcs_root,
        )
    finally:
        publisher_client.stop()
        bq_client.close()
        pubsub.stop()
        gcs_shim.stop()
        bq_shim.stop()


# -- one backend bundle per test --------------------------------------------------------
def _local_backend(tmp_path: Path) -> Iterator[Backend]:
    import base64
    import json

    from shared.adapters.local.bus import LocalBus
    from shared.adapters.local.object_store import LocalObjectStore
    from shared.adapters.local.warehouse import LocalWarehouse, duck_type, qualified, quote

    gcs = tmp_path / "gcs"
    warehouse = LocalWarehouse(
        tmp_path / "warehouse.duckdb",
        gcs,
        tmp_path / "jobs",
        max_file_bytes=4096,  # small: a few hundred rows already span several files
    )
    store = LocalObjectStore(gcs)
    bus = LocalBus(tmp_path / "pubsub")

    def published(topic: str) -> list[Message]:
        return [
            Message(m["messageId"], base64.b64decode(m["data"]), dict(m["attributes"]))
            for m in bus.messages(topic)
        ]

    def insert_rows(table: TableRef, rows: Sequence[Mapping[str, Any]]) -> None:
        # One statement from JSON: binding thousands of list/struct parameters is slow.
        schema = warehouse.get_table(table).schema
        names = ", ".join(quote(f.name) for f in schema)
        row_type = ", ".join(f"{quote(f.name)} {duck_type(f)}" for f in schema)
        warehouse.execute(
            f"INSERT INTO {qualified(table)} ({names}) SELECT unnest(r) FROM "
            f"(SELECT unnest(CAST(CAST(? AS JSON) AS STRUCT({row_type})[])) AS r)",
            [json.dumps([{f.name: row.get(f.name) for f in schema} for row in rows])],
        )
        warehouse.touch(table)  # what a real write does to lastModifiedTime

    def fetch_ids(table: TableRef) -> list[int]:
        return [
            int(r[0]) for r in warehouse.execute(f"SELECT id FROM {qualified(table)} ORDER BY id")
        ]

    try:
        yield Backend(
            name="local",
            warehouse=warehouse,
            store=store,
            publisher=bus,
            bucket="opsuite-backups",
            topic="opsuite-events",
            published=published,
            insert_rows=insert_rows,
            fetch_ids=fetch_ids,
            make_warehouse=lambda **_: warehouse,
            make_store=lambda **_: store,
        )
    finally:
        warehouse.close()


def _gcp_backend(stack: GcpStack) -> Iterator[Backend]:
    from shared.adapters.gcp.object_store import GcsObjectStore
    from shared.adapters.gcp.publisher import PubSubPublisher
    from shared.adapters.gcp.warehouse import BigQueryWarehouse

    suffix = uuid.uuid4().hex[:10]
    bucket = f"opsuite-backups-{suffix}"
    topic = f"opsuite-events-{suffix}"
    stack.direct_storage.create_bucket(bucket)
    publisher = PubSubPublisher(PROJECT, client=stack.publisher_client, timeout=SHORT_DEADLINE)
    stack.pubsub.create_topic(publisher.topic_path(topic))

    def make_warehouse(**kwargs: Any) -> BigQueryWarehouse:
        options: dict[str, Any] = {"retry_deadline": SHORT_DEADLINE, "page_size": 2}
        options.update(kwargs)
        return BigQueryWarehouse(PROJECT, "US", client=stack.bq_client, **options)

    def make_store(**kwargs: Any) -> GcsObjectStore:
        options: dict[str, Any] = {"retry_deadline": SHORT_DEADLINE, "page_size": 2}
        options.update(kwargs)
        return GcsObjectStore(PROJECT, client=stack.storage_client, **options)

    def published(topic_name: str) -> list[Message]:
        return [
            Message(m.message_id, m.data, m.attributes)
            for m in stack.pubsub.published(publisher.topic_path(topic_name))
        ]

    def insert_rows(table: TableRef, rows: Sequence[Mapping[str, Any]]) -> None:
        errors = stack.bq_client.insert_rows_json(
            f"{PROJECT}.{table.dataset}.{table.table}",
            [dict(r) for r in rows],
            retry=stack.retry(),
            timeout=SHORT_DEADLINE,
        )
        assert errors == [], errors

    def fetch_ids(table: TableRef) -> list[int]:
        rows = stack.bq_client.query_and_wait(
            f"SELECT id FROM `{PROJECT}.{table.dataset}.{table.table}` ORDER BY id",
            api_timeout=SHORT_DEADLINE,
            wait_timeout=SHORT_DEADLINE,
        )
        return [int(r[0]) for r in rows]

    try:
        yield Backend(
            name="gcp",
            warehouse=make_warehouse(),
            store=make_store(),
            publisher=publisher,
            bucket=bucket,
            topic=topic,
            published=published,
            insert_rows=insert_rows,
            fetch_ids=fetch_ids,
            make_warehouse=make_warehouse,
            make_store=make_store,
        )
    finally:
        stack.bq_shim.clear_faults()
        stack.gcs_shim.clear_faults()
        stack.pubsub.clear_faults()


@pytest.fixture(params=["local", "gcp"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The same contract, once per adapter family."""
    if request.param == "local":
        yield from _local_backend(tmp_path)
    else:
        yield from _gcp_backend(request.getfixturevalue("gcp_stack"))


@pytest.fixture
def gcp(gcp_stack: GcpStack) -> Iterator[tuple[Backend, GcpStack]]:
    """GCP-only tests: the GCP bundle plus the shims and fakes to inspect or break."""
    for bundle in _gcp_backend(gcp_stack):
        yield bundle, gcp_stack


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Backend]:
    yield from _local_backend(tmp_path)
