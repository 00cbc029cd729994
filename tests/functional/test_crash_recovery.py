"""A run killed midway (SIGKILL, no cleanup) completes on redelivery without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shared import runtime
from shared.avro import scan_avro
from shared.composition import build_adapters
from shared.config import load_settings
from shared.identifiers import TableRef
from shared.services.seed import seed_demo
from tests.functional.test_backup_export import TODAY
from tests.helpers import BUCKET, FOUR_TABLES, ROOT, make_stack, pubsub_event


@pytest.mark.timeout(180)
def test_run_killed_midway_completes_on_redelivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, post_event: Any
) -> None:
    # GIVEN a seeded warehouse, small shards so a table spans several files
    stack = make_stack(tmp_path, max_file_bytes=64 * 1024)
    seed_demo(stack.adapters.warehouse)  # type: ignore[arg-type]
    stack.adapters.close()  # the child process needs the DuckDB file
    ready = tmp_path / "ready"
    env = {**os.environ, "OPSUITE_CONFIG": str(stack.config), "OPSUITE_BACKEND": "local",
           "PYTHONPATH": str(ROOT)}  # fmt: skip

    # WHEN the function is killed after writing the first file of one table
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("crash_runner.py")), str(ready)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the child never reached the crash point"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    partial = [n for n in stack.objects() if "player_game_summary/attempt-1/part-" in n]
    assert len(partial) == 1, "the crash should leave half a table behind"
    from shared.manifest import MANIFEST

    assert not any(n.endswith(MANIFEST) for n in stack.objects())

    # AND Pub/Sub redelivers the same event to a fresh instance
    monkeypatch.setenv("OPSUITE_CONFIG", str(stack.config))
    monkeypatch.setenv("OPSUITE_BACKEND", "local")
    runtime.reset()
    assert post_event(pubsub_event()).status_code == 200

    # THEN the run completes, every table once, the half export replaced and removed
    settings = load_settings(stack.config)
    adapters = build_adapters(settings, "local")
    try:
        store = adapters.store
        manifest = stack.manifest(TODAY)
        assert manifest.status == "complete"
        assert sorted(t.source for t in manifest.tables) == sorted(FOUR_TABLES)
        killed = manifest.table("nba_analytics.player_game_summary")
        assert killed is not None and killed.attempt == 2 and len(killed.files) > 1
        for entry in manifest.tables:
            ds, table = entry.source.split(".")
            listed = [n for n in stack.objects(f"backups/{TODAY}/{ds}/{table}/") if "/part-" in n]
            referenced = [f.uri.removeprefix(f"gs://{BUCKET}/") for f in entry.files]
            assert sorted(listed) == sorted(referenced)  # nothing beyond what the manifest lists
            rows = 0
            for name in referenced:
                with store.open(BUCKET, name) as fo:
                    rows += scan_avro(fo).rows
            assert rows == entry.rows == adapters.warehouse.count_rows(TableRef.parse(entry.source))
        assert len(stack.messages("opsuite-backup-events")) == 1
    finally:
        adapters.close()
