"""The report tests' demo stack, built once per session (tests/functional/conftest.py
registers its fixtures): a seeded warehouse, tonight's backup, a restore drill, a
two-day SLO back-fill, a live evaluation, one SLO event routed through the alert router
and then resolved; and read-only views of its store and history (a write fails the
test; a prefix or the history can be made to fail as a 503 would)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from shared.alerting_config import FileConfig, Receiver
from shared.composition import Adapters
from shared.errors import TransientError
from shared.events import PubSubMessage
from shared.models import EvaluationRecord, ObjectInfo
from shared.ports import EvaluationHistory, ObjectStore
from shared.services.alert_inputs import alert_from_message
from shared.services.alert_router import RouterDeps, handle_alert
from shared.services.drill import DrillDeps, DrillRecord, run_drill
from shared.services.report import ReportData, gather
from shared.services.seed import seed_demo
from shared.services.sla import SlaDeps, SlaRequest, evaluate
from shared.services.sla_backfill import backfill
from tests.helpers import (
    Stack,
    backup_now,
    make_example_stack,
)

DAYS = 3
JSON = "application/json"


@dataclass
class Demo:
    stack: Stack
    now: datetime
    run_id: str
    drill: DrillRecord
    fingerprint: str
    resolved_at: datetime

    @property
    def history(self) -> EvaluationHistory:
        assert self.stack.adapters.history is not None
        return self.stack.adapters.history


class ReadOnlyStore:
    """The stack's store for reading; any write fails the test. ``failing``: a prefix
    whose listings raise TransientError (the bucket answering 503 for it)."""

    def __init__(self, inner: ObjectStore, failing: str | None = None) -> None:
        self.inner = inner
        self.failing = failing

    def list(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        if self.failing is not None and prefix.startswith(self.failing):
            raise TransientError(f"503 listing gs://{bucket}/{prefix}")
        return self.inner.list(bucket, prefix)

    def read(self, bucket: str, name: str) -> bytes:
        return self.inner.read(bucket, name)

    def read_versioned(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        return self.inner.read_versioned(bucket, name)

    def open(self, bucket: str, name: str) -> BinaryIO:
        return self.inner.open(bucket, name)

    def stat(self, bucket: str, name: str) -> ObjectInfo | None:
        return self.inner.stat(bucket, name)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the report wrote to the store: {args[:2]}")

    write = write_once = write_if_generation = delete = _refuse


class ReadOnlyHistory:
    def __init__(self, inner: EvaluationHistory, *, failing: bool = False) -> None:
        self.inner = inner
        self.failing = failing
        self.reads: list[tuple[datetime, datetime]] = []

    def read(self, slos: Any, since: datetime, until: datetime) -> list[EvaluationRecord]:
        self.reads.append((since, until))
        if self.failing:
            raise TransientError("BigQuery: 503 Service Unavailable")
        return self.inner.read(slos, since, until)

    def append(self, job_id: str, records: Any) -> bool:
        raise AssertionError("the report appended to the history")


def _sla_deps(stack: Stack) -> SlaDeps:
    return SlaDeps.of(stack.settings, stack.adapters)


def _route_first_event(stack: Stack, events: Any) -> tuple[str, datetime]:
    """The evaluation's first event through the router to local file receivers, then its
    resolution; the alert's fingerprint and when it ended."""
    receivers = [
        Receiver(name=r.name, file_configs=[FileConfig(path=f"alerts/{r.name}.jsonl")])
        for r in stack.settings.alerting.receivers
    ]
    alerting = stack.settings.alerting.model_copy(update={"receivers": receivers})
    settings = stack.settings.model_copy(update={"alerting": alerting})
    router = RouterDeps.of(settings, stack.adapters)
    wanted = {e.message_id for e in events if e.transition.event_type == "slo.breached"}
    [message, *_] = [m for m in stack.messages("opsuite-alerts") if m["messageId"] in wanted]
    received = datetime.now(UTC)
    alert = alert_from_message(
        PubSubMessage(
            base64.b64decode(message["data"]), message["attributes"], message["messageId"], None
        ),
        topic_kind="alerts",
        received_at=received,
    )
    assert alert is not None
    assert handle_alert(alert, router).receivers
    ended = received + timedelta(seconds=5)
    handle_alert(replace(alert, status="resolved", ends_at=ended), router)
    return alert.fingerprint, ended


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    stack = make_example_stack(tmp_path_factory.mktemp("report"), time_budget_seconds=2)
    seed_demo(stack.adapters.warehouse)  # type: ignore[arg-type]
    run_id = backup_now(stack)
    a = stack.adapters
    drilled = run_drill(DrillDeps(stack.settings.backups, a.warehouse, a.store, "local"))
    assert drilled.record is not None
    backfill(_sla_deps(stack), days=DAYS - 1)
    outcome = evaluate(SlaRequest(), _sla_deps(stack))
    fingerprint, resolved_at = _route_first_event(stack, outcome.events)
    yield Demo(stack, datetime.now(UTC), run_id, drilled.record, fingerprint, resolved_at)
    stack.adapters.close()


def _read_only(adapters: Adapters, **failing: Any) -> Adapters:
    assert adapters.history is not None
    return replace(
        adapters,
        store=ReadOnlyStore(adapters.store, failing.get("store")),
        history=ReadOnlyHistory(adapters.history, failing=failing.get("history", False)),
    )


def _gather(demo: Demo, **failing: Any) -> ReportData:
    adapters = _read_only(demo.stack.adapters, **failing)
    return gather(demo.stack.settings, adapters, now=demo.now, days=DAYS)


@pytest.fixture(scope="session")
def report(demo: Demo) -> ReportData:
    return _gather(demo)


@pytest.fixture(scope="session")
def report_page(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo's report through the real CLI: its path and its text."""
    from shared.cli import main

    output = tmp_path_factory.mktemp("page") / "report.html"
    # at the demo's instant: the page and the `report` fixture's gather are the same data
    args = ["report", "--days", str(DAYS), "--at", demo.now.isoformat(), "--output", str(output)]
    assert main(["--config", str(demo.stack.config), *args]) == 0
    return output, output.read_text(encoding="utf-8")
