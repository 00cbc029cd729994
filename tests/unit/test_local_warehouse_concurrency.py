"""The local warehouse under the restore's concurrency: DDL from many threads at once."""

from __future__ import annotations

import threading
from pathlib import Path

from shared.adapters.local.warehouse import LocalWarehouse


def test_concurrent_ensure_dataset_is_no_catalog_conflict(tmp_path: Path) -> None:
    # GIVEN fresh warehouses, and 16 threads creating the same dataset in each at once
    # (before the fix one loser in ~10 rounds got DuckDB's raw "write-write conflict")
    errors: list[str] = []
    for round_ in range(25):
        warehouse = LocalWarehouse(tmp_path / f"w{round_}.duckdb", tmp_path / "gcs", tmp_path / "j")
        start = threading.Barrier(16)

        def create(wh: LocalWarehouse = warehouse, barrier: threading.Barrier = start) -> None:
            barrier.wait()
            try:
                wh.ensure_dataset("restored")
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=create) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert warehouse.list_tables("restored") == []  # the dataset exists, empty
        warehouse.close()
    assert errors == []
