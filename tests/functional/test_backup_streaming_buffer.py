"""Rows still in BigQuery's streaming buffer: counted at the instant, not exported.

Extract jobs read committed storage only, while ``COUNT(*) FOR SYSTEM_TIME AS OF``
includes buffered rows. A streamed table must not fail verification every night: the
backup is complete with what BigQuery could export, and says how many rows it lacks.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import runtime
from shared.composition import Adapters
from shared.identifiers import TableRef
from shared.models import TableInfo
from shared.services.health import HealthDeps, parse_health_params, run_health
from shared.services.restore import RestoreDeps, restore_run
from tests.helpers import Stack, pubsub_event

STREAMED = "nba_analytics.player_game_summary"
BUFFERED = 7


class StreamingWarehouse:
    """The local warehouse with ``BUFFERED`` rows of one table in a streaming buffer."""

    def __init__(self, inner: Any, *, buffered_metadata: bool = True) -> None:
        self.inner = inner
        self.buffered_metadata = buffered_metadata

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_table(self, table: TableRef) -> TableInfo:
        info: TableInfo = self.inner.get_table(table)
        if str(table) == STREAMED and self.buffered_metadata:
            return dataclasses.replace(info, streaming_buffer_rows=BUFFERED + 3)  # an estimate
        return info

    def row_count_at(self, table: TableRef, instant: datetime, *, info: Any = None) -> int:
        rows: int = self.inner.row_count_at(table, instant)
        return rows + BUFFERED if str(table) == STREAMED else rows


def _use(stack: Stack, warehouse: Any) -> None:
    runtime.use(
        stack.settings,
        Adapters("local", warehouse, stack.adapters.store, stack.adapters.publisher),
    )


def test_streamed_rows_are_reported_not_failed(stack: Stack, post_event: Any) -> None:
    _use(stack, StreamingWarehouse(stack.adapters.warehouse))
    today = datetime.now(UTC).strftime("%Y%m%d")

    assert post_event(pubsub_event()).status_code == 200

    manifest = stack.manifest(today)
    assert manifest.status == "complete"
    entry = manifest.table(STREAMED)
    assert entry is not None and entry.verification is not None
    exported = stack.adapters.warehouse.count_rows(TableRef.parse(STREAMED))
    assert entry.rows == exported  # what the files hold: what a restore will find
    assert entry.verification.rows_exported == exported
    assert entry.verification.rows_expected == exported + BUFFERED
    assert entry.verification.streaming_buffer_rows == BUFFERED
    assert "streaming buffer" in entry.verification.detail
    assert entry.attempt == 1  # not retried as a failed verification

    deps = HealthDeps(stack.settings, stack.adapters.warehouse, stack.adapters.store)
    document = run_health(parse_health_params({"checks": ["backups"]}), deps).document()
    [status] = document["checks"]["backup:status"]
    assert status["status"] == "warn"
    assert f"{STREAMED}: {BUFFERED} rows were in the streaming buffer" in status["output"]

    report = restore_run(
        today,
        RestoreDeps(
            stack.adapters.warehouse,
            stack.adapters.store,
            stack.settings.backups.bucket,
            stack.settings.backups.prefix,
            poll_interval=0.05,
        ),
        tables=[TableRef.parse(STREAMED)],
        target_dataset="nba_restored",
    )
    assert report.ok, report


@pytest.mark.parametrize("attempts", [2])
def test_a_short_export_without_a_streaming_buffer_still_fails(
    stack: Stack, post_event: Any, attempts: int
) -> None:
    settings = stack.settings.model_copy(
        update={"backups": stack.settings.backups.model_copy(update={"max_attempts": attempts})}
    )
    runtime.use(
        settings,
        Adapters(
            "local",
            StreamingWarehouse(stack.adapters.warehouse, buffered_metadata=False),  # type: ignore[arg-type]
            stack.adapters.store,
            stack.adapters.publisher,
        ),
    )

    assert post_event(pubsub_event()).status_code == 200

    entry = stack.manifest(datetime.now(UTC).strftime("%Y%m%d")).table(STREAMED)
    assert entry is not None
    assert entry.status == "failed"
    assert f"gave up after {attempts} attempts" in (entry.error or "")
