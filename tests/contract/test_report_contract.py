"""The ops report's data on each adapter family: the same facts, read the same way.

On each backend (the local stack; the GCP adapters on bqemulator and gcp-storage-emulator
through the official clients): a backup through the service (manifest in the object
store), SLO evaluations appended through the history port, one alert routed to a
recording receiver (its ledger in the object store). ``gather`` must report the same
night, the same SLO state and the same incident on both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from shared.composition import Adapters
from shared.config import parse_settings
from shared.events import BackupRequest
from shared.models import Alert, DeliveryResult, Notification
from shared.services.alert_router import RouterDeps, handle_alert
from shared.services.backup import BackupDeps, run_backup_to_end
from shared.services.report import gather
from tests.contract.history_support import record
from tests.contract.support import RICH_SPEC, Backend, rich_rows
from tests.contract.test_history_contract import (  # noqa: F401 (the GCP fixtures)
    build_case,
    upload_client,
    upload_shim,
)
from tests.helpers import EXAMPLE_CONFIG

pytestmark = pytest.mark.timeout(180)


@dataclass
class Recorder:
    """A receiver that accepts everything (the ledger is what is compared)."""

    sent: list[Notification] = field(default_factory=list)

    def send(self, notification: Notification) -> DeliveryResult:
        self.sent.append(notification)
        return DeliveryResult(notification.receiver, 200, "ok")


def test_the_report_reads_the_same_on_each_backend(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    source = backend.create_source_table("orders", RICH_SPEC, rich_rows(300))
    body: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    body["backups"] = {
        "bucket": backend.bucket,
        "prefix": "backups",
        "tables": [str(source)],
        "poll_interval_seconds": 0.05,
        "events_topic": backend.topic,
    }
    body["health"]["freshness"]["tables"] = [{"table": str(source), "loaded_at": "ts"}]
    body["slos"]["objectives"] = [
        {"name": "freshness", "description": "loaded within a day", "objective": 0.99,
         "severity": "P1",
         "sli": {"kind": "freshness", "max_age": {"count": 24, "period": "hour"}}}
    ]  # fmt: skip
    body["alerting"] = {
        "route": {"receiver": "rec"},
        "receivers": [{"name": "rec", "file_configs": [{"path": "x.jsonl"}]}],
    }
    settings = parse_settings(body, "contract")
    # a night's backup
    outcome = run_backup_to_end(
        BackupRequest(),
        BackupDeps(
            settings.backups, backend.warehouse, backend.store, backend.publisher, backend.name
        ),
    )
    assert outcome.manifest is not None and outcome.manifest.status == "complete"
    # two evaluations of the freshness SLO
    case = build_case(backend, request)
    slot = now.replace(minute=(now.minute // 15) * 15, second=0)
    ages = [json.dumps({"ages_hours": {str(source): age}}) for age in (3.25, 30.0)]
    records = [
        record(at=slot - timedelta(minutes=15), slo="freshness", recorded_at=now,
               detail=ages[0]),
        record(at=slot, slo="freshness", good=False, value=30.0, recorded_at=now,
               breaching=True, compliance=0.5, budget_remaining=-0.25, detail=ages[1]),
    ]  # fmt: skip
    assert case.history.append("report-contract-1", records)
    # one alert, told to a recording receiver
    receiver = Recorder()
    deps = RouterDeps(settings.alerting, backend.store, backend.bucket, lambda _r: [receiver])
    alert = Alert("ab" * 16, "firing", "P1", {"alertname": "TableStale"}, {"summary": "s"},
                  now - timedelta(minutes=10), None, "slo", "e1")  # fmt: skip
    assert handle_alert(alert, deps).results() == {"rec": "sent"}

    adapters = Adapters(
        backend.name,  # type: ignore[arg-type]
        backend.warehouse,
        backend.store,
        backend.publisher,
        history=case.history,
    )
    # the report's instant is taken after the backup: the run's instant is when it started,
    # which is later than ``now`` by however long the source table took to create
    report = gather(settings, adapters, now=datetime.now(UTC) + timedelta(seconds=1), days=2)

    # the same facts on both families
    [night] = report.backups.nights
    assert (night.run_id, night.status, night.tables, night.rows) == (
        outcome.run_id, "complete", 1, 300,
    )  # fmt: skip
    assert night.files == len(outcome.manifest.tables[0].files) >= 1
    assert night.bytes == outcome.manifest.tables[0].bytes
    [slo] = report.slos.rows
    assert (slo.name, slo.sli, slo.breaching, slo.compliance) == ("freshness", 30.0, True, 0.5)
    [budget] = report.budget.slos
    assert [p.budget_remaining for p in budget.points] == [0.5, -0.25]
    [incident] = report.incidents.incidents
    assert (incident.fingerprint, incident.status, incident.receivers) == (
        alert.fingerprint, "open", ("rec",),
    )  # fmt: skip
    assert incident.notified is not None and incident.detection_seconds is not None
    [table] = report.freshness.tables
    assert (table.table, table.age_hours, table.status) == (str(source), 30.0, "warn")
    assert report.missing().keys() <= {"phases", "drill"}  # neither was produced here
    assert len(receiver.sent) == 1
