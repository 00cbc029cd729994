"""Rows still in BigQuery's streaming buffer: counted at the instant, not exported.

Extract jobs read committed storage only, while ``COUNT(*) FOR SYSTEM_TIME AS OF``
includes buffered rows. A streamed table must not fail verification every night: the
backup is complete with what BigQuery could export, and says how many rows it lacks.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
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

    def __init__(
        self,
        inner: Any,
        *,
        buffered_metadata: bool = True,
        estimate: int = BUFFERED + 3,
        missing: int = BUFFERED,
        time_travel: bool = False,
    ) -> None:
        self.inner = inner
        self.buffered_metadata = buffered_metadata
        self.estimate = estimate
        self.missing = missing
        self.time_travel = time_travel

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_table(self, table: TableRef) -> TableInfo:
        info: TableInfo = self.inner.get_table(table)
        if str(table) == STREAMED and self.buffered_metadata:
            return dataclasses.replace(info, streaming_buffer_rows=self.estimate)
        return info

    def row_count_at(self, table: TableRef, instant: datetime, **_: Any) -> int:
        rows: int = (
            self.inner.count_rows(table)
            if self.time_travel
            else self.inner.row_count_at(table, instant)
        )
        return rows + self.missing if str(table) == STREAMED else rows

    def start_extract(self, request: Any) -> Any:
        if self.time_travel:  # the local warehouse can't read the past: export now
            request = dataclasses.replace(request, instant=datetime.now(UTC))
        return self.inner.start_extract(request)


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


@pytest.mark.parametrize(
    "warehouse",
    [
        pytest.param({"buffered_metadata": False}, id="no-streaming-buffer"),
        pytest.param({"missing": 5000, "estimate": 10}, id="shortfall-beyond-the-buffer"),
    ],
)
def test_a_short_export_the_buffer_cannot_explain_still_fails(
    stack: Stack, post_event: Any, warehouse: dict[str, Any]
) -> None:
    _short_run(stack, StreamingWarehouse(stack.adapters.warehouse, **warehouse))

    entry = stack.manifest(datetime.now(UTC).strftime("%Y%m%d")).table(STREAMED)
    assert entry is not None
    assert entry.status == "failed"
    assert "gave up after 2 attempts" in (entry.error or "")


def test_a_buffer_seen_long_after_the_instant_explains_nothing(stack: Stack) -> None:
    # a past date's run: today's buffer says nothing about that night
    travelling = StreamingWarehouse(stack.adapters.warehouse, time_travel=True)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)

    outcome = _short_run(stack, travelling, date=yesterday)

    assert outcome.manifest is not None
    entry = outcome.manifest.table(STREAMED)
    assert entry is not None and entry.status == "failed"
    assert "streaming buffer estimate: 10 rows" in (entry.error or "")


def _short_run(stack: Stack, warehouse: Any, date: Any = None) -> Any:
    from shared.events import BackupRequest
    from shared.services.backup import BackupDeps, run_backup_to_end

    settings = stack.settings.backups.model_copy(update={"max_attempts": 2})
    deps = BackupDeps(settings, warehouse, stack.adapters.store, stack.adapters.publisher, "local")
    return run_backup_to_end(BackupRequest(date=date), deps)
